"""imageio's Pillow and tifffile plugins: the reference decoder of the 8/16-bit image formats.

The fast paths of ``jpeg.py`` and ``png.py`` are only taken where they are known to give
exactly imageio's array; anything else comes here, and imageio decides and names the error.
Coordinates are the stored grid: imageio's Pillow plugin leaves ``rotate=False``, so EXIF
orientation is never applied. The shape imageio declares (every frame of an animated PNG, which
it reads all of) is checked against ``limits`` before it decodes anything.
"""

from __future__ import annotations

from typing import IO

import numpy as np

from . import exif
from .header import Header
from .limits import check_shape, pillow
from .source import extension, text


def probe(path: str, source: str | IO[bytes]) -> Header:
    """Shape, dtype, and from the EXIF the camera's make, model and serial and the shooting data."""
    import imageio.v3 as iio

    pillow()  # Pillow's bomb limit is ours before imageio's plugin opens the file
    with iio.imopen(source, "r", extension=extension(path)) as f:  # type: ignore[call-overload]
        props = f.properties()
        check_shape(tuple(props.shape))
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
    Image = pillow()

    try:
        if not isinstance(source, str):
            source.seek(0)
        with Image.open(source) as image:
            return exif.from_pillow(image)
    except Exception:  # noqa: BLE001 - a file Pillow cannot open has no shooting data for us
        return exif.ShootingData()


def decode(data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
    """The pixels of a file's bytes (``out`` is not used: imageio makes its own array): what
    ``iio.imread`` gives, once the shape it declares (``probe``'s) is known to be within the limit,
    and only where it is that shape. A damaged TIFF may decode to an empty array, or a multi-page
    one to more than its first page: an error, not pixels of another shape."""
    import imageio.v3 as iio

    pillow()
    with iio.imopen(data, "r", extension=extension(path)) as f:
        declared = tuple(int(s) for s in f.properties().shape)
        check_shape(declared)
        pixels = np.asarray(f.read())
    if pixels.shape != declared:
        raise ValueError(f"decodes to {_fmt(pixels.shape)} values where its header declares {_fmt(declared)}")
    return pixels


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)
