"""imageio's Pillow and tifffile plugins: the reference decoder of the 8/16-bit image formats.

The fast paths of ``jpeg.py`` and ``png.py`` are only taken where they are known to give
exactly imageio's array; anything else comes here, and imageio decides and names the error.
Coordinates are the stored grid: imageio's Pillow plugin leaves ``rotate=False``, so EXIF
orientation is never applied.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from . import exif
from .header import Header
from .source import extension, text


def probe(path: str, source: str | IO[bytes]) -> Header:
    """Shape, dtype, and from the EXIF the camera's make, model and serial and the shooting data."""
    import imageio.v3 as iio

    with iio.imopen(source, "r", extension=extension(path)) as f:  # type: ignore[call-overload]
        props = f.properties()
        try:
            meta = f.metadata()
        except Exception:  # noqa: BLE001 - metadata is a bonus, shape/dtype are what count
            meta = {}
    make, model, serial = text(meta.get("Make")), text(meta.get("Model")), text(meta.get("BodySerialNumber"))
    shot = shooting_data(source)
    return Header(path, shape=tuple(int(s) for s in props.shape), dtype=np.dtype(props.dtype).name,
                  make=make or shot.make, model=model or shot.model, serial=serial or shot.serial,
                  exposure=shot.exposure, iso=shot.iso, time=shot.time, temperature=shot.temperature)


def shooting_data(source: str | IO[bytes]) -> exif.ShootingData:
    """The EXIF shooting data through Pillow (which reads only the header), or none."""
    from PIL import Image

    try:
        if not isinstance(source, str):
            source.seek(0)
        with Image.open(source) as image:
            return exif.from_pillow(image)
    except Exception:  # noqa: BLE001 - a file Pillow cannot open has no shooting data for us
        return exif.ShootingData()


def decode(data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
    """The pixels of a file's bytes (``out`` is not used: imageio makes its own array)."""
    import imageio.v3 as iio

    return np.asarray(iio.imread(data, extension=extension(path)))
