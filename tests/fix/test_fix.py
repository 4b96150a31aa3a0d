"""`hotpixels fix`: copies in each format with the map's sensels replaced, the inputs untouched."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from astropy.io import fits
from PIL import Image, PngImagePlugin

from pipeline.defect import Defect, write_csv
from pipeline.fix.defect_map import DefectMap
from pipeline.fix.repair import colour_plane, repair
from pipeline.fix.run import FIXED_NAME, fix
from pipeline.layout import SensorLayout
from pipeline.records import StackMeta
from pipeline.state.store import write_stats
from pipeline.stats.accumulate import stats_of_stack

H, W = 24, 32
RGGB = SensorLayout.bayer("RGGB")


def result_dir(folder: Path, defects: list[Defect], shape: tuple[int, ...], layout: SensorLayout = SensorLayout(),
               dtype: str = "uint16", file_format: str = "png") -> Path:
    """A result folder as a scan leaves it: stats.zarr (of a small stack) and defects.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    stack = np.zeros((2, *shape), np.uint16)
    write_stats(folder, stats_of_stack(stack, layout.stride), StackMeta(dtype=dtype, layout=layout,
                                                                         file_format=file_format))
    write_csv(defects, folder / "defects.csv")
    return folder


def point(x: int, y: int, kind: str = "hot", since: str = "", channel: int = 0) -> Defect:
    return Defect(x=x, y=y, channel=channel, kind=kind, mean=1000.0, std=1.0, score=50.0, since=since)


