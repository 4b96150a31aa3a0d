"""PNG: Pillow directly where its array is exactly imageio's (imageio's per-call plugin dispatch
costs more than a small PNG's decode), imageio for everything else."""

from __future__ import annotations

import io
from typing import IO

import numpy as np

from . import exif, imageio_common
from .header import Header
from .registry import register

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


def probe_fast(path: str, source: str | IO[bytes]) -> Header | None:
    """A PNG's shape and dtype from its IHDR through Pillow (about 10x imageio's probe), or None."""
    from PIL import Image

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
    from PIL import Image

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
        if isinstance(source, io.BytesIO):
            source.seek(0)
        fast = probe_fast(path, source)
        if fast is not None:
            return fast
        if isinstance(source, io.BytesIO):
            source.seek(0)
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        pixels = decode_fast(data)
        return pixels if pixels is not None else imageio_common.decode(data, path)


FORMAT = register(Png())
