"""A Bayer mosaic saved as plain gray is noticed from its values, and its pattern named; gray
frames of a mono sensor, and darks, are not taken for one."""

from pathlib import Path

import numpy as np
import pytest

from pipeline import Config, scan
from pipeline.io import read_pixels
from pipeline.stats.bayer_signature import agreed, signature
from pipeline.synth import synthesize

FLEA3 = Path(__file__).resolve().parent / "fixtures" / "flea3-icx655-darks"


@pytest.fixture(scope="module")
def mosaic_photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("gray-mosaic")
    truth = synthesize(root / "frames", frames=6, size=(160, 120), fmt="png16", seed=2)
    return root / "frames", truth


def test_lit_mosaic_frames_show_their_pattern(mosaic_photos):
    folder, truth = mosaic_photos
    assert truth["cfa"] == "RGGB"
    sigs = [signature(read_pixels(str(p))) for p in sorted(folder.glob("*.png"))]
    assert all(s.patterns == ("RGGB", "BGGR") for s in sigs)
    assert all(s.adjacent > 5 * s.two_apart for s in sigs)
    # the same frames shifted by one column: green moves to the other diagonal
    shifted = signature(read_pixels(str(sorted(folder.glob("*.png"))[0]))[:, 1:])
    assert shifted.patterns == ("GRBG", "GBRG")


def test_mono_photos_and_darks_show_no_mosaic(tmp_path):
    synthesize(tmp_path / "rgb", frames=3, size=(160, 120), fmt="png", seed=4)
    for path in sorted((tmp_path / "rgb").glob("*.png")):  # a scene through one filter: a mono sensor
        mono = np.rint(read_pixels(str(path)).astype(np.float64) @ [0.299, 0.587, 0.114] * 257).astype(np.uint16)
        s = signature(mono)
        assert not s.mosaic and s.adjacent < s.two_apart
    synthesize(tmp_path / "darks", frames=3, size=(160, 120), fmt="png16", seed=4, dark=True)
    assert agreed([signature(read_pixels(str(p))) for p in sorted((tmp_path / "darks").glob("*.png"))]) is None
    assert agreed([signature(read_pixels(str(p))) for p in sorted(FLEA3.glob("*.tif"))[:3]]) is None


def test_the_scan_reads_it_as_the_mosaic_it_shows_and_says_so(mosaic_photos, local_client, tmp_path):
    """Lit frames of a Bayer mosaic saved as gray: read as its first pattern, they give the stats and
    the defects of the same frames declared with --cfa (each sensel against its own colour): 10 of
    the 12 planted in 6 frames, where read as gray they gave 5, and 11 false reports. The notice
    names both patterns, and the report shows it."""
    from pipeline.defect import read_csv
    from pipeline.synth.matching import match

    folder, truth = mosaic_photos
    said: list[str] = []
    found = scan([str(folder)], tmp_path / "gray", Config(), client=local_client, progress=False, log=said.append)
    notice = [m for m in said if "Bayer mosaic" in m]
    assert len(notice) == 1 and "Scanned as RGGB" in notice[0] and "--cfa BGGR" in notice[0]
    report = (tmp_path / "gray" / "report.html").read_text()
    assert "class='warning'" in report and "look like a Bayer mosaic saved without its CFA" in report
    declared = Config()
    declared.scan.cfa = "RGGB"
    said.clear()
    told = scan([str(folder)], tmp_path / "declared", declared, client=local_client, progress=False,
                log=said.append)
    assert not [m for m in said if "Bayer mosaic" in m]
    assert "look like a Bayer mosaic" not in (tmp_path / "declared" / "report.html").read_text()
    np.testing.assert_array_equal(found.stats.mean, told.stats.mean)
    np.testing.assert_array_equal(found.stats.m2, told.stats.m2)
    defects = read_csv(tmp_path / "gray" / "defects.csv")
    assert [(d.x, d.y, d.kind) for d in defects] == [(d.x, d.y, d.kind) for d in read_csv(tmp_path / "declared" /
                                                                                           "defects.csv")]
    matches, false = match(truth, defects, 0)
    assert sum(m.found for m in matches) >= 10 and len(false) <= 1  # as gray: 5 of the 12, 11 false reports
    broken = tmp_path / "broken"
    broken.mkdir()
    for i, path in enumerate(sorted(folder.glob("*.png"))):
        (broken / path.name).write_bytes(path.read_bytes()[: 200] if i == 0 else path.read_bytes())
    said.clear()  # a first frame that cannot be decoded is skipped by the look as by the scan
    scan([str(broken)], tmp_path / "broken-out", Config(), client=local_client, progress=False, log=said.append)
    assert len([m for m in said if "Bayer mosaic" in m]) == 1


def test_saved_gray_statistics_stay_gray_when_merged_into(mosaic_photos, local_client, tmp_path):
    """Frames merged into statistics of them read as gray (an older scan) are read as gray too, and
    the notice says why and what to do."""
    from pipeline.records import StackMeta
    from pipeline.state.store import read_meta, write_stats
    from pipeline.stats.accumulate import stats_of_stack

    folder, _ = mosaic_photos
    first = sorted(folder.glob("*.png"))[0]
    from pipeline.io import read_pixels

    frame = read_pixels(str(first))
    write_stats(tmp_path / "out", stats_of_stack(frame[None].astype(np.uint16), 1), StackMeta(dtype="uint16"))
    said: list[str] = []
    scan([str(folder)], tmp_path / "out", Config(), client=local_client, progress=False, log=said.append, merge=True)
    notice = [m for m in said if "Bayer mosaic" in m]
    assert len(notice) == 1 and "were scanned as gray, so these are too" in notice[0] and "read as RGGB" in notice[0]
    assert not read_meta(tmp_path / "out").layout.mosaic


