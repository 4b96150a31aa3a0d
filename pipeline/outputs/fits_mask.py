"""``badpixels.fits``: the defect map as a FITS bit mask, and the dark-rate map beside it.

Primary HDU: an unsigned 8-bit image (16-bit if the kinds table ever has more than 8 kinds) of
the stored grid, H rows of W values, 0 for a good sensel; a defective one has the bit of its kind
set, bit ``code - 1`` of its row in the kinds table (``pipeline.kinds``):

======  =======  ==========================================================
bit     value    kind
======  =======  ==========================================================
0       1        hot: brighter than its neighbours, "warm" ones included
1       2        dead: no or weak response, "cold" ones included
2       4        stuck: at one value whatever the light
3       8        noisy: flickers between levels (random telegraph noise)
4       16       column: a sensel of a column defect
5       32       row: a sensel of a row defect
======  =======  ==========================================================

Warm and cold are not kinds of their own: a warm sensel is a hot one with a fixed offset, a cold
one a dead one that still responds (``Kind.behaviour``). The header names each bit in ``BIT0``,
``BIT1``, ... keywords and ``COMMENT`` cards. The sensels of a column or row defect (its first
sensel and ``length``, ``stride`` apart in a mosaic: ``ExportContext.sensels``) each carry the
line's bit. An RGB stack has one plane, not one per channel: a pixel's bits are those of its
defects in every channel, OR-ed (``NCHANNEL`` and a comment say so), as the other maps do.

Row order: the array index ``[y, x]`` (numpy, astropy) is our (y, x): row y of our grid,
counted from the first stored row, is FITS row y + 1 (``NAXIS2`` index y). FITS viewers that
follow the FITS convention (DS9, Siril) show the first row at the bottom, so they show the map
upside down compared with the frames; ``ROWORDER = 'TOP-DOWN'`` (the keyword Siril, N.I.N.A and
PixInsight read) and a comment say so.

Second HDU, ``EXTNAME = 'DARKRATE'``, where the scan fitted one: each sensel's dark current,
float32 in DN/s at ISO 100 (``stats.zarr``'s ``dark_rate``, the exposure model's rate:
``state.store.write_dark_rate_rows``), H x W, or C planes of H x W for an RGB stack (plane c is
channel c). It is copied from stats.zarr a band of rows at a time and written as it is read, so
a 61 MP sensor never holds the whole plane in memory (a band is a zarr chunk: 8 MiB). Without a
map (no exposure times, no stats.zarr beside the defects) there is no second HDU and a
``COMMENT`` in the primary header says why.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

from ..defect import Defect
from ..kinds import BY_NAME, TABLE
from ..records import StackMeta
from ..state import atomic, place
from .registry import ExportContext, register
from .text import check_xy

NAME = "badpixels.fits"
EXTNAME = "DARKRATE"
BLOCK = 2880  # a FITS file is made of 2880-byte blocks
BAND_BYTES = 8 << 20  # the band read at a time from a dark-rate array without chunks


def bit(kind_name: str) -> int:
    """The bit of a kind in the mask: its code in the kinds table, less one."""
    return BY_NAME[kind_name].code - 1


def mask_dtype() -> np.dtype:
    """uint8 while every kind's bit fits in it, else uint16 (then uint32)."""
    top = max(k.code for k in TABLE)
    return np.dtype(np.uint8 if top <= 8 else np.uint16 if top <= 16 else np.uint32)


def _ascii(text: object, limit: int = 68) -> str:
    """A FITS string value: printable ASCII, at most ``limit`` characters."""
    s = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    return "".join(ch if ch.isprintable() else " " for ch in s).strip()[:limit]


def _comment(hdr: Any, text: str) -> None:
    """COMMENT cards of at most 72 characters, broken between words."""
    for part in textwrap.wrap(_ascii(text, 10_000), 72):
        hdr.add_comment(part)


def mask_of(defects: Sequence[Defect], shape: Sequence[int]) -> np.ndarray:
    """The (H, W) bit mask of ``defects`` (one sensel each), bits OR-ed over channels."""
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), dtype=mask_dtype())
    for d in defects:
        x, y = int(d.x), int(d.y)
        check_xy(x, y, w, h)
        mask[y, x] |= mask.dtype.type(1 << bit(d.kind))
    return mask


