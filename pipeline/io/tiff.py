"""TIFF (8/16-bit, RGB or gray; a gray one may be a CFA mosaic, declared with ``--cfa``).

A TIFF of 32-bit floats (Siril and PixInsight save them normalised to 0..1) or of wider integers
is read as 16-bit where that is exact, as FITS is (``exact.as_stored``); a calibrated one (negative
values, fractions of a DN) is skipped with the reason, never rounded.

imageio reads a file's first series (every page of it), which its header's IFD may declare at
any size: the series' shape is checked against ``limits`` before imageio allocates it. A file
whose first series has many pages (a movie or a burst saved as one stack) is many frames, read
one by one (``tiff_pages``); they share the first page's EXIF.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import IO

import numpy as np

from . import imageio_common
from .exact import as_scanned, scanned_dtype
from .header import Header
from .limits import check_shape, missing_frames
from .registry import register
from .source import file_stat, frame_ref
from .tiff_pages import parse, read_page


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
        header = imageio_common.probe(path, source)
        return replace(header, dtype=scanned_dtype(header.dtype))

    def probe_frames(self, path: str, source: str | IO[bytes]) -> list[Header]:
        """The file's header, or one per page of a stack (those the file holds whole; a page cut
        off by the file's end has the reason)."""
        try:
            pages = parse(source, len(source.getbuffer()) if isinstance(source, io.BytesIO) else file_stat(path)[0])
        except Exception:  # noqa: BLE001 - imageio decides and names the error of a file tifffile cannot parse
            return [self.probe(path, source)]
        if pages.count <= 1:
            return [self.probe(path, source)]
        check_shape(pages.shape)
        shot = imageio_common.shooting_data(source)
        one = Header(path, shape=pages.shape, dtype=scanned_dtype(np.dtype(pages.dtype).newbyteorder("=")),
                     make=shot.make, model=shot.model, serial=shot.serial, exposure=shot.exposure, iso=shot.iso,
                     time=shot.time, temperature=shot.temperature)
        cut = f"the TIFF is truncated: it holds {pages.whole} of its {pages.count} frames whole"
        return ([replace(one, path=frame_ref(path, i)) for i in range(pages.whole)]
                + missing_frames(path, pages.whole, pages.count, cut))

    def read_frame(self, path: str, index: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bytes]:
        return read_page(path, index, out)

    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        check_declared(data)
        return as_scanned(imageio_common.decode(data, path))


FORMAT = register(Tiff())
