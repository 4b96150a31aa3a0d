"""Each defect in words: the evidence that decided its class, for defects.csv and the report."""

from __future__ import annotations

from ..defect import Defect
from ..kinds import BY_CODE
from .candidates import Candidates


def describe(c: Candidates, i: int, n: int) -> Defect:
    """One record (of stats over ``n`` frames), with the evidence that decided its class in words."""
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
    elif rank == 1:
        detail = (f"{row.evidence}: mean {mu:.4g} vs neighbours {ref:.4g}; "
                  f"residual {float(c.rho[i]):+.3g}/frame (z {c.z_level[i]:+.1f})")
    else:
        detail = (f"{row.evidence}: residual std {float(c.rstd[i]):.3g} vs neighbours {float(c.ref_rstd[i]):.3g} "
                  f"(z {c.z_noise[i]:+.1f}); mean {mu:.4g} vs {ref:.4g}")
    return Defect(
        x=int(c.x[i]), y=int(c.y[i]), channel=int(c.channel[i]), kind=kind, mean=mu, std=sd,
        score=float(c.score[i]), color=str(c.color[i]), neighbour_mean=ref, neighbour_std=ref_sd,
        residual_mean=float(c.rmean[i]), detail=detail,
    )
