"""The running total on the workers: segments folded tile by tile, in order, into checkpoint
files and at last into stats.zarr's rows; the client sees only each tile's small reference."""

import numpy as np
import pytest

from pipeline.records import FileStatus, ReadRecord
from pipeline.stats import PixelStats, stats_of_stack


def _rows(stats, a: int, b: int):
    """Rows a:b of stats: a row tile, as the reduction emits it."""
    counts = None if stats.counts is None else stats.counts[:, a:b]
    return PixelStats(stats.n, stats.mean[:, a:b], stats.m2[:, a:b], counts)


def _record(a: int, b: int) -> ReadRecord:
    return ReadRecord([FileStatus(f"f{i}", "used", "") for i in range(a, b)])


@pytest.mark.parametrize("local", [False, True], ids=["workers fold", "client folds"])
def test_segments_fold_in_order_into_checkpoints_then_into_stats_zarr(local_client, tmp_path, local):
    """Three segments of two row tiles: after each of the first two, the checkpointed tiles
    hold exactly the segments completed so far; the last goes into stats.zarr, whose rows equal
    the whole stack's statistics. Whoever folds (the workers, or the client where the workers
    cannot write), the numbers are the same."""
    from pipeline.engine.plan import Segment
    from pipeline.engine.total import CheckpointSink, StatsSink, TileTotals
    from pipeline.state.checkpoint import load_tile
    from pipeline.state.store import create_stats, planned_arrays, read_rows

    rng = np.random.default_rng(4)
    stack = rng.integers(0, 256, (9, 10, 6, 3), dtype=np.uint8)
    tiles = [(0, 4), (4, 8), (8, 10)]
    arrays = planned_arrays((10, 6, 3), 4, 9, True, ())
    tmp = create_stats(tmp_path, arrays)
    sink = StatsSink(str(tmp), arrays)
    folder = tmp_path / "ck"
    totals = TileTotals(local_client, folder, tiles, (6, 3), None, local)
    spans = [(0, 4), (4, 5), (5, 9)]
    for k, (a, b) in enumerate(spans):
        stats = stats_of_stack(stack[a:b])
        parts = [local_client.scatter(_rows(stats, y0, y1)) for y0, y1 in tiles]
        totals.expect(Segment(f"s{k}", []), parts, local_client.scatter(_record(a, b)),
                      sink if k == 2 else CheckpointSink(str(folder)))
    done = []
    for seg, record in totals.run():
        done.append(seg.id)
        frames = stack[: spans[len(done) - 1][1]]
        assert record.used == spans[len(done) - 1][1] - spans[len(done) - 1][0]
        if seg.id != "s2":  # what the scan checkpoints here holds exactly these frames
            saved = totals.saved()
            assert saved.n == len(frames)
            got = [load_tile(folder, name) for name in saved.tiles]
            np.testing.assert_allclose(np.concatenate([g.mean for g in got], axis=1),
                                       stats_of_stack(frames).mean, rtol=1e-12)
    assert done == ["s0", "s1", "s2"] and not totals.pending
    ref, got = stats_of_stack(stack), read_rows(tmp, 0, 10, n=9)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, ref.m2, rtol=1e-11, atol=1e-9)
    np.testing.assert_array_equal(got.counts, ref.counts)
    assert [t.n for t in totals.heads] == [9, 9, 9] and all(t.hot is not None for t in totals.heads)


def test_a_merge_into_saved_stats_reads_them_tile_by_tile(local_client, tmp_path):
    """--merge: each tile of the saved stats.zarr is read by the worker that writes the new
    one; the result is the statistics of both stacks together."""
    from pipeline.engine.plan import Segment
    from pipeline.engine.total import StatsSink, TileTotals
    from pipeline.records import StackMeta
    from pipeline.state.store import create_stats, planned_arrays, read_rows, read_saved, write_stats

    rng = np.random.default_rng(8)
    stack = rng.integers(0, 4096, (7, 9, 5), dtype=np.uint16)
    old = tmp_path / "old"
    write_stats(old, stats_of_stack(stack[:3]), StackMeta(dtype="uint16"))
    prior, _, n = read_saved(old)
    assert n == 3
    arrays = planned_arrays((9, 5), 4, 7, True, (), prior)
    tmp = create_stats(tmp_path, arrays)
    tiles = [(0, 4), (4, 8), (8, 9)]
    totals = TileTotals(local_client, tmp_path / "ck", tiles, (5,), None, False)
    new = stats_of_stack(stack[3:])
    totals.expect(Segment("s", []), [local_client.scatter(_rows(new, a, b)) for a, b in tiles],
                  local_client.scatter(_record(3, 7)), StatsSink(str(tmp), arrays, str(old / "stats.zarr")))
    assert [seg.id for seg, _ in totals.run()] == ["s"]
    got, ref = read_rows(tmp, 0, 9, n=7), stats_of_stack(stack)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, ref.m2, rtol=1e-10)
    np.testing.assert_array_equal(got.counts, ref.counts)


def test_tiles_that_disagree_with_the_statuses_stop_the_scan(local_client, tmp_path):
    """A segment whose tiles hold other frames than its statuses count is an error, not a
    checkpoint."""
    from pipeline.engine.plan import Segment
    from pipeline.engine.total import CheckpointSink, TileTotals

    stats = stats_of_stack(np.zeros((3, 4, 4), np.uint8))
    totals = TileTotals(local_client, tmp_path / "ck", [(0, 4)], (4,), None, False)
    totals.expect(Segment("s", []), [local_client.scatter(stats)], local_client.scatter(_record(0, 2)),
                  CheckpointSink(str(tmp_path / "ck")))
    with pytest.raises(RuntimeError, match="frames"):
        list(totals.run())