def mosaic(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([[400, 800], [800, 300]])  # R G / G B levels
    frame = np.tile(base, (H // 2, W // 2)) + rng.integers(0, 40, (H, W))
    return frame.astype(np.uint16)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dcraw_mean(frame: np.ndarray, bad: np.ndarray, y: int, x: int) -> float:
    """dcraw's bad_pixels() replacement, written out: same-colour sensels at distance 1, else 2."""
    colours = colour_plane(RGGB, *frame.shape)
    for rad in (1, 2):
        vals = [frame[r, c] for r in range(y - rad, y + rad + 1) for c in range(x - rad, x + rad + 1, rad)
                if 0 <= r < H and 0 <= c < W and (r, c) != (y, x) and colours[r, c] == colours[y, x] and not bad[r, c]]
        if vals:
            return float(np.mean(vals))
    raise AssertionError("no neighbour")


def test_repair_matches_dcraw_on_a_bayer_mosaic():
    frame = mosaic()
    bad = np.zeros((H, W), bool)
    for y, x in [(5, 6), (5, 7), (0, 0), (23, 31), (10, 11)]:  # R, G beside it, corners, B
        bad[y, x] = True
        frame[y, x] = 4000
    fixed, left = repair(frame, bad, colour_plane(RGGB, H, W), 2)
    assert left == 0
    for y, x in zip(*np.nonzero(bad), strict=True):
        assert fixed[y, x] == np.rint(dcraw_mean(frame, bad, y, x))
    assert np.array_equal(fixed[~bad], frame[~bad])


def test_a_column_is_filled_from_the_good_columns_beside_it():
    frame = mosaic()
    bad = np.zeros((H, W), bool)
    bad[:, 9] = True
    frame[:, 9] += 900
    fixed, _ = repair(frame, bad, colour_plane(RGGB, H, W), 2)
    for y in range(H):
        assert fixed[y, 9] == np.rint(dcraw_mean(frame, bad, y, 9))
        assert abs(int(fixed[y, 9]) - int(frame[y, 7])) < 60  # its colour's level, not the defect's


def write_png16(path: Path, frame: np.ndarray, text: str) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", text)
    Image.fromarray(frame.astype(np.uint16)).save(path, pnginfo=info)


def test_png_mosaic_copy_is_lossless_and_keeps_its_chunks(tmp_path):
    frame = mosaic()
    frame[7, 4] = 4095
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    write_png16(src, frame, "kept")
    before = digest(src)
    res = result_dir(tmp_path / "res", [point(4, 7), Defect(x=9, y=1, channel=0, kind="column", mean=900.0,
                                                            std=1.0, score=9.0, length=5)], (H, W), RGGB)
    rows = fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    assert rows[0].status == "fixed", rows[0].reason
    out = tmp_path / "out" / "a.png"
    copy = np.asarray(Image.open(out))
    bad = DefectMap.load(res).mask(DefectMap.load(res).defects)
    assert bad.sum() == 6 and bad[1:10:2, 9].all()  # the column's sensels, one colour (2 apart)
    expected, _ = repair(frame, bad, colour_plane(RGGB, H, W), 2)
    assert np.array_equal(copy, expected)
    assert Image.open(out).text["Comment"] == "kept"
    assert digest(src) == before


def test_uncompressed_tiff_differs_only_in_the_fixed_values(tmp_path):
    frame = mosaic(1)
    frame[3, 3] = 4000
    src = tmp_path / "a.tif"
    tifffile.imwrite(src, frame, photometric="minisblack", description="camera frame", metadata=None)
    res = result_dir(tmp_path / "res", [point(3, 3)], (H, W), RGGB)
    fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    a, b = src.read_bytes(), (tmp_path / "out" / "a.tif").read_bytes()
    assert len(a) == len(b)
    differ = [i for i in range(len(a)) if a[i] != b[i]]
    assert 1 <= len(differ) <= 2  # one 16-bit value
    copy = tifffile.imread(tmp_path / "out" / "a.tif")
    assert copy[3, 3] == np.rint(dcraw_mean(frame, _only(3, 3), 3, 3))


def _only(y: int, x: int, shape: tuple[int, ...] = (H, W)) -> np.ndarray:
    bad = np.zeros(shape, bool)
    bad[y, x] = True
    return bad


def test_compressed_tiff_is_rewritten_with_its_compression(tmp_path):
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (H, W, 3)).astype(np.uint8)
    src = tmp_path / "a.tif"
    tifffile.imwrite(src, frame, compression="zlib", photometric="rgb")
    res = result_dir(tmp_path / "res", [point(5, 5)], (H, W, 3), dtype="uint8", file_format="tiff")
    rows = fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    assert "EXIF sub-IFD is not carried" in rows[0].reason
    with tifffile.TiffFile(tmp_path / "out" / "a.tif") as tif:
        assert tif.pages.first.compression == 8
        copy = tif.pages.first.asarray()
    grown = np.zeros((H, W), bool)
    grown[4:7, 4:7] = True  # a developed colour image: the defect's 3x3 footprint
    expected, _ = repair(frame, grown, None, 1)
    assert np.array_equal(copy, expected)


def test_a_real_packbits_dark_and_an_lzw_copy_are_fixed_in_their_own_compression(tmp_path):
    """The Flea3's darks are PackBits TIFFs, and LZW is the usual compression of TIFFs in the field:
    tifffile writes neither without imagecodecs (red before: `fix` stopped with a KeyError). Their
    copies keep their compression, and only the defect's value changes."""
    darks = Path(__file__).resolve().parents[1] / "fixtures" / "flea3-icx655-darks"
    (tmp_path / "in").mkdir()
    real = Path(shutil.copy(sorted(darks.glob("*3916ms*.tif"))[0], tmp_path / "in"))
    frame = tifffile.imread(real)
    y, x = np.unravel_index(int(np.argmax(frame)), frame.shape)  # its brightest hot sensel
    lzw = tmp_path / "in" / "lzw.tif"
    tifffile.imwrite(lzw, frame, photometric="minisblack", compression="lzw")
    res = result_dir(tmp_path / "res", [point(int(x), int(y))], frame.shape, dtype="uint8", file_format="tiff")
    rows = fix([str(real), str(lzw)], res, tmp_path / "out", log=lambda m: None)
    assert [r.status for r in rows] == ["fixed", "fixed"], [r.reason for r in rows]
    expected, _ = repair(frame, _only(int(y), int(x), frame.shape), None, 1)
    assert expected[y, x] < frame[y, x]
    for name, compression in ((real.name, 32773), ("lzw.tif", 5)):
        with tifffile.TiffFile(tmp_path / "out" / name) as tif:
            assert tif.pages.first.compression == compression
            np.testing.assert_array_equal(tif.pages.first.asarray(), expected)


def test_every_frame_of_a_tiff_stack_is_fixed(tmp_path):
    """A movie saved as one multi-page TIFF: uncompressed, each page patched in place (the copy
    differs from the original only there); compressed, the stack rewritten with its compression."""
    rng = np.random.default_rng(3)
    frames = rng.integers(100, 140, (5, H, W)).astype(np.uint16)
    frames[:, 7, 9] = 3000
    bad = _only(7, 9)
    res = result_dir(tmp_path / "res", [point(9, 7)], (H, W), file_format="tiff")
    expected = np.stack([repair(f, bad, None, 1)[0] for f in frames])
    assert (expected[:, 7, 9] < 200).all()
    plain, packed = tmp_path / "in" / "plain.tif", tmp_path / "in" / "packed.tif"
    plain.parent.mkdir()
    tifffile.imwrite(plain, frames, photometric="minisblack")
    tifffile.imwrite(packed, frames, photometric="minisblack", compression="zlib")
    rows = {Path(r.path).name: r for r in fix([str(plain), str(packed)], res, tmp_path / "out", log=lambda m: None)}
    assert "lossless TIFF stack: 5 frames" in rows["plain.tif"].reason
    assert "stack of 5 frames rewritten with its compression" in rows["packed.tif"].reason
    a, b = plain.read_bytes(), (tmp_path / "out" / "plain.tif").read_bytes()
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) <= 2 * len(frames)
    for name in ("plain.tif", "packed.tif"):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / name), expected)
    with tifffile.TiffFile(tmp_path / "out" / "packed.tif") as tif:
        assert len(tif.pages) == 5 and tif.pages.first.compression == 8


