"""Bands: detection works on row bands of the statistics, each with the halo rows its criteria
need, so that a band gives exactly the numbers of the whole sensor for its own rows.

A band's core rows start on a block boundary of every plane (the local scales are per block,
see ``scale.py``), and its halo reaches as far as the widest neighbourhood a criterion reads
(the local medians, plus one row for the residual's own neighbours, plus one for the ring test
of those). Planes are addressed in plane coordinates throughout; only the arrays are the band's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..stats import PixelStats
from .filters import WINDOW
from .planes import Plane
from .scale import block_size

if TYPE_CHECKING:
    from .exposure import FitRows


def halo_rows(spacing: int) -> int:
    """Plane rows a band needs beyond its core: the local medians' reach, one row for the 4
    neighbours of the residual variance, three more for the ring removal (``rings.ring_rows``)."""
    return (WINDOW // 2) * spacing + 4


@dataclass(frozen=True)
class Band:
    """Sensor rows ``y0:y1`` of the statistics (the core), held with halo rows ``top:bottom``
    (``stats`` holds those rows only) of a sensor ``height`` rows high."""

    y0: int
    y1: int
    top: int
    bottom: int
    height: int
    stats: PixelStats

    def view(self, plane: Plane) -> PlaneView:
        """This band's rows of one plane."""
        width = self.stats.pixel_shape[1]
        h, w = plane.size(self.height, width)
        step = plane.step
        return PlaneView(
            plane=plane, height=h, width=w, top=self.top // step, y0=self.y0 // step,
            y1=h if self.y1 >= self.height else self.y1 // step, n=int(self.stats.n),
            value_mean=plane.select(self.stats.mean[0]), value_m2=plane.select(self.stats.m2[0]),
            res_mean=plane.select(self.stats.mean[1]), res_m2=plane.select(self.stats.m2[1]),
            above=None if self.stats.counts is None else plane.select(self.stats.counts[0]),
            below=None if self.stats.counts is None else plane.select(self.stats.counts[1]),
            extra={k: plane.select(v) for k, v in self.stats.extra.items()})


@dataclass(frozen=True)
class PlaneView:
    """A band of one plane: arrays of plane rows ``top`` .. (held), core rows ``y0:y1``, of a
    plane ``height`` x ``width``."""

    plane: Plane
    height: int
    width: int
    top: int
    y0: int
    y1: int
    n: int
    value_mean: np.ndarray
    value_m2: np.ndarray
    res_mean: np.ndarray
    res_m2: np.ndarray
    above: np.ndarray | None
    below: np.ndarray | None
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # the physics model's sums (``stats.model``)
    fit: FitRows | None = None  # the exposure fit of the held rows, where the stack has one (``exposure.py``)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bottom(self) -> int:
        return self.top + len(self.value_m2)

    def to_image(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Plane coordinates -> the sensor's (rows, columns)."""
        p = self.plane
        return p.y0 + p.step * ys, p.x0 + p.step * xs


def band_rows(pixel_shape: tuple[int, ...], planes: list[Plane], halo: int,
              max_values: int | None = None) -> list[tuple[int, int, int, int]]:
    """(y0, y1, top, bottom) sensor rows of the bands that cover a sensor: as many as
    ``max_values`` values each would need (None: one band), of even size, so a count chosen for
    the worker threads (``engine.detect.even_bands``) is the count made; a band may pass
    ``max_values`` by up to two block rows (whole block rows are shared out as evenly as they go,
    and the last band takes the rows after the last whole one). Cores start on every plane's
    block boundary."""
    height = pixel_shape[0]
    row_values = int(np.prod(pixel_shape[1:]))
    step = planes[0].step
    plane_rows = [p.size(height, pixel_shape[1])[0] for p in planes]
    block = min(block_size((rows, 1))[0] for rows in plane_rows)
    if max_values is None or any(rows < block_size((rows, 1))[0] * 2 for rows in plane_rows):
        cuts = [0, height]
    else:
        align = step * block
        units = max(1, height // align)  # whole block rows; the last band takes the rest
        bands = min(units, max(1, -(-height * row_values // max(1, max_values))))
        cuts = [round(k * units / bands) * align for k in range(bands)] + [height]
    out = []
    for y0, y1 in zip(cuts[:-1], cuts[1:]):
        top = max(0, y0 - step * halo)
        bottom = min(height, y1 + step * halo)
        out.append((y0, y1, top, bottom))
    return out


def band_of(stats: PixelStats, y0: int, y1: int, top: int, bottom: int) -> Band:
    """The band (y0, y1, top, bottom) of whole-sensor statistics (views, no copy)."""
    return Band(y0, y1, top, bottom, stats.pixel_shape[0], stats.rows(top, bottom))
