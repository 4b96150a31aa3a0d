"""Camera raw through LibRaw (rawpy): ``raw_image_visible``, the CFA mosaic of the visible
area, one value per sensel, never demosaiced; its pattern, colours and levels from the file.

Opening a file reads its sizes only; the first touch of ``raw_image_visible`` unpacks the whole
raw: the stored size is checked against ``limits`` in between (``check_declared``).

rawpy unpacks for the pattern, the levels and the shooting data too, so a header read through it
costs a whole decode (50 ms of a 12 MP DNG, several times that of a compressed 45 MP raw), and
discovery would decode every file once more than the scan does. So a file is read in full only
where it is the first of its camera and visible area in this process (``light_reading``: make,
model, serial, LibRaw's sizes and colours, read without an unpack): that header is the template
of the files that follow it, which take its layout and levels, and their own shooting data from
their EXIF, read as LibRaw reads it. A template is kept only where its own EXIF reading equals
LibRaw's; where it does not, every file of that camera is read in full, and so is a file whose
EXIF lacks a value its template's has, or holds the ISO tag's 65535 cap (an ISO LibRaw takes from
the maker's notes there).
"""

from __future__ import annotations

import calendar
import io
import threading
from dataclasses import dataclass, replace
from typing import IO

import numpy as np

from ..layout import SensorLayout
from . import exif
from .header import Header
from .limits import check_frame
from .registry import register
from .source import text


@dataclass(frozen=True)
class Tags:
    """What a raw file's TIFF container says: make, model, serial, and the shooting data of its
    EXIF as LibRaw reads them (``exif_shot``; None where the container has no such EXIF)."""

    make: str = ""
    model: str = ""
    serial: str = ""
    shot: exif.ShootingData | None = None


def container_tags(source: str | IO[bytes]) -> Tags:
    """The ``Tags`` of a raw file's TIFF container, where it is one (DNG, NEF, CR2, ARW, PEF...)."""
    try:
        import tifffile

        if isinstance(source, io.BytesIO):
            source.seek(0)
        with tifffile.TiffFile(source) as tif:
            tags = tif.pages.first.tags  # the first page is always a whole TiffPage
            get = lambda code: text(tags[code].value) if code in tags else ""
            serial = get(50735) or get(42033)  # DNG CameraSerialNumber, EXIF BodySerialNumber
            sub = tags[exif.EXIF_IFD].value if exif.EXIF_IFD in tags else None
            return Tags(get(271), get(272), serial, exif_shot(sub if isinstance(sub, dict) else {}))
    except Exception:  # noqa: BLE001 - CR3/RAF and others are not TIFF containers
        return Tags()


# the ISO tag's largest value: a camera past it writes 65535 and its ISO elsewhere (LibRaw reads the maker's notes)
ISO_CAP = 65535


def exif_shot(sub: dict) -> exif.ShootingData | None:
    """The shooting data of an EXIF sub-IFD (tifffile's dict of it; empty where the file has
    none) as LibRaw gives them (``shooting_data``): its ExposureTime and ISO as float32 (LibRaw's
    ``shutter`` and ``iso_speed``), None where absent or 0; its DateTimeOriginal as wall-clock
    UTC, the zone ignored. None where LibRaw may read a value elsewhere: an ISO at the tag's cap."""
    exposure = exif.number(sub.get("ExposureTime"))
    iso = exif.number(sub.get("ISOSpeedRatings", sub.get("PhotographicSensitivity")))
    if iso is not None and iso >= ISO_CAP:
        return None
    single = lambda value: float(np.float32(value)) if value else None
    when = exif.parse_time(sub.get("DateTimeOriginal"))
    return exif.ShootingData(exposure=single(exposure), iso=single(iso), time=when)


@dataclass(frozen=True)
class LightReading:
    """What a raw file says without an unpack: its camera and LibRaw's sizes and colours (the
    ``key`` its template is kept under), its visible shape and margins, its EXIF shooting data."""

    key: tuple
    shape: tuple[int, int]
    margins: tuple[int, int, int, int]
    shot: exif.ShootingData


def margins_of(sizes) -> tuple[int, int, int, int]:
    """Where LibRaw's visible area sits in the stored raw: (top, left, raw height, raw width)."""
    return int(sizes.top_margin), int(sizes.left_margin), int(sizes.raw_height), int(sizes.raw_width)


def light_reading(source: str | IO[bytes], tags: Tags) -> LightReading | None:
    """A raw file's ``LightReading`` (``tags``: its container's), or None where its container
    holds no usable EXIF."""
    import rawpy

    if tags.shot is None:
        return None
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with rawpy.imread(source) as raw:  # type: ignore[arg-type]
        check_declared(raw)
        sizes = raw.sizes
        shape = (int(sizes.height), int(sizes.width))
        key = (tags.make, tags.model, tags.serial, tuple(sizes), text(raw.color_desc), int(raw.num_colors))
    return LightReading(key, shape, margins_of(sizes), tags.shot)


def agrees(header: Header, light: LightReading) -> bool:
    """Whether a file's full header and its light reading say the same: the same visible mosaic
    (a linear raw's has channels) and the same shooting data, number for number."""
    return (header.shape == light.shape and tuple(header.raw_margins) == light.margins
            and (header.exposure, header.iso, header.time) == (light.shot.exposure, light.shot.iso, light.shot.time))


def _same_values(template: Header, shot: exif.ShootingData) -> bool:
    """Whether a file's EXIF has every shooting value its template's had (LibRaw may find one
    elsewhere where the EXIF has none)."""
    return ((template.exposure is None, template.iso is None, template.time is None)
            == (shot.exposure is None, shot.iso is None, shot.time is None))


# per process: a camera's template header (by its light reading's key), or None where its EXIF
# disagreed with LibRaw's reading; a few cameras at most, kept for the process's later scans
_TEMPLATES: dict[tuple, Header | None] = {}
_TEMPLATES_LOCK = threading.Lock()
TEMPLATES_KEPT = 64


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
        """The file's header: from its camera's template where this process has one (no unpack),
        else read in full (``probe_full``), and then kept as the template if it may be one."""
        tags = container_tags(source)
        light = light_reading(source, tags)
        if light is None:
            return self.probe_full(path, source, tags)
        with _TEMPLATES_LOCK:
            known = light.key in _TEMPLATES
            template = _TEMPLATES.get(light.key)
        if template is not None and _same_values(template, light.shot):
            return replace(template, path=path, exposure=light.shot.exposure, iso=light.shot.iso,
                           time=light.shot.time)
        header = self.probe_full(path, source, tags)
        if not known:
            with _TEMPLATES_LOCK:
                if len(_TEMPLATES) >= TEMPLATES_KEPT:
                    _TEMPLATES.clear()
                _TEMPLATES[light.key] = header if agrees(header, light) else None
        return header

    def probe_full(self, path: str, source: str | IO[bytes], tags: Tags | None = None) -> Header:
        """The file's header, every field read by LibRaw (an unpack); make, model and serial from
        its container's ``tags`` (read here if not given)."""
        import rawpy

        if tags is None:
            tags = container_tags(source)
        if isinstance(source, io.BytesIO):
            source.seek(0)
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
            margins = margins_of(raw.sizes)
        return Header(path, shape=shape, dtype="uint16", raw=True, make=tags.make, model=tags.model, serial=tags.serial,
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
