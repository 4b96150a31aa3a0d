"""Range counts: in how many frames did a sensel stand beyond the range of its 4 same-colour
neighbours (``stats.counts``)? Scene texture hardly moves these counts, so they find the warm
and flickering sensels of photo stacks that the moments cannot tell from the scene.

A healthy sensel passes by chance, at a rate set by the noise and the texture of its plane; a
warm sensel is above in many more frames, a flickering one both above and below, and scene
texture (one frame, or an edge that crosses it) adds at most a few frames. Three maps: above,
below and their sum (flicker), each scored as -log10 of its tail probability under a
beta-binomial null fitted by moments to the plane's own counts, per edge class (reflection at
the border makes one neighbour count twice, so the range is narrower there and the rate higher).
The 4 corners of a plane have two duplicated neighbours, so only two distinct ones, and too few
samples for a null of their own (extrapolating the edge's missed a corner's rate 2x in a
test): they are not scored by the counts (the moments still score them).

Pass 1 takes each band's histograms (integers: they add up exactly), the null is fitted on the
plane's sum, and pass 2 reads each sensel's score from the null's tables.

A defect that appeared during a dated collection stands beyond its neighbours only in the frames
since, and only in the long ones if it is dark current: 11 of 60 frames is a weak count over the
whole stack, but 10 of the 20 frames since its onset is not. Where the scan kept the earliest 4
days a sensel stood beyond (``stats.model.FIRST_DAYS``), each of them is a possible onset: the
count from it on (all but the j chance frames before it) is scored against the same null over
the frames since that day, and the best of the 4, less the decades of the choice (4 per
distinct capture day: Bonferroni), raises the sensel's above or below score when it is higher.

The strong counts (``stats.model.STRONG_COUNTS``: the frames beyond by 9 sigmas, not 3) have
nulls of their own, fitted the same way per plane and edge class, and raise the above or below
score where they are more significant. A healthy sensel is almost never 9 sigmas beyond all its
neighbours (a sensel-sized highlight in one frame), so 3-4 such frames are decisive where 4 at 3
sigmas are not: a hot sensel that appeared late and shows only in its few long exposures since,
a telegraph step that only the high gains amplify past the noise. Two are not: in a sharp
developed photo (a lossless PNG or TIFF) a corner of the scene crosses a sensel in a frame or
two, and a plane held hundreds of sensels at 2 strong frames, a null's 1e-3 tail, which
corroborated their scene-driven flicker (``classify``: 7 PNG stacks of 40 photos gained 8 false
reports each, every one at exactly 2). So a strong count scores from ``STRONG_MIN_FRAMES`` on.

Where the frames' gains vary and the scan kept the sum of their log gains over each sensel's
frames beyond (``stats.model.BEYOND_EXPOSURE``), the count of the side that holds most of those
frames is joined with how high those gains were (``gain_tail``: a charge step or dark current
shows at the high gains, a healthy sensel's chance frames at any), and raises that side's score
where the two together are more significant.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ...stats.model import BEYOND_EXPOSURE, FIRST_DAYS, NO_DAY, STRONG_COUNTS
from ..bands import PlaneView
from ..stripes import each_stripe
from .count_kernels import count_histograms, set_entries, strongest_scores
from .gain_tail import GainTails

COUNT_MAPS = ("hi", "lo", "sum")
# the null is fitted (by moments, per plane and edge class) on the counts below this quantile,
# so that the defects, far rarer than 1 - quantile, do not set it
FIT_QUANTILE = 0.9995
START_QUANTILE = 0.99
# where more than POPULATION_SHARE of a plane's sensels lie beyond the 1e-3 tail of the null
# fitted to its body (the counts up to their BODY_SHARE quantile), a population of defects would
# set the moments: that null holds instead
BODY_SHARE = 0.9
POPULATION_SHARE = 0.005
# flicker by the counts also needs at least this many frames both above and below (and the
# null's mean on each side): a shifted level raises one side but lowers the other
FLICKER_FRAMES = 2
# a strong count below this scores nothing (see the module docstring): 1-2 strong frames are a
# scene's events in sharp developed photos, 3 are the "few" a defect that persists shows
STRONG_MIN_FRAMES = 3
# the onset-conditioned score's tables hold (distinct capture days) x (frames + 1) values per side
# and edge class; beyond this many (a dated video of thousands of frames over hundreds of days)
# it is left out
SINCE_TABLE_VALUES = 4_000_000


def count_tail(n: int, p: float, phi: float) -> np.ndarray:
    """-log10 P(K >= k), k = 0..n, for a beta-binomial count of n frames with mean rate ``p`` and
    overdispersion ``phi`` (variance / binomial variance; <= 1: binomial).

    From the ratios of consecutive probabilities (no gamma functions), summed in log space
    (``logaddexp``), so the far tail neither underflows nor cancels; O(n) per call.
    """
    p = min(max(p, 1e-4), 1 - 1e-4)
    k = np.arange(n, dtype=np.float64)  # P(k+1) / P(k) for k = 0..n-1
    lr = np.log(n - k) - np.log(k + 1)
    if phi > 1 + 1e-6 and n > 1:
        rho = min((phi - 1) / (n - 1), 1.0)  # intra-class correlation
        s = max(1 / rho - 1, 1e-3)
        a, b = p * s, (1 - p) * s
        lr += np.log(k + a) - np.log(n - k - 1 + b)
    else:
        lr += math.log(p) - math.log1p(-p)
    lp = np.concatenate([[0.0], np.cumsum(lr)])
    lp -= np.logaddexp.reduce(lp)
    lsf = np.logaddexp.accumulate(lp[::-1])[::-1]
    return np.maximum(-lsf / math.log(10), 0.0)


def fit_counts(hist: np.ndarray, n: int, quantile: float = FIT_QUANTILE, robust: bool = True) -> tuple[float, float]:
    """Mean rate p and overdispersion phi of a count histogram: by moments, on the counts at or
    below its ``quantile`` (so that the defects, far rarer than 1 - quantile, do not set them);
    then, where that tail holds more than a few per mille (a sensor with a population of
    defects, whose counts would widen the null over themselves), by the likelihood of the
    healthy majority's counts alone (``fit_body``)."""
    total = hist.sum()
    if total == 0:
        return 0.0, 1.0
    top = int(np.searchsorted(np.cumsum(hist), quantile * total))
    # a small plane's few defects lie below that quantile, and would widen the null over
    # themselves: the fit starts from the counts below the START_QUANTILE and takes in the counts
    # up to where it calls them significant (a healthy sensel passes that once in ten planes),
    # again with the null that gives, until it holds (or reaches ``quantile``)
    cut = min(top, int(np.searchsorted(np.cumsum(hist), START_QUANTILE * total)))
    p, phi = _moments(hist[: cut + 1], n)
    for _ in range(8):
        far = int(np.searchsorted(count_tail(n, p, phi), math.log10(total) + 1.0))
        grown = min(top, max(far - 1, cut))
        if grown == cut:
            break
        cut = grown
        p, phi = _moments(hist[: cut + 1], n)
    if not robust or n < 8 or p <= 0:
        return p, phi
    body_p, body_phi = fit_body(hist, n, p, phi)
    # a population: far more sensels beyond the body's 1e-3 tail than its 1e-3
    far = int(np.searchsorted(count_tail(n, body_p, body_phi), 3.0))
    beyond = float(hist[far:].sum()) / total
    return (body_p, body_phi) if beyond > POPULATION_SHARE else (p, phi)


