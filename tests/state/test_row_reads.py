"""Rows of a stats.zarr read straight into place give zarr's own numbers, and every case that
is not the plain one (compressed, an empty chunk left out, another layout) goes to zarr."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from pipeline.records import StackMeta
from pipeline.state.row_reads import read_rows_into
from pipeline.state.store import read_rows, write_stats
from pipeline.stats import stats_of_stack


def _array(tmp_path, name="a", dtype=np.float64, compressors=None, write_empty=True, shape=(50, 7, 3), rows=8):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="a")
    array = group.create_array(name, shape=shape, dtype=dtype, chunks=(rows, *shape[1:]), compressors=compressors)
    data = np.random.default_rng(3).normal(size=shape).astype(dtype)
    data[16:24] = 0  # one chunk all fill value
    array.with_config({"write_empty_chunks": write_empty})[...] = data
    return array, data


@pytest.mark.parametrize("y0,y1", [(0, 1), (0, 50), (5, 6), (7, 9), (8, 16), (3, 45), (49, 50), (10, 10)])
def test_any_rows_are_zarr_s_rows(tmp_path, y0, y1):
    array, data = _array(tmp_path)
    out = np.full((y1 - y0, *data.shape[1:]), np.nan)
    assert read_rows_into(array, y0, y1, out)
    np.testing.assert_array_equal(out, data[y0:y1])
    np.testing.assert_array_equal(out, array[y0:y1])


def test_the_cases_zarr_must_read_are_left_to_it(tmp_path):
    packed, _ = _array(tmp_path, "packed", np.uint16, compressors=BloscCodec(cname="lz4"))
    assert not read_rows_into(packed, 0, 5, np.empty((5, 7, 3), np.uint16))
    sparse, data = _array(tmp_path, "sparse", write_empty=False)
    assert read_rows_into(sparse, 0, 16, np.empty((16, 7, 3)))  # chunks that hold numbers are files
    assert not read_rows_into(sparse, 10, 20, np.empty((10, 7, 3)))  # the empty chunk is no file
    assert not read_rows_into(sparse, 0, 5, np.empty((5, 7, 3), np.float32))  # another dtype
    assert not read_rows_into(sparse, 0, 5, np.empty((5, 7, 3))[:, ::-1])  # not contiguous
    split, _ = _array(tmp_path, "split", shape=(20, 8))  # chunks across the columns too
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="a")
    cut = group.create_array("cut", shape=(20, 8), dtype=np.float64, chunks=(4, 4), compressors=None)
    cut[...] = 1.0
    assert not read_rows_into(cut, 0, 4, np.empty((4, 8)))
    assert read_rows_into(split, 0, 4, np.empty((4, 8)))


def test_a_saved_stats_zarr_reads_back_exactly(tmp_path):
    frames = np.random.default_rng(5).integers(0, 4000, (6, 37, 11)).astype(np.uint16)
    stats = stats_of_stack(frames)
    write_stats(tmp_path, stats, StackMeta(dtype="uint16"))
    for y0, y1 in [(0, 37), (5, 30), (36, 37)]:
        back = read_rows(tmp_path / "stats.zarr", y0, y1)
        np.testing.assert_array_equal(back.mean, stats.mean[:, y0:y1])
        np.testing.assert_array_equal(back.m2, stats.m2[:, y0:y1])
        np.testing.assert_array_equal(back.counts, stats.counts[:, y0:y1])
