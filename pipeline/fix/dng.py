"""The map as a DNG's own FixBadPixelsList opcode, for Adobe (Lightroom, ACR) and darktable.

Our grid is LibRaw's visible area; the opcode works on stage 1, the whole stored raw with its
margins, so every coordinate moves by LibRaw's top and left margin of the file. For a DNG that
is the ActiveArea's origin where it is even; LibRaw moves an odd one in to the next even row or
column (measured with LibRaw 0.22), so the margins are taken from LibRaw, never from the tag, and
a map whose recorded margins are not this file's is refused. BayerPhase follows the DNG SDK's
numbering (``opcodes.bayer_phase``: 0 GRBG, 1 RGGB, 2 BGGR, 3 GBRG at stage 1's origin).
Sensels are points; a partial column or row is a rectangle, bottom and right exclusive. In a
mosaic a line is one colour, every other sensel of the column: its rectangle also covers the
sensels of the other colour between them, which the SDK then interpolates too (a one-sensel-
wide strip that is replaced from both sides, at no visible cost).
"""

from __future__ import annotations

from pathlib import Path

from ..defect import Defect
from ..outputs.text import sensels
from .copies import CopyError
from .defect_map import DefectMap
from .dng_copy import raw_ifd, write_dng_with_opcode
from .opcodes import FixBadPixelsList


class DngError(CopyError):
    """Why a raw file gets no opcode copy."""


def copy_dng(src: Path, dst: Path, defects: list[Defect], defect_map: DefectMap, margins: tuple[int, ...]) -> str:
    """``dst``: ``src`` with the defects as a FixBadPixelsList opcode in its OpcodeList1.
    ``margins``: LibRaw's (top, left, raw height, raw width) of this file (``Header.raw_margins``)."""
    layout = defect_map.meta.layout
    if src.suffix.lower() != ".dng":
        raise DngError("only a DNG carries a bad pixel opcode: convert it with Adobe DNG Converter, "
                       "or use dcraw.badpixels with LibRaw, RawTherapee or dcraw")
    if not layout.mosaic:
        raise DngError("a linear DNG (no CFA): FixBadPixelsList is defined for CFA images only")
    if not layout.bayer2x2:
        raise DngError(f"a {len(layout.cfa or ())}x{len(layout.cfa or ())} CFA (X-Trans): FixBadPixelsList is "
                       "defined for 2x2 Bayer only, so no opcode is written; use dcraw.badpixels with LibRaw")
    ifd = raw_ifd(src)
    top, left = margins[0], margins[1]
    recorded = defect_map.meta.raw_margins
    if recorded and tuple(recorded[:2]) != (top, left):
        raise DngError(f"the map was read with raw margins top {recorded[0]}, left {recorded[1]} (LibRaw "
                       f"{defect_map.meta.libraw_version or '?'}), this file has {top}, {left}: its coordinates "
                       "would miss")
    points, rects = stage1(defects, defect_map.stride, top, left)
    try:
        op = FixBadPixelsList(ifd.bayer_phase(), points, rects)
        write_dng_with_opcode(src, dst, op)
    except ValueError as exc:
        raise DngError(str(exc)) from exc
    return (f"DNG with FixBadPixelsList in OpcodeList1: {len(points)} points, {len(rects)} rectangles "
            f"(stage 1: visible area + top {top}, left {left}); raw data byte-identical")


def stage1(defects: list[Defect], stride: int, top: int, left: int
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int, int, int]]]:
    """Points ``(row, col)`` and rectangles ``(top, left, bottom, right)`` in stage-1 coordinates."""
    lines = [d for d in defects if d.kind in ("column", "row") and d.length > 1]
    points = sorted({(d.y + top, d.x + left) for d in sensels([d for d in defects if d not in lines], stride)})
    rects = set()
    for d in lines:
        span = stride * (d.length - 1) + 1
        height, width = (span, 1) if d.kind == "column" else (1, span)
        rects.add((d.y + top, d.x + left, d.y + top + height, d.x + left + width))
    return points, sorted(rects)
