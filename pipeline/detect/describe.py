"""Each defect in words: the evidence that decided its class, for defects.csv and the report."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..defect import Defect
from ..kinds import BY_CODE
from ..stats import PixelStats
from ..stats.model import STRONG_BARS
from ..stats.noise_bars import BAR_SIGMAS
from .candidates import MODEL_COLUMNS, Candidates

STRONG_SIGMAS = BAR_SIGMAS * STRONG_BARS
# what a report the range counts made says (``stats.noise_bars``: above or below all 4 neighbours,
# by 3 sigmas of the frame's residual noise around it)
BY_COUNTS = "beyond its neighbours and the frame's noise"
# a report by the counts whose frames beyond were this much higher gains than the stack's says so
HIGH_GAINS_Z = 2.0


def describe(c: Candidates, i: int, n: int, onset: int | None = None, cluster: int = 0,
             rate_unit: str = "DN/s") -> Defect:
    """One record (of stats over ``n`` frames), with the evidence that decided its class in words;
    ``onset``: the capture day it appeared (days since 1970), None when there from the start;
    ``rate_unit``: "DN/s" where the exposure fit is physical, "" where a stand-in factor was used."""
    row = BY_CODE[int(c.kind[i])]
    kind = row.name
    mu, ref = float(c.mean[i]), float(c.ref_mean[i])
    sd, ref_sd = float(c.std[i]), float(c.ref_std[i])
    rank = int(c.rank[i])
    if c.by_counts is not None and c.by_counts[i]:
        what = row.evidence
        detail = (f"{what}: {BY_COUNTS}, above in {int(c.k_hi[i])}{_strong(c.k_strong_hi, i)} and below in "
                  f"{int(c.k_lo[i])}{_strong(c.k_strong_lo, i)} of {n} frames "
                  f"(-log10 p {float(c.score[i]):.1f}{_high_gains(c.z_gain, i)}); "
                  f"mean {mu:.4g} vs neighbours {ref:.4g}, "
                  f"residual std {float(c.rstd[i]):.3g} vs {float(c.ref_rstd[i]):.3g}")
    elif rank == 0:
        what = "no response" if kind == "dead" else f"stuck near {mu:.4g}"
        detail = f"{what}: std {sd:.3g} vs neighbours {ref_sd:.3g} (z {c.z_var[i]:+.1f}); mean {mu:.4g} vs {ref:.4g}"
    elif rank == 1 and c.z_rate is not None and kind == "hot" and c.z_rate[i] >= abs(c.z_level[i]):
        rate = float(c.rate[i])
        what = (f"dark current: {rate:.4g} DN/s at ISO 100 above its neighbours" if rate_unit
                else "dark current: rises with the frames' dark level")
        detail = (f"{what} (z {float(c.z_rate[i]):+.1f}); mean {mu:.4g} vs neighbours {ref:.4g}, "
                  f"offset {float(c.offset[i]):+.3g}")
    elif rank == 1:
        detail = (f"{row.evidence}: mean {mu:.4g} vs neighbours {ref:.4g}; "
                  f"residual {float(c.rho[i]):+.3g}/frame (z {c.z_level[i]:+.1f})")
    else:
        detail = (f"{row.evidence}: residual std {float(c.rstd[i]):.3g} vs neighbours {float(c.ref_rstd[i]):.3g} "
                  f"(z {c.z_noise[i]:+.1f}); mean {mu:.4g} vs {ref:.4g}")
    # a stuck or dead sensel does not respond: its "rate" would be its neighbours' dark current, negated
    responds = kind not in ("stuck", "dead")
    rate = float(c.rate[i]) if c.rate is not None and rate_unit and responds else math.nan
    if c.rate_floor is not None and c.rate_floor[i] and rate_unit:
        clipped = int(c.model[i][MODEL_COLUMNS.index("excluded")])
        detail += (f"; dark rate at least {rate:.4g} {rate_unit}, which the {clipped} frames it clipped at the "
                   f"white level in prove (the fit of its other frames gave less)")
    since = time.strftime("%Y-%m-%d", time.gmtime(onset * 86400)) if onset is not None else ""
    return Defect(
        x=int(c.x[i]), y=int(c.y[i]), channel=int(c.channel[i]), kind=kind, mean=mu, std=sd,
        score=float(c.score[i]), color=str(c.color[i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c.rmean[i]), dark_rate=rate, since=since, cluster=cluster, detail=detail,
    )


def _strong(counts, i: int) -> str:
    """How many of a side's frames beyond the range were beyond by 9 sigmas too, where any were."""
    k = 0 if counts is None else int(counts[i])
    return f" ({k} by {STRONG_SIGMAS} sigmas)" if k else ""


def _high_gains(z_gain, i: int) -> str:
    """That those frames were the stack's high gains, where they were: the p of the side that
    holds most of them is joined with their gains' (``criteria.gain_tail``), and may be more than
    the count alone says."""
    if z_gain is None or not z_gain[i] >= HIGH_GAINS_Z:
        return ""
    return f"; at high gains, z {float(z_gain[i]):+.1f}"


