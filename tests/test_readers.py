"""The JPEG fast path (simplejpeg) gives exactly imageio's Pillow pixels, in the stored orientation."""

import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from pipeline.io import read_pixels
from pipeline.io.jpeg import decode_fast as decode_jpeg_fast
from pipeline.records import failure_reason

simplejpeg = pytest.importorskip("simplejpeg")

HEIGHT, WIDTH = 61, 86  # not square (a rotation would show) and not multiples of the 8/16-pixel MCU


def scene(seed: int = 0) -> np.ndarray:
    """Gradients, edges and noise: chroma upsampling and the IDCT both matter for it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([x * 3, y * 4, (x * y) % 256], -1) + rng.integers(-50, 50, (HEIGHT, WIDTH, 3))
    rgb[20:30, 10:50] = [250, 10, 40]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def pillow_jpeg(pixels: np.ndarray, mode: str | None = None, **options) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=options.pop("quality", 92), **options)
    return buffer.getvalue()


def orientation_6() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a viewer would show it WIDTH tall
    return exif.tobytes()


CASES = {
    "rgb-420": lambda: pillow_jpeg(scene(), subsampling="4:2:0"),
    "rgb-422": lambda: pillow_jpeg(scene(), subsampling="4:2:2"),
    "rgb-444": lambda: pillow_jpeg(scene(), subsampling="4:4:4"),
    "rgb-440": lambda: simplejpeg.encode_jpeg(scene(), quality=90, colorsubsampling="440"),
    "rgb-411": lambda: simplejpeg.encode_jpeg(scene(), quality=90, colorsubsampling="411"),
    "gray": lambda: pillow_jpeg(scene()[..., 1]),
    "progressive": lambda: pillow_jpeg(scene(1), progressive=True),
    "optimized-q100": lambda: pillow_jpeg(scene(2), optimize=True, quality=100),
    "exif-orientation-6": lambda: pillow_jpeg(scene(3), exif=orientation_6()),
}


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("jpegs")
    paths = {}
    for name, make in CASES.items():
        path = folder / f"{name}.jpg"
        path.write_bytes(make())
        paths[name] = path
    return paths


@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_equals_imageio_exactly(jpegs, name):
    path = jpegs[name]
    reference = np.asarray(iio.imread(path))  # the Pillow plugin, default settings (rotate=False)
    fast = decode_jpeg_fast(path.read_bytes())
    assert fast is not None, "simplejpeg should take this file"
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_array_equal(fast, reference)
    pixels = read_pixels(str(path))
    np.testing.assert_array_equal(pixels, reference)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)  # stored grid, whatever the EXIF orientation says


def test_exif_orientation_is_not_applied(jpegs):
    path = jpegs["exif-orientation-6"]
    with Image.open(path) as image:
        assert image.getexif().get(0x0112) == 6
    assert read_pixels(str(path)).shape == (HEIGHT, WIDTH, 3)


def test_gray_stays_two_dimensional(jpegs):
    assert read_pixels(str(jpegs["gray"])).shape == (HEIGHT, WIDTH)


def test_cmyk_falls_back_to_imageio(tmp_path):
    """simplejpeg would convert CMYK to RGB; Pillow keeps 4 (Adobe-inverted) channels."""
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(pillow_jpeg(scene(), mode="CMYK"))
    assert decode_jpeg_fast(path.read_bytes()) is None
    pixels = read_pixels(str(path))
    assert pixels.shape == (HEIGHT, WIDTH, 4)
    np.testing.assert_array_equal(pixels, iio.imread(path))


def test_fast_dct_would_not_match(jpegs):
    """Why the fast path never passes fastdct/fastupsample: they change pixels."""
    data = jpegs["rgb-420"].read_bytes()
    reference = np.asarray(iio.imread(data, extension=".jpg"))
    fast = simplejpeg.decode_jpeg(data, fastdct=True, fastupsample=True)
    assert not np.array_equal(fast, reference)


@pytest.mark.parametrize("name", ["shot.JPG", "shot.jpeg"])
def test_extension_variants(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CASES["rgb-420"]())
    np.testing.assert_array_equal(read_pixels(str(path)), iio.imread(path, extension=".jpg"))


def test_remote_jpeg_through_fsspec():
    fsspec = pytest.importorskip("fsspec")
    data = CASES["rgb-444"]()
    with fsspec.open("memory://bench/remote.jpg", "wb") as fh:
        fh.write(data)
    np.testing.assert_array_equal(read_pixels("memory://bench/remote.jpg"), iio.imread(data, extension=".jpg"))


def test_broken_jpegs_fail_as_before(tmp_path):
    good = CASES["rgb-420"]()
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    with pytest.raises(Exception) as info:
        read_pixels(str(garbage))
    assert failure_reason(info.value).startswith("cannot decode")
    with pytest.raises(FileNotFoundError):
        read_pixels(str(tmp_path / "missing.jpg"))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[: len(good) * 2 // 3])
    try:
        expected = np.asarray(iio.imread(truncated))
    except Exception:  # noqa: BLE001 - Pillow refuses it: so must we
        with pytest.raises(Exception):
            read_pixels(str(truncated))
    else:
        np.testing.assert_array_equal(read_pixels(str(truncated)), expected)


# --- PNG: Pillow directly where it equals imageio --------------------------------------------------------------


def _png_bytes(width: int, height: int, depth: int, colour_type: int, rows: bytes) -> bytes:
    """A minimal PNG written by hand (Pillow and imageio cannot write 16-bit RGB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((5, 7, 2), np.uint8), ((5, 7, 3), np.uint8),
                                         ((5, 7, 4), np.uint8), ((5, 7), np.uint16)])
def test_png_fast_path_equals_imageio(tmp_path, shape, dtype):
    from pipeline.io import read_file, read_header
    from pipeline.io.png import decode_fast as decode_png_fast

    pixels = np.random.default_rng(len(shape)).integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)
    path = tmp_path / "a.png"
    iio.imwrite(path, pixels)
    assert decode_png_fast(path.read_bytes()) is not None  # the fast path took it
    decoded = read_file(str(path))[0]
    reference = iio.imread(path)
    assert decoded.dtype == reference.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, reference)
    np.testing.assert_array_equal(decoded, pixels)
    header = read_header(str(path))
    assert (header.shape, header.dtype) == (reference.shape, reference.dtype.name)


def test_png_that_pillow_would_reduce_goes_to_imageio(tmp_path):
    """16-bit RGB: Pillow alone would give 8 bits; the fast path declines and imageio decides."""
    from pipeline.io import read_header
    from pipeline.io.png import decode_fast as decode_png_fast

    rows = b"".join(b"\x00" + bytes(range(i, i + 12)) for i in range(2))  # 2 rows of 2 RGB pixels, 16-bit
    data = _png_bytes(2, 2, 16, 2, rows)
    assert decode_png_fast(data) is None
    path = tmp_path / "rgb16.png"
    path.write_bytes(data)
    header = read_header(str(path))
    assert header.error or header.shape == iio.imread(path).shape
    palette = tmp_path / "p.png"
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).convert("P").save(palette)
    assert decode_png_fast(palette.read_bytes()) is None
    assert read_header(str(palette)).shape == iio.imread(palette).shape


def test_animated_png_is_left_to_imageio(tmp_path):
    """Pillow alone would give the first frame of an APNG; imageio's reading decides instead."""
    from pipeline.io import read_header
    from pipeline.io.png import decode_fast as decode_png_fast

    frames = [Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 200)]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert decode_png_fast(path.read_bytes()) is None
    header = read_header(str(path))
    assert header.error or header.shape == iio.imread(path).shape
