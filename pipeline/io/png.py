"""PNG: Pillow directly where its array is exactly imageio's (imageio's per-call plugin dispatch
costs more than a small PNG's decode), imageio for everything else.

The size the IHDR chunk declares is checked before Pillow opens the file: a PNG of a few hundred
bytes may declare any size, and Pillow allocates it whole, then fills what the file lacks with
zeros without an error where the deflate stream ends early. So a PNG is refused where it declares
a frame over ``limits``, or more pixel bytes than its size can hold at deflate's largest ratio.
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO

import numpy as np

from . import exif, imageio_common
from .header import Header
from .limits import check_frame, pillow
from .registry import register

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# values per pixel of each IHDR colour type as stored (a palette index is one) and as decoded
# (a palette becomes RGB or RGBA)
STORED = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DECODED = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}
# the most bytes deflate inflates one byte to (258-byte matches in 2 bits each)
DEFLATE_RATIO = 1032

# PNG modes for which Pillow's own array is exactly what imageio's Pillow plugin returns, as
# (mode, raw mode of every tile) -> (extra axes, dtype); tests/io/test_png.py checks each. A
# 16-bit RGB PNG (raw mode RGB;16B), palettes and anything else go to imageio.
FAST_MODES = {
    ("L", "L"): ((), "uint8"),
    ("LA", "LA"): ((2,), "uint8"),
    ("RGB", "RGB"): ((3,), "uint8"),
    ("RGBA", "RGBA"): ((4,), "uint8"),
    ("I;16", "I;16B"): ((), "uint16"),
}


def fast_layout(image) -> tuple[tuple[int, ...], str] | None:
    """(extra axes, dtype) of a PNG Pillow has opened, or None if imageio should decide."""
    rawmodes = {tile[3] if isinstance(tile[3], str) else tile[3][0] for tile in image.tile or []}
    if len(rawmodes) != 1 or getattr(image, "n_frames", 1) != 1:  # an animated PNG is imageio's to read
        return None
    return FAST_MODES.get((image.mode, rawmodes.pop()))


def check_declared(head: bytes, size: int) -> None:
    """Refuse a PNG of ``size`` bytes whose IHDR (its first 26 bytes) declares a frame over the
    limit, or more pixel bytes than deflate can give from that size; anything else (not a PNG,
    a damaged IHDR) is left to Pillow to name."""
    if len(head) < 26 or head[:8] != SIGNATURE or head[12:16] != b"IHDR":
        return
    width, height = struct.unpack_from(">II", head, 16)
    depth, colour = head[24], head[25]
    check_frame(height, width, DECODED.get(colour, 1))
    pixel_bytes = height * (width * STORED.get(colour, 1) * depth // 8)
    if pixel_bytes > DEFLATE_RATIO * size:
        raise ValueError(f"declares {width} x {height} pixels ({pixel_bytes} bytes) in a file of {size} bytes: more "
                         f"than deflate can hold; the file is truncated or damaged")


def probe_fast(path: str, source: str | IO[bytes]) -> Header | None:
    """A PNG's shape and dtype from its IHDR through Pillow (about 10x imageio's probe), or None."""
    Image = pillow()

    try:
        with Image.open(source, formats=["PNG"]) as image:
            layout = fast_layout(image)
            if layout is None:
                return None
            # an eXIf chunk before the pixels (getexif() would decode them to look further)
            shot = exif.from_pillow(image) if "exif" in image.info else exif.ShootingData()
            width, height = image.size
    except Exception:  # noqa: BLE001 - let imageio decide and name the error
        return None
    return Header(path, shape=(height, width, *layout[0]), dtype=layout[1], make=shot.make, model=shot.model,
                  serial=shot.serial, exposure=shot.exposure, iso=shot.iso, time=shot.time,
                  temperature=shot.temperature)


def decode_fast(data: bytes) -> np.ndarray | None:
    """A PNG decoded by Pillow directly, where the result is known to equal imageio's; else None."""
    Image = pillow()

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            layout = fast_layout(image)
            if layout is None:
                return None
            pixels = np.asarray(image)
    except Exception:  # noqa: BLE001 - truncated or malformed: imageio decides and names the error
        return None
    return pixels.astype(layout[1], copy=False)


class Png:
    name = "png"
    suffixes = frozenset({".png"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                check_declared(fh.read(26), os.fstat(fh.fileno()).st_size)
        else:
            size = source.seek(0, io.SEEK_END)
            source.seek(0)
            check_declared(source.read(26), size)
            source.seek(0)
        fast = probe_fast(path, source)
        if fast is not None:
            return fast
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        check_declared(data[:26], len(data))
        pixels = decode_fast(data)
        return pixels if pixels is not None else imageio_common.decode(data, path)


FORMAT = register(Png())
