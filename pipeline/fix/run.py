"""`hotpixels fix INPUT... --map RESULT_DIR --out DIR`: fixed copies, the inputs never touched.

Each input is matched against the map's sensor (its grid and colour layout), then copied into
``--out`` under its own name (the folders below the inputs' common folder are kept): a DNG
with the map as a FixBadPixelsList opcode for Adobe and darktable, the other formats with the
bad sensels replaced (``repair``). ``fixed.csv`` in ``--out`` lists every input: fixed or
skipped, why, how many defects were applied and how many the map held back because they
appeared after the frame was taken.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..discover import expand
from ..io import read_header
from ..io.header import Header
from ..io.source import hdu_ref, is_remote, split_hdu, split_ref
from ..state import atomic, place
from ..state.lock import check_free, hold
from . import copies
from .defect_map import DefectMap
from .repair import colour_plane, repair

FIXED_NAME = "fixed.csv"


@dataclass(frozen=True)
class Fixed:
    """One row of fixed.csv."""

    path: str
    status: str  # fixed | skipped
    reason: str = ""  # why skipped, or what the copy is (lossless, re-encoded, opcode)
    copy: str = ""
    applied: int = 0  # defects of the map applied to it
    later: int = 0  # defects held back: they appeared after this frame was taken


class FixError(ValueError):
    """The command cannot run at all (no map, no input, --out among the inputs)."""


def fix(inputs: list[str], map_dir: place.Where, out_dir: str | Path,
        log: Callable[[str], None] = print, hdu: str | None = None) -> list[Fixed]:
    """Write a fixed copy of every input that matches the map; the rows of fixed.csv. ``hdu``:
    the HDU of each FITS file to fix (by name or index), as the scan's ``--hdu``."""
    check_free(map_dir)
    defect_map = DefectMap.load(map_dir)
    out = Path(out_dir)
    expansion = expand(inputs, hdu)
    for item, why in expansion.problems:
        log(f"{item}: {why}")
    named = {split_ref(split_hdu(p)[0])[0]: split_hdu(p)[1] for p in expansion.paths}
    files = sorted(named)
    if not files:
        raise FixError("no input file to fix")
    remote = [f for f in files if is_remote(f)]
    if remote:
        raise FixError(f"fix reads local files only; {remote[0]} is a URL")
    root = Path(os.path.commonpath([str(Path(f).resolve().parent) for f in files]))
    sources = {Path(f).resolve() for f in files}
    targets = {path: out / Path(path).resolve().relative_to(root) for path in files}
    for path, target in targets.items():
        if target.resolve() in sources:
            raise FixError(f"--out {out} would overwrite the input {path}: choose another folder")
    rows = []
    with hold(out, "hotpixels fix", log):
        for path, target in targets.items():
            rows.append(fix_file(path, target, defect_map, named[path]))
            row = rows[-1]
            log(f"{row.status} {path}" + (f": {row.reason}" if row.reason else ""))
        write_fixed_csv(out, rows)
    return rows


def fix_file(path: str, target: Path, defect_map: DefectMap, hdu: str | None = None) -> Fixed:
    """One input's copy at ``target``, or the reason it has none."""
    header = read_header(hdu_ref(path, hdu) if hdu is not None else path)
    why = defect_map.mismatch(header)
    if why:
        return Fixed(path, "skipped", why)
    defects, later = defect_map.in_frame(header.time)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if header.format == "raw":
            from .dng import copy_dng

            note = copy_dng(Path(path), target, defects, defect_map, header.raw_margins)
        else:
            note = _copy_pixels(Path(path), target, header, defect_map.mask(defects), defect_map)
    except copies.CopyError as exc:
        return Fixed(path, "skipped", str(exc), applied=len(defects), later=later)
    held = f"; {later} defects held back (they appeared after this frame" + \
        (")" if header.time is not None else ", which has no capture time)") if later else ""
    return Fixed(path, "fixed", note + held, str(target), len(defects), later)


def _copy_pixels(src: Path, dst: Path, header: Header, bad: np.ndarray, defect_map: DefectMap) -> str:
    """A format's copy with the ``bad`` sensels replaced from their same-colour neighbours."""
    layout = defect_map.meta.layout
    colours = colour_plane(layout, *bad.shape)
    if footprint(defect_map, header):
        bad = grow(bad)
    unfixable = [0]

    def repaired(pixels: np.ndarray, _index: int) -> np.ndarray:
        if pixels.shape[:2] != bad.shape:
            raise copies.CopyError(f"the file decodes to {pixels.shape[:2]}, not the map's {bad.shape}")
        fixed, left = repair(pixels, bad, colours, layout.stride if layout.mosaic else 1)
        unfixable[0] += left
        return fixed

    kind = header.format
    if kind == "jpeg":
        note = copies.copy_jpeg(src, dst, repaired)
    elif kind == "png":
        from ..io import read_pixels

        note = copies.copy_png(src, dst, read_pixels(str(src)), repaired)
    elif kind == "tiff":
        note = copies.copy_tiff(src, dst, repaired)
    elif kind == "fits":
        note = copies.copy_fits(src, dst, split_hdu(header.path)[1], repaired)
    elif kind == "ser":
        note = copies.copy_ser(src, dst, repaired)
    else:
        raise copies.CopyError(f"fix does not write {kind or 'this format'} copies "
                               "(it writes DNG, JPEG, PNG, TIFF, FITS and SER)")
    note = f"{int(bad.sum())} sensels replaced; {note}"
    return note + (f"; {unfixable[0]} had no good neighbour of their colour" if unfixable[0] else "")


def footprint(defect_map: DefectMap, header: Header) -> bool:
    """Whether a defect covers its 3x3 neighbourhood in these files: a developed colour image
    (demosaicing spreads one sensel over its neighbours) or a JPEG (its blocks ring around a
    spike). Replacing the peak alone from that halo would leave the defect in place."""
    return header.format == "jpeg" or (not defect_map.meta.layout.mosaic and len(defect_map.shape) == 3)


def grow(bad: np.ndarray) -> np.ndarray:
    """``bad`` with each sensel's 8 neighbours."""
    out = bad.copy()
    padded = np.pad(bad, 1)
    height, width = bad.shape
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy:dy + height, dx:dx + width]
    return out


def write_fixed_csv(out: Path, rows: list[Fixed]) -> Path:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(("path", "status", "reason", "copy", "applied", "later"))
    for r in rows:
        writer.writerow((r.path, r.status, r.reason, r.copy, r.applied, r.later))
    atomic.write_text(out / FIXED_NAME, text.getvalue())
    return out / FIXED_NAME