def test_verify_reads_every_frame_of_a_tiff_stack(tmp_path):
    """``verify`` on a stack checks the map in each of its frames (it read the whole file as one
    frame, and refused it: "decodes to 5x24x32 values")."""
    from pipeline.fix.verify import verify

    frames = np.random.default_rng(4).integers(100, 140, (5, H, W)).astype(np.uint16)
    frames[:, 7, 9] = 3000
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, frames, photometric="minisblack")
    stuck = Defect(x=9, y=7, channel=0, kind="stuck", mean=3000.0, std=0.0, score=50.0)
    res = result_dir(tmp_path / "res", [stuck], (H, W), file_format="tiff")
    said: list[str] = []
    assert verify(res, [str(stack)], log=said.append) == []
    assert [m.split(":")[0] for m in said[:5]] == [f"{stack}#frame={i}" for i in range(5)]
    assert "1 of 1 entries testable in these frames are seen where the map puts them" in said


def test_fits_copy_keeps_header_scaling_and_other_hdus(tmp_path):
    frame = mosaic(3)
    frame[10, 10] = 60000
    src = tmp_path / "a.fits"
    hdu = fits.PrimaryHDU(frame.astype(np.uint16))
    hdu.header["BAYERPAT"] = "RGGB"
    hdu.header["EXPTIME"] = 30.0
    fits.HDUList([hdu, fits.ImageHDU(np.ones((2, 2), np.float32), name="EXTRA")]).writeto(src, checksum=True)
    res = result_dir(tmp_path / "res", [point(10, 10)], (H, W), RGGB, file_format="fits")
    rows = fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    assert rows[0].status == "fixed" and "checksums recomputed" in rows[0].reason
    with fits.open(tmp_path / "out" / "a.fits", checksum=True) as hdul:
        assert hdul[0].header["BITPIX"] == 16 and hdul[0].header["BZERO"] == 32768
        assert hdul[0].header["EXPTIME"] == 30.0 and hdul["EXTRA"].data.sum() == 4
        copy = hdul[0].data
    assert copy[10, 10] == np.rint(dcraw_mean(frame, _only(10, 10), 10, 10))
    mask = ~_only(10, 10)
    assert np.array_equal(copy[mask], frame[mask])


def test_onsets_hold_back_defects_in_earlier_and_undated_frames(tmp_path):
    frames = {}
    for name, day in (("early", "2024:01:01 12:00:00"), ("late", "2025:06:01 12:00:00"), ("undated", None)):
        frame = mosaic()
        frame[2, 2] = frame[4, 4] = 4000
        path = tmp_path / "in" / f"{name}.tif"
        path.parent.mkdir(exist_ok=True)
        tags = [(36867, "s", 0, day, True)] if day else []  # DateTimeOriginal
        tifffile.imwrite(path, frame, extratags=tags)
        frames[name] = frame
    res = result_dir(tmp_path / "res", [point(2, 2), point(4, 4, since="2025-01-01")], (H, W), RGGB,
                     file_format="tiff")
    rows = {Path(r.path).stem: r for r in fix([str(tmp_path / "in")], res, tmp_path / "out", log=lambda m: None)}
    assert (rows["early"].applied, rows["early"].later) == (1, 1)
    assert (rows["late"].applied, rows["late"].later) == (2, 0)
    assert (rows["undated"].applied, rows["undated"].later) == (1, 1) and "no capture time" in rows["undated"].reason
    early = tifffile.imread(tmp_path / "out" / "early.tif")
    late = tifffile.imread(tmp_path / "out" / "late.tif")
    assert early[4, 4] == 4000 and early[2, 2] < 1000
    assert late[4, 4] < 1000 and late[2, 2] < 1000


