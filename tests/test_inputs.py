"""Real-world inputs: raw DNG mosaics, 16-bit files, EXIF orientation, camera groups, HTTP."""

import functools
import http.server
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import rawpy
from PIL import Image

from pipeline import Config, read_stats, scan
from pipeline.defect import read_csv
from pipeline.layout import SensorLayout
from pipeline.state.files import read_files_csv
from pipeline.synth import synthesize

from .conftest import saved_attrs, write_stack

QUIET = {"progress": False, "log": lambda m: None}


def small_config():
    config = Config()
    config.scan.batch_size = 4
    return config


@pytest.fixture(scope="module")
def dng_scan(tmp_path_factory, local_client):
    root = tmp_path_factory.mktemp("dng")
    truth = synthesize(root / "frames", frames=24, size=(320, 240), fmt="dng", seed=5)
    result = scan([str(root / "frames")], root / "out", small_config(), client=local_client, **QUIET)
    return root, truth, result


def test_dng_stats_are_exact_per_sensel(dng_scan):
    root, truth, result = dng_scan
    stack = []
    for path in sorted((root / "frames").glob("*.dng")):
        with rawpy.imread(str(path)) as raw:
            stack.append(raw.raw_image_visible.copy())
    stack = np.stack(stack)
    assert result.stats.pixel_shape == (240, 320)
    np.testing.assert_allclose(result.stats.mean[0], stack.mean(0), rtol=1e-12)
    np.testing.assert_allclose(result.stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)


def test_dng_metadata_reaches_the_outputs(dng_scan):
    root, truth, result = dng_scan
    attrs = saved_attrs(root / "out")
    assert attrs["raw"] is True and attrs["dtype"] == "uint16"
    assert attrs["cfa_pattern"] == [[0, 1], [3, 2]] and attrs["color_desc"] == "RGBG"
    assert attrs["black_level"] == [256.0] * 4 and attrs["white_level"] == 4095.0
    assert (attrs["make"], attrs["model"]) == ("Hotpixels", "Synth 1")
    assert (root / "out" / "Hotpixels Synth 1.badpixels").exists()
    report = (root / "out" / "report.html").read_text()
    assert "4095" in report and "RGBG" in report  # levels and the CFA shown to the user


