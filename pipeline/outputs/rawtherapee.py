"""RawTherapee's per-camera ``<Make> <Model>.badpixels``, and ``<Make> <Model> <Serial>.badpixels``.

RawTherapee ``DFManager::scanBadPixelsFile``: ``fgets(line, 256)`` then ``sscanf("%d %d", &x, &y)``;
lines that do not give 2 ints are skipped, so ``#`` lines are ignored - except that a *first*
line holding exactly one int is an offset added to every x and y (hence the file always starts
with a ``#`` line). The file is found by its name: the part before the last dot is its key, and a
file with no pixel is not kept.

``DFManager::getBadPixels(mak, mod, serial)`` (``rtengine/dfmanager.cc``, RawTherapee at
00360a6d, 2024-10) looks the key up twice: ``mak + " " + mod + " " + serial`` when the serial is
not empty, then ``mak + " " + mod``. ``mak``/``mod`` are the raw decoder's (dcraw's simplified
make, model without the make: ``text.camera_filename``); ``serial`` is ``ImageData``'s, Exiv2's
``serialNumber()`` as text: the DNG CameraSerialNumber (tag 50735), else EXIF BodySerialNumber
(42033), else a maker note's - the order in which ``io.raw`` reads it. So with a known serial
both names are written, with the same content: a camera's own file where RawTherapee reads the
same serial, the model's file wherever it does not (a serial from a maker note we do not read).
A serial that is not plain letters and digits (with single ``-``, ``_``, ``+``, ``.`` or spaces
between them) could not be matched by a safe file name and writes the model's file only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ..defect import Defect
from ..state import place
from .registry import ExportContext, register
from .text import _MAX_PART_BYTES, atomic_write_lines, camera_filename, check_xy, comment, distinct_xy

_SERIAL = re.compile(r"[A-Za-z0-9]+(?:[ ._+-][A-Za-z0-9]+)*")


def rawtherapee_name(make: object, model: object, serial: object = None) -> str | None:
    """``"<Make> <Model>.badpixels"``, or with a serial ``"<Make> <Model> <Serial>.badpixels"``
    (RawTherapee's key with the serial); None when make or model is unknown, or the serial is
    given but not one a safe file name can hold exactly (see the module docstring)."""
    base = camera_filename(make, model, suffix="")
    if base is None:
        return None
    if serial is None or str(serial) == "":
        return f"{base}.badpixels"
    serial = str(serial)
    if not _SERIAL.fullmatch(serial) or len(serial.encode()) > _MAX_PART_BYTES:
        return None
    return f"{base} {serial}.badpixels"


def write_rawtherapee_files(
    defects: Sequence[Defect],
    out_dir: place.Where,
    make: object,
    model: object,
    serial: object = None,
) -> list[place.Folder]:
    """RawTherapee's ``<Make> <Model>.badpixels`` (``x y`` lines) in ``out_dir``, and with a
    known ``serial`` the same file as ``<Make> <Model> <Serial>.badpixels``, which RawTherapee
    tries first: the paths written, the model's first; none when make or model is unknown.

    Copy them into RawTherapee's dark-frame folder; RawTherapee then fixes these pixels in every
    raw from that camera. Coordinates are the raw visible area (as dcraw); if a camera needs
    a shift, put a single number on the first line (RawTherapee's offset) above our comments.

    Parameters
    ----------
    defects : sequence of Defect
    out_dir : path-like
        Folder that receives the files (must exist).
    make, model : str or None
        Camera identity from the metadata; sanitised with :func:`camera_filename`.
    serial : str, optional
        The camera's serial number (``StackMeta.serial``): also the serial's name, when it is
        one a file name can hold (:func:`rawtherapee_name`).
    """
    plain = rawtherapee_name(make, model)
    if plain is None:
        return []
    names = [plain]
    if serial:
        own = rawtherapee_name(make, model, serial)
        if own is not None:
            names.append(own)
    folder = place.folder(out_dir)
    for name in names:  # belt and braces: the sanitiser already guarantees a bare file name
        outside = isinstance(folder, Path) and (folder / name).resolve().parent != folder.resolve()
        if Path(name).name != name or outside:
            raise ValueError(f"refusing to write outside {out_dir}: {name!r}")
    pts = distinct_xy(defects)
    for x, y in pts:
        check_xy(x, y, None, None)
    # The first line must not be a lone integer (RawTherapee reads that as an offset), so the
    # file always starts with a comment; '#' lines give sscanf nothing and are skipped.
    camera = plain[: -len(".badpixels")]
    lines = [
        comment("hotpixels bad pixel list for RawTherapee: x y per line", 100),
        comment(f"camera: {camera}; {len(pts)} pixels", 100),
    ]
    if len(names) > 1:
        lines.append(comment(f"serial: {serial} (same list under both names)", 100))
    lines += [f"{x} {y}" for x, y in pts]
    return [atomic_write_lines(folder / name, lines) for name in names]


def write_rawtherapee(
    defects: Sequence[Defect],
    out_dir: place.Where,
    make: object,
    model: object,
    serial: object = None,
) -> place.Folder | None:
    """:func:`write_rawtherapee_files`, the model's file: ``<Make> <Model>.badpixels``, or None
    (and nothing written) when make or model is unknown."""
    paths = write_rawtherapee_files(defects, out_dir, make, model, serial)
    return paths[0] if paths else None


class RawTherapee:
    name = "rawtherapee"
    what = "<Make> <Model>.badpixels (and <Make> <Model> <Serial>.badpixels) for RawTherapee, when the camera is known"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        return write_rawtherapee_files(ctx.sensels(), ctx.out_dir, ctx.meta.make, ctx.meta.model, ctx.meta.serial)


register(RawTherapee())
