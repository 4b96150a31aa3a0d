"""A collection's frames on disk, with the shooting data a camera writes, readable by standard tools.

Each frame carries Make/Model (271/272), DateTime (306) and, in the EXIF sub-IFD (0x8769),
ExposureTime (33434, a rational), ISOSpeedRatings/PhotographicSensitivity (34855),
DateTimeOriginal (36867, "YYYY:MM:DD HH:MM:SS", UTC), OffsetTimeOriginal (36881, "+00:00") and
BodySerialNumber (42033):

- JPEG and PNG (``eXIf`` chunk) through Pillow's ``exif=``; TIFF (8-bit RGB and 16-bit
  mosaic) through Pillow's ``tiffinfo=``, which writes the EXIF sub-IFD (tifffile cannot).
  Pillow's ``Image.open(f).getexif()`` and ``.get_ifd(0x8769)`` read them back.
- DNG through pidng: IFD0 holds Make/Model/UniqueCameraModel/CameraSerialNumber (50735),
  DateTime and, as TIFF/EP places them, ExposureTime, PhotographicSensitivity and
  DateTimeOriginal. LibRaw reads ExposureTime there but neither ISO nor DateTimeOriginal
  (``rawpy``'s ``other.iso_speed`` 0, ``other.timestamp`` 1970): it reads those from the EXIF
  sub-IFD, so the DNG has one too, with the same values. pidng's own IFD tag type cannot be
  built (it concatenates str and bytes), so the sub-IFD tag is a LONG carrying pidng's sub-IFD.

The 8-bit formats are developed as a camera's JPEG engine does (``in_camera.develop_levels``):
the frame is brightened by the inverse of the metering error, so the scene looks normally
exposed; hot sensels are scaled by the same development.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .in_camera import develop_levels
from .physics import CollectionSensor, Shot
from .writers import dng_bytes, dng_tags

EXIF_IFD = 0x8769
EXPOSURE_TIME, ISO_SPEED, DATE_ORIGINAL, OFFSET_ORIGINAL, BODY_SERIAL = 33434, 34855, 36867, 36881, 42033
MAKE_TAG, MODEL_TAG, DATE_TIME, EXIF_VERSION = 271, 272, 306, 36864
UTC_OFFSET = "+00:00"


@dataclass(frozen=True)
class CameraId:
    """Who took the frames: what a raw converter or a bad-pixel map is named after."""

    make: str
    model: str
    serial: str


def exif_time(unix: float) -> str:
    """EXIF's "YYYY:MM:DD HH:MM:SS" of a Unix time (UTC)."""
    return time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(unix))


def _exif(shot: Shot, ident: CameraId) -> Any:
    """Pillow ``Exif`` of a frame: IFD0 and the EXIF sub-IFD."""
    from PIL import Image, TiffImagePlugin

    exif = Image.Exif()
    exif[MAKE_TAG], exif[MODEL_TAG], exif[DATE_TIME] = ident.make, ident.model, exif_time(shot.unix)
    sub = exif.get_ifd(EXIF_IFD)
    sub.update(_exif_sub(shot, ident, TiffImagePlugin.IFDRational))
    return exif


def _exif_sub(shot: Shot, ident: CameraId, rational: Any) -> dict[int, Any]:
    stamp = exif_time(shot.unix)
    return {
        EXIF_VERSION: b"0232",
        EXPOSURE_TIME: rational(shot.exposure.numerator, shot.exposure.denominator),
        ISO_SPEED: int(shot.iso),
        DATE_ORIGINAL: stamp,
        OFFSET_ORIGINAL: UTC_OFFSET,
        BODY_SERIAL: ident.serial,
    }


def _tiff_info(shot: Shot, ident: CameraId) -> Any:
    """Pillow TIFF tags of a frame, the EXIF sub-IFD as a nested directory."""
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[MAKE_TAG], ifd[MODEL_TAG], ifd[DATE_TIME] = ident.make, ident.model, exif_time(shot.unix)
    ifd[EXIF_IFD] = _exif_sub(shot, ident, TiffImagePlugin.IFDRational)
    return ifd


def write_dng_with_exif(path: Path, mosaic: np.ndarray, shot: Shot, ident: CameraId, sensor: CollectionSensor) -> None:
    """A CFA DNG (see ``writers.dng_tags``) with the shooting data in IFD0 and in an EXIF sub-IFD."""
    t = dng_tags(mosaic.shape, sensor.black_level, sensor.white_level, sensor.wb, ident.make, ident.model)
    from pidng.dng import Tag, Type, dngIFD, dngTag  # after dng_tags, which says how to install pidng

    stamp = exif_time(shot.unix)
    exposure = [[shot.exposure.numerator, shot.exposure.denominator]]
    t.set(Tag.CameraSerialNumber, ident.serial)
    t.set(Tag.DateTime, stamp)
    t.set(Tag.ExposureTime, exposure)
    t.set(Tag.PhotographicSensitivity, int(shot.iso))
    t.set(Tag.DateTimeOriginal, stamp)
    sub = dngIFD()
    sub.tags += [
        dngTag(Tag.ExifVersion, list(b"0232")),
        dngTag(Tag.ExposureTime, exposure),
        dngTag(Tag.PhotographicSensitivity, [int(shot.iso)]),
        dngTag(Tag.DateTimeOriginal, stamp),
        dngTag((OFFSET_ORIGINAL, Type.Ascii), UTC_OFFSET),
        dngTag(Tag.EXIFPhotoBodySerialNumber, ident.serial),
    ]
    pointer = dngTag((EXIF_IFD, Type.Long), [0])  # written as a LONG offset to the sub-IFD
    pointer.subIFD = sub
    t.__tags__[Tag.EXIF_IFD] = pointer
    path.write_bytes(dng_bytes(t, mosaic))


def write_collection_frame(
    path: Path, fmt: str, mosaic: np.ndarray, shot: Shot, ident: CameraId, sensor: CollectionSensor
) -> None:
    """Encode one frame of a collection in ``fmt`` (any of ``writers.FORMATS``) with its metadata."""
    if fmt == "dng":
        write_dng_with_exif(path, mosaic, shot, ident, sensor)
        return
    from PIL import Image

    if fmt in ("tiff16", "png16"):
        data = mosaic
    else:
        data = develop_levels(mosaic, sensor.wb, sensor.black_level, sensor.white_level, gain=1.0 / shot.ratio)
    image = Image.fromarray(data)  # 16-bit mosaics: mode I;16
    if fmt in ("tiff", "tiff16"):
        image.save(path, format="TIFF", tiffinfo=_tiff_info(shot, ident))
    elif fmt == "jpeg":
        image.save(path, format="JPEG", quality=92, exif=_exif(shot, ident))
    else:
        image.save(path, format="PNG", compress_level=1, exif=_exif(shot, ident))