def _moments(body: np.ndarray, n: int) -> tuple[float, float]:
    """Mean rate and overdispersion (>= 1) of a histogram of counts of n frames, by moments."""
    body = body.astype(np.float64)
    k = np.arange(len(body), dtype=np.float64)
    m = max(body.sum(), 1.0)
    mean = float((body * k).sum() / m)
    var = float((body * (k - mean) ** 2).sum() / m)
    p = mean / n
    return p, max(1.0, var / max(n * p * (1 - p), 1e-12))


def count_quantile(hist: np.ndarray, share: float) -> int:
    return int(np.searchsorted(np.cumsum(hist), share * hist.sum()))


def fit_body(hist: np.ndarray, n: int, p0: float, phi0: float) -> tuple[float, float]:
    """(p, phi) maximising the likelihood of the counts up to the histogram's ``BODY_SHARE``
    quantile, truncated there: the healthy majority's own distribution, whatever the tail. On a
    grid of p about the moments' and of phi from 1 up, refined once about the best."""
    top = max(2, count_quantile(hist, BODY_SHARE))
    h = hist[: top + 1].astype(np.float64)
    j = np.arange(top, dtype=np.float64)  # P(j+1)/P(j), j = 0..top-1
    best = (-np.inf, p0, phi0)
    ps = p0 * np.geomspace(0.25, 4.0, 33)
    phis = 1.0 + np.concatenate([[0.0], np.geomspace(1e-3, max(10.0, 4 * (phi0 - 1)), 32)])
    for _ in range(2):
        pg, fg = np.meshgrid(np.clip(ps, 1e-5, 0.5), phis, indexing="ij")
        rho = np.clip((fg - 1) / (n - 1), 1e-9, 0.999)
        s = 1 / rho - 1
        a, b = pg * s, (1 - pg) * s
        lr = (np.log(n - j) - np.log(j + 1))[None, None, :] + (
            np.log(j[None, None, :] + a[..., None]) - np.log(n - j[None, None, :] - 1 + b[..., None]))
        binomial = fg <= 1.0
        lr = np.where(binomial[..., None], (np.log(n - j) - np.log(j + 1))[None, None, :]
                      + (np.log(pg) - np.log1p(-pg))[..., None], lr)
        lp = np.concatenate([np.zeros((*pg.shape, 1)), np.cumsum(lr, axis=-1)], axis=-1)
        lp -= np.logaddexp.reduce(lp, axis=-1, keepdims=True)
        ll = (lp * h).sum(axis=-1)
        i = np.unravel_index(int(np.argmax(ll)), ll.shape)
        if ll[i] > best[0]:
            best = (float(ll[i]), float(pg[i]), float(fg[i]))
        ps = best[1] * np.geomspace(0.85, 1.18, 17)
        phis = np.unique(np.clip(best[2] * np.geomspace(0.8, 1.25, 17), 1.0, None))
    return best[1], best[2]