@dataclass
class LineSample:
    """What describing a line reads of the statistics: at its sensels (in order along it), the
    value's and the residual's mean and M2 and the exposure sums; the value's mean on the
    parallel lines beside it (``sides``: before, after; the sensels inside the sensor)."""

    n: int
    channel: int | None  # the channel of an (H, W, C) sensor, None for one value per sensel
    value: np.ndarray
    value_m2: np.ndarray
    res_mean: np.ndarray
    res_m2: np.ndarray
    sums: dict[str, np.ndarray]
    sides: tuple[np.ndarray, np.ndarray]

    @classmethod
    def join(cls, parts: list[LineSample]) -> LineSample:
        """One sample from the parts of it that bands hold, in row order."""
        first = parts[0]
        cat = np.concatenate
        return cls(first.n, first.channel, cat([p.value for p in parts]), cat([p.value_m2 for p in parts]),
                   cat([p.res_mean for p in parts]), cat([p.res_m2 for p in parts]),
                   {k: cat([p.sums[k] for p in parts]) for k in first.sums},
                   (cat([p.sides[0] for p in parts]), cat([p.sides[1] for p in parts])))


def line_sample(stats: PixelStats, line, top: int = 0, rows: tuple[int, int] | None = None,
                height: int | None = None) -> LineSample:
    """A line's ``LineSample`` from statistics of sensor rows ``top``.. (the whole sensor by
    default): only its sensels in sensor rows ``rows`` (y0, y1), where a band holds them; the
    sensor is ``height`` rows high."""
    from ..stats.model import EXPOSURE_SUMS

    ys, xs = line.sensor_cells()
    height = stats.pixel_shape[0] + top if height is None else height
    if rows is not None:
        keep = (ys >= rows[0]) & (ys < rows[1])
        ys, xs = ys[keep], xs[keep]
    channel = None if stats.mean[0].ndim == 2 else line.plane.channel

    def pick(arr, yy, xx):
        return arr[yy - top, xx] if channel is None else arr[yy - top, xx, channel]

    step = line.plane.step
    sides = []
    for d in (-step, step):
        ny, nx = (ys, xs + d) if line.vertical else (ys + d, xs)
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < stats.pixel_shape[1])
        sides.append(pick(stats.mean[0], ny[inside], nx[inside]))
    sums = {k: stats.extra[k][ys - top, xs] for k in EXPOSURE_SUMS if k in stats.extra} if channel is None else {}
    return LineSample(stats.n, channel, pick(stats.mean[0], ys, xs), pick(stats.m2[0], ys, xs),
                      pick(stats.mean[1], ys, xs), pick(stats.m2[1], ys, xs), sums, (sides[0], sides[1]))


def describe_line(line, stats: PixelStats | LineSample, frames=None) -> Defect:
    """A partial column or row (``lines.Line``) as one record: its first sensel and length, its
    mean value against its neighbours' (the parallel lines of its colour on either side), and
    its dark rate (the exposure fit of its sensels' mean, where the stack has a physical one).
    ``stats``: the whole sensor's, or the line's ``LineSample``."""
    sample = stats if isinstance(stats, LineSample) else line_sample(stats, line)
    ys, xs = line.sensor_cells()
    sides = [s for s in sample.sides if len(s)]
    ref = float(np.mean(np.concatenate(sides))) if sides else math.nan
    mu = float(np.mean(sample.value))
    # along the line, a sensel's residual sets its excess against two neighbours that share it:
    # it reads half the line's excess (its rate too)
    share = 2.0
    rate = math.nan
    if frames is not None and all(k in sample.sums for k in ("xr", "excluded")):
        from ..stats.fit import fit_exposure
        from ..stats.model import EXPOSURE_SUMS

        sums = {k: sample.sums[k] for k in EXPOSURE_SUMS}
        fit = fit_exposure(sample.n, sample.res_mean, sample.res_m2, sums, frames)
        rate = share * float(np.nanmean(fit.rate)) if np.isfinite(fit.rate).any() else math.nan
    way = "brighter" if line.sign > 0 else "darker"
    what = "rising with exposure" if line.source == "dark_current" else way
    detail = (f"{line.kind}: {line.length} sensels of one colour {what} together (z {line.z:+.1f}, "
              f"{line.mean_z:.1f} per sensel); mean {mu:.4g} vs the lines beside it {ref:.4g}")
    if math.isfinite(rate):
        detail += f", dark current {rate:.4g} DN/s at ISO 100"
    one = sample.channel is None
    return Defect(
        x=int(xs[0]), y=int(ys[0]), channel=0 if one else line.plane.channel, kind=line.kind, mean=mu,
        std=float(np.sqrt(np.mean(sample.value_m2) / sample.n)) if one else math.nan,
        score=float(line.z), color=line.plane.color, neighbour_mean=ref,
        residual_mean=share * float(np.mean(sample.res_mean)), dark_rate=rate, length=line.length, detail=detail)
