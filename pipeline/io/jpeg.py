"""JPEG: libjpeg-turbo through simplejpeg where it gives imageio's very array, straight into the
caller's buffer; imageio (Pillow) for everything else.

Never pass ``fastdct``/``fastupsample``: those trade exactness for speed and no longer match
Pillow. ``strict`` stays on, so a file with recoverable damage (which Pillow may still decode)
is left to imageio rather than decoded differently.

The size the SOF segment declares (``declared_size``) is checked against ``limits`` before any
decoder sees the file: libjpeg and Pillow allocate the whole frame a 600-byte file declares.
"""

from __future__ import annotations

import io
import struct
from typing import IO

import numpy as np

from . import imageio_common
from .header import Header
from .limits import TooLarge, check_frame
from .registry import register

# JPEG colour spaces for which simplejpeg's default decode (accurate integer DCT, fancy
# upsampling) equals Pillow's pixel for pixel; tests/io/test_jpeg.py checks every subsampling
# (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), progressive and EXIF-rotated files. CMYK/YCCK (Pillow
# keeps 4 channels, Adobe-inverted) and anything unusual go to imageio.
FAST_COLORSPACES = {"YCbCr": "RGB", "Gray": "GRAY"}


# the start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15: not DHT C4, JPG C8, DAC CC) and the
# markers without a length (TEM, RST0-7, SOI, EOI)
SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
MAX_SEGMENTS = 1000  # steps walked to the SOF (APPn, DQT, DHT, ...): a real file takes a few dozen


def declared_size(fh: IO[bytes]) -> tuple[int, int, int] | None:
    """(height, width, components) of the first SOF segment, walking the segments from the
    start of the file by their lengths (at most ``MAX_SEGMENTS`` steps, a fill byte one); None
    where the file is not a JPEG as far as that goes: the decoders then name the error."""
    if fh.read(2) != b"\xff\xd8":
        return None
    for _ in range(MAX_SEGMENTS):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code == 0xFF:  # a fill byte: the marker starts at the next one
            fh.seek(-1, io.SEEK_CUR)
            continue
        if code == 0xDA:  # the scan starts before any frame
            return None
        if code in STANDALONE or code == 0:
            continue
        head = fh.read(8 if code in SOF else 2)
        if len(head) < 2 or struct.unpack_from(">H", head)[0] < 2:
            return None
        if code in SOF:
            if len(head) < 8:
                return None
            _, height, width, components = struct.unpack_from(">BHHB", head, 2)
            return height, width, components
        fh.seek(struct.unpack_from(">H", head)[0] - 2, io.SEEK_CUR)
    return None


def check_declared(fh: IO[bytes]) -> None:
    """Refuse a JPEG whose SOF declares a frame over the limit."""
    size = declared_size(fh)
    if size is not None:
        check_frame(*size)


def decode_fast(data: bytes, out: np.ndarray | None = None) -> np.ndarray | None:
    """simplejpeg's decode in the stored orientation (into ``out`` when it fits), or None to let
    imageio handle the file."""
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        check_frame(height, width)  # libjpeg-turbo's own reading of the SOF, before its allocation
        target = FAST_COLORSPACES.get(colorspace)
        if target is None:
            return None
        shape = (height, width) if target == "GRAY" else (height, width, 3)
        into = out if out is not None and out.shape == shape and out.dtype == np.uint8 \
            and out.flags.c_contiguous and out.flags.writeable else None
        pixels = simplejpeg.decode_jpeg(data, colorspace=target, fastdct=False, fastupsample=False, buffer=into)
    except TooLarge:
        raise
    except Exception:  # noqa: BLE001 - malformed, truncated or unsupported: imageio decides
        return None
    if into is not None:
        return into
    return pixels.reshape(height, width) if target == "GRAY" else pixels


class Jpeg:
    name = "jpeg"
    suffixes = frozenset({".jpg", ".jpeg"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                check_declared(fh)
        else:
            source.seek(0)
            check_declared(source)
            source.seek(0)
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        check_declared(io.BytesIO(data))
        pixels = decode_fast(data, out)
        return pixels if pixels is not None else imageio_common.decode(data, path)


FORMAT = register(Jpeg())
