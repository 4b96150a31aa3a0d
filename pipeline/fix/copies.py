"""Fixed copies of image files, each in its own format, as close to the original as the format allows.

- TIFF (uncompressed, every page of a stack), FITS and SER keep every byte but the fixed
  sensels' values: the copy is the original file with those values patched where they are
  stored (a FITS file's CHECKSUM and DATASUM are then recomputed by astropy).
- PNG keeps every chunk but the image data, re-encoded losslessly (not interlaced).
- A compressed TIFF is rewritten by tifffile with its compression, its photometric and the
  baseline tags that name the camera and the time; its EXIF sub-IFD is not carried, and the
  copy's note says so.
- JPEG is decoded and re-encoded by Pillow with the original's quantisation tables, chroma
  subsampling, EXIF and ICC profile: that is one more generation of JPEG loss over the whole
  frame, which the copy's note quantifies (PSNR of the untouched pixels against the original).

Each writer takes the repaired pixels from a callable, so that it decodes the file the way it
will write it back.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..state import atomic

if TYPE_CHECKING:
    from ..io.tiff_pages import Pages

# repaired pixels of a frame: (pixels as decoded, index of the frame in the file) -> (pixels, n fixed)
Repair = Callable[[np.ndarray, int], np.ndarray]


class CopyError(ValueError):
    """A file this format's writer cannot copy faithfully: the reason, for fixed.csv."""


def copy_jpeg(src: Path, dst: Path, repair: Repair) -> str:
    """Re-encode with the original's quantisation tables and subsampling; the note gives the
    cost: the PSNR of the pixels the map left alone, against the original."""
    from PIL import Image, JpegImagePlugin

    with Image.open(src) as image:
        if image.mode not in ("L", "RGB"):
            raise CopyError(f"a {image.mode} JPEG: only gray and RGB JPEGs are copied")
        before = np.asarray(image)
        fixed = repair(before, 0)
        keep: dict = {"qtables": getattr(image, "quantization", None), "optimize": True}
        if image.mode == "RGB":
            keep["subsampling"] = JpegImagePlugin.get_sampling(image)
        for key in ("exif", "icc_profile", "comment"):
            if image.info.get(key):
                keep[key] = image.info[key]
        if image.info.get("progressive") or image.info.get("progression"):
            keep["progressive"] = True
        buffer = io.BytesIO()
        Image.fromarray(fixed).save(buffer, format="JPEG", **keep)
    atomic.write_bytes(dst, buffer.getvalue())
    with Image.open(io.BytesIO(buffer.getvalue())) as again:
        after = np.asarray(again)
    untouched = np.all(fixed == before, axis=-1) if before.ndim == 3 else fixed == before
    return f"re-encoded JPEG (original tables): untouched pixels at {_psnr(before, after, untouched)}"


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> str:
    diff = a[where].astype(np.float64) - b[where].astype(np.float64)
    mse = float(np.mean(diff * diff)) if diff.size else 0.0
    return "PSNR inf dB (identical)" if mse == 0 else f"PSNR {10 * np.log10(255.0 ** 2 / mse):.1f} dB"


# --------------------------------------------------------------------------- PNG

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (3, a palette, is refused)


def copy_png(src: Path, dst: Path, decoded: np.ndarray, repair: Repair) -> str:
    """Every chunk kept in its place; the image data re-encoded losslessly (the Up filter,
    zlib level 9), not interlaced."""
    data = src.read_bytes()
    chunks = _png_chunks(data)
    ihdr = chunks[0][1]
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if colour not in _CHANNELS or depth not in (8, 16):
        raise CopyError(f"a PNG of colour type {colour} at {depth} bits: only 8/16-bit gray and RGB(A) are copied")
    fixed = repair(decoded, 0)
    samples = fixed.reshape(height, width, -1)
    if samples.shape[2] != _CHANNELS[colour]:
        raise CopyError(f"the PNG holds {_CHANNELS[colour]} samples per pixel, its decoded image {samples.shape[2]}")
    rows = samples.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    up = rows.copy()
    up[1:] = rows[1:] - rows[:-1]  # the Up filter, modulo 256
    raw = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1).tobytes()
    out = bytearray(_PNG_SIGNATURE)
    wrote_data = False
    for kind, body in chunks:
        if kind == b"IHDR":
            body = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
        if kind == b"IDAT":
            if wrote_data:
                continue
            body, wrote_data = zlib.compress(raw, 9), True
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    atomic.write_bytes(dst, bytes(out))
    return "lossless PNG" + (" (no longer interlaced)" if interlace else "")


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(_PNG_SIGNATURE):
        raise CopyError("not a PNG file")
    chunks, pos = [], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > len(data):
            raise CopyError(f"the PNG is truncated in its {kind.decode('latin-1')} chunk")
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise CopyError("the PNG has no IHDR or no IEND chunk")
    return chunks


