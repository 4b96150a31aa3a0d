"""imageio's Pillow and tifffile plugins: the reference decoder of the 8/16-bit image formats.

The fast paths of ``jpeg.py`` and ``png.py`` are only taken where they are known to give
exactly imageio's array; anything else comes here, and imageio decides and names the error.
Coordinates are the stored grid: imageio's Pillow plugin leaves ``rotate=False``, so EXIF
orientation is never applied.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from .header import Header
from .source import extension, text


def probe(path: str, source: str | IO[bytes]) -> Header:
    """Shape, dtype and the camera's make, model and serial from the EXIF, where present."""
    import imageio.v3 as iio

    with iio.imopen(source, "r", extension=extension(path)) as f:  # type: ignore[call-overload]
        props = f.properties()
        try:
            meta = f.metadata()
        except Exception:  # noqa: BLE001 - metadata is a bonus, shape/dtype are what count
            meta = {}
    make, model, serial = text(meta.get("Make")), text(meta.get("Model")), text(meta.get("BodySerialNumber"))
    return Header(path, shape=tuple(int(s) for s in props.shape), dtype=np.dtype(props.dtype).name,
                  make=make, model=model, serial=serial)


def decode(data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
    """The pixels of a file's bytes (``out`` is not used: imageio makes its own array)."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(data, extension=extension(path)))
