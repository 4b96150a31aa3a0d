"""XISF (PixInsight): every storage and compression the format defines read exactly, the CFA and
the shooting data from the header, refusals with their reason, and a folder of XISF darks
scanned with its hot sensel found."""

import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.io import read_header, read_pixels

from .xisffile import write_xisf

QUIET = {"progress": False, "log": lambda m: None}


@pytest.fixture
def frame():
    return np.random.default_rng(4).integers(0, 65536, (7, 10), dtype=np.uint16)


@pytest.mark.parametrize("codec", ["", "zlib", "zlib+sh", "lz4", "lz4+sh", "zstd", "zstd+sh"])
def test_every_codec_reads_the_values_exactly(tmp_path, frame, codec):
    path = write_xisf(tmp_path / "a.xisf", frame, codec=codec)
    header = read_header(str(path))
    assert (header.shape, header.dtype, header.format, header.error) == ((7, 10), "uint16", "xisf", "")
    np.testing.assert_array_equal(read_pixels(str(path)), frame)


def test_storage_byte_order_and_sample_formats(tmp_path, frame):
    rgb = np.stack([frame, frame // 2, frame // 3], axis=-1)
    for planar in (True, False):
        path = write_xisf(tmp_path / f"rgb{planar}.xisf", rgb, planar=planar)
        assert read_header(str(path)).shape == (7, 10, 3)
        np.testing.assert_array_equal(read_pixels(str(path)), rgb)
    np.testing.assert_array_equal(read_pixels(str(write_xisf(tmp_path / "be.xisf", frame, big_endian=True))), frame)
    small = (frame // 256).astype(np.uint8)
    path = write_xisf(tmp_path / "u8.xisf", small)
    assert read_header(str(path)).dtype == "uint8"
    np.testing.assert_array_equal(read_pixels(str(path)), small)
    normalised = write_xisf(tmp_path / "f.xisf", (frame / 65535.0).astype(np.float32))  # PixInsight's 32-bit form
    np.testing.assert_array_equal(read_pixels(str(normalised)), frame)
    wide = write_xisf(tmp_path / "u32.xisf", frame.astype(np.uint32))
    np.testing.assert_array_equal(read_pixels(str(wide)), frame)


def test_cfa_and_shooting_data_from_the_header(tmp_path, frame):
    path = write_xisf(tmp_path / "a.xisf", frame, cfa="GBRG",
                      properties={"Instrument:ExposureTime": ("Float32", "120"),
                                  "Observation:Time:Start": ("TimePoint", "2024-03-01T22:14:05.5Z"),
                                  "Instrument:Sensor:Temperature": ("Float32", "-10"),
                                  "Instrument:Camera:Name": ("String", "ZWO ASI2600MC Pro"),
                                  "Instrument:Camera:Gain": ("Float32", "0.25")},
                      keywords={"GAIN": "100"})
    h = read_header(str(path))
    assert (h.layout.name, h.exposure, h.temperature, h.model) == ("GBRG", 120.0, -10.0, "ZWO ASI2600MC Pro")
    assert h.time == pytest.approx(1709331245.5)
    assert (h.iso, h.gain) == (400.0, 100.0)  # PixInsight's camera gain is in e-/DN, as FITS's EGAIN
    cards = write_xisf(tmp_path / "b.xisf", frame, keywords={"EXPTIME": "300.", "BAYERPAT": "'RGGB'",
                                                             "DATE-OBS": "'2024-03-01T22:14:05'",
                                                             "INSTRUME": "'QHY268M'"})
    h = read_header(str(cards))
    assert (h.layout.name, h.exposure, h.model) == ("RGGB", 300.0, "QHY268M")
    xtrans = "GGRGGBGGBGGRBRGRBGGGBGGRGGRGGBRBGBRG"
    assert read_header(str(write_xisf(tmp_path / "x.xisf", frame, cfa=xtrans, cfa_size=6))).layout.stride == 6


def test_damaged_and_calibrated_files_are_refused_with_the_reason(tmp_path, frame):
    whole = write_xisf(tmp_path / "a.xisf", frame, codec="zlib").read_bytes()
    (tmp_path / "cut.xisf").write_bytes(whole[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_pixels(str(tmp_path / "cut.xisf"))
    (tmp_path / "junk.xisf").write_bytes(b"SIMPLE  = T" + b" " * 200)
    assert "XISF0100 signature" in read_header(str(tmp_path / "junk.xisf")).error
    calibrated = write_xisf(tmp_path / "c.xisf", (frame / 2.0 + 0.25).astype(np.float64))
    calibrated.write_bytes(calibrated.read_bytes().replace(b' bounds="0:1"', b' bounds="0:9"'))
    with pytest.raises(ValueError, match="calibrated"):
        read_pixels(str(calibrated))


def test_a_folder_of_xisf_darks_is_scanned_exactly(tmp_path, local_client):
    rng = np.random.default_rng(5)
    exposures = np.array([30.0, 60.0, 120.0] * 4)
    darks = rng.normal(800, 15, (12, 16, 20))
    darks[:, 6, 9] += 5 * exposures  # hot: dark current, on green (even row, odd column of RGGB)
    darks = np.rint(darks).astype(np.uint16)
    folder = tmp_path / "darks"
    folder.mkdir()
    for i, dark in enumerate(darks):
        write_xisf(folder / f"dark_{i:02d}.xisf", dark, codec="zlib+sh", cfa="RGGB",
                   keywords={"EXPTIME": f"{exposures[i]:.1f}", "DATE-OBS": f"'2024-03-01T22:{i:02d}:00'"})
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == 12
    np.testing.assert_array_equal(result.stats.mean[0], darks.mean(0))
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert (found[(9, 6)].kind, found[(9, 6)].color) == ("hot", "G")
    assert 4 < found[(9, 6)].dark_rate < 6  # DN/s
    assert "(XISF header); 12 of 12 frames" in (tmp_path / "out" / "report.html").read_text()