def test_strong_raw_defects_are_found_at_the_exact_sensel_with_their_cfa_colour(dng_scan):
    root, truth, _ = dng_scan
    defects = read_csv(root / "out" / "defects.csv")
    at = {(d.x, d.y): d for d in defects}
    strong = [t for t in truth["defects"] if t["kind"] in ("hot", "stuck", "dead") and not t.get("warm") and not t.get("cold")]
    found = [t for t in strong if (t["x"], t["y"]) in at]
    assert len(found) >= 0.95 * len(strong)
    for t in found:
        assert at[(t["x"], t["y"])].color == t["color"]
        assert at[(t["x"], t["y"])].channel == 0
    dcraw = [tuple(map(int, line.split()[:2])) for line in (root / "out" / "dcraw.badpixels").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert {(t["x"], t["y"]) for t in found} <= set(dcraw)  # dcraw's col row: the visible area, unrotated


@pytest.mark.parametrize("fmt", ["png16", "tiff16"])
def test_16_bit_files_are_exact(fmt, tmp_path, local_client):
    synthesize(tmp_path / "frames", frames=5, size=(96, 64), fmt=fmt, seed=1)
    stack = np.stack([iio.imread(p) for p in sorted((tmp_path / "frames").glob("frame_*"))])
    assert stack.dtype == np.uint16
    result = scan([str(tmp_path / "frames")], tmp_path / "out", small_config(), client=local_client, **QUIET)
    assert result.meta.dtype == "uint16"
    np.testing.assert_allclose(result.stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)


def test_exif_rotated_jpeg_is_read_and_reported_in_stored_coordinates(tmp_path, local_client):
    """Orientation 6 would display the image turned; the defect stays at its stored (x, y)."""
    rng = np.random.default_rng(4)
    height, width, x, y = 48, 80, 61, 13
    for i in range(24):
        base = rng.uniform(40, 140)
        scene = base + 30 * np.sin(np.arange(width) / rng.uniform(3, 9))[None, :] + rng.normal(0, 4, (height, width))
        frame = np.repeat(np.clip(scene, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
        frame[y, x] = np.minimum(frame[y, x].astype(int) + 70, 255)  # hot: a fixed offset over the scene
        exif = Image.Exif()
        exif[274] = 6 if i % 2 else 8
        Image.fromarray(frame).save(tmp_path / f"img_{i:02d}.jpg", quality=95, exif=exif.tobytes())
    assert iio.imread(tmp_path / "img_01.jpg").shape == (height, width, 3)  # stored, not turned
    result = scan([str(tmp_path / "img_*.jpg")], tmp_path / "out", small_config(), client=local_client, **QUIET)
    assert result.stats.pixel_shape == (height, width, 3)
    top = read_csv(tmp_path / "out" / "defects.csv")[0]
    assert (top.kind, abs(top.x - x) <= 1, abs(top.y - y) <= 1) == ("hot", True, True)


def camera_jpegs(folder: Path, make: str, model: str, n: int, shape=(24, 32, 3), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        exif = Image.Exif()
        exif[271], exif[272] = make, model
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(frame).save(folder / f"{make}_{shape[0]}x{shape[1]}_{i:02d}.jpg", quality=90, exif=exif.tobytes())


def test_cameras_are_never_mixed_and_all_groups_scans_each(tmp_path, local_client):
    camera_jpegs(tmp_path / "in", "Canon", "EOS R5", 5, seed=1)
    camera_jpegs(tmp_path / "in", "Nikon", "Z 6", 3, seed=2)
    camera_jpegs(tmp_path / "in", "Canon", "EOS R5", 2, shape=(32, 24, 3), seed=3)  # rotated in software
    largest = scan([str(tmp_path / "in")], tmp_path / "one", small_config(), client=local_client, **QUIET)
    assert largest.stats.n == 5 and largest.meta.make == "Canon"
    reasons = {Path(p).name: r for p, s, r in read_files_csv(tmp_path / "one") if s == "skipped"}
    assert len(reasons) == 5
    assert all("Nikon Z 6" in r for name, r in reasons.items() if name.startswith("Nikon"))
    assert sum("turned by 90 degrees" in r for r in reasons.values()) == 2

    config = small_config()
    config.scan.all_groups = True
    every = scan([str(tmp_path / "in")], tmp_path / "all", config, client=local_client, **QUIET)
    counts = sorted(r.stats.n for r in [every, *every.others])
    assert counts == [2, 3, 5]
    folders = sorted(p.name for p in (tmp_path / "all").iterdir() if p.is_dir())
    assert len(folders) == 3 and any("Nikon-Z-6" in f for f in folders)
    for folder in folders:
        stats, _ = read_stats(tmp_path / "all" / folder)
        assert stats.n in (2, 3, 5)
    assert sum(1 for _, s, _ in read_files_csv(tmp_path / "all") if s == "used") == 10


def test_square_patterns_are_scanned_one_period_apart_and_others_refused_with_a_reason():
    xtrans = tuple(tuple((r + c) % 3 for c in range(6)) for r in range(6))
    layout = SensorLayout.of_file(xtrans, "RGB")
    assert layout.refusal() == "" and layout.stride == 6 and layout.name == "mosaic 6x6"
    assert SensorLayout.of_file(((0, 1), (3, 2)), "RGBG").refusal() == ""
    assert SensorLayout.of_file(((0, 1), (3, 2)), "RGBG").stride == 2
    assert SensorLayout().refusal() == "" and SensorLayout().stride == 1
    oblong = SensorLayout.of_file(((0, 1, 2, 1), (1, 2, 1, 0)), "RGBG").refusal()
    assert "2x4 pattern that is not square" in oblong


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder of images (stopped after the test)."""
    stack = np.random.default_rng(9).integers(0, 256, (9, 20, 16, 3), dtype=np.uint8)
    write_stack(tmp_path / "site" / "photos", stack)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stack
    finally:
        server.shutdown()
        server.server_close()


def test_http_folder_is_scanned_by_the_workers(http_folder, tmp_path, local_client):
    base, stack = http_folder
    result = scan([f"{base}/photos/"], tmp_path / "out", small_config(), client=local_client, **QUIET)
    assert result.stats.n == 9
    np.testing.assert_allclose(result.stats.var[0], stack.astype(np.float64).var(0), rtol=1e-12)
    assert all(p.startswith(base) for p, _, _ in read_files_csv(tmp_path / "out"))
