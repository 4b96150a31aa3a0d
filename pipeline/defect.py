"""The defect record: one row of defects.csv, and what exports and the report consume."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from typing import Any

from .kinds import KINDS, kind

__all__ = ["COLUMNS", "KINDS", "Defect", "read_csv", "write_csv"]


@dataclass(frozen=True)
class Defect:
    """One defective (sub)pixel, reported once at its peak.

    x is the column and y the row, 0-based, in the stored pixel grid (never rotated).
    ``channel`` indexes the last axis of an RGB image (0 for grayscale and raw); ``color``
    names it ('R', 'G', 'B', 'L', or the CFA colour of a raw sensel).
    ``mean``/``std`` are the pixel's own value statistics over the stack;
    ``score`` is the robust z-score that made it a defect (larger is stronger);
    ``dark_rate`` its dark current above its neighbours', DN/s at ISO 100 (NaN where the stack
    has no exposure fit); ``since`` the capture date (YYYY-MM-DD, UTC) from which it shows, empty
    when it was there from the first frame; ``length`` 1 for a sensel, the number of sensels of
    a ``column`` or ``row`` (which starts at x, y); ``cluster`` the id it shares with the
    defects adjacent to it (0: none); ``detail`` is a short human-readable piece of evidence.
    """

    x: int
    y: int
    channel: int
    kind: str
    mean: float
    std: float
    score: float
    color: str = ""
    neighbour_mean: float = float("nan")
    neighbour_std: float = float("nan")
    residual_mean: float = float("nan")
    dark_rate: float = float("nan")
    since: str = ""
    length: int = 1
    cluster: int = 0
    detail: str = ""

    def __post_init__(self) -> None:
        kind(self.kind)  # raises for a name the kinds table does not know


COLUMNS = tuple(f.name for f in fields(Defect))


def write_csv(defects: list[Defect], path: Any) -> None:
    """Write defects sorted by descending score (header: COLUMNS), whole or not at all."""
    from .state import atomic

    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    for d in sorted(defects, key=lambda d: -d.score):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in asdict(d).items()})
    atomic.write_text(path, text.getvalue())


def read_csv(path: Any) -> list[Defect]:
    """Read defects.csv back into records (a local path, or an fsspec URL's: ``state.place``)."""
    from .state.place import folder

    types = {f.name: f.type for f in fields(Defect)}
    out = []
    with folder(path).open(newline="") as fh:
        for row in csv.DictReader(fh):
            conv: dict[str, Any] = {}
            for k, v in row.items():
                t = types.get(k)
                conv[k] = int(v) if t in ("int", int) else float(v) if t in ("float", float) else v
            out.append(Defect(**conv))
    return out
