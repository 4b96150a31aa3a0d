"""When did a defect appear? From exact sums, without reading a frame twice.

Per sensel the scan keeps the 4 earliest capture days of the frames in which it stood beyond
its neighbours (``stats.model``). A healthy sensel is beyond by chance, at its plane's null
rate, in any frame; a defect that appeared on day T is beyond in the frames after T where it
shows (a dark-current sensel in long exposures, a warm one in most, a telegraph one in its
share of them). Its earliest days are then a few chance days, if any, and the first frames
after T that show it.

Which frames can show it comes from its exposure fit (``visibility``): the excess it predicts
in each frame against the temporal noise. Each earliest day is tried as the onset, by the
likelihood of the beyond frames with the defect's duty (the share of those frames in which it
does show) fitted since that day and chance alone before (``onset_day``); the best is the
onset where it beats "there from the first frame" clearly. The onset is put midway between that
day and the last frame before it that would have shown it.

A defect that appeared during the collection is fitted again over the frames since: before it
its residual is noise, and a fit over every frame would take its missing dark current for a
low rate.

That dilution can hide it altogether: a sensel that turned hot after the collection's longest
frames has a low rate over every frame, and is beyond its neighbours only in the few frames
since that show it. So its fit since each of its earliest days is tried too, both to find it
(``since_candidates``) and to say which frames could show it when dating it (``appearances``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..stats.fit import fit_exposure, frames_carrying
from ..stats.model import EXPOSURE_SUMS, FIRST_DAYS, NO_DAY

# a frame shows a defect when its predicted excess stands this many temporal sigmas out of the
# noise (the range test needs about 2-3); the logistic's width, in sigmas
VISIBLE_SIGMAS = 2.0
VISIBLE_WIDTH = 0.5
# an onset must explain the beyond frames better than "there from the first frame" by a
# likelihood ratio of (days tried) x ONSET_ODDS (``onset_day``). On the benchmark collections 20
# dated 12 of 14 onsets within 60 days and gave 8 of 3,799 and 19 of 5,597 defects there from the
# start an onset (0.2-0.3 %, the many-defect sensors); 100 dated 10 of 14 (0 and 5 late ones);
# 10 dated 13 of 15 (18 and 38)
ONSET_ODDS = 20.0
# the duties tried (the share of the frames that can show a defect in which it does)
DUTIES = np.linspace(0.05, 1.0, 20)
# a sensel whose exposure fit has this t shows only in the frames its fit says (not in every frame)
DARK_CURRENT_T = 3.0
# dark current that appeared is a line through zero since its day: that line takes nearly all of
# its residual's variance (0.89-0.98 for the onsets of the benchmark's raw photo collections, scene
# noise making up the rest), as the line over every frame does for one there from the start. A
# telegraph sensel that jumps in the high-gain frames fits such a line too, but it takes 0.4-0.7
# of its variance (the many-defect collections' population)
SINCE_LINE_SHARE = 0.8
# ... and a line since a day is dark current only where more than one frame carries it
# (``stats.fit.frames_carrying``): a collection whose last days hold one long exposure among short
# ones fits any excess of that one frame (a highlight's, in a photo) as a rate since those days,
# of any t (one such false hot sensel on the many-defect collection, 490 DN/s at t 13)
MIN_SINCE_FRAMES = 2.0


@dataclass(frozen=True)
class Frames:
    """The capture day of every frame the statistics hold (days since 1970), and its exposure
    factor in seconds at ISO 100 (``exposure``: 0 where unknown or dark-subtracted)."""

    days: np.ndarray
    exposure: np.ndarray


def visibility(frames: Frames, offset: float, rate: float, sigma: float) -> np.ndarray:
    """How likely each frame shows the defect beyond its neighbours (0..1), from its
    predicted excess (offset + rate x exposure, DN) against the temporal noise ``sigma``; a
    defect with no fit shows in every frame alike."""
    if not (math.isfinite(offset) and math.isfinite(rate)) or sigma <= 0:
        return np.ones(len(frames.days))
    excess = np.abs(offset + rate * frames.exposure)
    z = (excess / sigma - VISIBLE_SIGMAS) / VISIBLE_WIDTH
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def onset_day(first_days, beyond: int, chance: float, frames: Frames, seen: np.ndarray | None = None) -> int | None:
    """The capture day the defect appeared, or None when it was there from the first frame
    (or the data cannot tell). ``first_days``: its earliest beyond days (``NO_DAY`` for none);
    ``beyond``: its count of beyond frames; ``chance``: the rate at which a healthy sensel of
    its plane is beyond, per frame; ``seen``: each frame's visibility (``visibility``).

    A change point, by likelihood. Where the defect is, a frame shows it beyond with the chance
    of a healthy sensel plus (1 - chance) x its visibility x the defect's duty: the share of the
    frames it can show in that it does (a hot sensel nearly all, a telegraph sensel a third).
    Before its onset a frame is beyond by chance only. The frames up to the last of the earliest
    days are known one by one (beyond on those days, not on the others); after it only their
    count is (a Poisson count of the frames' summed chances). Each earliest day is an onset
    to try, with the duty that fits it best; the best is taken when its likelihood beats "there
    from the first frame" (with its own best duty) by a factor of (days tried) x ``ONSET_ODDS``. A
    defect that shows now and then has gaps its duty makes likely, however long; one that
    appeared has a quiet stretch before, and a chance day early on is one more chance frame."""
    days = np.asarray(frames.days)
    earliest = sorted(int(d) for d in first_days if int(d) != NO_DAY)
    n = len(days)
    if beyond < 3 or len(earliest) < 2 or n < 3:
        return None
    seen = np.ones(n) if seen is None else np.asarray(seen, np.float64)
    chance = min(max(chance, 1e-4), 0.5)
    could = (1.0 - chance) * seen
    # the frames known one by one: all of them when every beyond day is among the earliest, else
    # those before the last earliest day and its beyond frames there (the most visible of its day)
    complete = beyond <= len(earliest)
    last = earliest[-1]
    hit = np.zeros(n, bool)
    for day in set(earliest):
        on = np.flatnonzero(days == day)
        hit[on[np.argsort(-seen[on], kind="stable")][: earliest.count(day)]] = True
    known = np.ones(n, bool) if complete else (days < last) | hit
    tail_count = 0 if complete else beyond - len(earliest)
    duty = DUTIES[:, None]

    def loglik(since: np.ndarray) -> float:
        """The best log-likelihood over the duty of a defect there in the frames ``since`` (a mask)."""
        p = chance + np.where(since, could, 0.0) * duty
        p = np.clip(p, 1e-12, 1 - 1e-12)
        ll = np.where(hit, np.log(p), np.log1p(-p))[:, known].sum(axis=1)
        if not complete:
            mean = p[:, ~known].sum(axis=1)
            ll += tail_count * np.log(np.maximum(mean, 1e-300)) - mean - math.lgamma(tail_count + 1)
        return float(ll.max())

    tried = sorted(set(earliest))  # frames need not be in date order: "since" is by day
    scores = [loglik(days >= day) if (days < day).any() else -math.inf for day in tried]
    best = int(np.argmax(scores))
    if scores[best] - loglik(np.ones(n, bool)) < math.log(len(tried) * ONSET_ODDS):
        return None
    day = tried[best]
    shown_before = days[(days < day) & (seen >= 0.5)]
    before = int(shown_before.max()) if len(shown_before) else day
    return (before + day + 1) // 2


def appearances(cand, days: np.ndarray, table, n: int, whole=None, dark_t: float = DARK_CURRENT_T) -> np.ndarray:
    """Each candidate's onset day (-1: there from the start, or no dates), and, for those that
    appeared, their exposure fit again over the frames since (``cand.rate``, ``rate_se``,
    ``offset``, ``z_rate`` updated in place). ``whole``: every candidate's fit over every frame
    (``exposure.candidate_fit``), where the stack has a physical exposure table; ``dark_t``: the
    dark-current criterion's threshold, which an onset found from the fit since a day (a
    sensel whose fit over every frame does not rise) must lift its t to.

    The visibility is first that of the fit over every frame, where it says the sensel rises
    with exposure (or has an offset), else every frame; once an onset is found, that of the fit
    over the frames since, and the onset is found again with it.
    """
    from ..stats.model import EXPOSURE_UNIT
    from .exposure import candidate_fit

    out = np.full(len(cand), -1, np.int64)
    if cand.first_days is None or not cand.counted or len(days) != n:
        return out
    physical = table is not None and table.physical and cand.model is not None and cand.rate is not None
    exposure = table.fitted * EXPOSURE_UNIT if physical else np.zeros(len(days))
    frames = Frames(np.asarray(days), np.where(exposure > 0, exposure, 0.0))

    def refit(rows: np.ndarray, since: np.ndarray):
        """The fit since each row's day, for candidates ``rows``: one vectorised fit per distinct day."""
        fits = {k: np.full(len(rows), np.nan) for k in ("rate", "rate_se", "offset", "noise_var", "frames")}
        fits["measured"] = np.ones(len(rows), bool)
        for day in np.unique(since).tolist():
            take = np.flatnonzero(since == day)
            fit = candidate_fit(cand.model[rows[take]], n, table, within=frames.days >= day)
            for k, v in fits.items():
                v[take] = getattr(fit, k)
        return fits

    counted = np.flatnonzero(cand.k_hi + cand.k_lo >= 3)
    whole_noise = whole.noise_var if physical and whole is not None else np.full(len(cand), np.nan)

    def first_day(i: int, seen: np.ndarray | None) -> int | None:
        beyond = int(cand.k_hi[i] + cand.k_lo[i])
        chance = min(max(float(cand.m_hi[i] + cand.m_lo[i]) / n, 0.0), 1.0)
        return onset_day(cand.first_days[i], beyond, chance, frames, seen)

    for i in counted.tolist():
        seen = visibility(frames, float(cand.offset[i]), float(cand.rate[i]), float(cand.ref_rstd[i])) \
            if physical else None
        day = first_day(i, seen)
        rises = cand.z_rate is not None and float(cand.z_rate[i]) >= DARK_CURRENT_T
        if day is None and seen is not None and not rises:
            # no dark current to say which frames show it (a warm or flickering sensel): every frame
            # could; a dark-current sensel's short frames could not, and are no missed chances
            day = first_day(i, None)
        if day is not None:
            out[i] = day
    tentative = np.zeros(len(cand), bool)
    if physical:
        # dark current that started during the collection: over every frame its fit is diluted by
        # the frames before (a low rate, or an offset that says every frame could show it), so the
        # frames that can show it come from its fit since each of its earliest days instead. Such an
        # onset stands only where that fit then lifts its t to the criterion's threshold and takes
        # nearly all of its residual's variance (below): a telegraph sensel that jumps in the
        # high-gain frames fits a rate too, but explains less
        pending = counted[(out[counted] < 0) & ~_rises(cand, counted)]
        for j in range(cand.first_days.shape[1] if len(pending) else 0):
            since = cand.first_days[pending, j].astype(np.int64)
            dated = since != NO_DAY
            fits = refit(pending[dated], since[dated])
            for k, i in enumerate(pending[dated].tolist()):
                rate, se = float(fits["rate"][k]), float(fits["rate_se"][k])
                if out[i] >= 0 or not (se > 0 and rate / se >= max(dark_t, DARK_CURRENT_T)):
                    continue
                day = first_day(i, visibility(frames, 0.0, rate, float(cand.ref_rstd[i])))
                if day is not None:
                    out[i], tentative[i] = day, True
    appeared = np.flatnonzero(out >= 0)
    if not physical or not len(appeared):
        return out
    # the onset seen again with the visibility of the fit since it, and the fit since that day
    fit = refit(appeared, out[appeared])
    for j, i in enumerate(appeared.tolist()):
        if np.isfinite(fit["rate"][j]) and fit["rate_se"][j] > 0:
            seen = visibility(frames, float(fit["offset"][j]), float(fit["rate"][j]), float(cand.ref_rstd[i]))
            out[i] = first_day(i, seen) or out[i]
    fit = refit(appeared, out[appeared])
    # the fit since must explain the sensel better than a line over every frame: a warm sensel's
    # offset, or a scene's, is no dark current that started on a chance day. And that line must
    # explain some of it too: dark current that appeared rises with exposure in the frames since,
    # which a line over every frame sees (it takes 0.45-1.0 of the variance of the 56 planted in 9
    # collections); the fit since measures its scatter from the sums over every frame, less its
    # line's own sum of squares, which in a photo's scene noise can leave almost nothing (a sensel
    # whose line over every frame took none of its variance: a rate 20 "standard errors" from zero)
    whole = whole_noise[appeared]
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = cand.model[appeared, 1] / n
        # where its line since takes more than all of the sums' scatter (a strong onset: its own
        # scatter cannot be told from them), the scatter about its mean is only an upper bound: a
        # line over every frame looked as good (a 120 DN/s onset's rate came out 17 DN/s), and its
        # rate's t fell under the threshold (a 300 DN/s one fitted to 0.3 % had t 1.8-5.5, and was
        # called noisy). Its neighbours' residual scatter stands in there, for both, where they have
        # any (neighbours that read alike in every frame, clipped at black in darks, have none: a
        # rate's error of 0 made its z infinite)
        beside = cand.ref_rstd[appeared].astype(np.float64) ** 2
        scatter = np.where(fit["measured"] | ~(beside > 0), fit["noise_var"], np.minimum(fit["noise_var"], beside))
        share = 1.0 - scatter / variance
        better = ~(np.isfinite(whole) & ((scatter >= whole) | (whole >= variance)))
        keep = np.isfinite(fit["rate"]) & (fit["rate_se"] > 0) & (fit["frames"] >= 4) & better
        dropped = tentative[appeared] & ~(keep & (fit["rate"] >= dark_t * fit["rate_se"])
                                          & (share >= SINCE_LINE_SHARE))
        se = fit["rate_se"] * np.sqrt(scatter / fit["noise_var"])  # the rate's error at that scatter
    out[appeared[dropped]] = -1
    keep &= ~dropped
    kept = appeared[keep]
    cand.rate[kept], cand.rate_se[kept] = fit["rate"][keep], se[keep]
    cand.offset[kept] = fit["offset"][keep]
    # the fit since lifts the dark-current z only where its line is what the residual holds
    # (``SINCE_LINE_SHARE``), carried by more than one frame (``MIN_SINCE_FRAMES``)
    carried = np.array([frames_carrying(table, frames.days >= day) for day in out[appeared].tolist()])
    lifts = keep & (share >= SINCE_LINE_SHARE) & (carried >= MIN_SINCE_FRAMES)
    cand.z_rate[appeared[lifts]] = np.maximum(cand.z_rate[appeared[lifts]], fit["rate"][lifts] / se[lifts])
    return out


