"""Encoders of a frame in each output format, and the formats' names and file extensions.

The 8-bit formats store what a camera would (``in_camera.develop``, then JPEG, PNG or TIFF);
the mosaic formats store the raw 12-bit sensels undemosaiced in 16-bit containers (TIFF, PNG,
or a real CFA DNG through the optional ``pidng``: ``pip install 'hotpixels[synth]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .in_camera import develop
from .sensor import BLACK_LEVEL, MAKE, MODEL, WHITE_LEVEL, SensorModel

# format -> file extension; the mosaic formats keep one value per sensel
FORMATS = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "tiff16": ".tif", "png16": ".png", "dng": ".dng"}
MOSAIC_FORMATS = frozenset({"tiff16", "png16", "dng"})
_ALIASES = {"jpg": "jpeg", "tif": "tiff"}


def canonical_format(fmt: str) -> str:
    """The format name ``fmt`` stands for (case-insensitive, ``jpg`` and ``tif`` accepted)."""
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def write_dng(path: Path, mosaic: np.ndarray, sensor: SensorModel) -> None:
    """A real CFA DNG (uncompressed 16-bit, RGGB, black/white level, Make/Model).

    Tags are built fresh per file: pidng mutates its tag objects while writing, so sharing
    them across threads would corrupt files.
    """
    tags = dng_tags(mosaic.shape, BLACK_LEVEL, WHITE_LEVEL, sensor.wb, MAKE, MODEL)
    path.write_bytes(dng_bytes(tags, mosaic))


def _pidng() -> tuple:
    try:
        from pidng.core import RAW2DNG
        from pidng.defs import CalibrationIlluminant, CFAPattern, Orientation, PhotometricInterpretation
        from pidng.dng import DNGTags, Tag
    except ImportError as exc:  # pidng is an optional extra: hotpixels[synth]
        raise RuntimeError("writing DNG needs the 'pidng' package: pip install 'hotpixels[synth]'") from exc
    return RAW2DNG, CalibrationIlluminant, CFAPattern, Orientation, PhotometricInterpretation, DNGTags, Tag


def dng_tags(
    shape: tuple[int, ...], black: int, white: int, wb: tuple[float, float, float], make: str, model: str
) -> Any:
    """pidng ``DNGTags`` of an uncompressed 16-bit RGGB mosaic of ``shape`` (H, W): add more, then ``dng_bytes``."""
    _, CalibrationIlluminant, CFAPattern, Orientation, PhotometricInterpretation, DNGTags, Tag = _pidng()
    h, w = shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)  # pidng writes the whole image as one tile
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, Orientation.Horizontal)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevelRepeatDim, [1, 1])
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white)
    identity = [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]
    t.set(Tag.ColorMatrix1, identity)
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1000, round(1000 * g)] for g in wb])
    t.set(Tag.Make, make)
    t.set(Tag.Model, model)
    t.set(Tag.UniqueCameraModel, f"{make} {model}")
    return t


def dng_bytes(tags: Any, mosaic: np.ndarray) -> bytes:
    """The DNG file of a 16-bit mosaic with these ``dng_tags``."""
    writer = _pidng()[0]()
    writer.options(tags, path="", compress=False)
    return bytes(writer.convert(np.ascontiguousarray(mosaic, dtype=np.uint16)))


def write_frame(path: Path, fmt: str, mosaic: np.ndarray, sensor: SensorModel) -> None:
    """Encode one frame in ``fmt``."""
    if fmt == "dng":
        write_dng(path, mosaic, sensor)
        return
    import tifffile
    from PIL import Image

    if fmt == "tiff16":
        tifffile.imwrite(path, mosaic, photometric="minisblack", metadata=None)
    elif fmt == "png16":
        Image.fromarray(mosaic).save(path, compress_level=1)  # mode I;16: 16-bit grayscale PNG
    else:
        rgb = develop(mosaic, sensor)
        if fmt == "jpeg":  # a camera JPEG names its maker: RawTherapee's map is named after it
            exif = Image.Exif()
            exif[271], exif[272] = MAKE, MODEL
            Image.fromarray(rgb).save(path, quality=92, exif=exif.tobytes())
        elif fmt == "png":
            Image.fromarray(rgb).save(path, compress_level=1)
        else:
            tifffile.imwrite(path, rgb, photometric="rgb", metadata=None)
