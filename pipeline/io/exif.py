"""Shooting data from EXIF (JPEG, PNG eXIf, TIFF) through Pillow, without decoding pixels.

ExposureTime (33434), ISOSpeedRatings / PhotographicSensitivity (34855), DateTimeOriginal
(36867, with OffsetTimeOriginal 36881 where the camera wrote its zone) and the EXIF 2.31
ambient Temperature (37888) live in the EXIF sub-IFD (0x8769); some writers put them in IFD0.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import dataclass
from typing import Any

EXIF_IFD = 0x8769
EXPOSURE_TIME, ISO_SPEED, DATE_ORIGINAL, OFFSET_ORIGINAL, TEMPERATURE = 33434, 34855, 36867, 36881, 37888
MAKE, MODEL, BODY_SERIAL = 271, 272, 42033
_DATE = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})")


@dataclass(frozen=True)
class ShootingData:
    exposure: float | None = None
    iso: float | None = None
    time: float | None = None
    temperature: float | None = None
    gain: float | None = None  # a camera's own gain setting (FITS GAIN), in its own units
    make: str = ""
    model: str = ""
    serial: str = ""


def number(value: Any) -> float | None:
    """A finite float from an EXIF number (rational, tuple, bytes), or None."""
    try:
        if isinstance(value, (tuple, list)):
            value = value[0] if len(value) == 1 else value[0] / value[1] if len(value) == 2 and value[1] else None
        out = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out if math.isfinite(out) else None


def parse_time(text: Any, offset: Any = None) -> float | None:
    """Unix seconds of an EXIF date ("YYYY:MM:DD HH:MM:SS"), UTC unless an offset ("+02:00") is given."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    match = _DATE.match(str(text or ""))
    if not match:
        return None
    try:
        fields = [int(g) for g in match.groups()]
        seconds = calendar.timegm(time.struct_time((*fields, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None
    if isinstance(offset, bytes):
        offset = offset.decode("ascii", "replace")
    zone = _OFFSET.match(str(offset or ""))
    if zone:
        sign = 1 if zone.group(1) == "+" else -1
        seconds -= sign * (int(zone.group(2)) * 3600 + int(zone.group(3)) * 60)
    return float(seconds)


def from_pillow(image) -> ShootingData:
    """The shooting data of an image Pillow has opened (its EXIF; the pixels stay undecoded)."""
    from .source import text

    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - a broken EXIF block is no shooting data, not an unreadable image
        return ShootingData()
    try:
        sub = dict(exif.get_ifd(EXIF_IFD))
    except Exception:  # noqa: BLE001
        sub = {}

    def tag(code: int) -> Any:
        return sub.get(code, exif.get(code))

    iso = tag(ISO_SPEED)
    return ShootingData(exposure=number(tag(EXPOSURE_TIME)), iso=number(iso), time=parse_time(tag(DATE_ORIGINAL),
                        tag(OFFSET_ORIGINAL)), temperature=number(tag(TEMPERATURE)), make=text(exif.get(MAKE)),
                        model=text(exif.get(MODEL)), serial=text(tag(BODY_SERIAL)))
