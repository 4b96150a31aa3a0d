"""Classification: the kind and score of every candidate, in a fixed order of precedence, with
physical side conditions.

1. far less variance than (nearly) all neighbours: dead if it gives (almost) no signal above
   black, or if it is darker with a variance that fell with its gain (cold); otherwise stuck;
2. consistently brighter / darker: hot / dead, unless the extra variance explains the offset
   (flicker shifts the mean as well);
3. far more variance than (nearly) all neighbours: noisy.

The range counts add to the moments (a sensel the moments classify keeps that class, except
that flicker by the counts outranks a level class).
"""

from __future__ import annotations

import math

import numpy as np

from ..kinds import BY_NAME
from .candidates import Candidates
from .criteria.counts import FLICKER_FRAMES
from .exposure import SHOWN_FRAMES, SHOWN_SHARE
from .noise import QUANT_VAR

HOT, DEAD, STUCK, NOISY = (BY_NAME[k].code for k in ("hot", "dead", "stuck", "noisy"))

# a variance-less sensel with less than this fraction of its neighbours' signal above black is
# dead (no response), not stuck at a value
DEAD_FRACTION = 0.1
# a darker variance-less sensel whose variance ratio is at least this x (its signal ratio)^2 still
# responds, with a lower gain g: dead (cold). A responding sensel keeps between g and g^2 of its
# neighbours' variance (shot noise scales with the signal, gain squares it); one stuck dark keeps
# none. A quarter of g^2 leaves room for the noise of both estimates
COLD_VAR_FRACTION = 0.25
# a bright/dark sensel whose extra residual sd is at least this x its offset is noisy, not hot/dead:
# telegraph flicker shifts the mean by up to half its step
NOISY_EXCESS_RATIO = 0.5
# flicker by the counts: its weaker side at least this share of the stronger (or significant)
BALANCED_SHARE = 0.25
# a one-sided telegraph sensel: beyond its neighbours on one side in at least
# FLICKER_FRAMES frames, with at least this x their residual variance, that exposure does not
# explain. Its level is its step times the share of frames it jumps in; a warm sensel has the
# offset without the variance (its ratio scatters by sqrt(2/n): +-18 % in 60 frames)
ONE_SIDED_VAR_RATIO = 2.0
# a candidate beyond its neighbours in at least this many frames, at a -log10 p of at least
# CORROBORATING_S, is a persistent defect: the configured thresholds hold for it, not the tails'
CORROBORATING_FRAMES = 3
CORROBORATING_S = 3.0
# ... and exposure does not explain it: its frames beyond the range were no longer than the
# stack's by this z (``exposure.beyond_exposure_z``; a hot sensel's are its long exposures)
EXPOSURE_DRIVEN_Z = 3.0
# ... nor a fixed offset in DN: its frames beyond the range were not the low gains by this z
# (``exposure.beyond_gain_z``: a telegraph step is charge, amplified with the gain, and shows at
# high gains; a warm sensel's offset is buried by the noise there and shows at low ones)
GAIN_DRIVEN_Z = 3.0
# ... nor its exposure line: that takes less than this share of its residual's variance
# (``exposure.line_share``: dark current 0.95-1.0, flicker 0-0.4 on the benchmark collections). A
# strong hot sensel is beyond in all but the shortest frames, whose mean exposure is then no longer
# than the stack's by much (z 2.3 for 224 DN/s), while its line explains it all. (Not evidence of
# dark current by itself: one scene event in a long frame is a line through one point, 0.7-0.98)
LINE_SHARE = 0.5
# in photos, a sensel whose residual rises with exposure must have stood above all 4 neighbours
# beyond its frame's noise in at least this many frames: one sensel's dark current does where it is
# strong enough to be fitted, while a scene light's peak in the longest frame, lit together with its
# neighbours, draws a slope without it (the fit's leverage: 2,400-4,400 DN in that one frame, noise
# in the others). On 12 rendered many-defect collections: false reports 28 -> 13, 2 of 47,541
# found defects lost; on 12 ordinary ones 10 -> 9, none lost. Two frames, not one: a single frame
# cannot tell a sensel's dark current from a sensel-sized light in a long night frame, and one
# such frame's leverage gives a rate 16-32 standard errors from zero (on 6 other ordinary
# collections 3 such false reports of 2-4 DN/s go, none lost; the many-defect photo sensor loses
# 7 of its 6,144 weak population sensels, 8-21 DN/s, that show in one frame)
DARK_BEYOND_FRAMES = 2
# ... and in at least ``exposure.SHOWN_SHARE`` of the frames its line says must show it, where that
# is ``exposure.SHOWN_FRAMES`` or more


