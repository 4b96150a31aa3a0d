"""A Bayer mosaic saved as plain gray, noticed from its values.

Machine-vision and scientific cameras save the raw mosaic as a gray PNG, TIFF or FITS with no
CFA tag. Scanned as gray, every sensel is compared with neighbours of other colours, and in lit
frames the colours' difference buries every defect (a real lit stack gave nothing at all). The
mosaic shows in one frame's values:

- adjacent sensels differ far more than sensels 2 apart (``ROUGHNESS_RATIO``): in a scene seen
  through one filter it is the other way round, farther neighbours differ more;
- the 4 phases of the 2x2 grid have different levels, and the two greens (a diagonal of the
  2x2) agree with each other far better than with the other two (``GREEN_SHARE``).

The diagonal says where green is: RGGB or BGGR (green on the anti-diagonal of the 2x2, at
(0, 1) and (1, 0)) against GRBG or GBRG. Red and blue cannot be told apart from the levels: which
is brighter depends on the light. Dark frames show no colour, so no pattern: they need none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# adjacent sensels must differ this many times more than sensels 2 apart (the median |residual|
# of the 4 neighbours at each distance)
ROUGHNESS_RATIO = 2.0
# the greens' difference must be under this share of the difference between the green and the
# other diagonal
GREEN_SHARE = 0.25
# the central crop looked at (a side, in sensels; even)
CROP = 1024


@dataclass(frozen=True)
class BayerSignature:
    """What one frame's values say: the phases' median levels ((0,0), (0,1), (1,0), (1,1)), the
    median |residual| against adjacent and 2-apart neighbours, and the patterns it fits (empty:
    no mosaic seen)."""

    phases: tuple[float, float, float, float]
    adjacent: float
    two_apart: float
    patterns: tuple[str, ...]

    @property
    def mosaic(self) -> bool:
        return bool(self.patterns)

    def describe(self) -> str:
        p = " ".join(f"{v:.0f}" for v in self.phases)
        return (f"the 2x2 phases' levels are {p}, and adjacent sensels differ {self.adjacent:.3g} against "
                f"{self.two_apart:.3g} for sensels 2 apart")


def _roughness(a: np.ndarray, step: int) -> float:
    """Median |4 v - its 4 neighbours at distance ``step``| / 4 over the interior."""
    s = step
    core = a[s:-s, s:-s]
    around = a[: -2 * s, s:-s] + a[2 * s :, s:-s] + a[s:-s, : -2 * s] + a[s:-s, 2 * s :]
    return float(np.median(np.abs(4 * core - around))) / 4


def signature(frame: np.ndarray) -> BayerSignature:
    """The Bayer signature of one gray frame (2D)."""
    h, w = frame.shape
    y0 = max(0, (h - CROP) // 2) & ~1  # even offsets keep the phases
    x0 = max(0, (w - CROP) // 2) & ~1
    a = frame[y0 : y0 + CROP, x0 : x0 + CROP].astype(np.float64)
    if min(a.shape) < 8:
        return BayerSignature((0.0,) * 4, 0.0, 0.0, ())
    phases = tuple(float(np.median(a[i::2, j::2])) for i in (0, 1) for j in (0, 1))
    adjacent, two_apart = _roughness(a, 1), _roughness(a, 2)
    patterns: tuple[str, ...] = ()
    if adjacent > ROUGHNESS_RATIO * max(two_apart, 1e-9):
        p00, p01, p10, p11 = phases
        anti = (abs(p01 - p10), abs((p01 + p10) / 2 - (p00 + p11) / 2))  # greens at (0,1), (1,0)
        main = (abs(p00 - p11), anti[1])
        if anti[0] < GREEN_SHARE * anti[1] and anti[0] <= main[0]:
            patterns = ("RGGB", "BGGR")
        elif main[0] < GREEN_SHARE * main[1]:
            patterns = ("GRBG", "GBRG")
    return BayerSignature(phases, adjacent, two_apart, patterns)  # type: ignore[arg-type]


def agreed(signatures: list[BayerSignature]) -> BayerSignature | None:
    """The mosaic the frames show, or None: the frames that show one must agree on its patterns,
    and be at least two (all of one or two frames). A frame that shows none abstains: a dark
    among lit frames shows no colour (adjacent sensels differ as sensels 2 apart do), while a
    mono scene makes adjacent sensels differ less, never 3x more."""
    shown = [s for s in signatures if s.mosaic]
    if len(shown) < min(2, len(signatures)) or not shown:
        return None
    first = shown[0]
    return first if all(s.patterns == first.patterns for s in shown) else None
