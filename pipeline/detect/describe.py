"""Each defect in words: the evidence that decided its class, for defects.csv and the report."""

from __future__ import annotations

import math
import time

from ..defect import Defect
from ..kinds import BY_CODE
from .candidates import Candidates


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
        detail = (f"{what}: beyond its neighbours' range, above in {int(c.k_hi[i])} and below in "
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
    rate = float(c.rate[i]) if c.rate is not None and rate_unit else math.nan
    since = time.strftime("%Y-%m-%d", time.gmtime(onset * 86400)) if onset is not None else ""
    return Defect(
        x=int(c.x[i]), y=int(c.y[i]), channel=int(c.channel[i]), kind=kind, mean=mu, std=sd,
        score=float(c.score[i]), color=str(c.color[i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c.rmean[i]), dark_rate=rate, since=since, cluster=cluster, detail=detail,
    )
