"""Siril cosmetic-correction list (``siril.lst``).

Siril ``cosme`` / ``cosme_cfa`` (``apply_cosme_to_image``): lines starting with ``#`` are
comments, ``P x y [H|C]`` fixes one pixel; any other line (even an empty one) is logged as a
format error. Old Siril read with ``fgets(line, 63)``, so every line stays under 62 chars.

Siril's y axis (read this before changing ``flip_y``): Siril keeps images bottom-up in
memory because FITS is bottom-up, but the list file holds the row counted from the *top of
the image as Siril displays it*: ``find_hot`` writes ``y = ry - 1 - y_memory`` and ``cosme``
reads back ``y_memory = ry - 1 - y`` ("FITS are stored bottom to top"). Siril's raw (LibRaw),
TIFF, PNG and JPEG loaders flip the rows into memory so that the image displays upright,
hence for those inputs Siril's list y equals our stored row y. Writing ``height - 1 - y``
would hit the mirror-image pixel. SER frames are stored top-down and Siril flips them into
memory the same way (``ser_read_frame`` ends with ``fits_flip_top_to_bottom``): stored row y.

FITS is the other case (``flip_y=True``): Siril reads a FITS file's rows as stored, whatever
its ``ROWORDER`` (a ``TOP-DOWN`` file shows upside down; Siril flips its Bayer pattern, not its
rows: ``get_bayer_pattern`` in ``demosaicing.c``), so its list y is ``height - 1 - y`` of our
stored row. The exporter takes that from the stack's ``file_format``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..defect import Defect
from ..kinds import kind
from .registry import ExportContext, register
from .text import SIRIL_LINE, atomic_write_lines, check_xy, comment


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


def write_siril(
    defects: Sequence[Defect],
    path: str | os.PathLike,
    height: int,
    *,
    flip_y: bool = False,
    period: int = 2,
) -> Path:
    """Siril cosmetic-correction list: ``P x y H`` (hot-like) or ``P x y C`` (cold-like).

    Apply it in Siril with ``cosme siril.lst`` (or ``cosme_cfa`` on a raw CFA image). Siril's
    list y is the row counted from the top of the image as Siril displays it (Siril's loader
    and its ``cosme`` reader each flip between that and its bottom-up FITS memory, see the
    module docstring). Siril shows raw, TIFF, PNG and JPEG frames upright, so by default
    y is written unchanged: ``y_siril = y``. Pass ``flip_y=True`` (``y_siril = height-1-y``)
    when Siril will apply the list to FITS frames, whose rows it keeps as stored. Siril's cosme
    corrects the first channel only; one line per distinct (x, y), and when channels disagree
    the highest-scoring defect decides H or C.

    Parameters
    ----------
    defects : sequence of Defect
    path : path-like
        Output file (``siril.lst`` by the contract; Siril wants the .lst suffix).
    height : int
        Image height in rows (for ``flip_y`` and to reject out-of-range rows).
    flip_y : bool
        Write ``height - 1 - y`` instead of ``y``.
    period : int
        The CFA's period (6 for X-Trans): Siril's ``cosme_cfa`` replaces a sensel from the
        sensels 2 apart (``getAverage3x3`` and ``get_median`` with a step of 2), which in
        another pattern are other colours. The list says so in its comments.
    """
    height = int(height)
    best: dict[tuple[int, int], Defect] = {}
    for d in defects:
        key = (int(d.x), int(d.y))
        check_xy(key[0], key[1], None, height)
        if key not in best or d.score > best[key].score:
            best[key] = d
    order = sorted(best, key=lambda p: (p[1], p[0]))
    convention = "y = height-1-row (FITS: Siril shows row 0 at the bottom)" if flip_y else \
        "y = row from top, as Siril shows it"
    lines = [
        comment("hotpixels list for Siril cosme / cosme_cfa", SIRIL_LINE),
        comment("P x y H|C: H hot-like, C cold-like", SIRIL_LINE),
        comment(convention, SIRIL_LINE),
        comment(f"height {height} rows; {len(order)} pixels", SIRIL_LINE),
    ]
    if period > 2:
        lines += [comment(f"CFA {period}x{period} (X-Trans): cosme_cfa takes sensels 2", SIRIL_LINE),
                  comment("apart, other colours here: it mixes colours", SIRIL_LINE)]
    for x, y in order:
        ys = height - 1 - y if flip_y else y
        lines.append(f"P {x} {ys} {siril_type(best[(x, y)])}")
    return atomic_write_lines(Path(path), lines)


class Siril:
    name = "siril"
    what = "siril.lst for Siril's cosme / cosme_cfa"

    def write(self, ctx: ExportContext) -> list[Path]:
        return [write_siril(ctx.sensels(), ctx.out_dir / "siril.lst", ctx.shape[0],
                            flip_y=ctx.meta.file_format == "fits", period=ctx.meta.layout.stride)]


register(Siril())
