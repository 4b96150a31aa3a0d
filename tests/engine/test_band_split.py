"""A segment read band by band (every worker thread reads every file and sums its own rows) gives
the statistics of the files split among the threads, bit for bit: both are exact integer sums
converted once."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from pipeline import Config, scan
from pipeline.state.store import read_manifest

from ..conftest import write_stack

QUIET = {"progress": False, "log": lambda m: None}


def _config(split: str, tile_values: int = 300) -> Config:
    config = Config()
    config.scan.split = split
    config.scan.tile_values = tile_values  # several tiles, so several bands
    config.scan.batch_size = 3
    return config


def _arrays(out) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(out / "stats.zarr"), mode="r")
    return {name: group[name][...] for name in group.array_keys()}


def test_bands_equal_numpy_and_the_files_split(local_client, tmp_path):
    stack = np.random.default_rng(2).integers(0, 256, (11, 23, 19, 3), dtype=np.uint8)
    write_stack(tmp_path / "in", stack)
    for split in ("bands", "files"):
        scan([str(tmp_path / "in")], tmp_path / split, _config(split), client=local_client, **QUIET)
    bands, files = _arrays(tmp_path / "bands"), _arrays(tmp_path / "files")
    assert sorted(bands) == sorted(files)
    for name in bands:
        np.testing.assert_array_equal(bands[name], files[name], err_msg=name)
    ref = stack.astype(np.float64)
    np.testing.assert_allclose(bands["mean"], ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bands["m2"] / len(ref), ref.var(0), rtol=1e-12)


def test_bands_skip_copies_and_files_counted_before_as_the_files_split_does(local_client, tmp_path):
    """The bands take turns to digest the batches (the others decode only): copies within the inputs
    are dropped before the reading, and with --merge every band checks the saved digests."""
    import shutil

    stack = np.random.default_rng(4).integers(0, 256, (9, 23, 19, 3), dtype=np.uint8)
    paths = write_stack(tmp_path / "in", stack)
    shutil.copy(paths[2], tmp_path / "in" / "zz_copy_of_2.png")
    write_stack(tmp_path / "more", stack[:4] // 2 + 3, prefix="more")
    shutil.copy(paths[5], tmp_path / "more" / "again_5.png")
    for split in ("bands", "files"):
        out = tmp_path / split
        scan([str(tmp_path / "in")], out, _config(split), client=local_client, **QUIET)
        scan([str(tmp_path / "more")], out, _config(split), client=local_client, merge=True, **QUIET)
    bands, files = _arrays(tmp_path / "bands"), _arrays(tmp_path / "files")
    for name in bands:
        np.testing.assert_array_equal(bands[name], files[name], err_msg=name)
    ref = np.concatenate([stack, stack[:4] // 2 + 3]).astype(np.float64)  # each frame once
    np.testing.assert_allclose(bands["mean"], ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(bands["m2"] / len(ref), ref.var(0), rtol=1e-12)
    saved = read_manifest(tmp_path / "bands")
    assert len(saved) == 13 and saved == read_manifest(tmp_path / "files")
    assert len({c.digest for c in saved.values()}) == 13 and all(c.digest for c in saved.values())


@pytest.mark.slow
def test_bands_keep_the_physics_model_s_sums_and_each_frame_s_sketch(local_client, tmp_path):
    """A dated raw collection (exposure sums, onset days, each frame's sketch of lit hot
    sensels, which each band sees part of): the same stats.zarr, the same manifest, the same
    defects as the files split."""
    pytest.importorskip("pidng")
    from pipeline.defect import read_csv
    from pipeline.synth import synthesize_collection

    synthesize_collection(tmp_path / "frames", frames=30, size=(320, 240), fmt="dng", seed=4)
    for split in ("bands", "files"):
        scan([str(tmp_path / "frames")], tmp_path / split, _config(split, 20_000), client=local_client, **QUIET)
    bands, files = _arrays(tmp_path / "bands"), _arrays(tmp_path / "files")
    assert "model_xr" in bands and "model_first_day_1" in bands
    for name in bands:
        np.testing.assert_array_equal(bands[name], files[name], err_msg=name)
    a, b = read_manifest(tmp_path / "bands"), read_manifest(tmp_path / "files")
    assert a == b and any(c.spikes for c in a.values())
    got = [(d.x, d.y, d.kind, d.since) for d in read_csv(tmp_path / "bands" / "defects.csv")]
    assert got == [(d.x, d.y, d.kind, d.since) for d in read_csv(tmp_path / "files" / "defects.csv")]


def test_the_split_is_chosen_from_the_sensor_s_size_and_the_files():
    """Bands where one thread's sums of the whole sensor would pass 1 GiB (45 MP RGB JPEGs,
    61 MP raws), or half that with few files per thread (24 MP raws; 12 MP raws with the
    physics model's sums); files below (6 MP RGB) or with many files; never for one thread or
    one tile."""
    from types import SimpleNamespace

    from pipeline.engine.plan import Segment, band_split
    from pipeline.stats.model import ModelSpec

    few, many = Segment("s", [object()] * 16), Segment("s", [object()] * 1000)
    settings = Config().scan
    halves = band_split(few, 2, (5464, 8192, 3), "uint8", settings)  # 131 tiles of 42 rows
    assert halves == [list(range(66)), list(range(66, 131))]
    assert band_split(many, 2, (5464, 8192, 3), "uint8", settings) is not None  # memory first
    assert band_split(few, 4, (6388, 9576), "uint16", settings) is not None
    assert band_split(few, 2, (2000, 3000, 3), "uint8", settings) is None
    assert band_split(few, 2, (4000, 6000), "uint16", settings) is not None
    assert band_split(many, 2, (4000, 6000), "uint16", settings) is None
    model = SimpleNamespace(spec=ModelSpec(exposure=True, dates=True, counts=True))
    assert band_split(few, 2, (3000, 4000), "uint16", settings) is None
    assert band_split(few, 2, (3000, 4000), "uint16", settings, model) is not None
    assert band_split(few, 1, (5464, 8192, 3), "uint8", settings) is None
    settings.split = "bands"
    assert band_split(few, 2, (2000, 3000, 3), "uint8", settings) is not None
    settings.split = "sideways"
    with pytest.raises(ValueError, match="scan.split"):
        band_split(few, 2, (2000, 3000, 3), "uint8", settings)
