"""dcraw / LibRaw ``-P`` bad pixel file (``dcraw.badpixels``).

dcraw ``bad_pixels()`` (also in LibRaw): ``fgets(line, 128)``, cut at ``'#'``, then
``sscanf("%d %d %d", &col, &row, &time)``; lines that do not give 3 ints are skipped and a
pixel is fixed when ``time <= image timestamp`` (0 = always). The time is the Unix time of a
defect's onset (``since``: 00:00 UTC of the day it appeared), so that frames taken before it are
left alone. Comment lines are kept well under 127 characters so that fgets never splits one into
a bogus second line. Coordinates are the raw visible area, as dcraw, LibRaw and rawpy use it:
our stored grid. Partial columns and rows are written sensel by sensel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..defect import Defect
from ..state import place
from .registry import ExportContext, register
from .text import DCRAW_LINE, atomic_write_lines, check_xy, comment, distinct_xy, onset_time


def write_dcraw(
    defects: Sequence[Defect],
    path: place.Where,
    header_lines: Iterable[str] = (),
    *,
    shape: Sequence[int] | None = None,
) -> place.Folder:
    """dcraw/LibRaw ``-P`` bad pixel file: one ``col row time`` line per distinct pixel.

    The third field is dcraw's timestamp: the defect's onset (``onset_time``), 0 when it was
    there from the first frame, the earliest where channels disagree. dcraw fixes these only for
    CFA (raw) images, at visible-area coordinates, which is our stored grid.

    Parameters
    ----------
    defects : sequence of Defect
        Duplicates of the same (x, y) in several channels collapse to one line.
    path : path-like
        Output file (``dcraw.badpixels`` by the contract).
    header_lines : iterable of str
        Extra ``#`` comments (truncated, made printable ASCII).
    shape : (H, W[, C]), optional
        Image shape: written in the header and used to reject out-of-range defects.
    """
    pts = distinct_xy(defects)
    since: dict[tuple[int, int], int] = {}
    for d in defects:
        key = (int(d.x), int(d.y))
        since[key] = min(since.get(key, onset_time(d)), onset_time(d))
    h, w = (int(shape[0]), int(shape[1])) if shape is not None else (None, None)
    for x, y in pts:
        check_xy(x, y, w, h)
    head = [
        "hotpixels bad pixel map for dcraw -P / LibRaw (bad_pixels)",
        "format: col row time; time 0 = bad in every image, else Unix time of onset",
    ]
    if shape is not None:
        head.append(f"image: {w} columns x {h} rows (stored grid; raw: visible area)")
    head.append(f"{len(pts)} pixels")
    head.extend(header_lines)
    lines = [comment(t, DCRAW_LINE) for t in head]
    lines += [f"{x} {y} {since[(x, y)]}" for x, y in pts]
    return atomic_write_lines(path, lines)


class Dcraw:
    name = "dcraw"
    what = "dcraw.badpixels for dcraw -P / LibRaw"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        header = [f"{len(ctx.defects)} defects from {ctx.n_frames} frames of {ctx.meta.group}"]
        if ctx.meta.raw and not ctx.meta.layout.mosaic:  # bad_pixels() begins: if (!filters) return;
            header += ["dcraw and LibRaw apply no map to a raw without a CFA (a linear DNG):",
                       "fix these pixels in the developed image instead"]
        return [write_dcraw(ctx.sensels(), ctx.out_dir / "dcraw.badpixels", header, shape=ctx.shape[:2])]


register(Dcraw())
