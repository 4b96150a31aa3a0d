"""Linear raws (LinearRaw DNGs of HDR merges, phones and film scanners: LibRaw's
``RawType.Stack``) are read per channel, like RGB, with every value exactly as stored.

The files are real DNGs written by tifffile with the tags LibRaw needs to take them for a camera
raw (DNGVersion, a LinearRaw PhotometricInterpretation, a colour matrix), read back by LibRaw."""

from pathlib import Path

import numpy as np
import tifffile

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.io import read_header, read_pixels

QUIET = {"progress": False, "log": lambda m: None}
LINEAR_RAW = 34892  # TIFF/EP PhotometricInterpretation of a DNG with every colour at every pixel


def write_linear_dng(path: Path, pixels: np.ndarray) -> Path:
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "Nikon LS-5000", True),  # UniqueCameraModel
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
        (271, "s", 0, "Nikon", True),
        (272, "s", 0, "LS-5000", True),
    ]
    tifffile.imwrite(path, pixels, photometric=LINEAR_RAW, planarconfig="contig", extratags=tags, metadata=None)
    return path


def test_a_linear_raw_is_read_per_channel_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, (30, 40, 3), dtype=np.uint16)  # LibRaw takes no side under 22
    path = write_linear_dng(tmp_path / "scan.dng", pixels)
    header = read_header(str(path))
    assert header.error == "" and header.raw
    assert (header.shape, header.layout.cfa, header.layout.colors) == ((30, 40, 3), None, "RGB")
    np.testing.assert_array_equal(read_pixels(str(path)), pixels)


def test_linear_raws_are_scanned_like_rgb_with_their_defects_found(tmp_path, local_client):
    rng = np.random.default_rng(1)
    frames = rng.normal(1000, 20, (16, 24, 32, 3))
    frames[:, 10, 7, 1] += 900  # hot in green only
    frames = np.rint(frames).astype(np.uint16)
    folder = tmp_path / "scans"
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_linear_dng(folder / f"scan{i:02d}.dng", frame)
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == 16
    np.testing.assert_array_equal(result.stats.mean[0], frames.mean(0))
    found = {(d.x, d.y, d.channel): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert (found[(7, 10, 1)].kind, found[(7, 10, 1)].color) == ("hot", "G")
    # dcraw's bad_pixels() returns at once where the image has no CFA ("if (!filters) return;"): the
    # map says so rather than let a user apply it to nothing
    assert "apply no map to a raw without a CFA" in (tmp_path / "out" / "dcraw.badpixels").read_text()
