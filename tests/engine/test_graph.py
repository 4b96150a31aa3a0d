"""The dask graph: exact results for any partition, batch and tile size, bad files counted out."""

import dask
import numpy as np
import pytest

from pipeline.engine.graph import image_array, read_step, segment_outputs, tile_stats
from pipeline.stats import PixelStats, stats_of_stack


class MemoryReader:
    """Files held in memory, so the graph is tested apart from any format."""

    def __init__(self, frames: dict):
        self.frames = frames
        self.reads = []

    def __call__(self, path, out):
        self.reads.append(path)
        frame = self.frames[path]
        if isinstance(frame, Exception):
            raise frame
        return frame, ""  # no digest: every file counts


def run_graph(frames: dict, shape, dtype, batch, tile_rows, cfa=False, split_every=2, partition=None):
    """Partitions of ``partition`` files (default: 2 batches each), read in batches of ``batch``."""
    paths = list(frames)
    partition = partition or 2 * batch
    partitions = [[paths[j : j + batch] for j in range(i, min(i + partition, len(paths)), batch)]
                  for i in range(0, len(paths), partition)]
    stride = 2 if cfa else 1
    images, statuses = image_array(partitions, shape, dtype, tile_rows, stride, MemoryReader(frames))
    stats, statuses, _ = compute_segment(images, statuses, split_every)
    assert stats.n == sum(s[1] == "used" for s in statuses) and stats.pixel_shape == tuple(shape)
    return stats, statuses


def compute_segment(images, statuses, split_every: int):
    """As the scan computes a segment (its tiles and statuses together, unoptimised), on the
    sync scheduler: the tiles joined into the image's stats, the statuses, and the tiles."""
    *tiles, record = dask.compute(*segment_outputs(tile_stats(images, split_every), statuses),
                                  scheduler="sync", optimize_graph=False)
    done = record.statuses
    counts = None if any(t.counts is None for t in tiles) else np.concatenate([t.counts for t in tiles], axis=1)
    stats = PixelStats(tiles[0].n, np.concatenate([t.mean for t in tiles], axis=1),
                       np.concatenate([t.m2 for t in tiles], axis=1), counts)
    return stats, done, tiles


@pytest.mark.parametrize("n,batch,tile_rows,partition", [(1, 4, 3, None), (13, 4, 5, None), (13, 5, 13, 5),
                                                         (7, 7, 1, 7), (10, 3, 100, 9), (13, 2, 4, 13)])
@pytest.mark.parametrize("cfa", [False, True])
def test_graph_equals_whole_stack(n, batch, tile_rows, partition, cfa):
    rng = np.random.default_rng(n * 31 + batch)
    shape = (11, 9) if cfa else (11, 9, 3)
    dtype = np.uint16 if cfa else np.uint8
    stack = rng.integers(0, np.iinfo(dtype).max, (n, *shape), dtype=dtype)
    stats, _ = run_graph({f"f{i}": stack[i] for i in range(n)}, shape, np.dtype(dtype).name, batch, tile_rows, cfa,
                         partition=partition)
    ref = stats_of_stack(stack, stride=2 if cfa else 1)
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


def test_a_partition_keeps_input_order_across_its_batches():
    frames = {"a": np.zeros((2, 2), np.uint8), "b": ValueError("bad"), "c": np.ones((2, 2), np.uint8),
              "d": np.full((2, 2), 3, np.uint8)}
    reader, tiles = MemoryReader(frames), [(0, 1), (1, 2)]
    part = read_step(None, 0, ["a", "b"], (2, 2), "uint8", reader, None, 1, tiles)
    part = read_step(part, 1, ["c", "d"], (2, 2), "uint8", reader, None, 1, tiles)
    assert [s[0] for s in part.statuses] == ["a", "b", "c", "d"]
    assert [t.n for t in part.tiles] == [3, 3] and part.tiles[1].s1[0].tolist() == [[4, 4]]


def test_a_step_never_adds_to_sums_twice():
    """Sums are added to in place, so a step given sums it has already been applied to refuses."""
    frames = {"a": np.ones((2, 2), np.uint8)}
    part = read_step(None, 0, ["a"], (2, 2), "uint8", MemoryReader(frames), None, 1, [(0, 2)])
    with pytest.raises(RuntimeError, match="twice"):
        read_step(part, 0, ["a"], (2, 2), "uint8", MemoryReader(frames), None, 1, [(0, 2)])
    assert part.tiles[0].n == 1


@pytest.mark.parametrize("tile_rows", [100, 2])
def test_every_file_is_read_once(tile_rows):
    """The scan's way to compute a segment: one image tile (small images) must not make the
    statuses and the tiles read the files each on their own."""
    frames = {f"f{i}": np.full((4, 5), i, np.uint8) for i in range(6)}
    reader = MemoryReader(frames)
    images, statuses = image_array([[["f0", "f1"], ["f2"]], [["f3", "f4", "f5"]]], (4, 5), "uint8", tile_rows, 1,
                                   reader)
    _, done, _ = compute_segment(images, statuses, 4)
    assert sorted(reader.reads) == sorted(frames) and len(done) == 6


def test_without_counts_the_graph_emits_the_moments_only():
    rng = np.random.default_rng(8)
    stack = rng.integers(0, 255, (5, 6, 7, 3), dtype=np.uint8)
    frames = {f"f{i}": stack[i] for i in range(5)}
    images, statuses = image_array([[["f0", "f1"]], [["f2", "f3", "f4"]]], (6, 7, 3), "uint8", 4, 1,
                                   MemoryReader(frames), counts=False)
    stats, done, tiles = compute_segment(images, statuses, 4)
    assert stats.counts is None and stats.n == 5 and len(tiles) == 2
    np.testing.assert_allclose(stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)


def test_dask_sees_the_size_of_partials():
    """The scheduler weighs transfers and memory by dask's sizeof: sums and partials of a sensor
    are hundreds of MB, and must not look like small objects (which would move chains of sums
    between workers as if they cost nothing)."""
    from dask.sizeof import sizeof

    from pipeline.engine.graph import PartitionSums
    from pipeline.stats import IntegerSums

    sums = IntegerSums.zeros((40, 50, 3), np.uint8)
    arrays = sums.s1.nbytes + sums.s2.nbytes + sums.counts.nbytes
    assert arrays <= sizeof(sums) < arrays + 1000
    assert 2 * arrays <= sizeof(PartitionSums([sums, sums])) < 2 * arrays + 2000
    stats = IntegerSums(1, sums.s1, sums.s2, sums.counts).to_stats()
    assert stats.mean.nbytes + stats.m2.nbytes + stats.counts.nbytes <= sizeof(stats)
