"""RawTherapee's per-camera ``<Make> <Model>.badpixels``.

RawTherapee ``DFManager::scanBadPixelsFile``: ``fgets(line, 256)`` then ``sscanf("%d %d", &x, &y)``;
lines that do not give 2 ints are skipped, so ``#`` lines are ignored - except that a *first*
line holding exactly one int is an offset added to every x and y (hence the file always starts
with a ``#`` line). The file is found by its name: the part before the last dot must equal
RawTherapee's ``make + " " + model``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..defect import Defect
from .registry import ExportContext, register
from .text import atomic_write_lines, camera_filename, check_xy, comment, distinct_xy


def write_rawtherapee(
    defects: Sequence[Defect],
    out_dir: str | os.PathLike,
    make: object,
    model: object,
) -> Path | None:
    """RawTherapee's per-camera ``<Make> <Model>.badpixels`` (``x y`` lines) in ``out_dir``.

    Copy it into RawTherapee's dark-frame folder; RawTherapee then fixes these pixels in every
    raw from that camera. Coordinates are the raw visible area (as dcraw); if a camera needs
    a shift, put a single number on the first line (RawTherapee's offset) above our comments.

    Parameters
    ----------
    defects : sequence of Defect
    out_dir : path-like
        Folder that receives the file (must exist).
    make, model : str or None
        Camera identity from the metadata; sanitised with :func:`camera_filename`.

    Returns
    -------
    Path or None
        None (and nothing written) when make or model is unknown.
    """
    name = camera_filename(make, model)
    if name is None:
        return None
    out_dir = Path(out_dir)
    target = out_dir / name
    # belt and braces: the sanitiser already guarantees a bare file name
    if target.resolve().parent != out_dir.resolve() or Path(name).name != name:
        raise ValueError(f"refusing to write outside {out_dir}: {name!r}")
    pts = distinct_xy(defects)
    for x, y in pts:
        check_xy(x, y, None, None)
    # The first line must not be a lone integer (RawTherapee reads that as an offset), so the
    # file always starts with a comment; '#' lines give sscanf nothing and are skipped.
    lines = [
        comment("hotpixels bad pixel list for RawTherapee: x y per line", 100),
        comment(f"camera: {name[: -len('.badpixels')]}; {len(pts)} pixels", 100),
    ]
    lines += [f"{x} {y}" for x, y in pts]
    return atomic_write_lines(target, lines)


class RawTherapee:
    name = "rawtherapee"
    what = "<Make> <Model>.badpixels for RawTherapee, when the camera is known"

    def write(self, ctx: ExportContext) -> list[Path]:
        path = write_rawtherapee(ctx.sensels(), ctx.out_dir, ctx.meta.make, ctx.meta.model)
        return [path] if path else []


register(RawTherapee())
