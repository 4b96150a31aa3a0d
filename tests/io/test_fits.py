"""FITS: the values exactly as stored, the Bayer pattern as Siril reads it, the shooting data,
refusals with their reason, and a real camera's darks scanned from FITS."""

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits

from pipeline import Config, scan
from pipeline.defect import read_csv
from pipeline.io import read_file, read_header, read_headers, read_pixels
from pipeline.state.files import read_files_csv

from ..conftest import saved_attrs

FLEA3 = Path(__file__).resolve().parents[1] / "fixtures" / "flea3-icx655-darks"
QUIET = {"progress": False, "log": lambda m: None}


def write(path: Path, data, **cards) -> Path:
    header = fits.Header()
    for key, value in cards.items():
        header[key.replace("_", "-")] = value
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


@pytest.fixture
def frame():
    return np.random.default_rng(3).integers(0, 65536, (7, 10), dtype=np.uint16)


def test_16_bit_through_bzero_and_compressed_files_read_exactly(tmp_path, frame):
    plain = write(tmp_path / "a.fits", frame)
    assert fits.getheader(plain)["BZERO"] == 32768  # astropy stores uint16 as int16 + BZERO, as drivers do
    header = read_header(str(plain))
    assert (header.shape, header.dtype, header.error) == ((7, 10), "uint16", "")
    got = read_pixels(str(plain))
    assert got.dtype == np.uint16 and got.dtype.isnative and got.flags.c_contiguous
    np.testing.assert_array_equal(got, frame)
    packed = tmp_path / "b.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(frame)]).writeto(packed)
    assert read_header(str(packed)).shape == (7, 10)
    np.testing.assert_array_equal(read_pixels(str(packed)), frame)


def test_the_direct_read_of_camera_layouts_equals_astropys(tmp_path):
    """uint16 through BZERO and plain 8-bit are read straight from the bytes: the same values,
    extremes included, as astropy's own scaling gives."""
    rng = np.random.default_rng(5)
    for frame in (rng.integers(0, 65536, (9, 11), dtype=np.uint16), rng.integers(0, 256, (9, 11), dtype=np.uint8)):
        frame.flat[:2] = (0, np.iinfo(frame.dtype).max)
        path = write(tmp_path / f"{frame.dtype}.fits", frame)
        got = read_pixels(str(path))
        np.testing.assert_array_equal(got, fits.getdata(path))
        assert got.dtype == frame.dtype and got.dtype.isnative


def test_8_bit_stays_8_bit_and_signed_16_bit_is_read_where_it_fits(tmp_path, frame):
    small = (frame >> 8).astype(np.uint8)
    path = write(tmp_path / "a.fit", small)
    assert read_header(str(path)).dtype == "uint8"
    np.testing.assert_array_equal(read_pixels(str(path)), small)
    signed = write(tmp_path / "b.fts", (frame >> 1).astype(np.int16))
    np.testing.assert_array_equal(read_pixels(str(signed)), frame >> 1)
    below = (frame >> 1).astype(np.int16)
    below[0, 0] = -5  # a bias-subtracted frame
    negative = write(tmp_path / "c.fits", below)
    with pytest.raises(ValueError, match="do not fit 16 bits unsigned"):
        read_pixels(str(negative))


