"""The JPEG fast path (simplejpeg) gives exactly imageio's Pillow pixels, in the stored orientation."""

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from pipeline.io import read_pixels
from pipeline.io.jpeg import decode_fast as decode_jpeg_fast

from .jpegs import CASES, HEIGHT, WIDTH, pillow_jpeg, scene

simplejpeg = pytest.importorskip("simplejpeg")


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
