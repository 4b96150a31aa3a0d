"""PixInsight CosmeticCorrection defect list (``pixinsight_defects.txt``).

What PixInsight reads: CosmeticCorrection's "Use Defect List" section loads a text file
(its *Load* button) and saves one (*Save*), in the form its Save button writes. Read from the
module's source in PixInsight's PCL (github.com/PixInsight/PCL at 0bb6378c, 2020-07;
``src/modules/processes/contrib/nvolkov/CosmeticCorrection/CosmeticCorrectionInterface.cpp``,
``CosmeticCorrectionInstance.cpp``):

- Save writes one defect per line: ``Col x`` or ``Row y`` for a whole column or row, ``Col x
  y0 y1`` or ``Row y x0 x1`` for a range of it, single spaces, nothing else.
- Load reads the file with ``File::ReadLines`` (empty lines dropped, lines trimmed), splits each
  line at every single space and takes *every* line as a defect: the first word ``Row`` makes a
  row, anything else a column; the second word is the address (``ToUInt``, which throws on what
  is not a number); more than two words make a range, read from the third and fourth. So the
  file can hold **no comment or header line** (``# ...`` would be a column with an address that
  is not a number: the load fails), no double space, and a range always has both ends.
- Execute fixes, for every item, ``y`` from ``min(begin, end)`` to ``max(begin, end)``
  *inclusive* (clipped to the image), each pixel replaced by the median of its 5x5 neighbourhood
  (9x9 at a step of 2 with the CFA option, same-colour sensels in a Bayer mosaic) without its
  own row and column, in every channel.

PixInsight's other ways to find hot pixels (a master dark with a sigma or level, auto-detect)
are statistical thresholds of its own that would not pick our sensels. The defect list is the
one input that fixes exactly a given set of pixels, and a range of one (``Col x y y``) is a
single sensel, so every defect is written to it: runs of adjacent defective sensels in one
column merge into one ``Col x y0 y1`` line, a whole column is ``Col x``; the sensels of a
``row`` defect run along their row (``Row y x0 x1``, ``Row y``). PixInsight then fixes exactly
our sensels and no other: a partial line of a mosaic (every other sensel, one colour) is its
sensels, not a range over the other colour's sensels between them.

Coordinates are the stored grid, as PixInsight shows the image: its images are top-down (row 0
at the top), its RAW module reads raw files through LibRaw (with "pure raw"/CFA output the
visible area, as dcraw and rawpy), and its FITS reader by default takes the first stored row as
the top row (``FITSOptions::bottomUp`` false). Apply the list to the raw CFA frames (before
debayering) with the CFA option checked; an X-Trans mosaic's same-colour sensels are not 2
apart, so there its median mixes colours.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..defect import Defect
from ..state import place
from .registry import ExportContext, register
from .text import atomic_write_lines, check_xy

NAME = "pixinsight_defects.txt"  # PixInsight's Load dialog filters on .txt


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct integers as inclusive runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for v in sorted(set(values)):
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def pixinsight_lines(defects: Sequence[Defect], shape: Sequence[int]) -> list[str]:
    """The defect list's lines for ``defects`` one sensel each (``ExportContext.sensels``):
    ``Col x [y0 y1]`` lines, then ``Row y [x0 x1]`` lines for the sensels of ``row`` defects,
    each range inclusive; the whole column or row without a range. A sensel where a row crosses
    another defect's column is in both lines (PixInsight fixes it twice, from the same
    neighbours: its median leaves out the sensel's own row and column)."""
    height, width = int(shape[0]), int(shape[1])
    by_column: dict[int, list[int]] = {}
    by_row: dict[int, list[int]] = {}
    for d in defects:
        x, y = int(d.x), int(d.y)
        check_xy(x, y, width, height)
        if d.kind == "row":
            by_row.setdefault(y, []).append(x)
        else:
            by_column.setdefault(x, []).append(y)
    lines = []
    for x in sorted(by_column):
        for y0, y1 in _runs(by_column[x]):
            lines.append(f"Col {x}" if (y0, y1) == (0, height - 1) else f"Col {x} {y0} {y1}")
    for y in sorted(by_row):
        for x0, x1 in _runs(by_row[y]):
            lines.append(f"Row {y}" if (x0, x1) == (0, width - 1) else f"Row {y} {x0} {x1}")
    return lines


def write_pixinsight(defects: Sequence[Defect], shape: Sequence[int], path: place.Where) -> place.Folder:
    """PixInsight CosmeticCorrection defect list: load it in CosmeticCorrection's "Use Defect
    List" section (Load), check CFA for raw CFA frames, and apply the process to the frames.

    Only defect lines, no comment (PixInsight's loader takes every line as a defect): an
    empty file when there is no defect.

    Parameters
    ----------
    defects : sequence of Defect
        One sensel each (lines expanded: ``ExportContext.sensels``); an RGB pixel bad in several
        channels is one site (PixInsight fixes it in every channel).
    shape : (H, W[, C])
        Image shape: whole columns and rows are written without a range; out-of-range defects
        are refused.
    path : path-like
        Output file (``pixinsight_defects.txt``).
    """
    return atomic_write_lines(path, pixinsight_lines(defects, shape))


class PixInsight:
    name = "pixinsight"
    what = "pixinsight_defects.txt for PixInsight's CosmeticCorrection (Use Defect List)"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        return [write_pixinsight(ctx.sensels(), ctx.shape[:2], ctx.out_dir / NAME)]


register(PixInsight())