# --------------------------------------------------------------------------- TIFF


def copy_tiff(src: Path, dst: Path, repair: Repair) -> str:
    """Uncompressed: the original with the fixed values patched in place. Compressed: rewritten.
    A stack (a multi-page TIFF, ``io.tiff_pages``): every frame of it."""
    import tifffile

    from ..io.tiff_pages import parse

    try:
        pages = parse(os.fspath(src), src.stat().st_size)
    except ValueError as exc:
        raise CopyError(str(exc)) from None
    if pages.count > 1:
        return _copy_tiff_stack(src, dst, pages, repair)
    with tifffile.TiffFile(src) as tif:
        page = tif.pages.first
        pixels = page.asarray()
        fixed = repair(pixels, 0)
        contiguous = page.compression == 1 and page.is_contiguous and page.planarconfig == 1 and page.fillorder == 1
        if contiguous and page.nbytes == pixels.nbytes:
            offset = int(page.dataoffsets[0])
            dtype = pixels.dtype.newbyteorder(tif.byteorder)
            _patch(src, dst, offset, pixels, fixed, dtype)
            return "lossless TIFF: only the fixed values differ"
        tags = {code: page.tags[code].value for code in (270, 271, 272, 305, 306, 315, 33432) if code in page.tags}
        kwargs: dict[str, Any] = {"photometric": page.photometric, "compression": page.compression,
                                  "predictor": page.predictor if page.predictor != 1 else None}
    extratags = [(code, "s", 0, value, True) for code, value in tags.items() if isinstance(value, str)]
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, fixed, extratags=extratags, **kwargs)
    atomic.write_bytes(dst, buffer.getvalue())
    return "lossless TIFF rewritten with its compression (its EXIF sub-IFD is not carried)"


def _copy_tiff_stack(src: Path, dst: Path, pages: Pages, repair: Repair) -> str:
    """Every frame of a TIFF stack repaired: patched in place where its pages are stored whole and
    uncompressed (a page cut off by the file's end stays as it is), else the stack rewritten."""
    import tifffile

    if pages.stored:
        _patch_frames(src, dst, [pages.place(i)[0] for i in range(pages.whole)], pages.shape, np.dtype(pages.dtype),
                      repair)
        lost = pages.count - pages.whole
        cut = f" (the other {lost} are cut off by the file's end)" if lost else ""
        return f"lossless TIFF stack: {pages.whole} frames{cut}, only the fixed values differ"
    from ..io.tiff_pages import frame_pages, open_tiff

    with open_tiff(src) as tif:
        series, frames, declared = frame_pages(tif)
        key = series.keyframe
        if len(frames) < declared:
            raise CopyError(f"frames {len(frames)} to {declared - 1} of this TIFF stack cannot be read (damaged)")
        fixed = np.stack([repair(page.asarray(), index) for index, page in enumerate(frames)])
        kwargs: dict[str, Any] = {"photometric": key.photometric, "compression": key.compression,
                                  "predictor": key.predictor if key.predictor != 1 else None}
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, fixed, **kwargs)
    atomic.write_bytes(dst, buffer.getvalue())
    return f"lossless TIFF stack of {len(fixed)} frames rewritten with its compression (its tags are not carried)"


