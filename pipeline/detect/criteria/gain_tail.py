"""Were a sensel's frames beyond its neighbours the stack's high gains? The exact tail of their
summed log gain, and that tail joined with the count's own.

A telegraph step is charge: the amplifier multiplies it with the gain, as it does the read noise,
while a scene's shot noise in DN grows only with the root of the gain. A step of 20 DN at ISO 100
hides in a lit frame's noise there, and stands 3 sigmas out at ISO 6400. So does dark current,
which grows with gain and time. A sensel that stands beyond its neighbours in 7 of 60 frames,
all of them high gains, is then more than its count says: a healthy sensel's chance frames are
any frames, and their gains a random draw from the stack's.

Given the count k, the scan's sum of log gains over those frames (``stats.model``'s
``beyond_logg``) is, under that null, the sum of k of the stack's log gains drawn without
replacement. Its tail is counted exactly for k up to ``EXACT_FRAMES`` (the number of k-subsets
of the frames with each sum, one pass over the frames), and bounded beyond (Serfling's
inequality: never more significant than the exact tail, where a Gaussian is when a few frames
are the high gains). The count's tail (the beta-binomial null of ``counts``) and this one are
independent under the null (which frames, given how many), and Fisher's method joins them: the
sensel's score is raised where the two together say more than the count alone.

On the benchmark collections (ISO 100-6400) a healthy sensel with 4 frames beyond had its gains'
z under 2.6 in all but 1 of 1,000; the one-sided telegraph sensels of a many-defect sensor that
the counts missed (5-8 frames beyond) had a median z of 2.2-2.8.
"""

from __future__ import annotations

import math

import numpy as np

# k-subsets counted exactly up to this many frames beyond; Serfling's bound above
EXACT_FRAMES = 32
# the exact table's work (frames x subset sizes x sums) at most this; fewer sizes where more
TABLE_WORK = 200_000_000
# the joined score is one of two tests of a sensel (its count alone, or with its gains): the
# decades of that choice are taken off it
CHOICE_DECADES = math.log10(2.0)


def fisher_decades(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """-log10 of Fisher's joined p of two independent tails given as -log10 p: with q = pa pb,
    P = q (1 - ln q)."""
    s = np.asarray(a, np.float64) + np.asarray(b, np.float64)
    return s - np.log10(1.0 + math.log(10.0) * s)


class GainTails:
    """-log10 P(S >= s | k) of the summed log gain S of k frames drawn at random from the stack's
    (``log_gains``: each frame's, as the scan summed them)."""

    def __init__(self, log_gains: np.ndarray):
        g = np.asarray(log_gains, np.int64)
        self.n = len(g)
        self.low = int(g.min()) if self.n else 0
        shifted = g - self.low
        self.mean = float(g.mean()) if self.n else 0.0
        self.spread = float(g.var()) if self.n else 0.0
        self.usable = self.n >= 3 and self.spread > 0
        top = int(shifted.max()) if self.n else 0
        self.range = float(top)
        sizes = min(EXACT_FRAMES, self.n)
        while sizes > 0 and self.n * (sizes + 1) * (sizes * top + 1) > TABLE_WORK:
            sizes //= 2
        self.sizes = sizes
        self.table = self._exact(shifted, sizes, top) if self.usable and sizes > 0 else np.zeros((1, 1))

    def _exact(self, shifted: np.ndarray, sizes: int, top: int) -> np.ndarray:
        """(k, s) -> -log10 P(S >= s | k), k = 0..sizes, s the shifted sum 0..sizes * top."""
        width = sizes * top + 1
        ways = np.zeros((sizes + 1, width))
        ways[0, 0] = 1.0
        for v in shifted.tolist():  # each frame in or out of a subset: the right side is the rows before it
            ways[1:, v:] = ways[1:, v:] + ways[:-1, : width - v]
        tail = np.cumsum(ways[:, ::-1], axis=1)[:, ::-1]
        total = tail[:, :1]
        with np.errstate(divide="ignore", invalid="ignore"):
            decades = -np.log10(np.where(total > 0, tail / total, 1.0))
        return np.maximum(np.nan_to_num(decades, posinf=0.0), 0.0).astype(np.float32)  # shipped with each null

    def scores(self, k: np.ndarray, summed: np.ndarray) -> np.ndarray:
        """The tail's -log10 p at each sensel's count ``k`` and sum of log gains ``summed`` (0
        where no frame, every frame, or one gain)."""
        k = np.asarray(k, np.int64)
        summed = np.asarray(summed, np.float64)
        out = np.zeros(k.shape, np.float64)
        if not self.usable:
            return out
        exact = (k > 0) & (k <= self.sizes)
        if exact.any():
            s = np.rint(summed[exact] - k[exact] * self.low).astype(np.int64)
            out[exact] = self.table[k[exact], np.clip(s, 0, self.table.shape[1] - 1)]
        wide = (k > self.sizes) & (k < self.n)
        if wide.any():
            out[wide] = self._bound(k[wide].astype(np.float64), summed[wide])
        return out

    def _bound(self, k: np.ndarray, summed: np.ndarray) -> np.ndarray:
        """Past the exact table: Serfling's bound on the tail of the mean of k draws without
        replacement, P(mean - mu >= t) <= exp(-2 k t^2 / ((1 - (k - 1) / n) range^2)), in decades.
        Never above the exact tail. (A Gaussian is: where a few frames of a collection are its
        high gains, 8 of 33 frames beyond at ISO 6400, in 1,000 frames with 5 % such, is 3.9
        decades exactly and 6.9 by a Gaussian.)"""
        t = np.maximum(summed / k - self.mean, 0.0)
        shrink = np.maximum(1.0 - (k - 1.0) / self.n, 1e-12)
        return 2.0 * k * t * t / (shrink * self.range**2) / math.log(10.0)

    def joined(self, count_decades: np.ndarray, k: np.ndarray, summed: np.ndarray) -> np.ndarray:
        """The count's tail (``count_decades``) joined with its frames' gain tail: Fisher's, less
        the decades of the choice; never below the count's own, and 0 where that is 0 (a plane's
        corners, which the counts do not score)."""
        gain = self.scores(k, summed)
        count_decades = np.asarray(count_decades, np.float64)
        joined = np.where((gain > 0) & (count_decades > 0), fisher_decades(count_decades, gain) - CHOICE_DECADES, 0.0)
        return np.maximum(count_decades, joined)
