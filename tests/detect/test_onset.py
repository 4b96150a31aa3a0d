"""When a defect appeared (``pipeline.detect.onset``): ``visibility`` says which frames would have
shown it, ``onset_day`` reads its earliest beyond days against them. Synthetic frame days and
exposures; the earliest days are what the scan keeps (``stats.model.FIRST_DAYS``)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detect.onset import VISIBLE_SIGMAS, Frames, onset_day, visibility
from pipeline.stats.model import NO_DAY

N = 60
DAYS = 19000 + 10 * np.arange(N)  # a frame every 10 days
# long (1-8 s) and short (1/1000 s) frames: two in three long, in a fixed order; frame 29 short, 28 long
LONG = np.arange(N) % 3 != 1
LONG[28], LONG[29] = True, False
EXPOSURE = np.where(LONG, 1.0 + (np.arange(N) % 8), 0.001)
FRAMES = Frames(DAYS, EXPOSURE)
RATE, SIGMA = 100.0, 10.0  # DN/s and DN: shows in every long frame, in no short one
CHANCE = 0.03  # a healthy sensel's rate of frames beyond its neighbours' range


def earliest(frames: np.ndarray) -> list[int]:
    """The 4 earliest capture days of these frames (as the scan keeps them), NO_DAY-padded."""
    days = sorted(DAYS[frames].tolist())[:4]
    return days + [NO_DAY] * (4 - len(days))


def beyond_frames(appear: int, chance_frames=()) -> np.ndarray:
    """Frames a dark-current defect that appeared at frame ``appear`` stands beyond its range:
    the long ones from then on, and a few earlier ones by chance."""
    return np.array(sorted({*chance_frames, *np.flatnonzero(LONG & (np.arange(N) >= appear)).tolist()}))


def seen() -> np.ndarray:
    return visibility(FRAMES, 0.0, RATE, SIGMA)


# --------------------------------------------------------------------------- visibility


def test_visibility_follows_the_predicted_excess_against_the_noise():
    v = seen()
    assert (v[LONG] > 0.99).all() and (v[~LONG] < 0.02).all()  # no excess: 1 / (1 + e^4)
    t = np.array([0.0, 0.1, 0.2, 0.3, 1.0])
    v = visibility(Frames(np.zeros(5), t), 0.0, RATE, SIGMA)
    assert v[2] == pytest.approx(0.5)  # excess VISIBLE_SIGMAS sigmas: even odds
    assert RATE * t[2] == VISIBLE_SIGMAS * SIGMA
    assert np.all(np.diff(v) > 0) and v[0] < 0.02 and v[-1] > 0.99  # rises with the exposure


def test_a_constant_offset_shows_in_every_frame_alike_and_a_missing_fit_everywhere():
    warm = visibility(FRAMES, 50.0, 0.0, SIGMA)
    assert np.allclose(warm, warm[0]) and warm[0] > 0.99
    cold = visibility(FRAMES, -50.0, 0.0, SIGMA)  # darker by as much: as visible
    np.testing.assert_allclose(cold, warm)
    assert (visibility(FRAMES, float("nan"), RATE, SIGMA) == 1).all()
    assert (visibility(FRAMES, 0.0, RATE, 0.0) == 1).all()


# --------------------------------------------------------------------------- onset_day


@pytest.mark.parametrize("chance_frames", [(), (4,), (4, 14)], ids=["no-chance-day", "one-chance-day", "two"])
def test_an_onset_falls_between_the_last_frame_that_would_have_shown_it_and_its_appearance(chance_frames):
    appear = 30  # a long frame; frame 29 is short, frame 28 long
    assert LONG[appear] and not LONG[appear - 1] and LONG[appear - 2]
    hits = beyond_frames(appear, chance_frames)
    day = onset_day(earliest(hits), len(hits), CHANCE, FRAMES, seen())
    assert day is not None
    assert DAYS[appear - 2] < day <= DAYS[appear]
    assert day == (DAYS[appear - 2] + DAYS[appear] + 1) // 2  # midway


def test_without_a_fit_every_frame_counts_as_one_that_would_have_shown_it():
    hits = np.arange(30, N)  # beyond in every frame from frame 30 on (a warm sensel that appeared)
    day = onset_day(earliest(hits), len(hits), CHANCE, FRAMES)
    assert day == (DAYS[29] + DAYS[30] + 1) // 2


def test_frames_that_could_not_have_shown_it_do_not_date_it():
    """Beyond from frame 30 on, and before it only short frames since frame 12: the onset lies
    between the last long frame (11) and frame 30, not next to frame 29."""
    exposure = EXPOSURE.copy()
    exposure[12:30] = 0.001
    frames = Frames(DAYS, exposure)
    hits = np.flatnonzero((exposure > 0.5) & (np.arange(N) >= 30))
    day = onset_day(earliest(hits), len(hits), CHANCE, frames, visibility(frames, 0.0, RATE, SIGMA))
    last = max(i for i in range(30) if exposure[i] > 0.5)
    assert last == 11 and day == (DAYS[last] + DAYS[30] + 1) // 2


def test_a_defect_beyond_from_the_first_frame_was_there_from_the_start():
    hits = beyond_frames(0)
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES, seen()) is None
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES) is None


def test_one_that_showed_from_its_first_long_frame_after_short_ones_was_there_from_the_start():
    """Frames 0-9 short, then long ones: nothing could have shown it before frame 10."""
    exposure = EXPOSURE.copy()
    exposure[:10] = 0.001
    exposure[10] = 4.0
    frames = Frames(DAYS, exposure)
    hits = np.flatnonzero(exposure > 0.5)
    assert hits[0] == 10
    assert onset_day(earliest(hits), len(hits), CHANCE, frames, visibility(frames, 0.0, RATE, SIGMA)) is None


@pytest.mark.parametrize("hits", [[30, 31], [30]], ids=["two-frames", "one-frame"])
def test_too_few_beyond_frames_say_nothing(hits):
    hits = np.array(hits)
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES, seen()) is None
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES) is None


def test_too_few_frames_or_a_single_earliest_day_say_nothing():
    assert onset_day([DAYS[30], NO_DAY, NO_DAY, NO_DAY], 20, CHANCE, FRAMES, seen()) is None
    short = Frames(DAYS[:2], EXPOSURE[:2])
    assert onset_day([DAYS[0], DAYS[1], NO_DAY, NO_DAY], 5, CHANCE, short) is None


def test_more_early_days_than_chance_explains_is_no_onset():
    """Beyond in frames 4, 12 and 20 before it appeared at 30, each followed by several frames that
    would have shown it and did not: at a chance rate of 3 % (0.9 of them expected) they are chance;
    at a rate of 0 that is a defect that was there, showing now and then, not one that appeared."""
    hits = beyond_frames(30, (4, 12, 20))
    assert earliest(hits) == DAYS[[4, 12, 20, 30]].tolist()
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES, seen()) == (DAYS[28] + DAYS[30] + 1) // 2
    assert onset_day(earliest(hits), len(hits), 0.0, FRAMES, seen()) is None


@pytest.mark.parametrize("chance_frames", [(4, 6), (16, 18)], ids=["near-the-start", "mid-way"])
def test_two_chance_days_close_together_do_not_hide_a_later_onset(chance_frames):
    appear = 30
    visible = seen()
    between = visible[chance_frames[0] + 1 : chance_frames[1]].sum()
    quiet = visible[chance_frames[1] + 1 : appear].sum()
    assert between < 2 and quiet >= 6  # a long stretch that would have shown it, and did not
    hits = beyond_frames(appear, chance_frames)
    day = onset_day(earliest(hits), len(hits), CHANCE, FRAMES, visible)
    assert day is not None and DAYS[appear - 2] < day <= DAYS[appear]


@pytest.mark.parametrize("seed", range(8))
def test_a_telegraph_sensel_beyond_now_and_then_from_the_first_frame_has_no_onset(seed):
    """Beyond in about a third of the frames, from the first one: its gaps between beyond days
    are what its duty makes likely, however long (the duty is measured from the frames since
    each earliest day)."""
    rng = np.random.default_rng(seed)
    hits = np.flatnonzero(rng.random(N) < 0.3)
    assert onset_day(earliest(hits), len(hits), CHANCE, FRAMES) is None


def test_a_telegraph_sensel_that_appeared_is_dated():
    """Beyond in a third of the frames since frame 30, never before: 30 frames that would have
    shown it a third of the time each."""
    rng = np.random.default_rng(2)
    hits = 30 + np.flatnonzero(rng.random(N - 30) < 0.35)
    day = onset_day(earliest(hits), len(hits), CHANCE, FRAMES)
    assert day is not None and DAYS[hits[0] - 1] < day <= DAYS[hits[0]]


def test_a_short_quiet_stretch_dates_a_steady_defect_not_an_intermittent_one():
    """From frame 6 on: a hot sensel beyond in every long frame is dated (the 4 long frames before
    would each have shown it); a telegraph sensel beyond in a third of the frames is not (4
    frames missed at a third: (2/3)^4, 20 %, no evidence that it was not there)."""
    hot = beyond_frames(6)
    day = onset_day(earliest(hot), len(hot), CHANCE, FRAMES, seen())
    assert day is not None and DAYS[4] < day <= DAYS[6]
    telegraph = 6 + np.flatnonzero(np.random.default_rng(0).random(N - 6) < 0.33)
    assert onset_day(earliest(telegraph), len(telegraph), CHANCE, FRAMES) is None


def test_the_frames_need_not_be_in_date_order():
    hits = beyond_frames(30, (4,))
    order = np.random.default_rng(1).permutation(N)
    shuffled = Frames(DAYS[order], EXPOSURE[order])
    v = visibility(shuffled, 0.0, RATE, SIGMA)
    want = onset_day(earliest(hits), len(hits), CHANCE, FRAMES, seen())
    assert want is not None and onset_day(earliest(hits), len(hits), CHANCE, shuffled, v) == want
