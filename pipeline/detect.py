"""Robust per-pixel defect scores and classes from the final per-pixel statistics.

Pure numpy (no dask, no scipy). Every comparison is between a pixel and its *same-colour*
neighbourhood: the same channel of an RGB image, the same CFA sub-plane (stride 2) of a raw
mosaic. Locations come from local medians, scales from local MADs, so that one defect, the
scene or vignetting never set the yardstick for another pixel.

Four per-pixel scores, each a robust z (about N(0, 1) on a clean sensor, larger is stranger):

- ``hot`` / ``dead`` (level): the pixel's mean minus the local median of its neighbours'
  means, over the larger of the local MAD of that difference and the pixel's own standard
  error (the residual stream's std / sqrt(n)). The local median is ring-free: a hot pixel
  does not make its neighbours look dark, unlike the residual mean, whose 4-neighbour mean
  puts -1/4 of a hot pixel into each neighbour. The standard error keeps flat, quantised
  regions (8-bit darks, clipped skies) from turning a one-frame blip into a defect.
- ``stuck``: log of the pixel's value variance over the local median of its neighbours'
  (the seed article's minimum-variance idea, made relative). A quantisation floor in both
  keeps clipped or black regions, where every variance is ~0, from looking stuck.
- ``noisy``: the same log ratio on the residual variance, after removing the 1/16 of each
  neighbour's variance that the 4-neighbour mean leaks into it (so a flickering pixel's
  neighbours are not reported too). The residual removes scene changes, which dominate the
  value variance of a photo stack, so flicker stands out.

Classes come from the scores in a fixed order (stuck/dead by no variance first, then
level, then flicker), and each defect is reported once: non-maximum suppression across a
small neighbourhood and across channels (one sensel smears into a blob in demosaiced
JPEGs), plus explicit suppression of the weaker opposite-sign ring that a strong defect
leaves around itself.

Speed: medians are separable pseudo-medians (median of row medians) over a 5x5 same-colour
window, built from min/max networks on whole arrays; MADs are taken per block and
interpolated. A 24 MP mosaic takes a few seconds and well under 2 GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .defect import Defect
from .stats import PixelStats

# quantisation variance of integer data (uniform rounding error): a floor for every variance,
# so that a constant integer pixel is compared in a meaningful, finite way.
QUANT_VAR = 1.0 / 12.0


@dataclass
class DetectConfig:
    """Thresholds and neighbourhoods of :func:`detect`. Every score is a robust z.

    The lead mirrors these defaults into configs/default.yaml; the comment on each field is
    its documentation there.
    """

    hot_threshold: float = 7.0  # level z above which a pixel is hot (includes weak "warm" pixels)
    dead_threshold: float = 7.0  # level z below -this: dead (includes "cold": consistently darker)
    stuck_threshold: float = 7.0  # variance z below -this: stuck (or dead when also dark)
    noisy_threshold: float = 7.0  # residual-variance z above this: noisy (flicker, random telegraph noise)
    window: int = 5  # side, in same-colour samples, of the neighbourhood for local medians (3, 5 or 7)
    rgb_spacing: int = 2  # sample spacing of that window in 3-channel images: steps over the demosaic/JPEG smear
    gray_spacing: int = 1  # the same for single-channel images that are not a CFA mosaic
    scale_block: int = 32  # side, in same-colour samples, of the blocks whose MAD is the local scale
    scale_floor: float = 0.25  # no local scale below this fraction of the plane's median scale (clipped, flat areas)
    var_scale_floor: float = 0.3  # no log-variance scale below this fraction of sqrt(2/(n-1)), chi-square's spread
    stuck_var_ratio: float = 0.2  # ... and a variance below this fraction of a low quantile of its neighbours' (a clipping hot pixel keeps more)
    noisy_var_ratio: float = 2.0  # noisy also needs a residual variance above this x a high quantile of its neighbours'
    noisy_isolation: float = 4.0  # ... and none of its 8 nearest same-colour neighbours above this x their median (scene events)

    dead_fraction: float = 0.1  # a variance-less pixel with less than this fraction of its neighbours' signal (above black) is dead
    cold_var_fraction: float = 0.25  # a darker pixel whose variance ratio >= this x (signal ratio)^2 still responds: cold (dead), not stuck
    ring_dominance: float = 2.0  # ring removal: a neighbour with opposite-sign residual mean 2..8x larger (|t| >= ring_t) leaked 1/4 of it
    ring_t: float = 4.0  # ... (see ring_dominance)
    level_scale_floor: float = 1.0  # the level z is never larger than the t statistic itself
    noisy_excess_ratio: float = 0.5  # a bright/dark pixel whose extra residual std >= this x its offset is noisy, not hot/dead
    nms_radius: int = 3  # px, any channel: one report per blob (demosaic +-1 px, JPEG 4:2:0 chroma +-3 px)
    ring_radius: int = 7  # px: a candidate this close to a ring_ratio x stronger one is its ring or JPEG ringing
    ring_ratio: float = 3.0  # ... (see ring_radius)
    far_ring_radius: int = 16  # px: JPEG ringing of a very strong defect fills its 16x16 chroma block and the next
    far_ring_ratio: float = 8.0  # ... so this far, candidates this many times weaker than a kept one are dropped
    nms_radius_cfa: int = 2  # px in a mosaic, same colour only: opposite-sign (ring) or ring_ratio x weaker neighbours go
    darks_ratio: float = 20.0  # auto stack kind: photos when median value variance > this x median residual variance
    black_level: float | None = None  # raw black level (dead vs stuck); None = the plane's darkest mean
    tail_false_alarms: float = 0.5  # raise a threshold until clean pixels would pass it this often by the image's own tail (0: off)
    max_defects: int = 1_000_000  # report at most this many (strongest first); the score maps are complete


@dataclass
class Detection:
    """The result of :func:`detect`: defects, complete score maps, and why."""

    defects: list[Defect]
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    stack_kind: str
    stack_reason: str


KIND_CODES = {"hot": 1, "dead": 2, "stuck": 3, "noisy": 4}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}


# --------------------------------------------------------------------------- robust filters
def _med3(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def _med5(a, b, c, d, e):
    """Median of 5 arrays with 10 min/max: drop the min and max of (a..d), median of 3 with e."""
    lo = np.maximum(np.minimum(a, b), np.minimum(c, d))
    hi = np.minimum(np.maximum(a, b), np.maximum(c, d))
    return _med3(lo, hi, e)


def _median_views(views: list[np.ndarray]) -> np.ndarray:
    if len(views) == 1:
        return views[0].copy()
    if len(views) == 3:
        return _med3(*views)
    if len(views) == 5:
        return _med5(*views)
    return np.median(np.stack(views), axis=0).astype(views[0].dtype)


# an optimal 9-comparator sorting network for 5 elements
_SORT5 = ((0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2))


def _rank_views(views: list[np.ndarray], rank: int) -> np.ndarray:
    """The ``rank``-th smallest (0-based) of a few arrays, element-wise."""
    if len(views) == 5:
        v = list(views)
        for i, j in _SORT5:
            v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
        return v[rank]
    return np.partition(np.stack(views), rank, axis=0)[rank]


def _pad(a: np.ndarray, p: int) -> np.ndarray:
    if p == 0:
        return a
    mode = "reflect" if min(a.shape) > p else "symmetric" if min(a.shape) >= p else "edge"
    return np.pad(a, p, mode=mode)


def pseudo_median(a: np.ndarray, window: int = 5, spacing: int = 1) -> np.ndarray:
    """Separable median (median of row medians) over a window x window grid of samples ``spacing`` apart.

    It breaks down only when most samples of most rows are outliers, e.g. a blob wider than
    half the window, so a single defect or its demosaic smear never moves it; and it costs a
    few min/max passes instead of a sort per pixel.
    """
    r = window // 2
    p = r * spacing
    h, w = a.shape
    ap = _pad(a, p)
    offs = [k * spacing for k in range(window)]
    rows = _median_views([ap[:, o : o + w] for o in offs])
    return _median_views([rows[o : o + h] for o in offs])


def rank_filter(a: np.ndarray, window: int, spacing: int, rank: int) -> np.ndarray:
    """Separable order statistic: the ``rank``-th smallest of each row's samples, then of those.

    With rank 1 of 5 it is a low quantile of the neighbourhood (about its 10th percentile),
    with rank 3 a high one: "below (above) nearly all of its neighbours", robust to the
    pixel itself and to a few other outliers.
    """
    p = (window // 2) * spacing
    h, w = a.shape
    ap = _pad(a, p)
    offs = [k * spacing for k in range(window)]
    rows = _rank_views([ap[:, o : o + w] for o in offs], rank)
    return _rank_views([rows[o : o + h] for o in offs], rank)


def _block_median(a: np.ndarray, block: int) -> tuple[np.ndarray, int, int]:
    """Median of each block x block tile (tiles that do not fit are covered by the nearest)."""
    h, w = a.shape
    bh, bw = min(block, h), min(block, w)
    nby, nbx = max(1, h // bh), max(1, w // bw)
    tiles = a[: nby * bh, : nbx * bw].reshape(nby, bh, nbx, bw).transpose(0, 2, 1, 3).reshape(nby, nbx, bh * bw)
    return np.median(tiles, axis=-1), bh, bw


def _upsample(small: np.ndarray, h: int, w: int, bh: int, bw: int) -> np.ndarray:
    """Bilinear interpolation between block centres (no seams in the score maps)."""

    def axis(n, b, nb):
        pos = np.clip((np.arange(n) + 0.5) / b - 0.5, 0, nb - 1)
        i0 = np.floor(pos).astype(np.intp)
        i1 = np.minimum(i0 + 1, nb - 1)
        return i0, i1, (pos - i0).astype(np.float32)

    y0, y1, fy = axis(h, bh, small.shape[0])
    x0, x1, fx = axis(w, bw, small.shape[1])
    s = small.astype(np.float32)
    rows = s[y0] * (1 - fy)[:, None] + s[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def local_scale(dev: np.ndarray, block: int, floor_frac: float, floor_abs: float = 0.0) -> np.ndarray:
    """1.4826 x MAD of a locally centred map, per block, interpolated; floored.

    The floor (a fraction of the plane's median scale) keeps clipped or perfectly flat
    regions, where the MAD is 0, from making every tiny difference infinitely significant.
    """
    med, bh, bw = _block_median(dev, block)
    mad, _, _ = _block_median(np.abs(dev - _upsample(med, *dev.shape, bh, bw)), block)
    mad = 1.4826 * mad
    floor = max(floor_abs, floor_frac * float(np.median(mad)))
    mad = np.maximum(mad, floor)
    if not np.any(mad > 0):
        mad = np.ones_like(mad)
    scale = _upsample(mad, *dev.shape, bh, bw)
    return np.maximum(scale, np.float32(max(floor, 1e-12)))


def _neighbours(a: np.ndarray) -> list[np.ndarray]:
    """The 4 nearest neighbours (up, down, left, right), reflected at the edges like the residual stream."""
    p = _pad(a, 1)
    return [p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]]


def _ring_max(a: np.ndarray, spacing: int = 1) -> np.ndarray:
    """Maximum over the 8 neighbours at Chebyshev distance ``spacing`` (centre excluded)."""
    p = _pad(a, spacing)
    h, w = a.shape
    out = None
    for dy in (-spacing, 0, spacing):
        for dx in (-spacing, 0, spacing):
            if dy or dx:
                v = p[spacing + dy : spacing + dy + h, spacing + dx : spacing + dx + w]
                out = v.copy() if out is None else np.maximum(out, v)
    return out


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    up, down, left, right = _neighbours(a)
    return up + down + left + right


# --------------------------------------------------------------------------- planes
@dataclass
class _Plane:
    sel: tuple  # index into the pixel shape
    channel: int
    color: str
    y0: int = 0
    x0: int = 0
    step: int = 1


def _planes(pixel_shape: tuple[int, ...], cfa_pattern, color_desc: str | None) -> tuple[list[_Plane], bool]:
    if cfa_pattern is not None:
        pattern = np.asarray(cfa_pattern)
        if pattern.shape != (2, 2):
            raise ValueError(
                f"only 2x2 CFA patterns (Bayer) are supported, got a {pattern.shape} pattern "
                "(X-Trans or another layout): same-colour neighbours would be wrong, so detection refuses "
                "rather than guess"
            )
        if len(pixel_shape) != 2:
            raise ValueError(f"a CFA pattern needs a 2-D mosaic, got pixel shape {pixel_shape}")
        desc = color_desc or "RGBG"
        planes = []
        for oy in (0, 1):
            for ox in (0, 1):
                idx = int(pattern[oy, ox])
                color = desc[idx] if 0 <= idx < len(desc) else str(idx)
                planes.append(_Plane((slice(oy, None, 2), slice(ox, None, 2)), 0, color, oy, ox, 2))
        return planes, True
    if len(pixel_shape) == 3:
        names = color_desc if color_desc and len(color_desc) == pixel_shape[2] else "RGBA"[: pixel_shape[2]]
        if len(names) < pixel_shape[2]:
            names = [str(c) for c in range(pixel_shape[2])]
        return [_Plane((slice(None), slice(None), c), c, names[c]) for c in range(pixel_shape[2])], False
    if len(pixel_shape) == 2:
        return [_Plane((slice(None), slice(None)), 0, (color_desc or "L")[:1])], False
    raise ValueError(f"pixel shape must be (H, W) or (H, W, C), got {pixel_shape}")


# --------------------------------------------------------------------------- stack kind
def classify_stack(stats: PixelStats, ratio: float) -> tuple[str, str]:
    """Photos or darks, from how much of the frame-to-frame variance is spatially coherent.

    Scene changes move whole neighbourhoods together, so they inflate the value variance
    but cancel in the residual; sensor noise is spatially white and shows in both alike.
    """
    var = stats.var
    sample = (slice(None, None, max(1, var[0].shape[0] // 512)),)
    v = float(np.median(var[0][sample]))
    rv = float(np.median(var[1][sample]))
    m = float(np.median(stats.mean[0][sample]))
    if not np.isfinite(v) or v <= 0:
        return "darks", f"median frame-to-frame variance of the values is {v:.3g} (mean {m:.3g}): no scene changes"
    rr = v / max(rv, QUANT_VAR)
    if rr > ratio:
        return "photos", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is {rr:.3g}x that "
                          f"of the neighbour residual ({rv:.3g}) > {ratio:g}: the scene changes between frames")
    return "darks", (f"median frame-to-frame variance of the values ({v:.3g}, mean {m:.3g}) is only {rr:.3g}x that "
                     f"of the neighbour residual ({rv:.3g}) <= {ratio:g}: spatially white noise, no scene")


# --------------------------------------------------------------------------- main
def detect(
    stats: PixelStats,
    config: DetectConfig | None = None,
    cfa_pattern: np.ndarray | None = None,
    color_desc: str | None = None,
    stack_kind: str = "auto",
) -> Detection:
    """Score every pixel against its same-colour neighbourhood and report each defect once.

    ``cfa_pattern`` (2x2 indices into ``color_desc``, e.g. [[0, 1], [3, 2]] with "RGBG")
    marks a raw mosaic; None means RGB (channels "R", "G", "B") or grayscale ("L").
    ``stack_kind`` is "photos", "darks" or "auto" (decided from the statistics).
    """
    cfg = config or DetectConfig()
    if cfg.window not in (3, 5, 7):
        raise ValueError(f"window must be 3, 5 or 7 same-colour samples, got {cfg.window}")
    n = int(stats.n)
    if n < 2:
        raise ValueError(f"need statistics over at least 2 frames to detect defects, got n={n}")
    planes, is_cfa = _planes(stats.pixel_shape, cfa_pattern, color_desc)
    if stack_kind == "auto":
        stack_kind, reason = classify_stack(stats, cfg.darks_ratio)
    elif stack_kind in ("photos", "darks"):
        reason = f"stack kind given as {stack_kind!r}"
    else:
        raise ValueError(f"stack_kind must be 'auto', 'photos' or 'darks', got {stack_kind!r}")

    spacing = 1 if is_cfa else (cfg.rgb_spacing if len(stats.pixel_shape) == 3 else cfg.gray_spacing)
    shape = stats.pixel_shape
    score_maps = {k: np.zeros(shape, np.float32) for k in KIND_CODES}
    var_sd = math.sqrt(2.0 / max(n - 1, 1))
    luma = None
    if not is_cfa and len(planes) == 3:  # demosaiced RGB: luma is where JPEG keeps a sensel sharp
        luma = {"rho": np.zeros(shape[:2], np.float32)}
    tails: dict[str, list] = {k: [] for k in KIND_CODES}
    step = max(1, int(np.prod(shape)) // 2_000_000)
    parts = [_score_plane(stats, pl, cfg, n, spacing, var_sd, score_maps, luma, tails, step) for pl in planes]
    cand = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
    if luma is not None:
        z_y = np.abs(luma["rho"]) / local_scale(luma["rho"], cfg.scale_block, cfg.scale_floor)
        cand["luma_amp"] = z_y[cand["y"], cand["x"]]
        del z_y, luma
    thresholds = {"hot": cfg.hot_threshold, "dead": cfg.dead_threshold, "stuck": cfg.stuck_threshold,
                  "noisy": cfg.noisy_threshold}
    if cfg.tail_false_alarms > 0:
        for k, v in thresholds.items():
            sample = np.concatenate(tails[k])
            thresholds[k] = max(v, tail_threshold(sample, sample.size * step, cfg.tail_false_alarms))
    _classify(cand, thresholds, cfg)
    cand = {k: v[cand["kind"] > 0] for k, v in cand.items()}
    cand = _one_per_pixel(cand)
    keep = _suppress(cand, cfg, is_cfa)
    order = np.argsort(-cand["score"][keep], kind="stable")
    idx = np.flatnonzero(keep)[order][: cfg.max_defects]
    defects = [_defect(cand, i) for i in idx]
    return Detection(defects, score_maps, thresholds, stack_kind, reason)


def tail_threshold(sample: np.ndarray, size: int, false_alarms: float, p1: float = 1e-2, p2: float = 1e-3) -> float:
    """The score that clean pixels would pass ``false_alarms`` times in ``size`` pixels, by their own tail.

    ``sample`` is an even subsample of a score map, only where the kind's other conditions
    hold (``size`` such pixels in all). The tail between its 1-p1 and 1-p2 quantiles (defects, even smeared by JPEG, are
    far rarer than p2) is fitted with an exponential and extrapolated to ``size``. A
    Gaussian tail falls faster than that, so on a well-behaved sensor this stays below the
    configured thresholds; it rises only where the data are heavy-tailed: the lognormal
    dark current of darks, JPEG artefacts, or scene edges and specular highlights of single
    frames in photos.
    """
    if sample.size < 10 / p2:
        return 0.0
    q1, q2 = np.quantile(sample, [1 - p1, 1 - p2])
    slope = max(float(q2 - q1), 0.0) / math.log(p1 / p2)
    return float(q2 + slope * math.log(max(size * p2 / false_alarms, 1.0)))


def _score_plane(stats, pl: _Plane, cfg: DetectConfig, n: int, spacing: int, var_sd: float, score_maps,
                 luma: dict | None = None, tails: dict | None = None, step: int = 1) -> dict:
    """Score maps of one same-colour plane, and the attributes of its candidate pixels.

    Candidates are pixels past the configured thresholds (the final ones can only be higher),
    so that classification can wait until the tail thresholds of the whole image are known.
    """
    f32 = np.float32
    mu = stats.mean[0][pl.sel].astype(f32)
    var = np.maximum(stats.m2[0][pl.sel] / n, 0).astype(f32)
    rmean = stats.mean[1][pl.sel].astype(f32)
    rvar = np.maximum(stats.m2[1][pl.sel] / n, 0).astype(f32)
    q = f32(QUANT_VAR)

    # level: t statistic of the residual mean (its own standard error), with the ring removed: a
    # defect puts -1/4 of its offset into each same-colour neighbour's residual. Where a significant
    # neighbour (|t| >= ring_t) has the opposite sign and 2..8x the residual (4x for an exact
    # ring, with ring_dominance = 2), that quarter is added back.
    se = np.sqrt((rvar + q * f32(1.25)) / f32(n))
    t0 = rmean / se
    corr = np.zeros_like(rmean)
    abs_r = np.abs(rmean)
    lo_ratio, hi_ratio = f32(cfg.ring_dominance), f32(16 / cfg.ring_dominance)
    for rp, tp in zip(_neighbours(rmean), _neighbours(t0)):
        ring = ((rp * rmean < 0) & (np.abs(rp) >= lo_ratio * abs_r) & (np.abs(rp) <= hi_ratio * abs_r)
                & (np.abs(tp) >= f32(cfg.ring_t)))
        corr += np.where(ring, rp, f32(0))
    rho = rmean + corr / f32(4)
    del corr, abs_r, t0
    t = rho / se
    if luma is not None:  # BT.601 luma weights, as in JPEG
        luma["rho"] += f32((0.299, 0.587, 0.114)[pl.channel]) * rho
    z_level = t / local_scale(t, cfg.scale_block, 0.0, cfg.level_scale_floor)
    # the size of the offset against its local spread, without the pixel's own standard error:
    # ranks the pixels of one blob by amplitude (for non-maximum suppression only)
    z_amp = np.abs(rho) / local_scale(rho, cfg.scale_block, cfg.scale_floor)
    ref_mu = pseudo_median(mu, cfg.window, spacing)

    # stuck: value variance relative to the neighbours' (log ratio, robust scale)
    lvar = np.log(var + q)
    ref_lvar = pseudo_median(lvar, cfg.window, spacing)
    dvar = lvar - ref_lvar
    z_var = dvar / local_scale(dvar, cfg.scale_block, 0.0, cfg.var_scale_floor * var_sd)

    # noisy: de-ringed residual variance relative to the neighbours'
    own_rvar = np.maximum(rvar - _neighbour_sum(rvar) / f32(16), 0)
    lrv = np.log(own_rvar + q)
    ref_lrv = pseudo_median(lrv, cfg.window, spacing)
    drv = lrv - ref_lrv
    z_noise = drv / local_scale(drv, cfg.scale_block, 0.0, cfg.var_scale_floor * var_sd)

    score_maps["hot"][pl.sel] = np.maximum(z_level, 0)
    score_maps["dead"][pl.sel] = np.maximum(-z_level, 0)
    score_maps["stuck"][pl.sel] = np.maximum(-z_var, 0)
    score_maps["noisy"][pl.sel] = np.maximum(z_noise, 0)

    # candidates: past a configured threshold, and for the variance kinds clearly outside the
    # range of (nearly) all neighbours, not just their median
    low = 1 if cfg.window > 3 else 0
    below_all = lvar - rank_filter(lvar, cfg.window, spacing, low) <= math.log(cfg.stuck_var_ratio)
    above_all = lrv - rank_filter(lrv, cfg.window, spacing, cfg.window - 1 - low) >= math.log(cfg.noisy_var_ratio)
    # flicker is a property of one sensel: if its nearest same-colour neighbours are restless too, a
    # scene event (a specular highlight or an edge in a few frames) is the likelier cause
    above_all &= _ring_max(lrv, spacing) - ref_lrv <= math.log(cfg.noisy_isolation)
    if tails is not None:
        for kind, gate in (("hot", None), ("dead", None), ("stuck", below_all), ("noisy", above_all)):
            values = score_maps[kind][pl.sel].reshape(-1)[::step]
            if gate is not None:
                values = values[gate.reshape(-1)[::step]]
            tails[kind].append(values.copy())
    cand = ((z_level >= cfg.hot_threshold) | (z_level <= -cfg.dead_threshold)
            | ((z_var <= -cfg.stuck_threshold) & below_all) | ((z_noise >= cfg.noisy_threshold) & above_all))
    ys, xs = np.nonzero(cand)
    g = (ys, xs)
    black = cfg.black_level if cfg.black_level is not None else float(mu.min())
    m = len(ys)
    return {
        "y": (pl.y0 + pl.step * ys).astype(np.int64),
        "x": (pl.x0 + pl.step * xs).astype(np.int64),
        "channel": np.full(m, pl.channel, np.int64),
        "color": np.full(m, pl.color, dtype=object),
        "plane": np.full(m, pl.y0 * 2 + pl.x0 + 4 * pl.channel, np.int64),
        "mean": mu[g],
        "std": np.sqrt(var[g]),
        "ref_mean": ref_mu[g],
        "ref_std": np.sqrt(np.maximum(np.exp(ref_lvar[g]) - q, 0)),
        "black": np.full(m, black, np.float32),
        "rmean": rmean[g],
        "rho": rho[g],
        "z_level": z_level[g],
        "z_amp": z_amp[g],
        "z_var": z_var[g],
        "z_noise": z_noise[g],
        "below_all": below_all[g],
        "above_all": above_all[g],
        "rstd": np.sqrt(own_rvar[g]),
        "ref_rstd": np.sqrt(np.maximum(np.exp(ref_lrv[g]) - q, 0)),
    }


def _classify(c: dict, thr: dict[str, float], cfg: DetectConfig) -> None:
    """Kind and score of every candidate, in order of precedence (adds "kind", "score", ...).

    1. far less variance than (nearly) all neighbours: dead if it gives (almost) no signal
       above black, or if it is darker with a variance that fell with its gain (cold: var
       ratio ~ gain^2); otherwise stuck at its value;
    2. consistently brighter / darker: hot / dead, unless the extra variance explains the
       offset (flicker shifts the mean as well);
    3. far more variance than (nearly) all neighbours: noisy.
    """
    zl, zv, zn = c["z_level"], c["z_var"], c["z_noise"]
    m = len(zl)
    kind = np.zeros(m, np.int8)
    score = np.zeros(m, np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sig_ratio = (c["mean"] - c["black"]) / np.maximum(c["ref_mean"] - c["black"], 1e-6)
        var_ratio = (c["std"] ** 2 + QUANT_VAR) / (c["ref_std"] ** 2 + QUANT_VAR)
    is_stuck = (zv <= -thr["stuck"]) & c["below_all"]
    no_signal = sig_ratio <= cfg.dead_fraction
    cold = (sig_ratio < 1) & (var_ratio >= cfg.cold_var_fraction * np.clip(sig_ratio, 0, 1) ** 2) & (zl < 0)
    kind[is_stuck] = KIND_CODES["stuck"]
    kind[is_stuck & (no_signal | cold)] = KIND_CODES["dead"]
    score[is_stuck] = -zv[is_stuck]
    noisy = (zn >= thr["noisy"]) & c["above_all"]
    excess_sd = np.sqrt(np.maximum(c["rstd"] ** 2 - c["ref_rstd"] ** 2, 0))
    flicker = noisy & (excess_sd >= cfg.noisy_excess_ratio * np.abs(c["rho"]))
    lvl = ~is_stuck & ((zl >= thr["hot"]) | (zl <= -thr["dead"])) & ~flicker
    kind[lvl] = np.where(zl[lvl] > 0, KIND_CODES["hot"], KIND_CODES["dead"])
    score[lvl] = np.abs(zl[lvl])
    nz = ~is_stuck & ~lvl & noisy
    kind[nz] = KIND_CODES["noisy"]
    score[nz] = zn[nz]
    c["kind"], c["score"] = kind, score
    c["rank"] = np.where(is_stuck, 0, np.where(lvl, 1, 2)).astype(np.int8)
    c["sign"] = np.sign(zl).astype(np.int8)
    c["strength"] = np.maximum(np.maximum(c["z_amp"], np.abs(zv)), zn)
    if "luma_amp" in c:  # JPEG: chroma rings around a defect can be as strong as it is, but have little luma
        c["strength"] = np.maximum(c["strength"], c["luma_amp"])


def _one_per_pixel(c: dict) -> dict:
    """One candidate per pixel (x, y) across channels: a sensel is one defect, whatever the smear.

    Its class follows the same precedence as within a channel (no variance, then level, then
    flicker), its strength is the largest of its channels'.
    """
    if len(c["y"]) == 0:
        return c
    key = c["y"] * (int(c["x"].max()) + 1) + c["x"]
    order = np.lexsort((-c["score"], c["rank"], key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    starts = np.flatnonzero(first)
    strength = np.maximum.reduceat(c["strength"][order], starts)
    out = {k: v[order[starts]] for k, v in c.items()}
    out["strength"] = strength
    return out


def _suppress(c: dict, cfg: DetectConfig, is_cfa: bool) -> np.ndarray:
    """Greedy non-maximum suppression, strongest first; returns the mask of kept candidates.

    Strength is a candidate's largest |z| of any kind, so that the true peak of a blob wins
    even when its class is decided by a smaller score (a clipped hot pixel is also less
    variable; a JPEG ring can be as dark as the hot pixel is bright).

    Demosaiced images: a candidate is dropped when a stronger kept one lies within
    ``nms_radius`` px in any channel (one sensel smears into a blob across channels), or a
    kept one ``ring_ratio`` times stronger lies within ``ring_radius`` px (the residual's
    opposite-sign ring, and JPEG's ringing over its 8x8 blocks), or one ``far_ring_ratio``
    times stronger within ``far_ring_radius`` (ringing over 16x16 chroma MCUs).
    Mosaics: sensels do not smear, so only the same CFA colour counts; a candidate is dropped
    next to a stronger one (``nms_radius_cfa``, 2 = the 8 nearest same-colour sensels) only
    when its level has the opposite sign (the -1/4 ring a hot pixel leaves in its neighbours'
    residuals, or the +1/4 ring of a dead one), or the stronger one is ``ring_ratio`` times
    stronger.
    """
    m = len(c["score"])
    keep = np.zeros(m, bool)
    if m == 0:
        return keep
    order = np.argsort(-c["strength"], kind="stable")
    r_far = 0
    if is_cfa:
        r_nms, r_ring = 0, cfg.nms_radius_cfa
    else:
        r_nms, r_ring, r_far = cfg.nms_radius, cfg.ring_radius, cfg.far_ring_radius
    cell = max(r_nms, r_ring, r_far, 1)
    grid: dict[tuple[int, int], list[int]] = {}
    ys, xs, sc, sign, plane = c["y"], c["x"], c["strength"], c["sign"], c["plane"]
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        cy, cx = y // cell, x // cell
        dropped = False
        for j in (j for gy in (cy - 1, cy, cy + 1) for gx in (cx - 1, cx, cx + 1) for j in grid.get((gy, gx), ())):
            if is_cfa and plane[j] != plane[i]:
                continue
            d = max(abs(int(ys[j]) - y), abs(int(xs[j]) - x))
            if d <= r_nms:
                dropped = True
            elif d <= r_ring:
                stronger = sc[j] >= cfg.ring_ratio * sc[i]
                opposite = sign[j] * sign[i] < 0
                dropped = stronger or (is_cfa and opposite)
            elif d <= r_far:
                dropped = sc[j] >= cfg.far_ring_ratio * sc[i]
            if dropped:
                break
        if not dropped:
            keep[i] = True
            grid.setdefault((cy, cx), []).append(i)
    return keep


def _defect(c: dict, i: int) -> Defect:
    kind = KIND_NAMES[int(c["kind"][i])]
    mu, ref = float(c["mean"][i]), float(c["ref_mean"][i])
    sd, ref_sd = float(c["std"][i]), float(c["ref_std"][i])
    if kind in ("hot", "dead") and not (kind == "dead" and c["z_var"][i] < 0 and abs(c["z_var"][i]) >= abs(c["z_level"][i])):
        detail = (f"mean {mu:.4g} vs neighbours {ref:.4g} ({mu - ref:+.3g}, z {c['z_level'][i]:+.1f}); "
                  f"residual {float(c['rmean'][i]):+.3g}/frame")
    elif kind in ("stuck", "dead"):
        detail = f"std {sd:.3g} vs neighbours {ref_sd:.3g} (z {c['z_var'][i]:+.1f}); mean {mu:.4g} vs {ref:.4g}"
    else:
        detail = (f"flicker: residual std {float(c['rstd'][i]):.3g} vs neighbours {float(c['ref_rstd'][i]):.3g} "
                  f"(z {c['z_noise'][i]:+.1f})")
    return Defect(
        x=int(c["x"][i]), y=int(c["y"][i]), channel=int(c["channel"][i]), kind=kind, mean=mu, std=sd,
        score=float(c["score"][i]), color=str(c["color"][i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c["rmean"][i]), detail=detail,
    )