def gauss_decades(z: float) -> float:
    """-log10 of the one-sided Gaussian tail P(Z >= z) (asymptotic where erfc underflows)."""
    tail = 0.5 * math.erfc(z / math.sqrt(2))
    if tail > 1e-300:
        return -math.log10(tail)
    return (z * z / 2 + math.log(z * math.sqrt(2 * math.pi)) - math.log1p(-1 / (z * z))) / math.log(10)


def count_thresholds(base: float, hot: float, dead: float, noisy: float) -> dict[str, float]:
    """The counts' threshold for each class they can give: the null's (``base``), raised by as many
    decades of probability as a configured moment threshold (``hot``, ``dead``, ``noisy``) is
    stricter than the default 7 on a Gaussian scale. A user who asks for only strong hot pixels
    (hot_threshold 40) gets no warm ones from the counts either; the defaults leave the null's
    threshold as it is."""
    ref = gauss_decades(7.0)
    return {k: base + max(0.0, gauss_decades(t) - ref) for k, t in (("hot", hot), ("dead", dead), ("noisy", noisy))}


def classes(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Edge class of each sensel of a plane: 0 interior, 1 on an edge, 2 in a corner."""
    h, w = shape
    return ((ys == 0) | (ys == h - 1)).astype(np.intp) + ((xs == 0) | (xs == w - 1))


def edge_points(shape: tuple[int, int], r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the plane's outer ring within rows r0:r1, each sensel once, in
    row-major order."""
    h, w = shape
    ys = np.concatenate([np.zeros(w, np.intp), np.full(w, h - 1), np.arange(h), np.arange(h)])
    xs = np.concatenate([np.arange(w), np.arange(w), np.zeros(h, np.intp), np.full(h, w - 1)])
    keep = (ys >= r0) & (ys < r1)
    return np.divmod(np.unique(ys[keep] * w + xs[keep]), w)


def count_arrays(v: PlaneView) -> tuple[np.ndarray, np.ndarray]:
    """The view's above and below counts (a ValueError where the statistics have none)."""
    if v.above is None or v.below is None:
        raise ValueError("these statistics have no range counts")
    return v.above, v.below


def counts_at(v: PlaneView, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The counts (above, below, sum) at sensels of the view (plane coordinates), as indices."""
    above, below = count_arrays(v)
    a = above[ys - v.top, xs].astype(np.intp)
    b = below[ys - v.top, xs].astype(np.intp)
    return a, b, a + b


def strong_arrays(v: PlaneView) -> tuple[np.ndarray, np.ndarray] | None:
    """The view's strong above and below counts, where the scan kept them."""
    if not all(k in v.extra for k in STRONG_COUNTS):
        return None
    return v.extra[STRONG_COUNTS[0]], v.extra[STRONG_COUNTS[1]]


def strong_at(v: PlaneView, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strong counts (above, below) at sensels of the view (plane coordinates), as indices."""
    strong = strong_arrays(v)
    if strong is None:
        raise ValueError("these statistics have no strong counts")
    return strong[0][ys - v.top, xs].astype(np.intp), strong[1][ys - v.top, xs].astype(np.intp)


@dataclass
class CountHistograms:
    """One band's share of a plane's count histograms: all its sensels, and those on the
    plane's edges and corners (map x count); ``strong`` the same of the strong counts (above,
    below), where the scan kept them."""

    total: np.ndarray
    edge: np.ndarray
    corner: np.ndarray
    strong: CountHistograms | None = None


def measure(v: PlaneView, pool: ThreadPoolExecutor | None = None) -> CountHistograms:
    """The histograms of the core rows' counts (in row stripes of the integer counts: no float copy)."""
    n = v.n
    above, below = count_arrays(v)
    parts: list[np.ndarray] = []

    def rows_hist(r0: int, r1: int) -> None:
        parts.append(count_histograms(above[r0 - v.top : r1 - v.top], below[r0 - v.top : r1 - v.top], n))

    each_stripe(pool, v.y0, v.y1, v.width, rows_hist)
    total = np.sum(parts, axis=0)
    ey, ex = edge_points(v.shape, v.y0, v.y1)
    corner = classes(ey, ex, v.shape) == 2

    def hist(counts: tuple[np.ndarray, ...]) -> np.ndarray:  # each map's histogram of these counts
        return np.stack([np.bincount(k, minlength=n + 1)[: n + 1] for k in counts]).astype(total.dtype)

    def edge_hists(at) -> tuple[np.ndarray, np.ndarray]:  # on the edges, in the corners
        return hist(at(ey[~corner], ex[~corner])), hist(at(ey[corner], ex[corner]))

    strong = strong_arrays(v)
    if strong is None:
        return CountHistograms(total, *edge_hists(lambda ys, xs: counts_at(v, ys, xs)))
    above, below = (a[v.y0 - v.top : v.y1 - v.top] for a in strong)
    whole = count_histograms(above, below, n)[:2].astype(total.dtype)
    return CountHistograms(total, *edge_hists(lambda ys, xs: counts_at(v, ys, xs)),
                           CountHistograms(whole, *edge_hists(lambda ys, xs: strong_at(v, ys, xs))))


def fit_classes(parts: list[CountHistograms], n: int, robust: bool) -> list:
    """Each map's null ((p, phi) of the interior, (p, phi) of the edges) from the bands' histograms:
    the edges' own where they have any counts, else the interior's; corners are not scored."""
    total = np.sum([p.total for p in parts], axis=0)
    edge = np.sum([p.edge for p in parts], axis=0)
    interior = total - edge - np.sum([p.corner for p in parts], axis=0)
    rates = []
    for i in range(len(total)):
        pi, fi = fit_counts(interior[i] if interior[i].sum() else total[i], n, robust=robust)
        pe, fe = fit_counts(edge[i], n, robust=robust) if edge[i].sum() else (pi, fi)
        rates.append(((pi, fi), (pe, fe)))
    return rates


def tail_tables(rates: list, n: int) -> np.ndarray:
    """(map, class (interior, edge, corner), k) float32 tail scores of the nulls ``rates``
    (``fit_classes``); 0 in the corners (see the module docstring)."""
    tables = np.zeros((len(rates), 3, n + 1), np.float32)
    for i, classes_rates in enumerate(rates):
        for cls, (p, phi) in enumerate(classes_rates):
            tables[i, cls] = count_tail(n, p, phi)
    return tables


def gain_tails(log_gains: np.ndarray | None, n: int) -> GainTails | None:
    """The tails of the stack's log gains for every plane's null (``gain_tail``), where the n
    frames' gains are known and differ."""
    if log_gains is None or len(log_gains) != n:
        return None
    tails = GainTails(log_gains)
    return tails if tails.usable else None


class CountNull:
    """The null of one plane's range counts: per map and edge class, the tail score of every count
    (-log10 P(K >= k)) and the mean count."""

    def __init__(self, parts: list[CountHistograms], n: int, shape: tuple[int, int], robust: bool = False,
                 days: np.ndarray | None = None, gains: GainTails | None = None):
        """``robust``: a population of defects may not widen the null (``fit_counts``); in one
        sensel per value only: a demosaiced image's counts have the scene's own heavy tail.
        ``days``: every frame's capture day, where the scan kept the earliest beyond days (the
        onset-conditioned score, see the module docstring). ``gains``: the tails of the n frames'
        log gains (``gain_tails``: None where unusable), where the scan kept their sum over each
        sensel's frames beyond."""
        self.shape = shape
        self.gains = gains
        rates = fit_classes(parts, n, robust)  # (p, phi) per map, interior and edge
        self.tables = tail_tables(rates, n)
        self.means = np.array([(n * pi, n * pe, n * pe) for (pi, _), (pe, _) in rates])  # the null's mean count, n p
        usable_days = days is not None and len(days) == n
        self.since = SinceTables(np.asarray(days), n, rates[:2]) if usable_days else None
        if self.since is not None and not self.since.usable:
            self.since = None
        # the strong counts' nulls (side, class, k), where every band kept them
        self.strong: np.ndarray | None = None
        self.strong_since: SinceTables | None = None
        strong = [p.strong for p in parts if p.strong is not None]
        if parts and len(strong) == len(parts):
            strong_rates = fit_classes(strong, n, robust)
            self.strong = tail_tables(strong_rates, n)
            if self.since is not None:
                self.strong_since = SinceTables(np.asarray(days), n, strong_rates)

    def _strong_scores(self, side: int, cls, k: np.ndarray, first: list[np.ndarray] | None) -> np.ndarray:
        """The strong count ``k``'s score on one side: over every frame, or (the best of) over the
        frames since one of the sensel's earliest beyond days, as for the range counts."""
        assert self.strong is not None
        out = self.strong[side, cls, k]
        if self.strong_since is not None and first is not None:
            np.maximum(out, np.where(np.asarray(cls) < 2, self.strong_since.scores(side, np.minimum(cls, 1), k, first),
                                     0.0), out=out)
        out[np.asarray(k) < STRONG_MIN_FRAMES] = 0.0
        return out

    def _raise_by_strong(self, v: PlaneView, r0: int, r1: int, score: np.ndarray) -> None:
        """Raise the score of rows r0:r1 of the interior (in place) where a strong count is more
        significant; only the sensels with a strong frame are looked up, a few per cent."""
        strong = strong_arrays(v)
        if self.strong is None or strong is None:
            return
        dated = self.strong_since is not None and FIRST_DAYS[0] in v.extra
        flat = score.reshape(-1)
        for side, a in enumerate(strong):
            at, k = set_entries(a[r0 - v.top : r1 - v.top])  # 0 frames scores 0
            first = None
            if dated:
                ys, xs = np.divmod(at, a.shape[1])
                first = [v.extra[name][r0 - v.top + ys, xs] for name in FIRST_DAYS]
            flat[at] = np.maximum(flat[at], self._strong_scores(side, 0, k, first))

    def points(self, v: PlaneView, ys: np.ndarray, xs: np.ndarray) -> dict[str, np.ndarray]:
        """Counts, scores (float32) and the null's means of the three maps at single sensels."""
        cls = classes(ys, xs, self.shape)
        out = {}
        for i, (name, k) in enumerate(zip(COUNT_MAPS, counts_at(v, ys, xs))):
            out["k_" + name] = k
            out["s_" + name] = self.tables[i, cls, k]
            out["m_" + name] = self.means[i, cls]
        # the sensels' earliest beyond days, for both onset-conditioned scores
        first = ([v.extra[k][ys - v.top, xs] for k in FIRST_DAYS]
                 if self.since is not None and FIRST_DAYS[0] in v.extra else None)
        if self.strong is not None and strong_arrays(v) is not None:
            for side, (name, k) in enumerate(zip(COUNT_MAPS[:2], strong_at(v, ys, xs))):
                out["k_strong_" + name] = k
                np.maximum(out["s_" + name], self._strong_scores(side, cls, k, first), out=out["s_" + name])
        if self.since is not None and first is not None:
            for i, name in enumerate(COUNT_MAPS[:2]):
                since = self.since.scores(i, np.minimum(cls, 1), out["k_" + name], first)
                out["s_" + name] = np.where(cls < 2, np.maximum(out["s_" + name], since), out["s_" + name])
        if self.gains is not None and BEYOND_EXPOSURE[1] in v.extra:
            summed = v.extra[BEYOND_EXPOSURE[1]][ys - v.top, xs]
            for i, name in enumerate(COUNT_MAPS[:2]):
                k, other, s = out["k_" + name], out["k_" + COUNT_MAPS[1 - i]], out["s_" + name]
                out["s_" + name] = np.where(k > other, np.maximum(s, self._joined(i, cls, k, other, summed)), s)
        return out

    def _joined(self, side: int, cls, k: np.ndarray, other: np.ndarray, summed: np.ndarray) -> np.ndarray:
        """A side's count ``k`` (the other side's: ``other``) joined with the gains of its frames
        (``gain_tail``), for the sensels where that side holds most of them (float32)."""
        assert self.gains is not None
        return self.gains.joined(self.tables[side, cls, k], k + other, summed).astype(np.float32)

    def _raise_by_gains(self, v: PlaneView, r0: int, r1: int, above: np.ndarray, below: np.ndarray,
                        score: np.ndarray) -> None:
        """Raise the interior's score of rows r0:r1 (in place) where a count joined with its
        frames' gains (``gain_tail``) is more significant. The scan summed the gains of the frames
        beyond on either side, so a side is joined with them only where it holds most of those
        frames (a hot sensel's few chance frames below are not its high gains)."""
        if self.gains is None or BEYOND_EXPOSURE[1] not in v.extra:
            return
        summed = v.extra[BEYOND_EXPOSURE[1]][r0 - v.top : r1 - v.top]
        sides = (above.reshape(-1).astype(np.intp), below.reshape(-1).astype(np.intp))
        flat = score.reshape(-1)
        for side in range(2):
            at = np.flatnonzero(sides[side] > sides[1 - side])
            flat[at] = np.maximum(flat[at], self._joined(side, 0, sides[side][at], sides[1 - side][at],
                                                         summed.reshape(-1)[at]))

    def rows(self, v: PlaneView, r0: int, r1: int) -> np.ndarray:
        """The strongest score of the three maps for rows r0:r1 (float32)."""
        h, w = self.shape
        above, below = count_arrays(v)
        above, below = above[r0 - v.top : r1 - v.top], below[r0 - v.top : r1 - v.top]
        t = self.tables
        score = strongest_scores(above, below, t[0, 0], t[1, 0], t[2, 0])
        self._raise_by_strong(v, r0, r1, score)
        self._raise_by_gains(v, r0, r1, above, below, score)
        if self.since is not None and FIRST_DAYS[0] in v.extra:
            first = [v.extra[k][r0 - v.top : r1 - v.top] for k in FIRST_DAYS]
            np.maximum(score, self.since.scores(0, 0, above.astype(np.intp), first), out=score)
            np.maximum(score, self.since.scores(1, 0, below.astype(np.intp), first), out=score)
        # the edge classes: the first and last columns, and the first and last rows of the plane
        ey = np.concatenate([np.arange(r0, r1), np.arange(r0, r1)])
        ex = np.concatenate([np.zeros(r1 - r0, np.intp), np.full(r1 - r0, w - 1)])
        for r in {0, h - 1} & set(range(r0, r1)):
            ey = np.concatenate([ey, np.full(w, r)])
            ex = np.concatenate([ex, np.arange(w)])
        s = self.points(v, ey, ex)
        score[ey - r0, ex] = np.maximum(np.maximum(s["s_hi"], s["s_lo"]), s["s_sum"])
        return score


class SinceTables:
    """The onset-conditioned scores' tables: for each distinct capture day d, -log10 P(K >= k) of a
    count over the frames taken on or after d, under a map's null (above or below; interior or
    edge), less the decades of the choice of onset."""

    def __init__(self, days: np.ndarray, n: int, rates: list):
        self.days = np.unique(days)
        after = n - np.searchsorted(np.sort(days), self.days, side="left")  # frames on or after each day
        self.after = after
        self.usable = 1 < len(self.days) and len(self.days) * (n + 1) * 4 <= SINCE_TABLE_VALUES
        if not self.usable:
            return
        self.penalty = math.log10(len(FIRST_DAYS) * len(self.days))
        tables = np.zeros((2, 2, len(self.days), n + 1), np.float32)  # side, class, day, k
        for side in range(2):
            for cls in range(2):
                p, phi = rates[side][cls]
                for u, m in enumerate(after.tolist()):
                    tail = count_tail(int(m), p, phi) - self.penalty
                    tables[side, cls, u, : m + 1] = np.maximum(tail, 0.0)
                    tables[side, cls, u, m + 1 :] = tables[side, cls, u, m]
        self.tables = tables

    def scores(self, side: int, cls, k: np.ndarray, first: list[np.ndarray]) -> np.ndarray:
        """The best onset-conditioned score of counts ``k`` (one side's), given each sensel's
        earliest beyond days ``first`` (``FIRST_DAYS`` order): from the j-th (j = 0..3) on, all
        but the j frames before it."""
        k = np.asarray(k, np.intp)
        best = np.zeros(k.shape, np.float32)
        for j, day in enumerate(first):
            dated = day != NO_DAY
            u = np.minimum(np.searchsorted(self.days, day), len(self.days) - 1)
            s = self.tables[side, cls, u, np.maximum(k - j, 0)]
            np.maximum(best, np.where(dated, s, 0.0), out=best)
        return best


def score(v: PlaneView, null: CountNull, out: np.ndarray, threshold: float,
          pool: ThreadPoolExecutor | None = None) -> list[np.ndarray]:
    """The strongest count score of the core rows into ``out``; the sensels at or past the threshold."""
    found: list[np.ndarray] = []

    def rows_counts(r0: int, r1: int) -> None:
        s = null.rows(v, r0, r1)
        out[r0 - v.y0 : r1 - v.y0] = s
        found.append(np.flatnonzero(s >= threshold) + r0 * v.width)

    each_stripe(pool, v.y0, v.y1, v.width, rows_counts)
    return found
