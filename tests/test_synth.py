"""Tests of the synthetic sensor generator: determinism, truth, and that planted defects are real.

The stats here are computed with plain numpy on purpose, so that these tests check the
generator independently of the pipeline that will later be measured on its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline import synth
from pipeline.synth import (
    BLACK_LEVEL,
    MIN_SPACING,
    WHITE_LEVEL,
    cfa_colour_index,
    default_defects_per_kind,
    demosaic_bilinear,
    synthesize,
)

SIZE = (160, 120)  # for format and layout tests
STACK_SIZE = (320, 240)  # for statistics: large enough that scene detail is not crammed in
FRAMES = 24
KINDS = {"hot", "stuck", "dead", "noisy"}


def load_stack(out: Path, truth: dict) -> np.ndarray:
    """All frames as float64 (N, H, W) for mosaics or (N, H, W, 3) for RGB."""
    frames = []
    for name in truth["files"]:
        if name.endswith(".dng"):
            rawpy = pytest.importorskip("rawpy")
            with rawpy.imread(str(out / name)) as raw:
                frames.append(raw.raw_image_visible.copy())
        else:
            frames.append(iio.imread(out / name))
    return np.stack(frames).astype(np.float64)


def plane(stack: np.ndarray, channel: int) -> np.ndarray:
    return stack if stack.ndim == 3 else stack[..., channel]


def neighbours(a: np.ndarray, x: int, y: int, stride: int) -> np.ndarray:
    """The 4 same-colour neighbours of (x, y) along the last two axes of ``a``."""
    return np.stack([a[..., y - stride, x], a[..., y + stride, x], a[..., y, x - stride], a[..., y, x + stride]])


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """One small stack per (format, dark) combination used below, generated once."""
    cache: dict = {}

    def get(fmt: str, dark: bool = False, seed: int = 7):
        key = (fmt, dark, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{fmt}_{'dark' if dark else 'photo'}_{seed}")
            truth = synthesize(out, frames=FRAMES, size=STACK_SIZE, fmt=fmt, dark=dark, seed=seed)
            cache[key] = (out, truth, load_stack(out, truth))
        return cache[key]

    return get


# --------------------------------------------------------------------------- files and truth


def test_files_and_truth_written(tmp_path):
    truth = synthesize(tmp_path, frames=5, size=SIZE, fmt="jpeg", seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"frame_{i:04d}.jpg" for i in range(5)] + ["truth.json"]
    assert json.loads((tmp_path / "truth.json").read_text()) == truth
    assert truth["format"] == "jpeg" and truth["size"] == list(SIZE) and truth["frames"] == 5
    assert truth["dark"] is False and truth["seed"] == 1 and truth["cfa"] == "RGGB"
    assert truth["black_level"] == BLACK_LEVEL and truth["white_level"] == WHITE_LEVEL
    img = iio.imread(tmp_path / "frame_0000.jpg")
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.dtype == np.uint8
    for d in truth["defects"]:
        assert {"x", "y", "kind", "channel", "color", "amplitude"} <= d.keys()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff", "tiff16", "png16", "dng"])
def test_every_format_writes_expected_arrays(tmp_path, fmt):
    if fmt == "dng":
        pytest.importorskip("pidng")
    truth = synthesize(tmp_path, frames=2, size=(64, 48), fmt=fmt, seed=2, defects_per_kind=3)
    stack = load_stack(tmp_path, truth)
    if fmt in synth.MOSAIC_FORMATS:
        assert stack.shape == (2, 48, 64)
        assert stack.max() <= WHITE_LEVEL
        assert all(d["channel"] == 0 for d in truth["defects"])
    else:
        assert stack.shape == (2, 48, 64, 3)
        assert all(d["channel"] == "RGB".index(d["color"]) for d in truth["defects"])


def test_deterministic_for_a_seed(tmp_path):
    a = synthesize(tmp_path / "a", frames=4, size=SIZE, fmt="png16", seed=11)
    b = synthesize(tmp_path / "b", frames=4, size=SIZE, fmt="png16", seed=11)
    c = synthesize(tmp_path / "c", frames=4, size=SIZE, fmt="png16", seed=12)
    assert a == b
    for name in a["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a["defects"] != c["defects"]
    assert not np.array_equal(iio.imread(tmp_path / "a" / a["files"][0]), iio.imread(tmp_path / "c" / c["files"][0]))


def test_frames_do_not_depend_on_frame_count_or_format(tmp_path):
    """Frame i is the same sensor readout whatever the stack length and the encoding."""
    short = synthesize(tmp_path / "short", frames=2, size=SIZE, fmt="tiff16", seed=3)
    long = synthesize(tmp_path / "long", frames=4, size=SIZE, fmt="png16", seed=3)
    # dead amplitudes are measured over the stack (mean signal lost), everything else is fixed
    strip = lambda defects: [{k: v for k, v in d.items() if d["kind"] != "dead" or k != "amplitude"} for d in defects]  # noqa: E731
    assert strip(short["defects"]) == strip(long["defects"])
    assert short["exposures"] == long["exposures"][:2]
    for i in range(2):
        a = iio.imread(tmp_path / "short" / short["files"][i])
        b = iio.imread(tmp_path / "long" / long["files"][i])
        np.testing.assert_array_equal(a, b)


def test_rerun_replaces_previous_frames(tmp_path):
    synthesize(tmp_path, frames=6, size=SIZE, fmt="png", seed=0)
    (tmp_path / "notes.txt").write_text("mine")
    synthesize(tmp_path, frames=3, size=SIZE, fmt="jpeg", seed=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame_0000.jpg", "frame_0001.jpg", "frame_0002.jpg", "notes.txt", "truth.json"]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="unknown format"):
        synthesize("/nonexistent/never-written", fmt="bmp")
    with pytest.raises(ValueError, match="too small"):
        synthesize("/nonexistent/never-written", size=(20, 20))
    with pytest.raises(ValueError, match="frames"):
        synthesize("/nonexistent/never-written", frames=0)


# --------------------------------------------------------------------------- defect layout


def test_default_defect_count_scales_with_area():
    assert 6 <= default_defects_per_kind(640, 480) <= 10
    assert default_defects_per_kind(32, 32) == 3
    assert default_defects_per_kind(6000, 4000) > 100


@pytest.mark.parametrize("size,seed", [((640, 480), 0), ((160, 120), 1), ((64, 48), 2), ((333, 101), 3)])
def test_every_kind_present_spaced_and_away_from_border(tmp_path, size, seed):
    truth = synthesize(tmp_path, frames=1, size=size, fmt="tiff16", seed=seed)
    defects = truth["defects"]
    per_kind = default_defects_per_kind(*size)
    kinds = [d["kind"] for d in defects]
    assert {k: kinds.count(k) for k in KINDS} == {k: per_kind for k in KINDS}
    hot = [d for d in defects if d["kind"] == "hot"]
    dead = [d for d in defects if d["kind"] == "dead"]
    assert any(d["warm"] for d in hot) and not all(d["warm"] for d in hot)
    assert any(d["cold"] for d in dead) and not all(d["cold"] for d in dead)
    w, h = size
    xy = np.array([(d["x"], d["y"]) for d in defects])
    assert xy[:, 0].min() >= MIN_SPACING and xy[:, 0].max() <= w - 1 - MIN_SPACING
    assert xy[:, 1].min() >= MIN_SPACING and xy[:, 1].max() <= h - 1 - MIN_SPACING
    cheb = np.abs(xy[:, None, :] - xy[None, :, :]).max(axis=2)
    np.fill_diagonal(cheb, 10**9)
    assert cheb.min() >= MIN_SPACING
    cfa = cfa_colour_index(h, w)
    assert all(d["color"] == "RGB"[cfa[d["y"], d["x"]]] for d in defects)


# --------------------------------------------------------------------------- camera pipeline


def test_demosaic_keeps_own_colour_and_flat_fields():
    rng = np.random.default_rng(0)
    m = rng.random((10, 14)).astype(np.float32)
    rgb = demosaic_bilinear(m)
    np.testing.assert_array_equal(rgb[0::2, 0::2, 0], m[0::2, 0::2])
    np.testing.assert_array_equal(rgb[0::2, 1::2, 1], m[0::2, 1::2])
    np.testing.assert_array_equal(rgb[1::2, 0::2, 1], m[1::2, 0::2])
    np.testing.assert_array_equal(rgb[1::2, 1::2, 2], m[1::2, 1::2])
    np.testing.assert_allclose(demosaic_bilinear(np.full((7, 9), 0.3, np.float32)), 0.3, rtol=1e-6)


def test_demosaic_spreads_a_single_sensel_only_to_its_neighbours():
    m = np.zeros((8, 8), np.float32)
    m[4, 4] = 1.0  # an R site
    rgb = demosaic_bilinear(m)
    assert rgb[4, 4, 0] == 1.0 and rgb[4, 4, 1] == 0 and rgb[4, 4, 2] == 0
    assert rgb[..., 1:].sum() == 0  # never leaks into other colours
    np.testing.assert_array_equal(rgb[3:6, 3:6, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
    assert rgb[..., 0].sum() == 4.0


# --------------------------------------------------------------------------- dark frames


def test_dark_mosaic_is_black_level_plus_small_noise(stacks):
    _, truth, stack = stacks("tiff16", dark=True)
    mask = np.ones(stack.shape[1:], bool)
    for d in truth["defects"]:
        mask[d["y"] - 2 : d["y"] + 3, d["x"] - 2 : d["x"] + 3] = False
    healthy = stack[:, mask]
    assert BLACK_LEVEL <= healthy.mean() < BLACK_LEVEL + 5
    assert 1.0 < np.median(healthy.std(axis=0)) < 4.0
    assert all(e == 0 for e in truth["exposures"])


def test_healthy_dark_current_stays_clear_of_the_warm_criterion():
    """The dark-current body is a log-normal cut at 1 noise sigma above its median: warm (3 sigma) is planted only."""
    sensor = synth.SENSOR
    cam = synth._camera(np.random.default_rng(5), 480, 640, sensor)
    sigma = sensor.noise_sigma(0.0)
    assert cam.dark.max() <= sensor.healthy_dark_max() == pytest.approx(sensor.dark_median() + sigma)
    assert sensor.healthy_dark_max() < sensor.dark_median() + synth.WARM_SIGMAS[0] * sigma
    assert np.median(cam.dark) == pytest.approx(sensor.dark_median(), rel=0.03)  # the body is the log-normal's
    assert cam.dark.min() > 0 and cam.dark.max() > 0.95 * sensor.healthy_dark_max()


def test_dark_truth_lists_every_warm_sensel(stacks):
    """Measured over the stack, no unlisted sensel is anywhere near warm; every planted warm one is."""
    out, truth, stack = stacks("png16", dark=True)
    ds = truth["dark_signal"]
    assert ds["warm_sigmas"] == synth.WARM_SIGMAS[0] and ds["sigma"] == pytest.approx(synth.SENSOR.noise_sigma(0.0), 1e-3)
    mean = stack.mean(axis=0)
    pad = np.pad(mean, 2, mode="reflect")
    h, w = mean.shape
    ring = np.stack([pad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] for dy in (-2, 0, 2) for dx in (-2, 0, 2) if dy or dx])
    offset = mean - np.median(ring, axis=0)
    healthy = np.ones(mean.shape, bool)
    for d in truth["defects"]:
        healthy[d["y"] - 2 : d["y"] + 3, d["x"] - 2 : d["x"] + 3] = False
    warm = ds["warm_sigmas"] * ds["sigma"]
    se = ds["sigma"] / np.sqrt(truth["frames"])
    assert offset[healthy].max() < warm - 4 * se  # the cut (1 sigma) plus the measurement noise
    for d in truth["defects"]:
        if d["kind"] == "hot":
            # on top of its own dark current, which may be under the median
            assert d["amplitude"] >= warm - 1e-6 and offset[d["y"], d["x"]] > warm - ds["median"] - 4 * se, d


def test_dark_jpeg_is_nearly_black(stacks):
    _, _, stack = stacks("jpeg", dark=True)
    assert stack.mean() < 10
    assert np.median(stack) <= 5


# --------------------------------------------------------------------------- defects are visible


def test_mosaic_defects_visible_in_photo_stats(stacks):
    _, truth, stack = stacks("tiff16")
    mean, var = stack.mean(axis=0), stack.var(axis=0)
    for d in truth["defects"]:
        x, y, amp = d["x"], d["y"], d["amplitude"]
        nb_mean = neighbours(mean, x, y, 2)
        nb_var = neighbours(var, x, y, 2)
        excess = mean[y, x] - nb_mean.mean()
        if d["kind"] == "stuck":
            assert var[y, x] == 0 and mean[y, x] == amp
            assert nb_var.min() > 0
        elif d["kind"] == "hot" and not d["warm"]:
            assert excess > 0.5 * min(amp, WHITE_LEVEL - nb_mean.max()), d
        elif d["kind"] == "dead":
            assert excess < -0.5 * amp, d
            if not d["cold"]:
                assert abs(mean[y, x] - BLACK_LEVEL) < 3 and var[y, x] < 3 * synth.SENSOR.read_noise**2
    # noisy: the residual against its neighbours flickers more than the residuals around it
    # (the scene varies a lot per frame, so compare residuals, not raw values)
    def resid_std(xx: int, yy: int) -> float:
        return float((stack[:, yy, xx] - neighbours(stack, xx, yy, 2).mean(axis=0)).std())

    ratios = []
    for d in (d for d in truth["defects"] if d["kind"] == "noisy"):
        x, y = d["x"], d["y"]
        ring = [resid_std(xx, yy) for yy in range(y - 4, y + 5, 2) for xx in range(x - 4, x + 5, 2)
                if max(abs(yy - y), abs(xx - x)) > 2]
        ratios.append(resid_std(x, y) / np.median(ring))
    assert np.median(ratios) > 1.5


def test_mosaic_defects_visible_in_dark_stats(stacks):
    _, truth, stack = stacks("png16", dark=True)
    mean, std = stack.mean(axis=0), stack.std(axis=0)
    for d in truth["defects"]:
        x, y, amp = d["x"], d["y"], d["amplitude"]
        nb_mean, nb_std = neighbours(mean, x, y, 2), neighbours(std, x, y, 2)
        if d["kind"] == "hot":  # warm ones too: a few sigma per frame is many sigma over the stack
            assert mean[y, x] - nb_mean.mean() > 0.5 * amp, d
        elif d["kind"] == "stuck":
            assert std[y, x] == 0 and nb_std.min() > 0.5
        elif d["kind"] == "noisy":
            assert std[y, x] > 2.5 * np.median(nb_std), d


def test_jpeg_defects_visible_in_their_channel(stacks):
    _, truth, stack = stacks("jpeg")
    mean = stack.mean(axis=0)
    for d in truth["defects"]:
        x, y, c = d["x"], d["y"], d["channel"]
        excess = mean[y, x, c] - neighbours(mean[..., c], x, y, 1).mean()
        if d["kind"] == "stuck" and d["saturated"]:
            assert excess > 10, d
        elif d["kind"] == "hot" and d["amplitude"] > 1000 and d["color"] == "G":
            assert excess > 5, d
        elif d["kind"] == "dead" and not d["cold"] and d["color"] == "G":
            assert excess < -5, d


def test_dark_jpeg_hot_pixels_stand_out(stacks):
    """Dark JPEG hot pixels peak at their own pixel in their channel, far above the black frame.

    Demosaicing spreads half of a sensel's value to its neighbours, and JPEG's 4:2:0 chroma
    subsampling smears red and blue over 2x2 blocks, so neighbours light up too.
    """
    _, truth, stack = stacks("jpeg", dark=True)
    mean = stack.mean(axis=0)
    for d in truth["defects"]:
        if d["kind"] == "hot" and not d["warm"]:
            x, y, c = d["x"], d["y"], d["channel"]
            assert mean[y, x, c] > np.median(mean[..., c]) + 20, d
            assert mean[y, x, c] >= mean[y - 1 : y + 2, x - 1 : x + 2, c].max() - 1, d


# --------------------------------------------------------------------------- DNG


def test_dng_reads_back_exact_mosaic_and_pattern(tmp_path):
    pytest.importorskip("pidng")
    rawpy = pytest.importorskip("rawpy")
    tifffile = pytest.importorskip("tifffile")
    truth = synthesize(tmp_path / "dng", frames=2, size=SIZE, fmt="dng", seed=4)
    ref = synthesize(tmp_path / "tif", frames=2, size=SIZE, fmt="tiff16", seed=4)
    assert [d | {"channel": 0} for d in truth["defects"]] == ref["defects"]
    for name, ref_name in zip(truth["files"], ref["files"]):
        with rawpy.imread(str(tmp_path / "dng" / name)) as raw:
            mosaic = raw.raw_image_visible.copy()
            np.testing.assert_array_equal(raw.raw_pattern, [[0, 1], [3, 2]])
            assert raw.color_desc == b"RGBG"
            assert list(raw.black_level_per_channel) == [BLACK_LEVEL] * 4
            assert raw.white_level == WHITE_LEVEL
            assert raw.postprocess().shape == (SIZE[1], SIZE[0], 3)
        assert mosaic.dtype == np.uint16
        np.testing.assert_array_equal(mosaic, tifffile.imread(tmp_path / "tif" / ref_name))
    with tifffile.TiffFile(tmp_path / "dng" / truth["files"][0]) as tif:
        tags = tif.pages[0].tags
        assert (tags["Make"].value, tags["Model"].value) == (synth.MAKE, synth.MODEL)
