"""Reading any format by path: suffix variants, remote files through fsspec, and why a file fails."""

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.io import read_pixels
from pipeline.records import failure_reason

from .jpegs import CASES


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
    except Exception:  # Pillow refuses it: so must we
        with pytest.raises(Exception):  # noqa: B017 - whatever Pillow raises, ours must raise too
            read_pixels(str(truncated))
    else:
        np.testing.assert_array_equal(read_pixels(str(truncated)), expected)
