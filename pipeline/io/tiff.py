"""TIFF (8/16-bit, RGB or gray; a gray one may be a CFA mosaic, declared with ``--cfa``)."""

from __future__ import annotations

from typing import IO

import numpy as np

from . import imageio_common
from .header import Header
from .registry import register


class Tiff:
    name = "tiff"
    suffixes = frozenset({".tif", ".tiff"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        return imageio_common.probe(path, source)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        return imageio_common.decode(data, path)


FORMAT = register(Tiff())
