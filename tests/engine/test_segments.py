"""Checkpoint segments cut by time: the work an interruption can lose is bounded in seconds."""

from __future__ import annotations

from types import SimpleNamespace

from pipeline.engine.plan import (
    GUESSED_VALUES_PER_SECOND,
    GUESSED_VALUES_PER_SECOND_DEFAULT,
    SegmentSizer,
    first_segment,
    segment,
    with_the_rest,
)
from pipeline.engine.run import resumed_segments


def test_the_first_segment_is_the_guessed_rate_of_its_bit_depth_times_the_bound():
    assert first_segment(60, 2, (1000, 1000)) == 60 * 2 * GUESSED_VALUES_PER_SECOND_DEFAULT // 10**6
    assert first_segment(60, 2, (1000, 1000), "uint8") == 60 * 2 * GUESSED_VALUES_PER_SECOND[1] // 10**6
    assert first_segment(60, 2, (3000, 4000), "uint16") == 100  # 12 MP raws
    assert first_segment(60, 2, (2000, 3000, 3), "uint8") == 333  # 6 MP RGB JPEGs
    assert first_segment(60, 2, (5464, 8192, 3), "uint8") == 44  # 45 MP RGB
    assert first_segment(60, 1, (20000, 20000, 3)) == 1


def test_a_short_rest_joins_the_segment_before_it():
    """A segment's fixed cost is a pass over the whole sensor's total: no short last segment."""
    assert with_the_rest(333, 400, 8) == 400  # 67 left: under half a segment
    assert with_the_rest(200, 400, 8) == 200  # 200 left: a segment of its own
    assert with_the_rest(100, 149, 8) == 149 and with_the_rest(100, 150, 8) == 100
    assert with_the_rest(4, 10, 8) == 10  # under a batch per thread
    assert with_the_rest(50, 20, 8) == 20  # fewer left than wanted


def test_later_segments_follow_the_measured_rate_within_bounds():
    sizer = SegmentSizer(seconds=60, most=1024, least=4, first=8)
    assert sizer.next() == 8
    sizer.observe(8, 4.0)  # 2 files/s
    assert sizer.next() == 120
    sizer.observe(120, 120.0)  # slower now: 128 files in 124 s
    assert sizer.next() == int(128 / 124 * 60)
    sizer.observe(10, 0.001)  # a burst: the cap holds
    fast = SegmentSizer(seconds=60, most=1024, least=4, first=8)
    fast.observe(1000, 1.0)
    assert fast.next() == 1024
    slow = SegmentSizer(seconds=60, most=1024, least=4, first=8)
    slow.observe(1, 600.0)
    assert slow.next() == 4  # never fewer than a batch per thread


def test_a_rerun_cuts_the_saved_segments_as_the_interrupted_run_did():
    headers = [SimpleNamespace(path=f"f{i}.png", size=100 + i, mtime=1.0) for i in range(10)]
    cut = [segment(headers[:3], ("s",)), segment(headers[3:7], ("s",))]
    again = resumed_segments(headers, [s.id for s in cut], [3, 4], ("s",))
    assert again is not None and [s.id for s in again] == [s.id for s in cut]
    assert resumed_segments(headers, [s.id for s in cut], [4, 3], ("s",)) is None  # other cuts: start over
    changed = [*headers[:2], SimpleNamespace(path="f2.png", size=999, mtime=2.0), *headers[3:]]
    assert resumed_segments(changed, [s.id for s in cut], [3, 4], ("s",)) is None  # a file changed
