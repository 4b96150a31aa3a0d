"""Siril cosmetic-correction lists (``siril.lst``, and ``siril_rows.lst`` when there are whole rows).

What Siril reads (``apply_cosme_to_image`` in ``src/filters/cosmetic_correction.c``, used by
``cosme`` / ``cosme_cfa`` and by ``calibrate -cc=bpm``): lines starting with ``#`` are comments;
``P x y [H|C]`` fixes one pixel (H: the average of its 3x3 neighbours, C: their median);
``C x 0 [type]`` fixes the *whole* column x, every row and every colour (the image is turned
by 90 degrees and the column's pixels are replaced from the columns beside it; the second number
and the type are read and ignored: a column is always "hot"); ``L y 0 [type]`` the whole row y
the same way. There is no partial column or row: a partial one is written as P lines. Any other
line, an empty one included, is logged as a format error.

``calibrate -cc=bpm FILE`` (and the GUI's bad pixel map) first runs
``check_for_cosme_file_sanity`` (``src/core/preprocess.c``), which refuses the whole file unless
every line starts with ``"P "``, ``"C "`` or ``"#"``: it tests ``"C "`` twice and never
``"L "``, so an ``L`` line or a blank line makes it reject the map. Hence ``siril.lst`` holds
only ``#``, ``P`` and ``C`` lines and never a blank line, and whole rows go to a second list,
``siril_rows.lst`` (``L`` lines), for ``cosme``; ``siril.lst`` says so in its comments. Both
end in ``.lst``, as ``cosme`` wants. (Checked against Siril's git master of 2026-08,
github.com/lock042/siril at a5869d93: ``src/core/preprocess.c``, ``src/filters/cosmetic_correction.c``,
``src/opencv/opencv.cpp`` ``cvRotateImage``, ``src/core/command.c`` ``process_cosme``.)

Old Siril read with ``fgets(line, 63)``, so every line stays under 62 chars.

Siril's y axis (read this before changing ``flip_y``): Siril keeps images bottom-up in
memory because FITS is bottom-up, but the list file holds the row counted from the *top of
the image as Siril displays it*: ``find_hot`` writes ``y = ry - 1 - y_memory`` and ``cosme``
reads back ``y_memory = ry - 1 - y`` ("FITS are stored bottom to top"), for P and L lines alike.
Siril's raw (LibRaw), TIFF, PNG and JPEG loaders flip the rows into memory so that the image
displays upright, hence for those inputs Siril's list y equals our stored row y. Writing
``height - 1 - y`` would hit the mirror-image pixel. SER frames are stored top-down and Siril
flips them into memory the same way (``ser_read_frame`` ends with ``fits_flip_top_to_bottom``):
stored row y. A C line's x needs no conversion: ``cosme`` maps it to ``rx - 1 - x`` and its
90-degree turn (transpose, then flip about the x axis) maps that row back to column x.

FITS is the other case (``flip_y=True``): Siril reads a FITS file's rows as stored, whatever
its ``ROWORDER`` (a ``TOP-DOWN`` file shows upside down; Siril flips its Bayer pattern, not its
rows: ``get_bayer_pattern`` in ``demosaicing.c``), so its list y is ``height - 1 - y`` of our
stored row. The exporter takes that from the stack's ``file_format``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..defect import Defect
from ..kinds import kind
from ..state import place
from .registry import ExportContext, register
from .text import SIRIL_LINE, atomic_write_lines, check_xy, comment, sensels

ROWS_NAME = "siril_rows.lst"  # whole rows (L lines), which calibrate -cc=bpm refuses


def siril_type(d: Defect) -> str:
    """'H' (hot-like: replaced by Siril with the neighbour average) or 'C' (cold-like: median).

    The kinds table says which (``Kind.siril``: hot and noisy are hot-like, dead is cold-like);
    where it leaves it to the level (stuck), a sensel is hot-like when it sits above its
    neighbours (``mean > neighbour_mean``, else the sign of ``residual_mean``; with neither
    known it defaults to 'H', as Siril does for a bare ``P x y``).
    """
    fixed = kind(d.kind).siril
    if fixed:
        return fixed
    if not math.isnan(d.neighbour_mean) and not math.isnan(d.mean):
        return "H" if d.mean >= d.neighbour_mean else "C"
    if not math.isnan(d.residual_mean):
        return "H" if d.residual_mean >= 0 else "C"
    return "H"


def _whole(d: Defect, height: int, width: int | None, stride: int) -> bool:
    """Whether a column (row) defect covers its column's (row's) every sensel of its colour:
    from the first ``stride`` sensels to the last ``stride`` (a whole line of a mosaic is every
    other sensel of it)."""
    if d.kind == "column":
        last = d.y + (d.length - 1) * stride
        return d.y < stride and last >= height - stride
    if d.kind == "row" and width is not None:
        last = d.x + (d.length - 1) * stride
        return d.x < stride and last >= width - stride
    return False


def siril_lists(
    defects: Sequence[Defect],
    height: int,
    *,
    width: int | None = None,
    stride: int = 1,
    flip_y: bool = False,
    period: int = 2,
    rows_file: str = "",
) -> tuple[list[str], list[str]]:
    """The lines of ``siril.lst`` and of the whole-row list (empty: no whole row): see
    :func:`write_siril`. ``rows_file`` names the row list in the main list's comments; without
    it (or without ``width``) whole rows stay P lines in the main list."""
    height = int(height)
    columns: dict[int, Defect] = {}
    rows: dict[int, Defect] = {}
    singles: list[Defect] = []
    for d in defects:
        check_xy(int(d.x), int(d.y), width, height)
        if d.kind == "column" and _whole(d, height, width, stride):
            if d.x not in columns or d.score > columns[d.x].score:
                columns[int(d.x)] = d
        elif d.kind == "row" and rows_file and _whole(d, height, width, stride):
            if d.y not in rows or d.score > rows[d.y].score:
                rows[int(d.y)] = d
        else:
            singles.append(d)
    best: dict[tuple[int, int], Defect] = {}
    for d in sensels(singles, stride):
        key = (int(d.x), int(d.y))
        check_xy(key[0], key[1], width, height)
        if key[0] in columns:
            continue  # its whole column is fixed by a C line
        if key not in best or d.score > best[key].score:
            best[key] = d
    order = sorted(best, key=lambda p: (p[1], p[0]))
    convention = "y = height-1-row (FITS: Siril shows row 0 at the bottom)" if flip_y else \
        "y = row from top, as Siril shows it"
    lines = [
        comment("hotpixels list for Siril cosme / cosme_cfa and", SIRIL_LINE),
        comment("calibrate -cc=bpm", SIRIL_LINE),
        comment("P x y H|C: one pixel, H hot-like, C cold-like", SIRIL_LINE),
    ]
    if columns:
        lines.append(comment("C x 0 H: the whole column x, every row and colour", SIRIL_LINE))
    lines += [comment(convention, SIRIL_LINE),
              comment(f"height {height} rows; {len(order)} pixels, {len(columns)} columns", SIRIL_LINE)]
    if rows:
        lines += [comment(f"whole rows ({len(rows)}) are in {rows_file} as L lines:", SIRIL_LINE),
                  comment(f"apply it with cosme {rows_file} as well;", SIRIL_LINE),
                  comment("calibrate -cc=bpm refuses L lines", SIRIL_LINE)]
    if period > 2:
        lines += [comment(f"CFA {period}x{period} (X-Trans): cosme_cfa takes sensels 2", SIRIL_LINE),
                  comment("apart, other colours here: it mixes colours", SIRIL_LINE)]
    # columns first: a pixel beside a bad column is then fixed from its corrected values
    lines += [f"C {x} 0 {siril_type(columns[x])}" for x in sorted(columns)]
    for x, y in order:
        ys = height - 1 - y if flip_y else y
        lines.append(f"P {x} {ys} {siril_type(best[(x, y)])}")
    row_lines: list[str] = []
    if rows:
        row_lines = [
            comment("hotpixels whole rows for Siril cosme / cosme_cfa", SIRIL_LINE),
            comment("L y 0 H: the whole row y (not for -cc=bpm)", SIRIL_LINE),
            comment(convention, SIRIL_LINE),
        ]
        row_lines += [f"L {height - 1 - y if flip_y else y} 0 {siril_type(rows[y])}" for y in sorted(rows)]
    return lines, row_lines


def write_siril(
    defects: Sequence[Defect],
    path: place.Where,
    height: int,
    *,
    width: int | None = None,
    stride: int = 1,
    flip_y: bool = False,
    period: int = 2,
    rows_path: place.Where | None = None,
) -> place.Folder:
    """Siril cosmetic-correction list: ``P x y H`` (hot-like) or ``P x y C`` (cold-like) per
    pixel, ``C x 0 H`` per whole column.

    Apply it in Siril with ``cosme siril.lst`` (``cosme_cfa`` on a raw CFA image) or with
    ``calibrate ... -cc=bpm siril.lst``, whose check it passes (only ``#``, ``P`` and ``C``
    lines, no blank line). Siril's list y is the row counted from the top of the image as Siril
    displays it (Siril's loader and its ``cosme`` reader each flip between that and its
    bottom-up FITS memory, see the module docstring). Siril shows raw, TIFF, PNG and JPEG frames
    upright, so by default y is written unchanged: ``y_siril = y``. Pass ``flip_y=True``
    (``y_siril = height-1-y``) when Siril will apply the list to FITS frames, whose rows it
    keeps as stored. Siril's cosme corrects the first channel only; one line per distinct
    (x, y), and when channels disagree the highest-scoring defect decides H or C.

    A ``column`` defect that covers the whole height (every sensel of its colour, ``stride``
    apart) is one ``C`` line: Siril's C line fixes the whole column, all its colours, from the
    columns beside it (2 away with ``cosme_cfa``). A partial column, and a row that is not
    written as an ``L`` line, is written sensel by sensel (``text.sensels``) as P lines: Siril
    has no partial line.

    Parameters
    ----------
    defects : sequence of Defect
        The defect records; a ``column`` or ``row`` with a ``length`` is expanded here.
    path : path-like
        Output file (``siril.lst`` by the contract; Siril wants the .lst suffix).
    height : int
        Image height in rows (for ``flip_y``, whole columns, and to reject out-of-range rows).
    width : int, optional
        Image width: finds whole rows and rejects out-of-range columns.
    stride : int
        Distance between the sensels of a line (the layout's stride: 2 in a Bayer mosaic).
    flip_y : bool
        Write ``height - 1 - y`` instead of ``y``.
    period : int
        The CFA's period (6 for X-Trans): Siril's ``cosme_cfa`` replaces a sensel from the
        sensels 2 apart (``getAverage3x3`` and ``get_median`` with a step of 2), which in
        another pattern are other colours. The list says so in its comments.
    rows_path : path-like, optional
        Where the whole rows go as ``L y 0 H`` lines (``siril_rows.lst``), written only when
        there is one (a stale one from an earlier run is removed), since ``calibrate -cc=bpm``
        refuses L lines. Needs ``width``. Without it whole rows are P lines in ``path``.
    """
    rows_at = place.folder(rows_path) if rows_path is not None else None
    rows_file = rows_at.name if rows_at is not None and width is not None else ""
    main, rows = siril_lists(defects, height, width=width, stride=stride, flip_y=flip_y, period=period,
                             rows_file=rows_file)
    out = atomic_write_lines(path, main)
    if rows_at is not None:
        if rows:
            atomic_write_lines(rows_at, rows)
        else:
            rows_at.unlink(missing_ok=True)
    return out


class Siril:
    name = "siril"
    what = "siril.lst for Siril's cosme / cosme_cfa / calibrate -cc=bpm (+ siril_rows.lst: whole rows)"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        rows = ctx.out_dir / ROWS_NAME
        main = write_siril(ctx.defects, ctx.out_dir / "siril.lst", ctx.shape[0], width=ctx.shape[1],
                           stride=ctx.meta.layout.stride, flip_y=ctx.meta.file_format == "fits",
                           period=ctx.meta.layout.stride, rows_path=rows)
        return [main, rows] if rows.exists() else [main]


register(Siril())
