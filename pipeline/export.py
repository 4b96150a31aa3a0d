"""Defect maps in the formats other tools read: dcraw/LibRaw, RawTherapee, Siril, PNG.

Every writer is atomic: it writes a temporary file in the destination folder and renames it
over the target with ``os.replace``, so a reader (or an interrupted run) never sees half a
file. Coordinates are the stored pixel grid (x = column, y = row, 0-based, top-down, never
rotated; for raw files the visible area, as dcraw/LibRaw/rawpy use it).

What each tool's parser accepts was checked against its source:

- dcraw ``bad_pixels()`` (also in LibRaw): ``fgets(line, 128)``, cut at ``'#'``, then
  ``sscanf("%d %d %d", &col, &row, &time)``; lines that do not give 3 ints are skipped and a
  pixel is fixed when ``time <= image timestamp`` (0 = always). Comment lines are kept well
  under 127 characters so that fgets never splits one into a bogus second line.
- RawTherapee ``DFManager::scanBadPixelsFile``: ``fgets(line, 256)`` then
  ``sscanf("%d %d", &x, &y)``; lines that do not give 2 ints are skipped, so ``#`` lines are
  ignored - except that a *first* line holding exactly one int is an offset added to every
  x and y (hence the file always starts with a ``#`` line). The file is found by its name:
  the part before the last dot must equal RawTherapee's ``make + " " + model``.
- Siril ``cosme`` / ``cosme_cfa`` (``apply_cosme_to_image``): lines starting with ``#`` are
  comments, ``P x y [H|C]`` fixes one pixel; any other line (even an empty one) is logged as
  a format error. Old Siril read with ``fgets(line, 63)``, so every line stays under 62 chars.

Siril's y axis (read this before changing ``flip_y``): Siril keeps images bottom-up in
memory because FITS is bottom-up, but the list file holds the row counted from the *top of
the image as Siril displays it*: ``find_hot`` writes ``y = ry - 1 - y_memory`` and ``cosme``
reads back ``y_memory = ry - 1 - y`` ("FITS are stored bottom to top"). Siril's raw (LibRaw),
TIFF, PNG and JPEG loaders flip the rows into memory so that the image displays upright,
hence for every input this tool reads, Siril's list y equals our stored row y. Writing
``height - 1 - y`` would hit the mirror-image pixel. ``flip_y=True`` is for the other case:
the frames Siril corrects are FITS written top-down (``ROWORDER = 'TOP-DOWN'``, e.g. many
astro-camera captures) that Siril loads unflipped and shows upside down.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from . import atomic
from .defect import Defect

__all__ = [
    "camera_filename",
    "siril_type",
    "write_dcraw",
    "write_mask_png",
    "write_rawtherapee",
    "write_siril",
]

# Longest comment line written (characters, before the newline). Siril's old fgets(63) is the
# tightest reader; dcraw's is 128 and RawTherapee's 256.
_SIRIL_LINE = 60
_DCRAW_LINE = 120
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


def _atomic_write_lines(path: Path, lines: Iterable[str]) -> Path:
    return atomic.write_text(path, "".join(f"{line}\n" for line in lines))


def _comment(text: str, width: int) -> str:
    """One safe ``#`` comment line: printable ASCII only, no newline, at most ``width`` chars."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    line = f"# {text}" if text else "#"
    return line if len(line) <= width else line[: width - 3] + "..."


def _distinct_xy(defects: Iterable[Defect]) -> list[tuple[int, int]]:
    """Distinct (x, y), row-major: an RGB pixel bad in several channels is one sensor site."""
    return sorted({(int(d.x), int(d.y)) for d in defects}, key=lambda p: (p[1], p[0]))


def _check_xy(x: int, y: int, width: int | None, height: int | None) -> None:
    if x < 0 or y < 0 or (width is not None and x >= width) or (height is not None and y >= height):
        raise ValueError(f"defect at x={x}, y={y} lies outside the {width}x{height} image")


def siril_type(d: Defect) -> str:
    """'H' (hot-like: replaced by Siril with the neighbour average) or 'C' (cold-like: median).

    hot and noisy are hot-like, dead is cold-like; a stuck pixel is hot-like when it sits
    above its neighbours (``mean > neighbour_mean``, else the sign of ``residual_mean``;
    with neither known it defaults to 'H', as Siril does for a bare ``P x y``).
    """
    if d.kind in ("hot", "noisy"):
        return "H"
    if d.kind == "dead":
        return "C"
    if not math.isnan(d.neighbour_mean) and not math.isnan(d.mean):
        return "H" if d.mean >= d.neighbour_mean else "C"
    if not math.isnan(d.residual_mean):
        return "H" if d.residual_mean >= 0 else "C"
    return "H"


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


# --------------------------------------------------------------------------- writers


