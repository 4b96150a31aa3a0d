"""Each defect in words: the evidence that decided its class, for defects.csv and the report."""

from __future__ import annotations

import math
import time

from ..defect import Defect
from ..kinds import BY_CODE
from .candidates import Candidates

# what a report the range counts made says (``stats.noise_bars``: above or below all 4 neighbours,
# by 3 sigmas of the frame's residual noise around it)
BY_COUNTS = "beyond its neighbours and the frame's noise"


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
        detail = (f"{what}: {BY_COUNTS}, above in {int(c.k_hi[i])} and below in "
                  f"{int(c.k_lo[i])} of {n} frames (-log10 p {float(c.score[i]):.1f}); "
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
    since = time.strftime("%Y-%m-%d", time.gmtime(onset * 86400)) if onset is not None else ""
    return Defect(
        x=int(c.x[i]), y=int(c.y[i]), channel=int(c.channel[i]), kind=kind, mean=mu, std=sd,
        score=float(c.score[i]), color=str(c.color[i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c.rmean[i]), dark_rate=rate, since=since, cluster=cluster, detail=detail,
    )


def describe_line(line, stats, frames=None) -> Defect:
    """A partial column or row (``lines.Line``) as one record: its first sensel and length, its
    mean value against its neighbours' (the parallel lines of its colour on either side), and
    its dark rate (the exposure fit of its sensels' mean, where the stack has a physical one)."""
    import numpy as np

    ys, xs = line.sensor_cells()
    step = line.plane.step
    channel = line.plane.channel
    value = stats.mean[0][ys, xs] if stats.mean[0].ndim == 2 else stats.mean[0][ys, xs, channel]
    sides = []
    for d in (-step, step):
        ny, nx = (ys, xs + d) if line.vertical else (ys + d, xs)
        inside = (ny >= 0) & (ny < stats.pixel_shape[0]) & (nx >= 0) & (nx < stats.pixel_shape[1])
        if inside.any():
            sides.append(stats.mean[0][ny[inside], nx[inside]] if stats.mean[0].ndim == 2
                         else stats.mean[0][ny[inside], nx[inside], channel])
    ref = float(np.mean(np.concatenate(sides))) if sides else math.nan
    mu = float(np.mean(value))
    # along the line, a sensel's residual sets its excess against two neighbours that share it:
    # it reads half the line's excess (its rate too)
    share = 2.0
    rate = math.nan
    if frames is not None and all(k in stats.extra for k in ("xr", "excluded")):
        from ..stats.fit import fit_exposure
        from ..stats.model import EXPOSURE_SUMS

        sums = {k: stats.extra[k][ys, xs] for k in EXPOSURE_SUMS}
        fit = fit_exposure(stats.n, stats.mean[1][ys, xs], stats.m2[1][ys, xs], sums, frames)
        rate = share * float(np.nanmean(fit.rate)) if np.isfinite(fit.rate).any() else math.nan
    way = "brighter" if line.sign > 0 else "darker"
    what = "rising with exposure" if line.source == "dark_current" else way
    detail = (f"{line.kind}: {line.length} sensels of one colour {what} together (z {line.z:+.1f}, "
              f"{line.mean_z:.1f} per sensel); mean {mu:.4g} vs the lines beside it {ref:.4g}")
    if math.isfinite(rate):
        detail += f", dark current {rate:.4g} DN/s at ISO 100"
    return Defect(
        x=int(xs[0]), y=int(ys[0]), channel=0 if stats.mean[0].ndim == 2 else channel, kind=line.kind, mean=mu,
        std=float(np.sqrt(np.mean(stats.m2[0][ys, xs]) / stats.n)) if stats.mean[0].ndim == 2 else math.nan,
        score=float(line.z), color=line.plane.color, neighbour_mean=ref, residual_mean=share * float(np.mean(
            stats.mean[1][ys, xs] if stats.mean[0].ndim == 2 else stats.mean[1][ys, xs, channel])),
        dark_rate=rate, length=line.length, detail=detail)