def _primary_header(mask: np.ndarray, shape: Sequence[int], meta: StackMeta | None, n_frames: int,
                    n_defects: int, rate_note: str) -> Any:
    from astropy.io import fits

    from .. import __version__

    hdu = fits.PrimaryHDU(mask)
    hdr = hdu.header
    hdr["ROWORDER"] = ("TOP-DOWN", "first row stored = top row of the frames")
    hdr["CREATOR"] = (f"hotpixels {_ascii(__version__)}", "the program that wrote this file")
    hdr["HOTPXVER"] = (_ascii(__version__), "hotpixels version")
    channels = int(shape[2]) if len(shape) > 2 else 1
    if meta is not None:
        if meta.camera:
            hdr["INSTRUME"] = (_ascii(meta.camera), "camera make and model")
        if meta.serial:
            hdr["SERIALNO"] = (_ascii(meta.serial), "camera serial number")
        if meta.version:
            hdr["STATSVER"] = (_ascii(meta.version), "hotpixels version of the statistics")
        if meta.layout.mosaic:
            hdr["CFALAYOU"] = (_ascii(meta.layout.name), "CFA of the stored grid (one colour a sensel)")
    hdr["NFRAMES"] = (int(n_frames), "frames behind the statistics")
    hdr["NCHANNEL"] = (channels, "channels of the stack; the mask ORs them")
    hdr["NDEFECTS"] = (int(n_defects), "defect sensels (lines expanded, per channel)")
    hdr["NBADPIX"] = (int(np.count_nonzero(mask)), "pixels with a bit set")
    kinds = sorted(TABLE, key=lambda k: k.code)
    for k in kinds:
        hdr[f"BIT{k.code - 1}"] = (k.name, f"mask value {1 << (k.code - 1)}")
    _comment(hdr, "hotpixels defect mask: 0 = good, else the OR of the bits of the kinds of the "
                  "defects at the pixel, one bit per kind (BITn = the kind of bit n):")
    for k in kinds:
        _comment(hdr, f"bit {k.code - 1} ({1 << (k.code - 1)}) {k.name}: {k.behaviour}")
    _comment(hdr, "Warm sensels are hot ones, cold sensels dead ones. The sensels of a column or row "
                  "defect carry its bit (in a CFA mosaic: its colour's sensels).")
    _comment(hdr, "Rows are top-down: the numpy/astropy index [y, x] is hotpixels' (y, x), row y counted "
                  "from the first stored row of the frames, which is FITS row y+1. Viewers that put FITS "
                  "row 1 at the bottom (DS9, Siril) show the mask upside down.")
    _comment(hdr, "Grid: the stored pixels, never rotated; for raw files the visible area (LibRaw "
                  "raw_image_visible), as dcraw, LibRaw and rawpy use it.")
    if channels > 1:
        _comment(hdr, f"An RGB stack: a pixel is marked if any of its {channels} channels is defective.")
    _comment(hdr, rate_note)
    return hdr


def _rate_header(rate_shape: tuple[int, ...], colors: str) -> Any:
    from astropy.io import fits

    hdr = fits.Header()
    hdr["XTENSION"] = ("IMAGE", "image extension")
    hdr["BITPIX"] = (-32, "IEEE single precision float")
    hdr["NAXIS"] = len(rate_shape)
    h, w = rate_shape[0], rate_shape[1]
    hdr["NAXIS1"] = w
    hdr["NAXIS2"] = h
    if len(rate_shape) > 2:
        hdr["NAXIS3"] = rate_shape[2]
    hdr["PCOUNT"] = 0
    hdr["GCOUNT"] = 1
    hdr["EXTNAME"] = (EXTNAME, "dark current of each sensel")
    hdr["BUNIT"] = ("DN/s", "at ISO 100; e-/s if FITS EGAIN gave the gain")
    hdr["ROWORDER"] = ("TOP-DOWN", "first row stored = top row of the frames")
    _comment(hdr, "Each sensel's dark current (the exposure model's rate, stats.zarr dark_rate), rows "
                  "top-down as in the primary HDU: index [y, x] = (y, x).")
    if len(rate_shape) > 2:
        _comment(hdr, f"One plane per channel of the stack ({_ascii(colors) or 'in order'}): [c, y, x].")
    return hdr