def classify(c: Candidates, thr: dict[str, float], dark_min_sigmas: float, darks: bool = False,
             raw_darks: bool = False, rate_swing: float = 0.0, base: dict[str, float] | None = None) -> None:
    """Kind and score of every candidate, in order of precedence (sets ``kind``, ``score``,
    ``by_counts``, ``rank``, ``sign`` and ``strength``).

    1. far less variance than (nearly) all neighbours: dead if it gives (almost) no signal
       above black, or if it is darker with a variance that fell with its gain (cold: var
       ratio ~ gain^2); otherwise stuck at its value;
    2. consistently brighter / darker: hot / dead, unless the extra variance explains the
       offset (flicker shifts the mean as well);
    3. far more variance than (nearly) all neighbours: noisy.

    In darks every pixel is near black, where data clip: a variance-less pixel darker than
    its neighbours is only dead if its level says so too, and never if it sits at the data's
    floor in every frame (clipped at black: how dark it really is cannot be known).

    In raw darks a hot (warm) pixel also needs an offset of at least ``dark_min_sigmas`` times
    its neighbours' temporal sigma: its dark current stands out of the noise of a single frame.
    That is the physical meaning of warm, whatever the number of frames; the significance
    (the level z, not raised by the tail guard there) only says that it is measured. Without
    the floor, a long stack of a sensor with a very even dark current would make sensels
    significant that no single exposure shows. The default, 2 rather than the 3 of "a few
    sigmas", leaves room for the error of a measured offset (0.2 sigma in 40 frames) and for a
    warm pixel's own place in the dark-current spread of its neighbours.

    Where the stack has an exposure fit (``c.z_rate``), a sensel whose residual grows with
    exposure significantly (the dark-current z) is hot, whatever its mean and even where its
    spread looks like flicker: that spread is its own dark current across the exposures (and
    in frames with in-camera dark subtraction). ``rate_swing`` turns its rate into the DN its
    level moves across the stack, which in raw darks must stand ``dark_min_sigmas`` out of a
    frame's noise, as a warm pixel's offset must.

    ``thr`` may be raised above the configured ``base`` by a map's heavy tail (``tails.py``):
    scene events and artefacts of single frames. A candidate that the range counts corroborate
    (beyond its neighbours in ``CORROBORATING_FRAMES`` frames, significantly: a defect
    persists, an event does not) is held to ``base`` instead: a population of real defects, a
    few percent of a sensor, makes a tail of its own that must not hide it.
    """
    zl, zv, zn = c.z_level, c.z_var, c.z_noise
    m = len(zl)
    base = thr if base is None else base
    rep_hi = rep_lo = rep_any = np.zeros(m, bool)
    if c.counted:
        rep_hi = (c.k_hi >= CORROBORATING_FRAMES) & (c.s_hi >= CORROBORATING_S)
        rep_lo = (c.k_lo >= CORROBORATING_FRAMES) & (c.s_lo >= CORROBORATING_S)
        rep_any = rep_hi | rep_lo | ((c.k_hi + c.k_lo >= CORROBORATING_FRAMES) & (c.s_sum >= CORROBORATING_S))
    kind = np.zeros(m, np.int8)
    score = np.zeros(m, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig_ratio = (c.mean - c.black) / np.maximum(c.ref_mean - c.black, 1e-6)
        var_ratio = (c.std ** 2 + QUANT_VAR) / (c.ref_std ** 2 + QUANT_VAR)
    is_stuck = (zv <= -thr["stuck"]) & c.below_all
    no_signal = sig_ratio <= DEAD_FRACTION
    cold = (sig_ratio < 1) & (var_ratio >= COLD_VAR_FRACTION * np.clip(sig_ratio, 0, 1) ** 2) & (zl < 0)
    darker = no_signal | cold
    pinned = (c.std <= 1e-6) & (c.mean <= c.black + 1e-6)  # at the data's floor in every frame
    if darks:
        is_stuck &= (~darker | (zl <= -thr["dead"])) & ~pinned
    kind[is_stuck] = STUCK
    kind[is_stuck & darker] = DEAD
    score[is_stuck] = -zv[is_stuck]
    noisy = ((zn >= thr["noisy"]) | ((zn >= base["noisy"]) & rep_any)) & c.above_all
    excess_sd = np.sqrt(np.maximum(c.rstd ** 2 - c.ref_rstd ** 2, 0))
    flicker = noisy & (excess_sd >= NOISY_EXCESS_RATIO * np.abs(c.rho))
    bright = (zl >= thr["hot"]) | ((zl >= base["hot"]) & rep_hi)
    darkened = (zl <= -thr["dead"]) | ((zl <= -base["dead"]) & rep_lo)
    if raw_darks:  # warm in a dark: a physical offset, for the level z and the counts alike
        warm_enough = c.rho >= dark_min_sigmas * np.maximum(c.ref_std, math.sqrt(QUANT_VAR))
        bright &= warm_enough
    # range counts (when the stats have them): flicker is beyond the range on both sides, often;
    # a level defect on one side. Flicker by the counts (their sum) also needs both sides at least
    # counts_flicker_frames and at least their null's mean: a shifted level raises one side but
    # lowers the other, which over many frames would make the sum significant too. Flicker by the
    # counts outranks a level class (flicker shifts the mean too), never the missing variance of a
    # stuck or unresponsive sensel.
    counted = c.counted
    c_flicker = c_hot = c_dead = np.zeros(m, bool)
    if counted:
        thr_c = {k: thr.get("counts_" + k, thr["counts"]) for k in ("hot", "dead", "noisy")}
        s_hi, s_lo, s_sum = c.s_hi, c.s_lo, c.s_sum
        # and the weaker side beyond chance on its own, or a fair share of the stronger: a hot sensel
        # that read black in a few dark-subtracted frames (saturated there too) is below in 2-4 of
        # them and above in 50 (a null of 0.1-0.2 a side); Gaussian flicker is weak on both sides alike
        weaker, stronger = np.minimum(c.k_hi, c.k_lo), np.maximum(c.k_hi, c.k_lo)
        both = ((c.k_hi >= np.maximum(FLICKER_FRAMES, c.m_hi))
                & (c.k_lo >= np.maximum(FLICKER_FRAMES, c.m_lo))
                & ((np.minimum(c.s_hi, c.s_lo) >= CORROBORATING_S) | (weaker >= BALANCED_SHARE * stronger)))
        flickers = (s_sum >= thr["counts"]) & both & c.inner  # at the null's threshold: never a level class then
        c_flicker = flickers & (s_sum >= thr_c["noisy"])
        c_hot = (s_hi >= thr_c["hot"]) & (s_hi >= s_lo) & ~flickers
        c_dead = (s_lo >= thr_c["dead"]) & (s_lo > s_hi) & ~flickers
        if raw_darks:
            c_hot &= warm_enough
        if darks:
            c_dead &= ~pinned
    dark = np.zeros(m, bool)
    telegraph = np.zeros(m, bool)
    if counted and c.z_exposure is not None:
        # only where the frames' exposures are known: without them a hot sensel in frames of
        # varied exposure jumps on one side as a telegraph one does, and stays hot
        # jumps on one side: the counts say often, the variance says by more than its offset
        with np.errstate(divide="ignore", invalid="ignore"):
            r_ratio = (c.rstd ** 2 + QUANT_VAR) / (c.ref_rstd ** 2 + QUANT_VAR)
        often = ((np.maximum(c.k_hi, c.k_lo) >= np.maximum(FLICKER_FRAMES, 2 * np.maximum(c.m_hi, c.m_lo)))
                 & (np.maximum(c.s_hi, c.s_lo) >= thr["counts"]))
        explained = c.line_share >= LINE_SHARE if c.line_share is not None else np.zeros(m, bool)
        telegraph = (often & (r_ratio >= ONE_SIDED_VAR_RATIO) & (excess_sd >= NOISY_EXCESS_RATIO * np.abs(c.rho))
                     & (c.z_exposure < EXPOSURE_DRIVEN_Z) & ~explained)
        if c.onset is not None:  # there from a date on: its frames before are what lowers its level
            telegraph &= c.onset < 0
        if c.z_gain is not None:
            # beyond in the low-gain frames: an offset the noise of the high gains buries, whose spread
            # is the scene's events, not jumps of charge (a warm sensel: one scene highlight in a lit
            # frame gave one twice its neighbours' residual variance)
            telegraph &= c.z_gain > -GAIN_DRIVEN_Z
    if c.z_rate is not None:
        # a dead sensel reads black among lit neighbours, which the fit leaves out as clipped at
        # the floor: what is left of its fit says nothing of dark current
        # dark current, by being beyond the range repeatedly, and in the long exposures: a scene
        # event in the longest frame alone draws a slope (the fit's leverage), but it is one frame
        rep_dark = rep_hi
        if c.z_exposure is not None:
            rep_dark = rep_dark & (c.z_exposure >= EXPOSURE_DRIVEN_Z)
        # one that a steady bright partner (a stuck sensel) hides from the range test in every frame
        # (``exposure.beside_steady_light``) cannot be corroborated by it, and is held to the configured
        # threshold too: the tails measure the whole sensor's chance slopes, and such sensels are a
        # handful beside a few defects
        hidden = c.beside_light if c.beside_light is not None else np.zeros(m, bool)
        rep_dark = rep_dark | hidden
        dark = (((c.z_rate >= thr["dark_current"]) | ((c.z_rate >= base["dark_current"]) & rep_dark))
                & (c.rate > 0) & (zl > -thr["dead"]))
        if counted and not darks:
            # unless a brighter partner among its 4 neighbours keeps it from ever being above them all
            dark &= (c.k_hi >= DARK_BEYOND_FRAMES) | hidden
        if counted and c.shown is not None:
            dark &= ~((c.shown >= SHOWN_FRAMES) & (c.k_hi < SHOWN_SHARE * c.shown))
        if raw_darks:
            dark &= c.rate * rate_swing >= dark_min_sigmas * np.maximum(c.ref_std, math.sqrt(QUANT_VAR))
    telegraph &= ~dark  # a hot sensel's spread across the exposures is its dark current
    lvl = ~is_stuck & (((bright | darkened) & ~flicker & ~c_flicker & ~telegraph) | dark)
    if darks:
        lvl &= ~pinned
    kind[lvl] = np.where((zl[lvl] > 0) | dark[lvl], HOT, DEAD)
    score[lvl] = np.abs(zl[lvl])
    if c.z_rate is not None:
        score[lvl & dark] = np.maximum(score[lvl & dark], c.z_rate[lvl & dark])
    nz = ~is_stuck & ~lvl & (noisy | c_flicker | telegraph)
    kind[nz] = NOISY
    score[nz] = zn[nz]
    by_counts = np.zeros(m, bool)
    if counted:
        c_score = np.maximum(np.maximum(s_hi, s_lo), s_sum)  # the "counts" map
        nc = nz & ~noisy
        cl = ~is_stuck & ~lvl & ~nz & (c_hot | c_dead)
        kind[cl] = np.where(c_hot[cl], HOT, DEAD)
        by_counts = nc | cl
        score[by_counts] = c_score[by_counts]
        lvl = lvl | cl
    c.kind, c.score, c.by_counts = kind, score, by_counts
    c.rank = np.where(is_stuck, 0, np.where(lvl, 1, 2)).astype(np.int8)
    c.sign = np.sign(zl).astype(np.int8)
    if counted:
        # a level class by the counts is beyond its neighbours on that side, whatever its mean: a
        # dark-current neighbour's leak (-1/4 of a rate its level does not separate) can make a warm
        # sensel's residual mean negative, and the ring rule (``suppress``) would take it for that ring
        c.sign[cl] = np.where(kind[cl] == HOT, 1, -1)
    # JPEG: the residual's rings and the chroma smear around a defect can be as strong as it is in
    # one channel; the luma blob ranks the pixels of a blob instead
    amp = c.luma_amp if c.luma_amp is not None else c.z_amp
    c.strength = np.maximum(np.maximum(amp, np.abs(zv)), zn)
