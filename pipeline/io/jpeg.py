"""JPEG: libjpeg-turbo through simplejpeg where it gives imageio's very array, straight into the
caller's buffer; imageio (Pillow) for everything else.

Never pass ``fastdct``/``fastupsample``: those trade exactness for speed and no longer match
Pillow. ``strict`` stays on, so a file with recoverable damage (which Pillow may still decode)
is left to imageio rather than decoded differently.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from . import imageio_common
from .header import Header
from .registry import register

# JPEG colour spaces for which simplejpeg's default decode (accurate integer DCT, fancy
# upsampling) equals Pillow's pixel for pixel; tests/io/test_jpeg.py checks every subsampling
# (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), progressive and EXIF-rotated files. CMYK/YCCK (Pillow
# keeps 4 channels, Adobe-inverted) and anything unusual go to imageio.
FAST_COLORSPACES = {"YCbCr": "RGB", "Gray": "GRAY"}


def decode_fast(data: bytes, out: np.ndarray | None = None) -> np.ndarray | None:
    """simplejpeg's decode in the stored orientation (into ``out`` when it fits), or None to let
    imageio handle the file."""
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        target = FAST_COLORSPACES.get(colorspace)
        if target is None:
            return None
        shape = (height, width) if target == "GRAY" else (height, width, 3)
        into = out if out is not None and out.shape == shape and out.dtype == np.uint8 \
            and out.flags.c_contiguous and out.flags.writeable else None
        pixels = simplejpeg.decode_jpeg(data, colorspace=target, fastdct=False, fastupsample=False, buffer=into)
    except Exception:  # noqa: BLE001 - malformed, truncated or unsupported: imageio decides
        return None
    if into is not None:
        return into
    return pixels.reshape(height, width) if target == "GRAY" else pixels


class Jpeg:
    name = "jpeg"
    suffixes = frozenset({".jpg", ".jpeg"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        pixels = decode_fast(data, out)
        return pixels if pixels is not None else imageio_common.decode(data, path)


FORMAT = register(Jpeg())