def _band_rows(rate: Any, band_rows: int | None) -> int:
    if band_rows is not None:
        return max(1, int(band_rows))
    chunks = getattr(rate, "chunks", None)
    if chunks:
        return max(1, int(chunks[0]))
    per_row = 4 * int(np.prod(rate.shape[1:]))
    return max(1, BAND_BYTES // max(1, per_row))


def _write_rate(fh: BinaryIO, rate: Any, band_rows: int) -> None:
    """``rate`` (H, W[, C]) as big-endian float32 FITS data, [c, y, x], read a band at a time: each
    band's plane of channel c goes to its place in plane c (the file is seekable)."""
    h = int(rate.shape[0])
    planes = int(rate.shape[2]) if len(rate.shape) > 2 else 1
    row_bytes = 4 * int(rate.shape[1])
    start = fh.tell()
    size = planes * h * row_bytes
    for y0 in range(0, h, band_rows):
        band = np.asarray(rate[y0 : y0 + band_rows])
        for c in range(planes):
            plane = band if planes == 1 and band.ndim == 2 else band[..., c]
            fh.seek(start + (c * h + y0) * row_bytes)
            fh.write(np.ascontiguousarray(plane, dtype=">f4").data)
    fh.seek(start + size)
    fh.write(b"\0" * (-size % BLOCK))


def write_fits_mask(
    defects: Sequence[Defect],
    shape: Sequence[int],
    path: place.Where,
    *,
    meta: StackMeta | None = None,
    n_frames: int = 0,
    dark_rate: Any = None,
    no_rate_reason: str = "the scan fitted no dark rate",
    band_rows: int | None = None,
) -> place.Folder:
    """Write ``badpixels.fits``: the bit mask of ``defects`` and, given ``dark_rate``, its
    ``DARKRATE`` extension (see the module docstring for the bits and the row order).

    Parameters
    ----------
    defects : sequence of Defect
        One sensel each (``ExportContext.sensels``: lines expanded).
    shape : (H, W[, C])
        The stack's pixel shape.
    path : path-like
        Output file.
    meta : StackMeta, optional
        The camera, serial, layout and version of the statistics, for the header.
    n_frames : int
        Frames behind the statistics.
    dark_rate : array-like (H, W[, C]), optional
        The dark-rate map, read a band of rows at a time (``dark_rate[y0:y1]``): a zarr array
        is never read whole. None: no extension, and ``no_rate_reason`` in a COMMENT.
    no_rate_reason : str
        Why there is no map.
    band_rows : int, optional
        Rows read and written at a time (default: the array's chunk rows, else 8 MiB): any
        value gives the same file.
    """
    mask = mask_of(defects, shape)
    if dark_rate is not None and tuple(dark_rate.shape) != tuple(int(s) for s in shape):
        raise ValueError(f"the dark-rate map is {tuple(dark_rate.shape)}, the sensor {tuple(shape)}")
    note = (f"HDU 2 ({EXTNAME}): the dark rate of each sensel, DN/s at ISO 100." if dark_rate is not None
            else f"No {EXTNAME} HDU: {_ascii(no_rate_reason, 200)}.")
    header = _primary_header(mask, shape, meta, n_frames, len(defects), note)
    colors = meta.layout.colors if meta is not None else ""

    def write(fh: BinaryIO) -> None:
        from astropy.io import fits

        fits.HDUList([fits.PrimaryHDU(mask, header)]).writeto(fh)
        if dark_rate is not None:
            fh.write(_rate_header(tuple(int(s) for s in dark_rate.shape), colors).tostring().encode("ascii"))
            _write_rate(fh, dark_rate, _band_rows(dark_rate, band_rows))

    return atomic.write_with(path, write)


def saved_dark_rate(out_dir: place.Folder, shape: Sequence[int]) -> tuple[Any, str]:
    """The dark-rate map of ``out_dir``'s stats.zarr as a zarr array (nothing read yet), or None
    and why there is none."""
    from ..state.store import STATS_NAME, stats_location

    path = stats_location(out_dir)
    if not path.exists():
        return None, f"no {STATS_NAME} beside this file to read a dark-rate map from"
    import zarr

    group: Any = zarr.open_group(place.url(path), mode="r")
    if "dark_rate" not in set(group.array_keys()):
        return None, ("the scan fitted no dark rate: that needs frames with exposure times "
                      "(EXIF or FITS EXPTIME)")
    rate = group["dark_rate"]
    if tuple(rate.shape) != tuple(int(s) for s in shape):
        return None, f"{STATS_NAME}'s dark_rate is {tuple(rate.shape)}, not the defects' {tuple(shape)}"
    return rate, ""


class FitsMask:
    name = "fits_mask"
    what = "badpixels.fits, a FITS bit mask of the defects by kind (+ the dark-rate map, HDU DARKRATE)"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        rate, why = saved_dark_rate(ctx.out_dir, ctx.shape)
        return [write_fits_mask(ctx.sensels(), ctx.shape, ctx.out_dir / NAME, meta=ctx.meta,
                                n_frames=ctx.n_frames, dark_rate=rate, no_rate_reason=why)]


register(FitsMask())