def _patch(src: Path, dst: Path, offset: int, before: np.ndarray, after: np.ndarray, dtype: np.dtype) -> None:
    """Copy ``src`` to ``dst`` with the values that differ rewritten at their stored place (row-major,
    interleaved samples, from ``offset``)."""
    data = bytearray(src.read_bytes())
    _patch_values(data, offset, before, after, dtype)
    atomic.write_bytes(dst, bytes(data))


def _patch_frames(src: Path, dst: Path, offsets: list[int], shape: tuple[int, ...], dtype: np.dtype,
                  repair: Repair) -> None:
    """Copy ``src`` to ``dst`` with each frame stored uncompressed at ``offsets`` (frame i at the
    i-th, ``shape`` values of ``dtype`` as stored) repaired in place: a video's, a TIFF stack's."""
    data = bytearray(src.read_bytes())
    length = int(np.prod(shape)) * dtype.itemsize
    for index, offset in enumerate(offsets):
        frame = np.frombuffer(bytes(data[offset:offset + length]), dtype=dtype).reshape(shape)
        native = frame.astype(dtype.newbyteorder("="))
        _patch_values(data, offset, native, repair(native, index), dtype)
    atomic.write_bytes(dst, bytes(data))


def _patch_values(data: bytearray, offset: int, before: np.ndarray, after: np.ndarray, dtype: np.dtype) -> None:
    flat_before, flat_after = before.reshape(-1), after.reshape(-1)
    size = np.dtype(dtype).itemsize
    for index in np.flatnonzero(flat_before != flat_after):
        at = offset + int(index) * size
        data[at:at + size] = np.asarray(flat_after[index], dtype=dtype).tobytes()


# --------------------------------------------------------------------------- FITS and SER


def copy_fits(src: Path, dst: Path, hdu_name: str | None, repair: Repair) -> str:
    """The HDU's planes repaired (a cube plane by plane), written back with the original's
    BITPIX, BZERO and BSCALE; every other HDU and keyword as it was."""
    from astropy.io import fits

    from ..io.fits import image_hdu, quiet

    with quiet(), fits.open(src, memmap=False) as hdul:
        hdu = image_hdu(hdul, hdu_name)
        bitpix, bscale, bzero = hdu.header["BITPIX"], hdu.header.get("BSCALE", 1), hdu.header.get("BZERO", 0)
        data = np.asarray(hdu.data)
        checksum = "CHECKSUM" in hdu.header or "DATASUM" in hdu.header
        if data.ndim == 2:
            hdu.data = repair(data, 0)
        elif data.ndim == 3 and data.shape[0] == 3:  # one colour per plane (R, G, B)
            hdu.data = np.moveaxis(repair(np.moveaxis(data, 0, -1), 0), -1, 0)
        else:
            planes = data.reshape(-1, *data.shape[-2:])
            hdu.data = np.stack([repair(plane, i) for i, plane in enumerate(planes)]).reshape(data.shape)
        if bscale != 1 or (bzero != 0 and not np.issubdtype(data.dtype, np.unsignedinteger)):
            # scaled integers (astropy gave floats): stored again as they were
            hdu.scale(_FITS_TYPES[bitpix], bscale=bscale, bzero=bzero)
        buffer = io.BytesIO()
        hdul.writeto(buffer, checksum=checksum)
    atomic.write_bytes(dst, buffer.getvalue())
    return "lossless FITS (same BITPIX and scaling)" + ("; checksums recomputed" if checksum else "")


_FITS_TYPES = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}


def copy_ser(src: Path, dst: Path, repair: Repair) -> str:
    """Every frame of the video repaired in place (SER frames are uncompressed); header and
    timestamps byte-identical."""
    from ..io.ser import HEADER_BYTES, open_ser

    opened = open_ser(os.fspath(src))
    layout = opened.layout
    _patch_frames(src, dst, [HEADER_BYTES + i * layout.frame_bytes for i in range(layout.frames)], layout.shape,
                  np.dtype(f"{opened.order}u{layout.itemsize}"), repair)
    return f"lossless SER: {layout.frames} frames"