def _rises(cand, rows: np.ndarray) -> np.ndarray:
    """Whether the fit over every frame already says these candidates rise with exposure."""
    if cand.z_rate is None:
        return np.zeros(len(rows), bool)
    return np.asarray(cand.z_rate)[rows] >= DARK_CURRENT_T


def since_candidates(v, days: np.ndarray, table, rate_scale, threshold: float) -> list[np.ndarray]:
    """The core sensels of plane view ``v`` whose dark current since one of their earliest beyond
    days stands out as the dark-current criterion's would over every frame (its t over the same
    local scale, at the same threshold): candidates that ``appearances`` then dates and fits.

    Over every frame such a sensel's fit is diluted by the frames before its onset and its
    counts by their misses, so neither map may pass it. Only sensels beyond their neighbours in
    3 frames or more are tried (an onset needs them), one fit per distinct earliest day."""
    if v.above is None or any(k not in v.extra for k in (*FIRST_DAYS, *EXPOSURE_SUMS)):
        return []
    rows = slice(v.y0 - v.top, v.y1 - v.top)
    tried = np.flatnonzero(np.asarray(v.above[rows]).reshape(-1) >= 3)
    if not len(tried):
        return []
    flat = {k: np.asarray(a[rows]).reshape(-1)[tried] for k, a in v.extra.items() if k in (*FIRST_DAYS, *EXPOSURE_SUMS)}
    res_mean = np.asarray(v.res_mean[rows]).reshape(-1)[tried]
    res_m2 = np.asarray(v.res_m2[rows]).reshape(-1)[tried]
    best = np.zeros(len(tried))
    days = np.asarray(days)
    for key in FIRST_DAYS:
        first = flat[key].astype(np.int64)
        for day in np.unique(first[first != NO_DAY]).tolist():
            if frames_carrying(table, days >= day) < MIN_SINCE_FRAMES:
                continue
            take = np.flatnonzero(first == day)
            fit = fit_exposure(v.n, res_mean[take], res_m2[take], {k: flat[k][take] for k in EXPOSURE_SUMS}, table,
                               within=days >= day)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where((fit.rate > 0) & (fit.rate_se > 0), fit.rate / fit.rate_se, 0.0)
            best[take] = np.maximum(best[take], np.nan_to_num(t))
    scale = rate_scale.rows(v.y0, v.y1).reshape(-1)[tried]
    return [tried[best / scale >= threshold] + v.y0 * v.width]
