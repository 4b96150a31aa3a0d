"""What every exporter shares: safe comment lines, distinct sensels, range checks, atomic
writes, and camera-based file names built from untrusted metadata.

Every writer is atomic: it writes a temporary file in the destination folder and renames it
over the target with ``os.replace``, so a reader (or an interrupted run) never sees half a
file. Coordinates are the stored pixel grid (x = column, y = row, 0-based, top-down, never
rotated; for raw files the visible area, as dcraw/LibRaw/rawpy use it).
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from ..defect import Defect
from ..state import atomic, place

# Longest comment line written (characters, before the newline). Siril's old fgets(63) is the
# tightest reader; dcraw's is 128 and RawTherapee's 256.
SIRIL_LINE = 60
DCRAW_LINE = 120
# A file name is at most 255 bytes on common file systems; dcraw keeps make and model in
# char[64] each, so 63 bytes per part keeps the name well below that and still matching.
_MAX_PART_BYTES = 63

# dcraw's identify() simplifies the maker name to one of these when it contains it
# (case-insensitive), so "NIKON CORPORATION" becomes "Nikon"; RawTherapee keys its bad pixel
# files by that same make, so doing the same here lets EXIF names match.
_DCRAW_CORPS = (
    "AgfaPhoto", "Canon", "Casio", "Epson", "Fujifilm", "Mamiya", "Minolta", "Motorola",
    "Kodak", "Konica", "Leica", "Nikon", "Nokia", "Olympus", "Pentax", "Phase One", "Ricoh",
    "Samsung", "Sigma", "Sinar", "Sony",
)
_UNKNOWN = {"", "unknown", "none", "null", "n_a"}  # after cleaning: "n/a" -> "n_a"
_FORBIDDEN = re.compile(r'[/\\<>:"|?*]')  # path separators and what Windows forbids


# --------------------------------------------------------------------------- helpers


def atomic_write_lines(path: place.Where, lines: Iterable[str]) -> place.Folder:
    return atomic.write_text(path, "".join(f"{line}\n" for line in lines))


def comment(text: str, width: int) -> str:
    """One safe ``#`` comment line: printable ASCII only, no newline, at most ``width`` chars."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    line = f"# {text}" if text else "#"
    return line if len(line) <= width else line[: width - 3] + "..."


def sensels(defects: Iterable[Defect], stride: int) -> list[Defect]:
    """Every defect at its own sensel: a partial ``column`` or ``row`` (first sensel, ``length``)
    becomes one record per sensel of it, ``stride`` apart (2 in a mosaic: one colour), as tools
    that know only pixels (dcraw, Siril's P lines, RawTherapee, a mask) need them."""
    out: list[Defect] = []
    for d in defects:
        if d.kind not in ("column", "row") or d.length <= 1:
            out.append(d)
            continue
        step_x, step_y = (0, stride) if d.kind == "column" else (stride, 0)
        out += [replace(d, x=d.x + i * step_x, y=d.y + i * step_y, length=1) for i in range(d.length)]
    return out


def onset_time(d: Defect) -> int:
    """Unix time of a defect's onset (00:00 UTC of its ``since`` day), 0 when there from the start."""
    if not d.since:
        return 0
    return int(calendar.timegm(time.strptime(d.since[:10], "%Y-%m-%d")))


def distinct_xy(defects: Iterable[Defect]) -> list[tuple[int, int]]:
    """Distinct (x, y), row-major: an RGB pixel bad in several channels is one sensor site."""
    return sorted({(int(d.x), int(d.y)) for d in defects}, key=lambda p: (p[1], p[0]))


def check_xy(x: int, y: int, width: int | None, height: int | None) -> None:
    if x < 0 or y < 0 or (width is not None and x >= width) or (height is not None and y >= height):
        raise ValueError(f"defect at x={x}, y={y} lies outside the {width}x{height} image")


# --------------------------------------------------------------------------- file names


def _simplify_make(make: str) -> str:
    low = make.lower()
    for corp in _DCRAW_CORPS:
        if corp.lower() in low:
            return corp
    return make


def _clean_part(text: object) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = unicodedata.normalize("NFC", str(text))
    # drop control/format/unassigned characters (NUL, newlines, bidi overrides, ...)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _FORBIDDEN.sub("_", text)
    text = re.sub(r"\.{2,}", ".", text)  # no '..' anywhere, even though no separator is left
    return " ".join(text.split())  # one plain space between words, none at the ends


def _truncate(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").strip()


def camera_filename(make: object, model: object, suffix: str = ".badpixels") -> str | None:
    """File name ``"<Make> <Model><suffix>"`` that is safe to create, or None if unknown.

    make/model come from untrusted file metadata. The result contains no path separator,
    no '..', no control character, no character Windows forbids, does not start with a dot
    and keeps make and model to 63 bytes each (as dcraw does), so it always names a file
    directly inside the folder it is joined to. Like dcraw/RawTherapee, the maker is simplified
    ("NIKON CORPORATION" -> "Nikon") and a model that repeats the maker loses that prefix,
    so that RawTherapee, which looks files up by its own ``make + " " + model``, finds it.

    Parameters
    ----------
    make, model : str or bytes or None
        Camera maker and model as read from the files.
    suffix : str
        Appended verbatim (a trusted constant).

    Returns
    -------
    str or None
        None when make or model is missing, empty or 'unknown' after cleaning.
    """
    if make is None or model is None:
        return None
    mk, md = _clean_part(make), _clean_part(model)
    if mk.lower() in _UNKNOWN or md.lower() in _UNKNOWN:
        return None
    mk = _simplify_make(mk)
    if md.lower().startswith(mk.lower() + " "):
        md = md[len(mk) + 1 :]
    # dcraw holds each in char[64]; bounding them also bounds the name (< 130 bytes)
    mk = _truncate(mk.lstrip(". "), _MAX_PART_BYTES)  # no hidden file
    md = _truncate(md, _MAX_PART_BYTES).rstrip(". ")  # no Windows-trailing dot or space
    if not mk or not md:
        return None
    return f"{mk} {md}{suffix}"
