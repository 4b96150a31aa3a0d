"""A scan's defect map as `fix` and `verify` apply it: which sensels are bad in a given frame.

The map is a result folder's defects.csv with the stack it came from (stats.zarr's attrs: the
sensor's shape, layout and camera). A defect with an onset (``since``) is bad only in frames
taken on or after that day, as dcraw's third column says; a frame without a capture time gets
only the defects that were there from the start, as dcraw does with a timestamp of 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..defect import Defect, read_csv
from ..io.header import Header
from ..outputs.text import onset_time, sensels
from ..records import StackMeta
from ..results import DEFECTS_NAME
from ..state import place
from ..state.store import STATS_NAME, read_meta, read_size, stats_location


@dataclass(frozen=True)
class DefectMap:
    defects: tuple[Defect, ...]  # as in defects.csv: a column or row is one record
    shape: tuple[int, ...]  # the stored grid (H, W[, C])
    meta: StackMeta

    @classmethod
    def load(cls, result_dir: place.Where) -> DefectMap:
        """The map of a scan's result folder; a FileNotFoundError names what is missing."""
        folder = place.folder(result_dir)
        for name, path in ((DEFECTS_NAME, folder / DEFECTS_NAME), (STATS_NAME, stats_location(folder))):
            if not path.exists():
                raise FileNotFoundError(f"{folder} is not a scan's result folder: it has no {name}")
        return cls(tuple(read_csv(folder / DEFECTS_NAME)), read_size(folder)[1], read_meta(folder))

    @property
    def stride(self) -> int:
        return self.meta.layout.stride

    def mismatch(self, header: Header) -> str:
        """Why the map does not describe this file's sensor, or '' when it does. A gray file that
        names no CFA takes the map's (the scan's ``--cfa``)."""
        if header.error:
            return header.error
        if tuple(header.shape) != tuple(self.shape):
            return (f"its {_size(header.shape)} grid is not the map's {_size(self.shape)} "
                    f"(the map is for {self.meta.camera or 'another sensor'})")
        declared = not header.raw and not self.meta.raw and header.layout.cfa is None and len(header.shape) == 2
        if not declared and (header.raw != self.meta.raw or header.layout.cfa != self.meta.layout.cfa):
            return "its colour layout is not the map's: " + _layout(header.raw, header.layout.cfa) + \
                " against " + _layout(self.meta.raw, self.meta.layout.cfa)
        return ""

    def in_frame(self, when: float | None) -> tuple[list[Defect], int]:
        """The defects bad in a frame taken at ``when`` (Unix seconds, None if unknown), and how
        many the map holds back because they appeared later (or the frame has no date)."""
        now, later = [], 0
        for d in self.defects:
            if not d.since or (when is not None and onset_time(d) <= when):
                now.append(d)
            else:
                later += 1
        return now, later

    def mask(self, defects: list[Defect]) -> np.ndarray:
        """(H, W) bool: the sensels of these defects (a line's every sensel, ``stride`` apart)."""
        height, width = self.shape[:2]
        bad = np.zeros((height, width), bool)
        for d in sensels(defects, self.stride):
            if 0 <= d.y < height and 0 <= d.x < width:
                bad[d.y, d.x] = True
        return bad


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in (shape[1], shape[0], *shape[2:])) if len(shape) >= 2 else str(shape)


def _layout(raw: bool, cfa) -> str:
    if cfa is None:
        return "a raw without CFA" if raw else "channels"
    return f"{'raw ' if raw else ''}CFA {len(cfa)}x{len(cfa[0])} {cfa}"
