"""TIFF (8/16-bit, RGB or gray; a gray one may be a CFA mosaic, declared with ``--cfa``).

imageio reads a file's first series (every page of it), which its header's IFD may declare at
any size: the series' shape is checked against ``limits`` before imageio allocates it.
"""

from __future__ import annotations

import io
from typing import IO

import numpy as np

from . import imageio_common
from .header import Header
from .limits import check_shape
from .registry import register


def check_declared(data: bytes) -> None:
    """Refuse a TIFF whose first series (what imageio reads) is over the limit; a file tifffile
    cannot parse is left to imageio to name."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            shape = tuple(tif.series[0].shape) if tif.series else ()
    except Exception:  # noqa: BLE001 - imageio decides and names the error
        return
    check_shape(shape)


class Tiff:
    name = "tiff"
    suffixes = frozenset({".tif", ".tiff"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        check_declared(data)
        return imageio_common.decode(data, path)


FORMAT = register(Tiff())