def test_darks_merged_into_a_mosaic_read_from_lit_frames_take_its_layout(mosaic_photos, local_client, tmp_path):
    """Darks show no colour: merged into the statistics of lit frames read as RGGB, they are read
    as RGGB too (as gray they would be another layout, and refused); a lit set that starts with a
    dark is still read as the mosaic its lit frames show."""
    from pipeline.state.store import read_meta

    folder, _ = mosaic_photos
    scan([str(folder)], tmp_path / "out", Config(), client=local_client, progress=False, log=lambda m: None)
    synthesize(tmp_path / "darks", frames=3, size=(160, 120), fmt="png16", seed=4, dark=True)
    said: list[str] = []
    result = scan([str(tmp_path / "darks")], tmp_path / "out", Config(), client=local_client, progress=False,
                  log=said.append, merge=True)
    assert result.stats.n == 9 and read_meta(tmp_path / "out").layout.name == "RGGB"
    assert not [m for m in said if "Bayer mosaic" in m]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in sorted((tmp_path / "darks").glob("*.png"))[:1] + sorted(folder.glob("*.png")):
        (mixed / ("0_" + path.name if "darks" in str(path) else path.name)).write_bytes(path.read_bytes())
    scan([str(mixed)], tmp_path / "mixed-out", Config(), client=local_client, progress=False, log=lambda m: None)
    assert read_meta(tmp_path / "mixed-out").layout.name == "RGGB"


def test_real_darks_read_as_gray_give_every_clear_hot_sensel_as_hot(local_client, tmp_path):
    """The real Flea3 darks as given (no CFA tag; darks show no pattern): one value per sensel, so
    each sensel is its own defect. The 18 that read at least 10 DN in both 3.9 s darks are all
    hot, also the one two rows from two others on its column (33, 317: 38 DN at 3.9 s beside
    100 and 44), which the rules of a demosaiced image (one report per 3 px blob) dropped."""
    import tifffile

    from pipeline.defect import read_csv

    scan([str(FLEA3)], tmp_path / "out", Config(), client=local_client, progress=False, log=lambda m: None)
    longest = np.minimum(*[tifffile.imread(p) for p in sorted(FLEA3.glob("*3916ms*.tif"))])
    clear = set(zip(*np.nonzero(longest >= 10)[::-1]))
    assert len(clear) == 18 and (33, 317) in clear
    found = {(int(d.x), int(d.y)): d.kind for d in read_csv(tmp_path / "out" / "defects.csv")}
    assert {found.get(p) for p in clear} == {"hot"}


def test_a_gray_jpeg_keeps_the_rules_of_a_jpeg(local_client, tmp_path):
    """A gray JPEG is one value per pixel, but its 8x8 blocks ring around a defect: each strong hot
    pixel is one report, its ringing none (read by a monochrome sensor's rules, the two below gave
    3 hot and 2 dead reports)."""
    from PIL import Image

    from pipeline.defect import read_csv

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:120, 0:160]
    folder = tmp_path / "gray"
    folder.mkdir()
    for f in range(12):
        scene = 100 + 60 * np.sin(xx / 13 + f) * np.cos(yy / 17 - f / 2) + rng.normal(0, 3, yy.shape)
        scene[40, 50] += 120
        scene[80, 100] += 90
        Image.fromarray(np.clip(np.rint(scene), 0, 255).astype(np.uint8), "L").save(folder / f"f{f:02d}.jpg", quality=90)
    scan([str(folder)], tmp_path / "out", Config(), client=local_client, progress=False, log=lambda m: None)
    assert sorted((d.x, d.y, d.kind) for d in read_csv(tmp_path / "out" / "defects.csv")) == [(50, 40, "hot"),
                                                                                               (100, 80, "hot")]


def test_a_monochrome_camera_s_darks_with_a_population_of_hot_sensels_give_each_one(local_client, tmp_path):
    """A cooled mono astro camera's darks (5-300 s, no exposure in the files: the frames' mean
    stands in) with 1 % of its sensels hot (2-60 DN/s): each is its own defect, 1-3 px from
    another too. Read with a demosaiced image's rules (one report per 3 px blob, a 3x weaker one
    within 8 px dropped) 1,087 of 1,600 were found on 400x400."""
    import tifffile

    from pipeline.defect import read_csv

    rng = np.random.default_rng(9)
    size = 200
    flat = rng.choice(size * size, size * size // 100, replace=False)
    ys, xs = np.divmod(flat, size)
    rate = rng.uniform(2, 60, len(flat))
    folder = tmp_path / "darks"
    folder.mkdir()
    for i, seconds in enumerate([5, 10, 30, 60, 120, 300] * 3):
        frame = 500 + rng.normal(0, 3, (size, size)) + rng.poisson(0.05 * seconds, (size, size))
        frame[ys, xs] += rng.poisson(rate * seconds)
        tifffile.imwrite(folder / f"dark_{i:02d}.tif", np.rint(frame).astype(np.uint16))
    scan([str(folder)], tmp_path / "out", Config(), client=local_client, progress=False, log=lambda m: None)
    found = {(int(d.x), int(d.y)): d.kind for d in read_csv(tmp_path / "out" / "defects.csv")}
    planted = set(zip(xs.tolist(), ys.tolist()))
    assert not set(found) - planted
    assert sum(found.get(p) == "hot" for p in planted) >= 0.98 * len(planted)