def test_another_sensor_is_skipped_and_inputs_are_never_overwritten(tmp_path):
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    write_png16(src, mosaic(), "x")
    small = tmp_path / "in" / "small.png"
    write_png16(small, mosaic()[:10, :10], "x")
    res = result_dir(tmp_path / "res", [point(1, 1)], (H, W), RGGB)
    rows = {Path(r.path).name: r for r in fix([str(tmp_path / "in")], res, tmp_path / "out", log=lambda m: None)}
    assert rows["small.png"].status == "skipped" and "10x10 grid is not the map's 32x24" in rows["small.png"].reason
    with open(tmp_path / "out" / FIXED_NAME, newline="") as fh:
        assert {r["path"].rsplit("/", 1)[-1]: r["status"] for r in csv.DictReader(fh)} == \
            {"a.png": "fixed", "small.png": "skipped"}
    before = digest(src)
    cmd = [sys.executable, "-m", "pipeline.cli", "fix", str(tmp_path / "in"), "--map", str(res), "--out",
           str(tmp_path / "in")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2 and "would overwrite the input" in done.stderr
    assert digest(src) == before


def test_cli_fix_on_a_scanned_jpeg_stack_removes_most_of_each_defect(tmp_path):
    """A real scan of JPEG photos, then `hotpixels fix`: the planted defects' excess over their
    neighbours, over the stack, falls to a small part of what it was (JPEG re-encoding and its
    blocks leave a trace), and the copies keep their EXIF."""
    repo = Path(__file__).resolve().parents[2]
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline.cli", *a], capture_output=True, text=True,
                                    cwd=repo, check=True)
    run("synth", str(tmp_path / "jpg"), "--frames", "16", "--size", "160x120", "--format", "jpeg")
    run("scan", str(tmp_path / "jpg"), "--out", str(tmp_path / "res"), "--workers", "1", "--no-progress")
    done = run("fix", str(tmp_path / "jpg"), "--map", str(tmp_path / "res"), "--out", str(tmp_path / "fixed"))
    assert "fixed 16 of 16 files" in done.stdout and "PSNR" in done.stdout
    found = DefectMap.load(tmp_path / "res").defects
    assert found
    before = np.stack([np.asarray(Image.open(p), np.float64) for p in sorted((tmp_path / "jpg").glob("*.jpg"))])
    after = np.stack([np.asarray(Image.open(p), np.float64) for p in sorted((tmp_path / "fixed").glob("*.jpg"))])

    def excess(stack: np.ndarray, d: Defect) -> float:
        mean = stack.mean(axis=0)[..., d.channel]
        ring = [mean[d.y + dy, d.x + dx] for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0)
                and 0 <= d.y + dy < mean.shape[0] and 0 <= d.x + dx < mean.shape[1]]
        return abs(mean[d.y, d.x] - float(np.median(ring)))

    total_before = sum(excess(before, d) for d in found)
    total_after = sum(excess(after, d) for d in found)
    assert total_after < 0.25 * total_before, (total_before, total_after)
    with Image.open(sorted((tmp_path / "jpg").glob("*.jpg"))[0]) as a, \
            Image.open(sorted((tmp_path / "fixed").glob("*.jpg"))[0]) as b:
        assert a.info.get("exif") == b.info.get("exif") and a.quantization == b.quantization


def test_ser_video_every_frame_patched_and_nothing_else(tmp_path):
    from tests.io.serfile import write_ser

    rng = np.random.default_rng(5)
    frames = (rng.integers(100, 200, (3, H, W)) + np.tile([[0, 300], [300, 600]], (H // 2, W // 2))).astype(np.uint16)
    frames[:, 6, 8] = 4000
    src = tmp_path / "v.ser"
    write_ser(src, frames, colour="RGGB", depth=12)
    res = result_dir(tmp_path / "res", [point(8, 6)], (H, W), RGGB, file_format="ser")
    rows = fix([str(src)], res, tmp_path / "out", log=lambda m: None)
    assert rows[0].status == "fixed", rows[0].reason
    a, b = src.read_bytes(), (tmp_path / "out" / "v.ser").read_bytes()
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 2 * len(frames)
    from pipeline.io import read_pixels

    for i, frame in enumerate(frames):
        copy = read_pixels(f"{tmp_path / 'out' / 'v.ser'}#frame={i}")
        assert copy[6, 8] == np.rint(dcraw_mean(frame, _only(6, 8), 6, 8))
        assert np.array_equal(copy[~_only(6, 8)], frame[~_only(6, 8)])
