"""The PNG fast path (Pillow directly) gives exactly imageio's pixels, and declines what it would change."""

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image


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
