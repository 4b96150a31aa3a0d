"""Camera raw through LibRaw (rawpy): ``raw_image_visible``, the CFA mosaic of the visible
area, one value per sensel, never demosaiced; its pattern, colours and levels from the file.

Opening a file reads its sizes only; the first touch of ``raw_image_visible`` unpacks the whole
raw: the stored size is checked against ``limits`` in between (``check_declared``)."""

from __future__ import annotations

import calendar
import io
from typing import IO

import numpy as np

from ..layout import SensorLayout
from . import exif
from .header import Header
from .limits import check_frame
from .registry import register
from .source import text


def identity(source: str | IO[bytes]) -> tuple[str, str, str]:
    """Make/model/serial of a raw file from its TIFF/EXIF tags, where the container has them."""
    try:
        import tifffile

        if isinstance(source, io.BytesIO):
            source.seek(0)
        with tifffile.TiffFile(source) as tif:
            tags = tif.pages.first.tags  # the first page is always a whole TiffPage
            get = lambda code: text(tags[code].value) if code in tags else ""
            serial = get(50735) or get(42033)  # DNG CameraSerialNumber, EXIF BodySerialNumber
            return get(271), get(272), serial
    except Exception:  # noqa: BLE001 - CR3/RAF and others are not TIFF containers
        return "", "", ""


def shooting_data(raw) -> exif.ShootingData:
    """Exposure, ISO and capture time as LibRaw parsed them (zero where the file has none).

    LibRaw turns the EXIF date into a time with the local zone and rawpy back into the same
    wall-clock date; read as UTC, it is the EXIF date as ``exif.parse_time`` reads it."""
    try:
        other = raw.other
    except Exception:  # noqa: BLE001 - an older rawpy: no shooting data
        return exif.ShootingData()
    stamp = getattr(other, "timestamp", None)
    unix = float(calendar.timegm(stamp.timetuple())) if stamp is not None and stamp.year > 1970 else None
    return exif.ShootingData(exposure=exif.number(other.shutter_speed) or None,
                             iso=exif.number(other.iso_speed) or None, time=unix)


def check_declared(raw) -> None:
    """Refuse (``limits.TooLarge``) an opened LibRaw file before it unpacks a stored raw over the
    limit: its sizes are read without unpacking (``raw_type`` would unpack). A linear raw's 4
    values per pixel are within the limit of any frame of ``MAX_PIXELS``."""
    sizes = raw.sizes
    check_frame(sizes.raw_height, sizes.raw_width)


class Raw:
    name = "raw"
    suffixes = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                          ".rw2", ".pef", ".srw", ".erf", ".kdc", ".mrw", ".3fr", ".iiq", ".x3f"})

    def probe(self, path: str, source: str | IO[bytes]) -> Header:
        import rawpy

        with rawpy.imread(source) as raw:  # type: ignore[arg-type]
            check_declared(raw)
            shape = tuple(int(s) for s in raw.raw_image_visible.shape)
            desc = text(raw.color_desc)
            if raw.raw_type == rawpy.RawType.Stack:  # linear: every pixel has its colours (no CFA)
                channels = _linear_channels(raw)
                shape = shape[:2] + ((channels,) if channels > 1 else ())
                layout = SensorLayout(None, desc[:channels] if channels > 1 else "L")
            else:
                layout = SensorLayout.of_file(np.asarray(raw.raw_pattern), desc)
            black = tuple(float(b) for b in raw.black_level_per_channel)
            white = float(raw.white_level)
            shot = shooting_data(raw)
            sizes = raw.sizes
            margins = (int(sizes.top_margin), int(sizes.left_margin), int(sizes.raw_height), int(sizes.raw_width))
        make, model, serial = identity(source)
        return Header(path, shape=shape, dtype="uint16", raw=True, make=make, model=model, serial=serial,
                      layout=layout, black_level=black, white_level=white,
                      exposure=shot.exposure, iso=shot.iso, time=shot.time, raw_margins=margins)


    def decode(self, data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
        import rawpy

        with rawpy.imread(io.BytesIO(data)) as raw:  # the visible view is valid only while open: copied
            check_declared(raw)
            if raw.raw_type == rawpy.RawType.Stack:
                channels = _linear_channels(raw)
                pixels = raw.raw_image_visible[..., :channels]
                pixels = pixels[..., 0] if channels == 1 else pixels
            else:
                pixels = raw.raw_image_visible
            if out is not None and out.shape == pixels.shape and out.dtype == pixels.dtype:
                np.copyto(out, pixels)  # straight into the caller's buffer: one copy, not two
                return out
            return pixels.copy()


def _linear_channels(raw) -> int:
    """The colours of a linear raw (LinearRaw DNGs of HDR merges, phones and film scanners):
    LibRaw holds 4 values per pixel, of which the first ``num_colors`` are the file's."""
    channels = int(raw.num_colors)
    if not 1 <= channels <= raw.raw_image_visible.shape[-1]:
        raise ValueError(f"a linear raw of {channels} colours per pixel: cannot tell which values are which")
    return channels


def libraw_version() -> str:
    """The LibRaw that reads raw files here: the raw margins, and so every raw coordinate, are its."""
    import rawpy

    return ".".join(str(v) for v in rawpy.libraw_version)


FORMAT = register(Raw())
