"""The dask graph: exact results for any batch and tile size, bad files counted out."""

import dask
import numpy as np
import pytest

from pipeline.reduce import PLANES, image_array, planes_to_stats, read_batch, stats_planes
from pipeline.stats import stats_of_stack


class MemoryReader:
    """Files held in memory, so the graph is tested apart from any format."""

    def __init__(self, frames: dict):
        self.frames = frames

    def __call__(self, path):
        frame = self.frames[path]
        if isinstance(frame, Exception):
            raise frame
        return frame, ""  # no digest: every file counts


def run_graph(frames: dict, shape, dtype, batch, tile_rows, cfa=False, split_every=2):
    paths = list(frames)
    batches = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    stride = 2 if cfa else 1
    images, statuses = image_array(batches, shape, dtype, tile_rows, stride, MemoryReader(frames))
    planes = stats_planes(images, stride, stride, split_every)
    assert planes.shape == (len(PLANES), *shape)
    planes, (statuses, _) = dask.compute(planes, statuses, scheduler="sync")
    return planes_to_stats(planes, sum(s[1] == "used" for s in statuses)), statuses


@pytest.mark.parametrize("n,batch,tile_rows", [(1, 4, 3), (13, 4, 5), (13, 5, 13), (7, 7, 1), (10, 3, 100)])
@pytest.mark.parametrize("cfa", [False, True])
def test_graph_equals_whole_stack(n, batch, tile_rows, cfa):
    rng = np.random.default_rng(n * 31 + batch)
    shape = (11, 9) if cfa else (11, 9, 3)
    dtype = np.uint16 if cfa else np.uint8
    stack = rng.integers(0, np.iinfo(dtype).max, (n, *shape), dtype=dtype)
    stats, _ = run_graph({f"f{i}": stack[i] for i in range(n)}, shape, np.dtype(dtype).name, batch, tile_rows, cfa)
    ref = stats_of_stack(stack, cfa=cfa)
    assert stats.n == n
    np.testing.assert_allclose(stats.mean, ref.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.var, ref.var, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12, atol=1e-300)


def test_failed_and_mismatched_files_are_counted_out():
    rng = np.random.default_rng(5)
    good = rng.integers(0, 255, (6, 5, 4, 3), dtype=np.uint8)
    frames = {f"g{i}": good[i] for i in range(6)}
    frames["truncated"] = OSError("image file is truncated")
    frames["gray"] = good[0, ..., 0]
    frames["wide"] = good[0].astype(np.uint16)
    stats, statuses = run_graph(frames, (5, 4, 3), "uint8", batch=4, tile_rows=2)
    np.testing.assert_allclose(stats.var[0], good.astype(np.float64).var(0), rtol=1e-12)
    reasons = {p: r for p, s, r in statuses if s == "skipped"}
    assert reasons["truncated"] == "cannot decode: image file is truncated"
    assert "decoded shape 5x4 differs" in reasons["gray"]
    assert "decoded dtype uint16" in reasons["wide"]
    assert len(statuses) == 9


def test_a_batch_with_no_good_file_contributes_nothing():
    good = np.random.default_rng(1).integers(0, 255, (3, 4, 4), dtype=np.uint8)
    frames = {"bad0": ValueError("x"), "bad1": ValueError("y"), **{f"g{i}": good[i] for i in range(3)}}
    stats, _ = run_graph(frames, (4, 4), "uint8", batch=2, tile_rows=3)
    assert stats.n == 3
    np.testing.assert_allclose(stats.mean[0], good.mean(0), rtol=1e-12)


def test_read_batch_keeps_input_order():
    frames = {"a": np.zeros((2, 2), np.uint8), "b": ValueError("bad"), "c": np.ones((2, 2), np.uint8)}
    batch = read_batch(list(frames), (2, 2), "uint8", MemoryReader(frames))
    assert [s[0] for s in batch.statuses] == ["a", "b", "c"]
    assert batch.frames.shape == (2, 2, 2) and batch.frames[1].max() == 1