def write_dcraw(
    defects: Sequence[Defect],
    path: str | os.PathLike,
    header_lines: Iterable[str] = (),
    *,
    shape: Sequence[int] | None = None,
) -> Path:
    """dcraw/LibRaw ``-P`` bad pixel file: one ``col row 0`` line per distinct pixel.

    The third field is dcraw's timestamp; 0 means "bad in every image". dcraw fixes these
    only for CFA (raw) images, at visible-area coordinates, which is our stored grid.

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
    pts = _distinct_xy(defects)
    h, w = (int(shape[0]), int(shape[1])) if shape is not None else (None, None)
    for x, y in pts:
        _check_xy(x, y, w, h)
    head = [
        "hotpixels bad pixel map for dcraw -P / LibRaw (bad_pixels)",
        "format: col row time; time 0 = bad in every image",
    ]
    if shape is not None:
        head.append(f"image: {w} columns x {h} rows (stored grid; raw: visible area)")
    head.append(f"{len(pts)} pixels")
    head.extend(header_lines)
    lines = [_comment(t, _DCRAW_LINE) for t in head]
    lines += [f"{x} {y} 0" for x, y in pts]
    return _atomic_write_lines(Path(path), lines)


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
    pts = _distinct_xy(defects)
    for x, y in pts:
        _check_xy(x, y, None, None)
    # The first line must not be a lone integer (RawTherapee reads that as an offset), so the
    # file always starts with a comment; '#' lines give sscanf nothing and are skipped.
    lines = [
        _comment("hotpixels bad pixel list for RawTherapee: x y per line", 100),
        _comment(f"camera: {name[: -len('.badpixels')]}; {len(pts)} pixels", 100),
    ]
    lines += [f"{x} {y}" for x, y in pts]
    return _atomic_write_lines(target, lines)


def write_siril(
    defects: Sequence[Defect],
    path: str | os.PathLike,
    height: int,
    *,
    flip_y: bool = False,
) -> Path:
    """Siril cosmetic-correction list: ``P x y H`` (hot-like) or ``P x y C`` (cold-like).

    Apply it in Siril with ``cosme siril.lst`` (or ``cosme_cfa`` on a raw CFA image). Siril's
    list y is the row counted from the top of the image as Siril displays it (Siril's loader
    and its ``cosme`` reader each flip between that and its bottom-up FITS memory, see the
    module docstring). Siril shows raw, TIFF, PNG and JPEG frames upright, so by default
    y is written unchanged: ``y_siril = y``. Pass ``flip_y=True`` (``y_siril = height-1-y``)
    only when Siril will apply the list to FITS frames stored top-down that it shows upside
    down. Siril's cosme corrects the first channel only; one line per distinct (x, y), and
    when channels disagree the highest-scoring defect decides H or C.

    Parameters
    ----------
    defects : sequence of Defect
    path : path-like
        Output file (``siril.lst`` by the contract; Siril wants the .lst suffix).
    height : int
        Image height in rows (for ``flip_y`` and to reject out-of-range rows).
    flip_y : bool
        Write ``height - 1 - y`` instead of ``y``.
    """
    height = int(height)
    best: dict[tuple[int, int], Defect] = {}
    for d in defects:
        key = (int(d.x), int(d.y))
        _check_xy(key[0], key[1], None, height)
        if key not in best or d.score > best[key].score:
            best[key] = d
    order = sorted(best, key=lambda p: (p[1], p[0]))
    convention = "y = height-1-row (top-down FITS)" if flip_y else "y = row from top, as Siril shows it"
    lines = [
        _comment("hotpixels list for Siril cosme / cosme_cfa", _SIRIL_LINE),
        _comment("P x y H|C: H hot-like, C cold-like", _SIRIL_LINE),
        _comment(convention, _SIRIL_LINE),
        _comment(f"height {height} rows; {len(order)} pixels", _SIRIL_LINE),
    ]
    for x, y in order:
        ys = height - 1 - y if flip_y else y
        lines.append(f"P {x} {ys} {siril_type(best[(x, y)])}")
    return _atomic_write_lines(Path(path), lines)


def write_mask_png(defects: Sequence[Defect], shape: Sequence[int], path: str | os.PathLike) -> Path:
    """8-bit grayscale PNG of the sensor: 0 = good, 255 = defect in any channel.

    Parameters
    ----------
    defects : sequence of Defect
    shape : (H, W[, C])
        Image shape; only H and W are used.
    path : path-like
        Output ``.png`` file.
    """
    import imageio.v3 as iio

    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), dtype=np.uint8)
    pts = _distinct_xy(defects)
    for x, y in pts:
        _check_xy(x, y, w, h)
    if pts:
        xy = np.asarray(pts, dtype=np.int64)
        mask[xy[:, 1], xy[:, 0]] = 255
    data = iio.imwrite("<bytes>", mask, extension=".png")
    return atomic.write_bytes(Path(path), data)
