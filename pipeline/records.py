"""Records that cross the stages: what became of each file and why, and what is known of a stack.

They are typed here once, so that discovery, the read tasks, the checkpoints, files.csv and
the report agree on one shape (a NamedTuple: it stays a plain tuple in JSON and in dask's
messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .layout import SensorLayout

USED, SKIPPED = "used", "skipped"


class FileStatus(NamedTuple):
    """One row of files.csv: a file, ``used`` or ``skipped``, and the reason (empty when used)."""

    path: str
    status: str
    reason: str = ""

    @property
    def used(self) -> bool:
        return self.status == USED

    @classmethod
    def ok(cls, path: str) -> FileStatus:
        return cls(path, USED, "")

    @classmethod
    def skip(cls, path: str, reason: str) -> FileStatus:
        return cls(path, SKIPPED, reason)


def failure_reason(exc: BaseException) -> str:
    """One line a user can act on, for a file that could not be read or decoded."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"cannot decode: {text[:200]}"


@dataclass(frozen=True)
class StackMeta:
    """What is known of a stack besides its statistics: the sensor, its layout and levels, and
    where the numbers came from. Saved in stats.zarr's attrs (``to_attrs``; the names there
    predate this class and stay) and shown in the report.
    """

    dtype: str
    layout: SensorLayout = SensorLayout()
    raw: bool = False
    make: str = ""
    model: str = ""
    serial: str = ""
    black_level: tuple[float, ...] = ()
    white_level: float | None = None
    group: str = ""
    version: str = ""
    created: str = ""

    @property
    def camera(self) -> str:
        return " ".join(p for p in (self.make, self.model) if p)

    def to_attrs(self) -> dict:
        layout = self.layout.to_attrs()
        return {"dtype": self.dtype, "raw": self.raw, "make": self.make, "model": self.model, "serial": self.serial,
                "cfa_pattern": layout["cfa_pattern"], "color_desc": layout["color_desc"],
                "black_level": list(self.black_level), "white_level": self.white_level, "group": self.group,
                "neighbour_stride": layout["neighbour_stride"], "hotpixels_version": self.version,
                "created": self.created}

    @classmethod
    def from_attrs(cls, attrs: dict) -> StackMeta:
        white = attrs.get("white_level")
        return cls(dtype=str(attrs.get("dtype", "")), layout=SensorLayout.from_attrs(attrs), raw=bool(attrs.get("raw")),
                   make=str(attrs.get("make") or ""), model=str(attrs.get("model") or ""),
                   serial=str(attrs.get("serial") or ""),
                   black_level=tuple(float(b) for b in attrs.get("black_level") or ()),
                   white_level=None if white is None else float(white), group=str(attrs.get("group") or ""),
                   version=str(attrs.get("hotpixels_version") or ""), created=str(attrs.get("created") or ""))
