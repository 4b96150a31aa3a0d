"""A collection's defects behave as real ones do, measured in the raw mosaics with plain numpy.

Residuals are taken against the median of the 8 same-colour neighbours; tolerances come from the
camera's noise model (``COLLECTION_SENSOR.noise_sigma``), scene texture aside.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth import COLLECTION_SENSOR
from pipeline.synth.physics import build_body

from .conftest import ring_median, sensels

S = COLLECTION_SENSOR
# darks and photos, many frames with noise reduction: every behaviour shows in one collection
PHYSICS = {"frames": 80, "seed": 3, "dark_fraction": 0.4, "nr_fraction": 0.5, "defects_per_kind": 12}


def frame_arrays(truth: dict) -> dict[str, np.ndarray]:
    meta = truth["frames_meta"]
    return {key: np.array([m[key] for m in meta]) for key in ("exposure", "iso", "unix", "nr", "dark")}


def isolated(truth: dict, kind: str) -> list[dict]:
    """Defects of a kind whose same-colour neighbours are healthy (no cluster, border or population)."""
    return [d for d in truth["defects"]
            if d["kind"] == kind and d["cluster"] is None and not d["border"] and not d["population"]]


def sigma(signal: np.ndarray, iso: np.ndarray) -> np.ndarray:
    return np.array([S.noise_sigma(float(s), float(i)) for s, i in zip(signal, iso)])


def residual(truth: dict, stack: np.ndarray, d: dict, want: np.ndarray, nr_frames: bool = False):
    """(excess over the ring median, tolerance) of defect ``d`` per frame, for an expected excess ``want``.

    The tolerance is 6 sigmas of the sensel's and the median's noise, plus 5 % of the scene's level
    for scene texture (edges and highlights; 4 % of healthy photo sensels still miss it, never darks).
    With ``nr_frames`` the subtracted dark frame's noise is added (its dark signal is ``want``).
    """
    f = frame_arrays(truth)
    x, y = d["x"], d["y"]
    nb = ring_median(stack, x, y)
    scene = np.maximum(nb - truth["black_level"], 0)
    if nr_frames:
        var = sigma(scene + want, f["iso"]) ** 2 + sigma(want, f["iso"]) ** 2
        want = np.zeros_like(want)
    else:
        var = sigma(scene + want, f["iso"]) ** 2
    sd = np.sqrt(var + 0.25 * sigma(scene, f["iso"]) ** 2)
    return stack[:, y, x] - nb, 6 * sd + 0.05 * scene + 1


def agree(got: np.ndarray, want: np.ndarray, tol: np.ndarray, frames: np.ndarray, dark: np.ndarray, what) -> None:
    """In the chosen frames: every dark within tolerance, and 3 in 4 photos (scene texture aside)."""
    ok = np.abs(got - want) < tol
    assert ok[frames & dark].all(), (what, "darks", (got - want)[frames & dark & ~ok])
    if (frames & ~dark).any():
        assert ok[frames & ~dark].mean() >= 0.75, (what, "photos", (got - want)[frames & ~dark & ~ok])


# --------------------------------------------------------------------------- hot: dark current


def test_hot_excess_follows_rate_exposure_and_iso(collections):
    """excess = rate x t x ISO/100 in frames where it neither clips nor is removed by NR; clipped past white."""
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    black, white = truth["black_level"], truth["white_level"]
    k = f["exposure"] * f["iso"] / 100
    checked = clipped = invisible = 0
    z_photo = []
    for d in isolated(truth, "hot"):
        if d["warm"]:
            continue
        x, y = d["x"], d["y"]
        active = f["unix"] >= (d["since_unix"] if d["since"] else -np.inf)
        want = d["rate"] * k
        excess, tol = residual(truth, stack, d, want)
        nb = stack[:, y, x] - excess
        unclipped = (stack[:, y, x] < white) & (nb + want + tol < white)
        use = active & ~f["nr"] & unclipped
        agree(excess, want, tol, use, f["dark"], d)
        shows = use & (want > 3 * tol)
        checked += shows.sum()
        z_photo += ((excess - want) / tol)[shows & ~f["dark"]].tolist()
        # clips at white where the dark signal alone goes past it
        clip = active & ~f["nr"] & (want - tol > white - black)
        assert (stack[clip, y, x] == white).all(), d
        clipped += clip.sum()
        # invisible in short exposures: nothing beyond the noise
        short = active & ~f["nr"] & (want < 0.1 * tol)
        agree(excess, 0 * want, tol, short, f["dark"], d)
        invisible += short.sum()
    assert checked >= 20 and clipped >= 5 and invisible >= 20
    assert len(z_photo) >= 3 and abs(np.median(z_photo)) < 0.3  # photos: no bias


def test_hot_is_absent_before_its_onset(collections):
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    k = f["exposure"] * f["iso"] / 100
    late = [d for d in isolated(truth, "hot") if d["since"]]
    assert late
    seen_before = seen_after = 0
    for d in late:
        would = d["rate"] * k  # what it shows once active
        excess, tol = residual(truth, stack, d, would)
        nb = stack[:, d["y"], d["x"]] - excess
        strong = ~f["nr"] & (would > 3 * tol) & (nb + would + tol < truth["white_level"])
        before, after = strong & (f["unix"] < d["since_unix"]), strong & (f["unix"] >= d["since_unix"])
        _, healthy_tol = residual(truth, stack, d, 0 * would)
        agree(excess, 0 * would, healthy_tol, before, f["dark"], d)
        agree(excess, would, tol, after, f["dark"], d)
        seen_before += before.sum()
        seen_after += after.sum()
    assert seen_before >= 3 and seen_after >= 3


def test_hot_and_warm_vanish_with_noise_reduction(collections):
    """NR frames subtract a dark frame: the dark signal and offsets go, their noise stays (doubled)."""
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    white = truth["white_level"]
    k = f["exposure"] * f["iso"] / 100
    assert f["nr"].sum() >= 3 and (f["exposure"][f["nr"]] >= 1).all()
    checked = 0
    for d in isolated(truth, "hot"):
        active = f["unix"] >= (d["since_unix"] if d["since"] else -np.inf)
        dark_dn = (d["rate"] * k + d["offset"]) * active
        excess, tol = residual(truth, stack, d, dark_dn, nr_frames=True)
        nb = stack[:, d["y"], d["x"]] - excess
        fine = f["nr"] & (nb + dark_dn + tol < white)  # the light frame did not clip
        agree(excess, 0 * dark_dn, tol, fine, f["dark"], d)
        # where it was there in the frames without NR
        seen, tol_seen = residual(truth, stack, d, dark_dn)
        strong = ~f["nr"] & (dark_dn > 3 * tol_seen) & (nb + dark_dn + tol_seen < white)
        agree(seen, dark_dn, tol_seen, strong, f["dark"], d)
        checked += (fine & (dark_dn > 3 * tol)).sum()
    assert checked >= 5


def test_warm_is_a_constant_offset_at_every_exposure(collections):
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    warm = [d for d in isolated(truth, "hot") if d["warm"]]
    assert warm
    use = f["dark"] & ~f["nr"]
    for d in warm:
        x, y = d["x"], d["y"]
        excess = (stack[:, y, x] - ring_median(stack, x, y))[use]
        sd = sigma(np.zeros(use.sum()), f["iso"][use]) * 1.1
        w = 1 / sd**2
        # weighted mean offset: within 5 standard errors of the planted one, at short and long exposures alike
        est = (excess * w).sum() / w.sum()
        assert abs(est - d["offset"]) < 5 / np.sqrt(w.sum()) + 1, (d, est)
        assert (np.abs(excess - d["offset"]) < 6 * sd + 1).all(), d
        # the same offset in the shorter and the longer half of the darks: no dark current
        k = (f["exposure"] * f["iso"])[use]
        halves = [k <= np.median(k), k > np.median(k)]
        means = [(excess[h] * w[h]).sum() / w[h].sum() for h in halves]
        assert abs(means[0] - means[1]) < 5 * np.sqrt(1 / w[halves[0]].sum() + 1 / w[halves[1]].sum()) + 1, d


# --------------------------------------------------------------------------- stuck and dead


def test_stuck_constant_and_dead_without_response(collections):
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    black = truth["black_level"]
    for d in truth["defects"]:
        x, y = d["x"], d["y"]
        if d["kind"] == "stuck":
            assert (stack[:, y, x] == d["value"]).all(), d
        elif d["kind"] == "dead" and d in isolated(truth, "dead"):
            nb = ring_median(stack, x, y)
            photo = ~f["dark"] & (nb - black > 1000) & (nb < truth["white_level"])
            ratio = (stack[photo, y, x] - black) / (nb[photo] - black)
            assert photo.sum() >= 5
            if d["cold"]:
                assert abs(np.median(ratio) - d["gain"]) < 0.1, d
            else:
                assert np.abs(stack[photo, y, x] - black).max() < 6 * S.read_noise(6400), d


# --------------------------------------------------------------------------- noisy: telegraph


def test_one_sided_telegraph_takes_its_two_levels_in_p_high_of_frames(collections):
    """rts1: the normal level or +step (x ISO/100), high in about p_high of frames, at any exposure."""
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    rts = [d for d in isolated(truth, "noisy") if d["mode"] == "rts1"]
    assert rts
    all_levels, all_exposures = [], []
    for d in rts:
        step = d["step"] * f["iso"] / 100
        excess, tol = residual(truth, stack, d, 0 * step)
        nb = stack[:, d["y"], d["x"]] - excess
        clear = (step > 3 * tol) & ~f["nr"] & (nb + step + tol < truth["white_level"])
        if clear.sum() < 12:
            continue
        level = excess[clear] / step[clear]
        # two levels only, 0 and 1 step (scene texture aside)
        assert (np.minimum(np.abs(level), np.abs(level - 1)) < 0.34).mean() >= 0.9, (d, np.round(level, 2))
        high, n = level > 0.5, clear.sum()
        assert abs(high.mean() - d["p_high"]) < 4 * np.sqrt(d["p_high"] * (1 - d["p_high"]) / n) + 0.05, d
        all_levels += level.tolist()
        all_exposures += f["exposure"][clear].tolist()
    assert len(all_levels) >= 20
    # the step does not grow with exposure: high-state levels are 1 step at shorter and longer exposures alike
    levels, exposures = np.array(all_levels), np.array(all_exposures)
    hi = levels > 0.5
    cut = np.median(exposures[hi])
    shorter, longer = hi & (exposures <= cut), hi & (exposures > cut)
    assert shorter.sum() >= 3 and longer.sum() >= 3 and exposures[longer].max() >= 4 * exposures[shorter].min()
    assert abs(np.median(levels[shorter]) - 1) < 0.1 and abs(np.median(levels[longer]) - 1) < 0.1


def test_other_noisy_modes_flicker(collections):
    _, truth, stack = collections(**PHYSICS)
    f = frame_arrays(truth)
    checked = 0
    for d in isolated(truth, "noisy"):
        x, y = d["x"], d["y"]
        # darks, where even the lowest level stays above 0 (raw values clip there, as real ones do)
        use = f["dark"] & ~f["nr"] & (d["step"] * f["iso"] / 100 * (1.5 if d["mode"] == "rts2" else 6) < 400)
        step = d["step"] * f["iso"][use] / 100
        level = (stack[use, y, x] - ring_median(stack, x, y)[use]) / step
        sd = sigma(np.zeros(use.sum()), f["iso"][use]) / step
        if d["mode"] == "rts2":  # -1/2 or +1/2 step
            assert (np.abs(np.abs(level) - 0.5) < 6 * sd + 0.05).all(), d
        elif d["mode"] == "rts3":  # 0, 1 or 2 steps
            assert (np.abs(level - np.clip(np.round(level), 0, 2)) < 6 * sd + 0.05).all(), d
        elif d["mode"] == "gaussian" and use.sum() >= 8:  # extra noise of `step` (x ISO/100)
            assert 0.5 < np.std(level) < 1.6, d
        checked += use.sum()
    assert checked >= 20


# --------------------------------------------------------------------------- lines


def test_lines_are_elevated_over_their_whole_length_and_only_there(collections):
    _, truth, stack = collections(frames=40, seed=6, dark_fraction=1.0, nr_fraction=0.2)
    f = frame_arrays(truth)
    use = ~f["nr"]
    k = (f["exposure"] * f["iso"] / 100)[use]
    sd = sigma(np.zeros(use.sum()), f["iso"][use]) * np.sqrt(1.5)
    lines = [d for d in truth["defects"] if d["kind"] in ("column", "row")]
    assert {d["kind"] for d in lines} == {"column", "row"}
    h, w = stack.shape[1:]
    for d in lines:
        near_other = np.zeros((h, w), bool)  # other defects and their same-colour neighbourhoods
        for o in truth["defects"]:
            if o is not d:
                for x, y in sensels(o):
                    near_other[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = True
        want = d["offset"] + d["rate"] * k  # per frame
        along = (2, 0) if d["kind"] == "column" else (0, 2)  # (dy, dx) between the line's sensels
        across = along[::-1]  # to its same-colour parallel neighbours

        def level(i: int, d: dict = d, want: np.ndarray = want, along=along, across=across) -> float:
            """Weighted estimate, in units of the line's signal, at the line's i-th sensel (i may be off the line)."""
            y, x = d["y"] + i * along[0], d["x"] + i * along[1]
            nb = 0.5 * (stack[use, y - across[0], x - across[1]] + stack[use, y + across[0], x + across[1]])
            wgt = want**2 / sd**2
            return float(((stack[use, y, x] - nb) / want * wgt).sum() / wgt.sum())

        on = np.array([level(i) for i in range(d["length"])])
        blocks = [on[i : i + 10].mean() for i in range(0, d["length"] - 9, 10)]
        assert min(blocks) > 0.6 and max(blocks) < 1.4, (d, np.round(blocks, 2))
        end = d["length"] - 1
        off = [i for i in list(range(-10, 0)) + list(range(end + 1, end + 11))
               if 2 <= d["y"] + i * along[0] < h - 2 and 2 <= d["x"] + i * along[1] < w - 2
               and not near_other[d["y"] + i * along[0], d["x"] + i * along[1]]]
        if len(off) >= 5:
            assert abs(np.mean([level(i) for i in off])) < 0.3, d


# --------------------------------------------------------------------------- healthy sensels and the 8-bit frames


def test_healthy_dark_current_stays_clear_of_warm_and_hot():
    body = build_body(np.random.default_rng(5), 480, 640, S)
    cut = S.healthy_dark_max()
    assert body.dark_rate.max() <= cut and body.dark_rate.min() > 0
    most = float(S.max_dark_exposure) * S.max_iso / 100
    # in the longest possible frame the body's spread stays within one read-noise sigma
    assert np.median(body.dark_rate) == pytest.approx(S.healthy_dark_median(), rel=0.01)
    assert (cut - S.healthy_dark_median()) * most == pytest.approx(S.read_noise(S.max_iso))
    assert cut * 50 < 5  # far below the weakest planted dark current (5 DN/s)


def test_developed_hot_pixels_show_in_their_channel(collections):
    """In developed 8-bit frames a hot sensel that clips in a long frame is bright in its own colour, as in a camera."""
    import imageio.v3 as iio

    out, truth, _ = collections(frames=30, seed=3, fmt="png", dark_fraction=0.3, nr_fraction=0.0)
    f = frame_arrays(truth)
    k = f["exposure"] * f["iso"] / 100
    darks = np.flatnonzero(f["dark"]).tolist()
    hot = [d for d in isolated(truth, "hot") if not d["warm"] and d["since"] is None]
    seen = 0
    for i in darks:
        img = iio.imread(out / truth["files"][i]).astype(float)
        for d in hot:
            if d["rate"] * k[i] > truth["white_level"]:  # clipped in the raw
                c = d["channel"]
                assert img[d["y"], d["x"], c] >= 250, d
                assert np.median(img[..., c]) < 80
                seen += 1
    assert seen >= 3
