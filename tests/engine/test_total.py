"""The client's running total: segments merged in order, whatever order their tiles arrive in."""

import numpy as np

from pipeline.records import FileStatus, ReadRecord
from pipeline.stats import PixelStats, stats_of_stack


def test_running_total_merges_segments_in_order_whatever_order_the_parts_arrive():
    """The client's running total: tiles and statuses of 3 segments arrive shuffled; the total
    equals the whole stack's stats, and segments complete in order, each exactly once."""
    from pipeline.engine.plan import Segment
    from pipeline.engine.total import RunningTotal

    rng = np.random.default_rng(4)
    stack = rng.integers(0, 256, (9, 10, 6, 3), dtype=np.uint8)
    starts = np.array([0, 4, 8])
    total = RunningTotal(None, stack.shape[1:], most_frames=len(stack))
    parts = []
    for k, (a, b) in enumerate([(0, 4), (4, 5), (5, 9)]):
        place = total.expect(Segment(f"s{k}", []), starts)
        stats = stats_of_stack(stack[a:b])
        parts += [(place, t, _rows(stats, y, y + 4)) for t, y in enumerate(starts)]
        parts.append((place, len(starts), ReadRecord([FileStatus(f"f{i}", "used", "") for i in range(a, b)])))
    order = rng.permutation(len(parts))
    done = [seg.id for i in order for seg, _ in total.add(*parts[i])]
    assert done == ["s0", "s1", "s2"] and not total.pending
    ref, got = stats_of_stack(stack), total.stats()
    assert got.n == 9
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, ref.m2, rtol=1e-11, atol=1e-9)
    np.testing.assert_array_equal(got.counts, ref.counts)
    assert got.counts is total.counts and got.counts.dtype == np.uint16  # kept in their final type, never copied


def test_a_checkpoint_taken_at_each_completed_segment_holds_exactly_the_segments_it_lists():
    """Thumbnails run several segments at once, so a later segment's parts can arrive before an
    earlier one completes; what is saved when a segment completes must not include them."""
    from pipeline.engine.plan import Segment
    from pipeline.engine.total import RunningTotal

    rng = np.random.default_rng(9)
    stack = rng.integers(0, 256, (12, 4, 5), dtype=np.uint8)
    spans = {"A": (0, 3), "B": (3, 7), "C": (7, 12)}
    starts = np.array([0, 2])
    total = RunningTotal(None, (4, 5))
    places, parts = {}, {}
    for name, (a, b) in spans.items():
        places[name] = total.expect(Segment(name, []), starts)
        stats = stats_of_stack(stack[a:b])
        parts[name] = [_rows(stats, 0, 2), _rows(stats, 2, 4), ReadRecord([FileStatus(f"f{i}", "used", "") for i in range(a, b)])]
    order = [("A", 2), ("A", 0), ("B", 2), ("B", 0), ("B", 1), ("C", 2), ("C", 0), ("A", 1), ("C", 1)]
    listed = []
    for name, index in order:
        for seg, _ in total.add(places[name], index, parts[name][index]):
            listed.append(seg.id)
            saved = total.stats()  # what the scan checkpoints here
            frames = stack[: spans[listed[-1]][1]]
            assert saved.n == len(frames)
            np.testing.assert_allclose(saved.mean, stats_of_stack(frames).mean, rtol=1e-12)
            np.testing.assert_array_equal(saved.counts, stats_of_stack(frames).counts)
    assert listed == ["A", "B", "C"]


def test_a_later_segment_s_tiles_wait_on_the_workers(local_client):
    """Tiles of a segment that cannot be merged yet (an earlier one is still running) stay
    futures, on the workers, until they can: the client holds one total and one tile."""
    from distributed import Future

    from pipeline.engine.plan import Segment
    from pipeline.engine.total import RunningTotal

    stack = np.random.default_rng(2).integers(0, 256, (5, 4, 6), dtype=np.uint8)
    stats = stats_of_stack(stack)
    total = RunningTotal(None, (4, 6), most_frames=5)
    first = total.expect(Segment("r", []), np.array([0, 2]))  # still running: the next waits
    place = total.expect(Segment("s", []), np.array([0, 2]))
    tiles = [local_client.scatter(_rows(stats, 0, 2)), local_client.scatter(_rows(stats, 2, 4))]
    assert not list(total.add(place, 1, tiles[1])) and not list(total.add(place, 0, tiles[0]))
    assert all(isinstance(place.arrived[t], Future) for t in (0, 1))  # not fetched
    record = ReadRecord([FileStatus(f"f{i}", "used", "") for i in range(5)])
    assert not list(total.add(place, 2, record))
    empty = PixelStats.empty((2, 6))
    assert not list(total.add(first, 0, empty)) and not list(total.add(first, 1, empty))
    assert [seg.id for seg, _ in total.add(first, 2, ReadRecord([]))] == ["r", "s"]
    assert not place.arrived
    np.testing.assert_allclose(total.stats().mean, stats_of_stack(stack).mean, rtol=1e-12)


def _rows(stats, a: int, b: int):
    """Rows a:b of stats: a row tile, as the reduction emits it."""
    counts = None if stats.counts is None else stats.counts[:, a:b]
    return PixelStats(stats.n, stats.mean[:, a:b], stats.m2[:, a:b], counts)


def test_a_resumed_total_of_no_frames_carries_no_counts():
    from pipeline.engine.total import RunningTotal

    assert RunningTotal(PixelStats.empty((3, 4)), (3, 4)).counts is None
