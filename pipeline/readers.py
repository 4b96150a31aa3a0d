"""One file -> pixels or header. Knows formats; knows nothing of dask or statistics.

Coordinates are the stored pixel grid: EXIF orientation is never applied (imageio's pillow
plugin leaves ``rotate=False``), and raw files give ``raw_image_visible``, the CFA mosaic of
the visible area, never demosaiced. Paths may be local or any fsspec URL; the worker that
calls these opens the file itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
from dataclasses import asdict, dataclass, replace

import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
     ".rw2", ".pef", ".srw", ".erf", ".kdc", ".mrw", ".3fr", ".iiq", ".x3f"}
)
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | RAW_EXTENSIONS


def extension(path: str) -> str:
    """'.jpg' of 'a/b.JPG' or 's3://bucket/b.jpg?version=2' ('' for '.hidden' or no suffix): what
    pathlib.PurePosixPath's suffix gives (but 'x.' -> '.'), at a tenth of its cost: discovery
    asks it of every path."""
    return posixpath.splitext(path.split("?", 1)[0])[1].lower()


def is_supported(path: str) -> bool:
    return extension(path) in SUPPORTED_EXTENSIONS


def is_raw(path: str) -> bool:
    return extension(path) in RAW_EXTENSIONS


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


@dataclass(frozen=True)
class Header:
    """What discovery needs to group files, read without decoding pixels."""

    path: str
    shape: tuple[int, ...] = ()
    dtype: str = ""
    raw: bool = False
    make: str = ""
    model: str = ""
    serial: str = ""
    cfa_pattern: tuple[tuple[int, ...], ...] | None = None
    color_desc: str = ""
    black_level: tuple[float, ...] = ()
    white_level: float | None = None
    size: int = -1
    mtime: float = -1.0
    error: str = ""

    @property
    def camera(self) -> str:
        return " ".join(p for p in (self.make, self.model) if p)

    def group_key(self) -> tuple:
        """Files that may be stacked together: same sensor, same stored layout."""
        return (self.make, self.model, self.serial, self.raw, self.shape, self.dtype)

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def _local_or_bytes(path: str):
    """Yield something imageio/rawpy can open: the local path, or the remote bytes."""
    yield io.BytesIO(_read_bytes(path)) if is_remote(path) else _local(path)


def file_stat(path: str) -> tuple[int, float]:
    """Size and modification time (-1 where a remote store does not say)."""
    if is_remote(path):
        import fsspec

        fs, p = fsspec.core.url_to_fs(path)
        info = fs.info(p)
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or -1
        mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else mtime
        return int(info.get("size") or -1), float(mtime) if isinstance(mtime, (int, float)) else -1.0
    st = os.stat(_local(path))
    return st.st_size, st.st_mtime


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value or "").replace("\x00", "").strip()


def read_header(path: str) -> Header:
    """Shape, dtype and camera identity without decoding pixels. Never raises: errors go
    into ``Header.error`` so one bad file cannot stop discovery."""
    try:
        size, mtime = file_stat(path)
        if size == 0:
            return Header(path, size=0, mtime=mtime, error="empty file")
        with _local_or_bytes(path) as src:
            header = _raw_header(path, src) if is_raw(path) else _image_header(path, src)
        return replace(header, size=size, mtime=mtime)  # not asdict: it deep-copies, a third of a PNG's probe
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot use this file"
        return Header(path, error=failure_reason(exc))


def _image_header(path: str, src) -> Header:
    if extension(path) == ".png":
        fast = _png_header_fast(path, src)
        if fast is not None:
            return fast
    import imageio.v3 as iio

    with iio.imopen(src, "r", extension=extension(path)) as f:
        props = f.properties()
        try:
            meta = f.metadata()
        except Exception:  # noqa: BLE001 - metadata is a bonus, shape/dtype are what count
            meta = {}
    make, model, serial = _text(meta.get("Make")), _text(meta.get("Model")), _text(meta.get("BodySerialNumber"))
    return Header(path, shape=tuple(int(s) for s in props.shape), dtype=np.dtype(props.dtype).name,
                  make=make, model=model, serial=serial)


def _raw_header(path: str, src) -> Header:
    import rawpy

    with rawpy.imread(src) as raw:
        shape = tuple(int(s) for s in raw.raw_image_visible.shape)
        pattern = tuple(tuple(int(v) for v in row) for row in np.asarray(raw.raw_pattern))
        desc = _text(raw.color_desc)
        black = tuple(float(b) for b in raw.black_level_per_channel)
        white = float(raw.white_level)
    make, model, serial = _raw_identity(src)
    return Header(path, shape=shape, dtype="uint16", raw=True, make=make, model=model, serial=serial,
                  cfa_pattern=pattern, color_desc=desc, black_level=black, white_level=white)


def _raw_identity(src) -> tuple[str, str, str]:
    """Make/model/serial of a raw file from its TIFF/EXIF tags, where the container has them."""
    try:
        import tifffile

        if isinstance(src, io.BytesIO):
            src.seek(0)
        with tifffile.TiffFile(src) as tif:
            tags = tif.pages[0].tags
            get = lambda code: _text(tags[code].value) if code in tags else ""  # noqa: E731
            serial = get(50735) or get(42033)  # DNG CameraSerialNumber, EXIF BodySerialNumber
            return get(271), get(272), serial
    except Exception:  # noqa: BLE001 - CR3/RAF and others are not TIFF containers
        return "", "", ""


_JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg"})


def read_pixels(path: str) -> np.ndarray:
    """Decode one file to its stored pixel grid (raw: the visible CFA mosaic, copied)."""
    return read_file(path)[0]


def read_file(path: str, out: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """The pixels and a content digest of one file, from a single read of its bytes.

    ``out``, if given, is where the caller wants the pixels: a JPEG of exactly that shape and
    dtype is decoded straight into it (no fresh frame-sized allocation, no copy), and the
    array returned is then ``out`` itself. Any other file returns its own array.

    The digest (BLAKE2b-128 of the bytes) lets --merge recognise a photo it has counted
    before under another path. JPEGs take a fast path through simplejpeg (libjpeg-turbo)
    where it is known to give the very same array as imageio's Pillow path (see
    ``_decode_jpeg_fast``); anything it refuses falls back to imageio, which then decides
    and names the error.
    """
    data = _read_bytes(path)
    return _decode(data, path, out), hashlib.blake2b(data, digest_size=16).hexdigest()


def _decode(data: bytes, path: str, out: np.ndarray | None = None) -> np.ndarray:
    ext = extension(path)
    if ext in _JPEG_EXTENSIONS:
        pixels = _decode_jpeg_fast(data, out)
        if pixels is not None:
            return pixels
    if ext == ".png":
        pixels = _decode_png_fast(data)
        if pixels is not None:
            return pixels
    if is_raw(path):
        import rawpy

        with rawpy.imread(io.BytesIO(data)) as raw:
            return raw.raw_image_visible.copy()
    import imageio.v3 as iio

    return np.asarray(iio.imread(data, extension=ext))


def _read_bytes(path: str) -> bytes:
    if is_remote(path):
        import fsspec

        with fsspec.open(path, "rb") as fh:
            return fh.read()
    with open(_local(path), "rb") as fh:
        return fh.read()


# JPEG colour spaces for which simplejpeg's default decode (accurate integer DCT, fancy
# upsampling) equals Pillow's pixel for pixel; tests/test_readers.py checks every
# subsampling (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), progressive and EXIF-rotated files.
# CMYK/YCCK (Pillow keeps 4 channels, Adobe-inverted) and anything unusual go to imageio.
_FAST_JPEG_COLORSPACES = {"YCbCr": "RGB", "Gray": "GRAY"}


def _decode_jpeg_fast(data: bytes, out: np.ndarray | None = None) -> np.ndarray | None:
    """simplejpeg's decode in the stored orientation, or None to let imageio handle the file.

    Never pass ``fastdct``/``fastupsample``: those trade exactness for speed and no longer
    match Pillow. ``strict`` stays on, so a file with recoverable damage (which Pillow may
    still decode) is left to imageio rather than decoded differently.
    """
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - optional speed-up
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        target = _FAST_JPEG_COLORSPACES.get(colorspace)
        if target is None:
            return None
        shape = (height, width) if target == "GRAY" else (height, width, 3)
        into = out if out is not None and out.shape == shape and out.dtype == np.uint8 \
            and out.flags.c_contiguous and out.flags.writeable else None
        pixels = simplejpeg.decode_jpeg(data, colorspace=target, fastdct=False, fastupsample=False, buffer=into)
    except Exception:  # noqa: BLE001 - malformed, truncated or unsupported: imageio decides
        return None
    if into is not None:
        return into
    return pixels.reshape(height, width) if target == "GRAY" else pixels


# PNG modes for which Pillow's own array is exactly what imageio's Pillow plugin returns, as
# (mode, raw mode of every tile) -> (extra axes, dtype); tests/test_readers.py checks each. A
# 16-bit RGB PNG (raw mode RGB;16B), palettes and anything else go to imageio.
_FAST_PNG_MODES = {
    ("L", "L"): ((), "uint8"),
    ("LA", "LA"): ((2,), "uint8"),
    ("RGB", "RGB"): ((3,), "uint8"),
    ("RGBA", "RGBA"): ((4,), "uint8"),
    ("I;16", "I;16B"): ((), "uint16"),
}


def _png_layout(image) -> tuple[tuple[int, ...], str] | None:
    """(extra axes, dtype) of a PNG Pillow has opened, or None if imageio should decide."""
    rawmodes = {tile[3] if isinstance(tile[3], str) else tile[3][0] for tile in image.tile or []}
    if len(rawmodes) != 1 or getattr(image, "n_frames", 1) != 1:  # an animated PNG is imageio's to read
        return None
    return _FAST_PNG_MODES.get((image.mode, rawmodes.pop()))


def _png_header_fast(path: str, src) -> Header | None:
    """A PNG's shape and dtype from its IHDR through Pillow (about 10x imageio's probe), or None."""
    from PIL import Image

    try:
        with Image.open(src, formats=["PNG"]) as image:
            layout = _png_layout(image)
            if layout is None:
                return None
            make = model = serial = ""
            if "exif" in image.info:  # an eXIf chunk before the pixels (getexif() would decode them to look further)
                exif = image.getexif()
                make, model = _text(exif.get(271)), _text(exif.get(272))
                serial = _text(exif.get_ifd(0x8769).get(42033))
            width, height = image.size
    except Exception:  # noqa: BLE001 - let imageio decide and name the error
        return None
    return Header(path, shape=(height, width, *layout[0]), dtype=layout[1], make=make, model=model, serial=serial)


def _decode_png_fast(data: bytes) -> np.ndarray | None:
    """A PNG decoded by Pillow directly (imageio's per-call plugin dispatch costs more than a
    small PNG's decode), where the result is known to equal imageio's; else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            layout = _png_layout(image)
            if layout is None:
                return None
            pixels = np.asarray(image)
    except Exception:  # noqa: BLE001 - truncated or malformed: imageio decides and names the error
        return None
    return pixels.astype(layout[1], copy=False)


def failure_reason(exc: BaseException) -> str:
    """One line a user can act on."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"cannot decode: {text[:200]}"