def test_float_frames_exact_when_whole_or_normalised_and_refused_when_calibrated(tmp_path, frame):
    whole = write(tmp_path / "a.fits", frame.astype(np.float32))
    assert read_header(str(whole)).dtype == "uint16"
    np.testing.assert_array_equal(read_pixels(str(whole)), frame)
    normalised = write(tmp_path / "b.fits", (frame / 65535.0).astype(np.float32))  # Siril's 32-bit form
    np.testing.assert_array_equal(read_pixels(str(normalised)), frame)
    calibrated = write(tmp_path / "c.fits", frame.astype(np.float32) - 100.25)
    with pytest.raises(ValueError, match="calibrated"):
        read_pixels(str(calibrated))
    nan = frame.astype(np.float32)
    nan[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        read_pixels(str(write(tmp_path / "d.fits", nan)))


def test_colour_planes_become_channels_and_a_cube_is_one_frame_per_plane(tmp_path, frame):
    rgb = np.stack([frame, frame // 2, frame // 3])
    path = write(tmp_path / "rgb.fits", rgb)
    assert read_header(str(path)).shape == (7, 10, 3)
    np.testing.assert_array_equal(read_pixels(str(path)), np.moveaxis(rgb, 0, -1))
    one_plane = write(tmp_path / "one.fits", frame[None])
    assert [h.path for h in read_headers(str(one_plane))] == [str(one_plane)]  # one frame keeps its plain path
    assert read_header(str(one_plane)).shape == (7, 10)
    planes = np.random.default_rng(5).integers(0, 65536, (5, 7, 10), dtype=np.uint16)
    for name, hdus in (("cube.fits", [fits.PrimaryHDU(planes, header=fits.Header({"EXPTIME": 30.0}))]),
                       ("cube.fits.fz", [fits.PrimaryHDU(), fits.CompImageHDU(planes)])):
        cube = fits.HDUList(hdus)
        cube.writeto(tmp_path / name)
        headers = read_headers(str(tmp_path / name))
        assert [h.path for h in headers] == [f"{tmp_path / name}#frame={i}" for i in range(5)]
        assert {(h.shape, h.dtype, h.format, h.error) for h in headers} == {((7, 10), "uint16", "fits", "")}
        for h, plane in zip(headers, planes):
            pixels, digest = read_file(h.path)
            assert pixels.dtype == np.uint16
            np.testing.assert_array_equal(pixels, plane)
    assert read_headers(str(tmp_path / "cube.fits"))[0].exposure == 30.0  # the file's header, for every plane


def test_a_truncated_cube_lists_the_frames_it_lost_with_the_reason(tmp_path):
    planes = np.random.default_rng(6).integers(0, 256, (6, 8, 9), dtype=np.uint8)
    whole = write(tmp_path / "whole.fits", planes).read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(whole[: 2880 + 3 * 8 * 9 + 5])  # 3 planes and a few bytes of the 4th
    headers = read_headers(str(cut))
    assert [h.error for h in headers[:3]] == ["", "", ""]
    assert all("holds 3 of the cube's 6 frames whole" in h.error for h in headers[3:])
    np.testing.assert_array_equal(read_pixels(headers[2].path), planes[2])
    with pytest.raises(ValueError, match="truncated before frame 4"):
        read_pixels(f"{cut}#frame=4")


def test_a_cube_scans_like_its_planes_saved_one_file_each(tmp_path, local_client):
    rng = np.random.default_rng(7)
    darks = rng.normal(500, 12, (24, 16, 20))
    darks[:, 9, 5] += 400  # a hot sensel, blue in RGGB (odd row, odd column)
    darks = np.rint(darks).astype(np.uint16)
    folder = tmp_path / "cube"
    folder.mkdir()
    write(folder / "burst.fits", darks, BAYERPAT="RGGB", EXPTIME=10.0)
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == 24
    np.testing.assert_array_equal(result.stats.mean[0], darks.mean(0))
    np.testing.assert_allclose(result.stats.m2[0], darks.var(0) * 24, rtol=1e-12)
    files = read_files_csv(tmp_path / "out")
    assert [p for p, _, _ in files] == [f"{folder / 'burst.fits'}#frame={i}" for i in range(24)]
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert found[(5, 9)].kind == "hot" and found[(5, 9)].color == "B"


def colour_of_display(pattern: str, height: int, width: int) -> np.ndarray:
    """The colour letter of every pixel of an image as displayed (top row first): ``pattern``
    from its top-left pixel."""
    grid = np.array(list(pattern)).reshape(2, 2)
    return grid[np.arange(height)[:, None] % 2, np.arange(width)[None, :] % 2]


@pytest.mark.parametrize("height", [6, 7])
@pytest.mark.parametrize("order", ["TOP-DOWN", "BOTTOM-UP", None])
@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_bayer_pattern_is_given_in_stored_coordinates_whatever_the_row_order(tmp_path, pattern, order, height):
    """Independent of the reader's rule: the colours of the image as displayed, stored in the
    row order the header names (bottom-up: the last displayed row first), must be what the
    layout says of each stored position."""
    display = colour_of_display(pattern, height, 8)
    stored = display[::-1] if order == "BOTTOM-UP" else display
    cards = {"BAYERPAT": pattern} | ({"ROWORDER": order} if order else {})
    layout = read_header(str(write(tmp_path / "m.fits", np.zeros((height, 8), np.uint16), **cards))).layout
    said = np.array([[layout.color(layout.cfa[r % 2][c % 2]) for c in range(8)] for r in range(height)])
    np.testing.assert_array_equal(said, stored)


def test_bayer_offsets_shift_the_pattern(tmp_path):
    path = write(tmp_path / "m.fits", np.zeros((4, 4), np.uint16), BAYERPAT="RGGB", XBAYROFF=1, YBAYROFF=0)
    assert read_header(str(path)).layout.name == "GRBG"
    path = write(tmp_path / "n.fits", np.zeros((4, 4), np.uint16), BAYERPAT="RGGB", XBAYROFF=1, YBAYROFF=1)
    assert read_header(str(path)).layout.name == "BGGR"
    bad = read_header(str(write(tmp_path / "x.fits", np.zeros((4, 4), np.uint16), BAYERPAT="XTRANS")))
    assert "not a 2x2 Bayer pattern" in bad.error


def test_shooting_data_from_the_header(tmp_path, frame):
    path = write(tmp_path / "a.fits", frame, EXPTIME=120.0, ISOSPEED=800, DATE_OBS="2024-03-01T22:14:05.250",
                 CCD_TEMP=-9.8, SET_TEMP=-10.0, INSTRUME="ZWO ASI2600MC Pro")
    h = read_header(str(path))
    assert (h.exposure, h.iso, h.temperature, h.model) == (120.0, 800.0, -9.8, "ZWO ASI2600MC Pro")
    assert h.time == pytest.approx(1709331245.25)
    other = read_header(str(write(tmp_path / "b.fits", frame, EXPOSURE=30, SET_TEMP=-10.0, DATE_OBS="2024-03-01")))
    assert (other.exposure, other.temperature, other.time, other.iso) == (30.0, -10.0, 1709251200.0, None)
    bare = read_header(str(write(tmp_path / "c.fits", frame)))
    assert (bare.exposure, bare.iso, bare.time, bare.temperature, bare.error) == (None, None, None, None, "")


def test_egain_is_the_analog_gain_and_gain_the_cameras_own_setting(tmp_path, frame):
    """EGAIN (e-/DN) gives the gain as ISO 100 / EGAIN, so a dark rate at ISO 100 is in e-/s; an
    ISOSPEED wins over it; GAIN (tenths of a dB on a ZWO, a driver's units elsewhere) is kept as
    the frame's setting and converts to no ISO."""
    nina = read_header(str(write(tmp_path / "n.fits", frame, EXPTIME=300.0, GAIN=100, OFFSET=50, EGAIN=0.25)))
    assert (nina.iso, nina.gain) == (400.0, 100.0)
    dslr = read_header(str(write(tmp_path / "d.fits", frame, EXPTIME=300.0, ISOSPEED=800, EGAIN=0.25)))
    assert (dslr.iso, dslr.gain) == (800.0, None)
    ekos = read_header(str(write(tmp_path / "e.fits", frame, EXPTIME=300.0, GAIN=139, EGAIN=0.0)))
    assert (ekos.iso, ekos.gain) == (None, 139.0)


def test_frames_at_another_gain_setting_are_another_group_unless_an_iso_or_egain_converts_it(tmp_path, frame):
    from pipeline.discover import group

    def dark(name, **cards):
        return read_header(str(write(tmp_path / name, frame, EXPTIME=60.0, INSTRUME="ASI294MM", **cards)))

    plain = group([dark(f"a{i}.fits", GAIN=120) for i in range(3)] + [dark(f"b{i}.fits", GAIN=0) for i in range(2)])
    assert [len(g.headers) for g in plain] == [3, 2]
    assert plain[1].describe().endswith("GAIN 0") and plain[0].describe().endswith("GAIN 120")
    converted = group([dark("c.fits", GAIN=120, EGAIN=1.0), dark("d.fits", GAIN=0, EGAIN=3.6)])
    assert [len(g.headers) for g in converted] == [2]
    assert group([dark("e.fits"), dark("f.fits")])[0].describe().endswith("ASI294MM")


def multi_extension(path: Path, sci, thumb=None, **cards) -> Path:
    """A FITS file as archives and some camera programs write it: an empty primary HDU, a
    preview image, then the frame (EXTNAME SCI), its quality flags (DQ) and a table."""
    hdus = [fits.PrimaryHDU()]
    if thumb is not None:
        hdus.append(fits.ImageHDU(thumb, name="PREVIEW"))
    header = fits.Header()
    for key, value in cards.items():
        header[key.replace("_", "-")] = value
    hdus += [fits.ImageHDU(sci, header=header, name="SCI"), fits.ImageHDU(np.zeros(sci.shape[-2:], np.uint8), name="DQ"),
             fits.BinTableHDU.from_columns([fits.Column(name="t", format="D", array=np.arange(3.0))], name="EVENTS")]
    fits.HDUList(hdus).writeto(path)
    return path


def test_a_named_hdu_is_read_by_extname_or_index_and_a_missing_one_says_what_the_file_holds(tmp_path, frame):
    from pipeline.io.source import hdu_ref

    thumb = np.full((3, 4), 7, np.uint8)
    path = str(multi_extension(tmp_path / "m.fits", frame, thumb, EXPTIME=60.0, BAYERPAT="RGGB"))
    assert read_header(path).shape == (3, 4)  # no name: the first image, the preview
    for name in ("SCI", "sci", "2"):
        h = read_header(hdu_ref(path, name))
        assert (h.shape, h.exposure, h.layout.name, h.error) == ((7, 10), 60.0, "RGGB", "")
        pixels, digest = read_file(hdu_ref(path, name))
        np.testing.assert_array_equal(pixels, frame)
    assert read_file(hdu_ref(path, "SCI"))[1] == read_file(path)[1]  # the same file's bytes
    missing = read_header(hdu_ref(path, "RAW")).error
    assert "no HDU 'RAW'" in missing and "2 SCI" in missing and "4 EVENTS" in missing
    assert "holds no image (a table)" in read_header(hdu_ref(path, "EVENTS")).error
    assert "holds no image" in read_header(hdu_ref(path, "0")).error  # the empty primary
    cube = np.random.default_rng(5).integers(0, 65536, (4, 7, 10), dtype=np.uint16)
    cpath = str(multi_extension(tmp_path / "c.fits", cube, thumb))
    frames = read_headers(hdu_ref(cpath, "SCI"))
    assert [h.path for h in frames] == [f"{cpath}#hdu=SCI#frame={i}" for i in range(4)]
    for i, h in enumerate(frames):
        np.testing.assert_array_equal(read_pixels(h.path), cube[i])


def test_scan_hdu_reads_that_hdu_of_every_fits_file_and_names_it_in_files_csv(tmp_path, local_client):
    folder = tmp_path / "darks"
    folder.mkdir()
    rng = np.random.default_rng(6)
    stack = rng.poisson(50, (8, 24, 32)).astype(np.uint16)
    stack[:, 5, 9] += 4000  # a hot sensel in every frame of SCI
    for i, f in enumerate(stack):  # the preview holds nothing of it
        multi_extension(folder / f"dark_{i}.fits", f, rng.integers(0, 255, (6, 8), dtype=np.uint8), EXPTIME=60.0)
    config = Config()
    config.scan.hdu = "SCI"
    result = scan([str(folder)], tmp_path / "out", config, client=local_client, **QUIET)
    assert result.stats.n == 8 and result.stats.mean.shape[-2:] == (24, 32)
    np.testing.assert_array_equal(result.stats.mean[0], stack.mean(0))
    files = read_files_csv(tmp_path / "out")
    assert sorted(p for p, _, _ in files) == sorted(f"{folder}/dark_{i}.fits#hdu=SCI" for i in range(8))
    assert [(d.x, d.y, d.kind) for d in read_csv(tmp_path / "out" / "defects.csv")] == [(9, 5, "hot")]


def flea3_as_fits(folder: Path) -> Path:
    """The real Flea3 darks written as a capture program writes FITS: the exposure and the time
    from each file's name, the camera's GBRG pattern, top-down."""
    folder.mkdir()
    for tif in sorted(FLEA3.glob("*.tif")):
        ms, date, hms = re.search(r"_(\d+)ms_(\d{4}-\d\d-\d\d)-(\d{6})", tif.name).groups()
        write(folder / f"{tif.stem}.fits", tifffile.imread(tif), EXPTIME=int(ms) / 1000, BAYERPAT="GBRG",
              ROWORDER="TOP-DOWN", INSTRUME="Flea3 FL3-GE-50S5C",
              DATE_OBS=f"{date}T{hms[:2]}:{hms[2:4]}:{hms[4:]}")
    return folder


@pytest.mark.slow
def test_real_ccd_darks_as_fits_give_the_tiff_statistics_and_hot_pixels_with_their_rate(tmp_path, local_client):
    fits_dir = flea3_as_fits(tmp_path / "fits")
    from_fits = scan([str(fits_dir)], tmp_path / "out_fits", Config(), client=local_client, **QUIET)
    config = Config()
    config.scan.cfa = "GBRG"
    from_tiff = scan([str(FLEA3)], tmp_path / "out_tiff", config, client=local_client, **QUIET)
    assert from_fits.stats.n == from_tiff.stats.n == 14
    np.testing.assert_array_equal(from_fits.stats.mean, from_tiff.stats.mean)
    np.testing.assert_array_equal(from_fits.stats.m2, from_tiff.stats.m2)
    np.testing.assert_array_equal(from_fits.stats.counts, from_tiff.stats.counts)
    files = read_files_csv(tmp_path / "out_fits")
    assert len(files) == 14 and all(status == "used" for _, status, _ in files)
    # the clear hot sensels: at least 10 DN in both 3.9 s darks (their neighbours read 0-1)
    longest = np.minimum(*[tifffile.imread(p) for p in sorted(FLEA3.glob("*3916ms*.tif"))])
    clear = set(zip(*np.nonzero(longest >= 10)[::-1]))
    assert len(clear) == 18
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out_fits" / "defects.csv")}
    assert clear <= set(found)
    assert {found[p].kind for p in clear} == {"hot"}
    # with EXPTIME the rate is in DN/s: the brightest reads 176 DN at 3.916 s over a 0 DN floor
    brightest = max(clear, key=lambda p: int(longest[p[1], p[0]]))
    assert 30 < found[brightest].dark_rate < 60
    # Siril keeps a FITS file's rows as stored and counts its list's rows from the top as shown:
    # the last stored row first. A TIFF it shows upright: the stored row.
    x, y = (int(v) for v in brightest)
    height = longest.shape[0]
    assert saved_attrs(tmp_path / "out_fits")["file_format"] == "fits"
    assert "exposure time x ISO/100 (FITS header); 14 of 14 frames" in (tmp_path / "out_fits" / "report.html").read_text()
    assert f"P {x} {height - 1 - y} H" in (tmp_path / "out_fits" / "siril.lst").read_text().splitlines()
    assert f"P {x} {y} H" in (tmp_path / "out_tiff" / "siril.lst").read_text().splitlines()


@pytest.mark.slow
def test_real_darks_at_two_gain_settings_are_scanned_apart(tmp_path, local_client):
    """A third of the real darks as taken at a 4x higher gain setting (GAIN 120 against 0, no
    EGAIN): their levels and noise are 4x, which no header converts. Stacked with the others,
    every warm sensel's spread would look like flicker. They are another group: skipped with
    the reason, refused by --merge, scanned apart with --all-groups."""
    from pipeline.scan import MergeRefused

    folder = tmp_path / "fits"
    flea3_as_fits(folder)
    high = set()
    for i, path in enumerate(sorted(folder.glob("*.fits"))):
        with fits.open(path) as hdul:
            data, header = hdul[0].data.astype(np.uint32), hdul[0].header
        header["GAIN"] = 120 if i % 3 == 0 else 0
        if i % 3 == 0:
            data = np.minimum(data * 4, 65535)
            high.add(path.name)
        fits.PrimaryHDU(data.astype(np.uint16), header=header).writeto(path, overwrite=True)
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == 14 - len(high) == 9
    rows = {Path(r["path"]).name: r for r in csv_rows(tmp_path / "out" / "files.csv")}
    assert {n for n, r in rows.items() if r["status"] == "skipped"} == high
    assert all(rows[n]["reason"].startswith("another gain setting: GAIN 120, against GAIN 0") for n in high)
    assert {r["gain"] for r in rows.values() if r["status"] == "used"} == {"0"}
    longest = np.minimum(*[tifffile.imread(p) for p in sorted(FLEA3.glob("*3916ms*.tif"))])
    clear = set(zip(*np.nonzero(longest >= 10)[::-1]))
    found = {(d.x, d.y): d for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert clear <= set(found) and {found[p].kind for p in clear} == {"hot"}
    with pytest.raises(MergeRefused, match="GAIN 0 vs 120"):
        scan([str(folder / n) for n in sorted(high)], tmp_path / "out", Config(), merge=True, client=local_client,
             **QUIET)
    config = Config()
    config.scan.all_groups = True
    both = scan([str(folder)], tmp_path / "all", config, client=local_client, **QUIET)
    assert sorted(r.stats.n for r in [both, *both.others]) == [5, 9]
    assert sorted(p.name for p in (tmp_path / "all").iterdir() if p.is_dir()) == [
        "344x408-uint16-GBRG-Flea3-FL3-GE-50S5C-GAIN-0", "344x408-uint16-GBRG-Flea3-FL3-GE-50S5C-GAIN-120"]


def csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_calibrated_frame_in_a_folder_is_skipped_with_its_reason(tmp_path, local_client, frame):
    folder = tmp_path / "darks"
    folder.mkdir()
    stack = np.random.default_rng(4).integers(100, 4000, (5, 7, 10), dtype=np.uint16)
    for i, f in enumerate(stack):
        write(folder / f"dark_{i}.fits", f, EXPTIME=60.0, BAYERPAT="RGGB")
    write(folder / "master_dark.fits", stack.mean(0).astype(np.float32) - 0.5, EXPTIME=60.0, BAYERPAT="RGGB")
    result = scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    assert result.stats.n == 5
    np.testing.assert_array_equal(result.stats.mean[0], stack.mean(0))
    status = {Path(p).name: (s, r) for p, s, r in read_files_csv(tmp_path / "out")}
    assert status["master_dark.fits"][0] == "skipped" and "calibrated" in status["master_dark.fits"][1]


def test_truncated_and_damaged_files_fail_with_a_reason(tmp_path, frame):
    data = write(tmp_path / "a.fits", frame).read_bytes()
    short = tmp_path / "short.fits"
    short.write_bytes(data[: 2880 + 40])  # the header and part of the pixels
    assert read_header(str(short)).error == ""  # the header is whole: the decode says what is missing
    with pytest.raises(ValueError, match="truncated"):
        read_pixels(str(short))
    stub = tmp_path / "stub.fits"
    stub.write_bytes(data[:100])
    assert read_header(str(stub)).error.startswith("cannot decode")
    flipped = bytearray(data)
    flipped[:80] = b"X" * 80  # SIMPLE = T gone
    bad = tmp_path / "bad.fits"
    bad.write_bytes(bytes(flipped))
    assert read_header(str(bad)).error.startswith("cannot decode")
