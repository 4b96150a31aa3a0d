"""The sensor layout: which stored values are which colour, and who a sensel's neighbours are.

A square CFA pattern of any period is scanned: the statistics compare each sensel with the
sensels one period away (2 in Bayer, 6 in Fujifilm's X-Trans), which are its own colour.

One source of truth for the whole flow. It comes from the file (a raw file's CFA pattern) or
from the user (``--cfa RGGB`` for a Bayer mosaic saved as plain gray 16-bit PNG or TIFF, as
machine-vision and scientific cameras write them). The neighbour stride of the statistics,
grouping, the merge check, detection's same-colour planes, the CFA colour in defects.csv and
the report all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# the four 2x2 Bayer layouts a user may name, as their colours in reading order
BAYER_NAMES = ("RGGB", "BGGR", "GRBG", "GBRG")


class LayoutError(ValueError):
    """A layout that cannot be used (a pattern that is not a 2x2 Bayer mosaic, a wrong name)."""


@dataclass(frozen=True)
class SensorLayout:
    """How the stored grid maps to colours.

    ``cfa``: the colour filter pattern, as indices into ``colors`` (rawpy's ``raw_pattern`` and
    ``color_desc``), or None when every stored value of a channel is one colour (RGB or gray
    images). ``colors``: the names of the colour indices (a CFA's "RGBG"), or of the channels of
    an RGB image ("RGB"; "L" for gray).
    """

    cfa: tuple[tuple[int, ...], ...] | None = None
    colors: str = ""

    @classmethod
    def bayer(cls, name: str) -> SensorLayout:
        """A 2x2 Bayer layout from its name ("RGGB", "bggr", ...), for ``--cfa``."""
        key = name.strip().upper()
        if key not in BAYER_NAMES:
            raise LayoutError(f"unknown CFA pattern {name!r}; expected one of {', '.join(BAYER_NAMES)}")
        index = {"R": 0, "G": 1, "B": 2}
        return cls(((index[key[0]], index[key[1]]), (index[key[2]], index[key[3]])), "RGB")

    @classmethod
    def of_file(cls, cfa, colors: str) -> SensorLayout:
        """The layout a file declares (``cfa`` None for RGB or gray)."""
        pattern = None if cfa is None else tuple(tuple(int(v) for v in row) for row in cfa)
        return cls(pattern, colors or "")

    @property
    def mosaic(self) -> bool:
        """A CFA mosaic: one colour per stored value, neighbours of the same colour 2 apart."""
        return self.cfa is not None

    @property
    def bayer2x2(self) -> bool:
        return self.cfa is not None and len(self.cfa) == 2 and all(len(row) == 2 for row in self.cfa)

    @property
    def period(self) -> int:
        """The side of a square CFA pattern (2 for Bayer, 6 for X-Trans); 0 for another shape,
        1 when not a mosaic."""
        if self.cfa is None:
            return 1
        side = len(self.cfa)
        return side if side and all(len(row) == side for row in self.cfa) else 0

    @property
    def stride(self) -> int:
        """Distance to the same-colour neighbours of the statistics (up, down, left, right): 2 in a
        2x2 Bayer mosaic; the pattern's period in another square one (6 in X-Trans, where the
        nearer sensels of a colour sit at irregular offsets, and at 6 every sensel meets its own
        colour); 1 when not a mosaic."""
        return max(1, self.period)

    @property
    def name(self) -> str:
        """'RGGB' for a Bayer layout, 'mosaic 6x6' for another pattern, '' when not a mosaic."""
        if self.cfa is None:
            return ""
        if self.bayer2x2:
            return "".join(self.color(v) for row in self.cfa for v in row)
        return f"mosaic {len(self.cfa)}x{len(self.cfa[0])}"

    def color(self, index: int) -> str:
        """The name of colour ``index`` ('G'; the index itself when ``colors`` does not name it)."""
        return self.colors[index] if 0 <= index < len(self.colors) else str(index)

    def refusal(self) -> str:
        """Why a scan cannot handle this layout correctly, or '' if it can: a pattern that is not
        square repeats at no one distance in both directions."""
        if self.cfa is not None and not self.period:
            size = f"{len(self.cfa)}x{len(self.cfa[0])} " if self.cfa and self.cfa[0] else ""
            return (f"unsupported colour filter: a {size}pattern that is not square; same-colour neighbours "
                    f"would be wrong, so it is refused")
        return ""

    def to_attrs(self) -> dict:
        """The stats.zarr attrs that record the layout (their names predate this class)."""
        return {"cfa_pattern": [list(r) for r in self.cfa] if self.cfa else None, "color_desc": self.colors,
                "neighbour_stride": self.stride}

    @classmethod
    def from_attrs(cls, attrs: dict) -> SensorLayout:
        return cls.of_file(attrs.get("cfa_pattern") or None, attrs.get("color_desc") or "")
