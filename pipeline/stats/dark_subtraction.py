"""Which frames a camera subtracted a dark frame from (long-exposure noise reduction).

With it on, a camera takes a second exposure with the shutter closed and stores the
difference: the dark current and the offsets of every sensel vanish from that frame (a hot
sensel that clipped in both reads black). Files rarely say so (a maker note at best), but the
frames do. The scan keeps, per frame, a sketch of the sensels that stood out of their
neighbours as a lit hot sensel does (``kernels._spike``, ``model.sketch_bit``). After it, the
stack's hot set is known: the sensels of highest mean residual that stood out in several
frames, in nearly every one of the longest frames (dark current is there in every long
frame; a telegraph sensel, which a camera does not subtract, shows in some), and in the
shorter half of the frames far less often. Hot sensels grow with the exposure, so a member
that a frame's nearest shorter exposures all show stands out in it too; a frame that shows
under half of those members was dark-subtracted. Scene highlights and noise spikes are in
every frame's sketch too, but they are not the hot set: only its members count.

The test is per member, not the share of the whole set: in a sensor with a population of weak
hot sensels the set is mostly sensels that only the longest frames show, so a mid-length frame
is compared on the few that its neighbours show; and a high-gain photo whose texture hides two
of its five hot sensels (the sketch wants a sensel 3 times its neighbours' range above them)
still shows the other three, where a subtracted frame shows none (the set's telegraph members
show in both).

In the exposure fit such a frame counts at exposure zero: its hot sensels' excess is zero
there, as the fit then expects, and they are not taken for flicker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .model import NO_FACTOR, SKETCH_LOG2, sketch_bit

# the hot set: among the HOT_CANDIDATES sensels of highest mean residual (and some variance: a
# stuck sensel holds its value through a dark subtraction), those that stood out in at least
# MIN_HITS frames beyond their chance hits, in at least LONG_SHARE of the longest quarter of
# the frames, and in the shorter half at most SHORT_RATIO of that share; at least MIN_HOT of
# them, or nothing is judged (3: a small sensor, or a young one, has a handful of hot pixels,
# and one dark-subtracted long frame read as exposed sets each one's rate to near zero)
HOT_CANDIDATES = 16384
MIN_HITS = 3
LONG_SHARE = 0.75
SHORT_RATIO = 0.5
MIN_HOT = 3
# at least 2 MIN_FRAMES frames with a sketch and a known factor, or nothing is judged; the hot
# set's window of longest frames is at least MIN_FRAMES wide
MIN_FRAMES = 3
# a frame is compared with the NEAREST frames of an exposure factor up to its own, nearest first,
# that show at least MIN_HOT of the hot set (one that shows fewer says nothing of a longer one, and
# a dark-subtracted one not found yet is no comparison). At least MIN_FRAMES such frames must be
# there: just above the shortest that show the set, its members show by the noise around the spike
# floor. The members the NEAREST all show are the ones the frame is expected to show, at least
# MIN_HOT of them. (NEAREST 2, not 3: a small sensor's 4-member set, whose telegraph members each
# missed one of 3 frames, left too few to judge a 6 s ISO 6400 subtracted frame by. On 35 rendered
# collections this finds 64 of their 72 subtracted frames and flags 1 exposed one; the share of
# the whole set found 58 and flagged 6.)
NEAREST = 2
# it was dark-subtracted if it shows under this fraction of them
FRACTION = 0.5
# what a user is told of such a frame (files.csv, the scan's log, the report)
VANISHED = "the hot sensels the exposures just shorter show are gone from"
SUBTRACTED_NOTE = f"dark-subtracted in camera ({VANISHED} it): at zero exposure in the dark-current fit"


def hot_candidates(res_mean: np.ndarray, value_m2: np.ndarray, k: int = HOT_CANDIDATES,
                   band: int = 1 << 20) -> np.ndarray:
    """Flat indices (sorted) of the ``k`` sensels of highest mean residual that varied at all:
    a band at a time, so that no sensor-sized index array is made."""
    flat_mean, flat_m2 = res_mean.reshape(-1), value_m2.reshape(-1)
    best = np.empty(0, np.int64)
    for start in range(0, len(flat_mean), band):
        part = np.where(flat_m2[start : start + band] > 0, flat_mean[start : start + band], -np.inf)
        top = np.argpartition(-part, min(k, len(part) - 1))[:k] if len(part) > k else np.arange(len(part))
        top = top[np.isfinite(part[top])] + start
        best = np.concatenate([best, top])
        if len(best) > k:
            best = best[np.argsort(-flat_mean[best], kind="stable")[:k]]
    return np.sort(best)


def rows_hot_candidates(res_mean: np.ndarray, value_m2: np.ndarray, first: int,
                        k: int = HOT_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """``hot_candidates`` of some rows of the sensor, whose first value has flat index ``first``:
    (flat indices in the whole sensor, their mean residuals), for ``best_hot_candidates``."""
    local = hot_candidates(res_mean, value_m2, k)
    return local + first, res_mean.reshape(-1)[local]


def best_hot_candidates(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int = HOT_CANDIDATES) -> np.ndarray:
    """The whole sensor's ``hot_candidates`` from those of its row tiles (``rows_hot_candidates``,
    in row order): the ``k`` of highest mean residual among them, sorted."""
    if not parts:
        return np.empty(0, np.int64)
    index = np.concatenate([p[0] for p in parts]).astype(np.int64)
    value = np.concatenate([p[1] for p in parts])
    best = index[np.argsort(-value, kind="stable")[:k]]
    return np.sort(best)


def dark_subtracted(factors: np.ndarray, sketches: Sequence[Sequence[int] | None],
                    candidates: np.ndarray) -> np.ndarray:
    """Per frame, whether it was dark-subtracted in camera (see the module docstring).

    ``factors``: the frames' exposure factors (``NO_FACTOR``: unknown, never judged);
    ``sketches``: their set sketch bits (None: not kept, never judged); ``candidates``: flat
    indices of the possible hot set (``hot_candidates``). In passes until none is found: frames
    found in one no longer serve as the comparison of others (a camera with noise reduction on
    subtracts from every long frame, not one in six: the shortest of them is found first, against
    the exposed frames below it, and the next one against those).
    """
    factors = np.asarray(factors, np.int64)
    out = np.zeros(len(factors), bool)
    got = hot_hits(factors, sketches, candidates)
    if got is None:
        return out
    hits, judged = got
    frames = np.flatnonzero(judged)
    informative = hits.sum(axis=0) >= MIN_HOT
    for _ in range(len(frames)):
        reference = judged & informative & ~out
        found = np.zeros(len(factors), bool)
        for f in frames:
            shorter = reference & (factors <= factors[f])
            shorter[f] = False
            near = np.flatnonzero(shorter)
            if len(near) < MIN_FRAMES:
                continue
            near = near[np.argsort(-factors[near], kind="stable")[:NEAREST]]
            expected = hits[:, near].all(axis=1)
            if expected.sum() >= MIN_HOT:
                found[f] = hits[expected, f].mean() < FRACTION
        if not (found & ~out).any():
            break
        out |= found
    return out


def hot_hits(factors: np.ndarray, sketches: Sequence[Sequence[int] | None],
             candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The stack's hot set (see the module docstring) in each frame: (members x frames) whether
    the frame's sketch holds it, and which frames are judged (a known factor and a sketch). None
    when the set has fewer than ``MIN_HOT`` members."""
    factors = np.asarray(factors, np.int64)
    judged = np.array([s is not None for s in sketches], bool) & (factors != NO_FACTOR) & (factors > 0)
    if judged.sum() < 2 * MIN_FRAMES or not len(candidates):
        return None
    frames = np.flatnonzero(judged)
    bits = sketch_bit(candidates).astype(np.intp)
    hits = np.zeros((len(candidates), len(frames)), bool)  # a candidate's frames are contiguous
    chance = 0.0  # the hits a sensel gets from the frames' other set bits
    for column, f in enumerate(frames):
        mask = np.zeros(1 << SKETCH_LOG2, bool)
        mask[np.asarray(sketches[int(f)], np.intp)] = True
        hits[:, column] = mask[bits]
        chance += mask.mean()
    by_length = np.argsort(factors[frames], kind="stable")
    half = len(frames) // 2
    short, width = by_length[:half], max(MIN_FRAMES, len(frames) // 4)
    in_short = hits[:, short].mean(axis=1)
    enough = hits.sum(axis=1) >= max(MIN_HITS, chance + 3 * np.sqrt(chance))
    # the longest quarter of the frames shows the hot set, unless the camera subtracted them
    # (noise reduction on for every long exposure): then the next quarter down does, so
    # every window of that width in the longer half is tried, and the one that shows the most
    # is it (the first, from the longest down, on a tie): ``_best_window``
    hot = _best_window(hits, by_length, half, width, enough, in_short)
    if hot.sum() < MIN_HOT:
        return None
    members = np.zeros((int(hot.sum()), len(factors)), bool)
    members[:, frames] = hits[hot]
    return members, judged


# candidates whose window shares are computed at once: bounds the (candidates x windows)
# arrays to tens of MB at 10,000 frames
WINDOW_COLUMNS = 512


def _best_window(hits: np.ndarray, by_length: np.ndarray, half: int, width: int, enough: np.ndarray,
                 in_short: np.ndarray) -> np.ndarray:
    """The hot set of the window of ``width`` frames (in ``by_length`` order; windows ending from
    the last frame down to ``max(half, width)``) whose set is largest: the candidates that window
    shows in ``LONG_SHARE`` of its frames and the short half in at most ``SHORT_RATIO`` of that.
    ``hits`` is (candidates, frames).

    Window shares come from running sums over the frames, a block of candidates at a time: one
    pass, not one per window, so 10,000 frames of a video cost seconds, not minutes, and never
    a frames x candidates array of int64."""
    columns, frames = hits.shape
    ends = np.arange(frames, max(half, width) - 1, -1)
    blocks = [slice(start, start + WINDOW_COLUMNS) for start in range(0, columns, WINDOW_COLUMNS)]
    sizes = np.zeros(len(ends), np.int64)
    for b in blocks:
        sizes += _window_sets(hits[b][:, by_length], ends, width, enough[b], in_short[b]).sum(axis=0)
    if not len(ends) or sizes.max() == 0:
        return np.zeros(columns, bool)
    best = ends[int(np.argmax(sizes))][None]
    return np.concatenate([_window_sets(hits[b][:, by_length], best, width, enough[b], in_short[b])[:, 0]
                           for b in blocks])


def _window_sets(hits: np.ndarray, ends: np.ndarray, width: int, enough: np.ndarray,
                 in_short: np.ndarray) -> np.ndarray:
    """(candidates, windows): whether each window of ``width`` frames ending at ``ends`` shows
    each candidate as hot (``hits``: candidates x frames, in order of length)."""
    running = np.zeros((len(hits), hits.shape[1] + 1), np.int32)
    np.cumsum(hits.view(np.uint8), axis=1, dtype=np.int32, out=running[:, 1:])
    in_window = (running[:, ends] - running[:, ends - width]) / width
    return enough[:, None] & (in_window >= LONG_SHARE) & (in_short[:, None] <= SHORT_RATIO * in_window)
