"""synthesize_collection: the truth, the schedule (dates, exposures, ISO), metadata in every format,
defect layout (lines, clusters, border, spacing), populations, determinism and the CLI."""

from __future__ import annotations

import calendar
import json
import math
import time
from datetime import datetime
from fractions import Fraction

import numpy as np
import pytest

from pipeline.synth import (
    COLLECTION_SENSOR,
    FORMATS,
    ISO_SERIES,
    MIN_SPACING,
    MOSAIC_FORMATS,
    SHUTTER_SERIES,
    cfa_colour_index,
    synthesize_collection,
)

from .conftest import sensels

DEFECT_KEYS = {"kind", "x", "y", "channel", "color", "rate", "offset", "warm", "since", "since_unix", "value", "gain",
               "cold", "mode", "step", "p_high", "length", "direction", "cluster", "border", "population"}
TRUTH_KEYS = ["kind", "version", "format", "size", "frames", "seed", "cfa", "black_level", "white_level", "make",
              "model", "serial", "files", "frames_meta", "defects"]


# --------------------------------------------------------------------------- truth and schedule


def test_truth_schema_and_files(collections):
    out, truth, _ = collections(frames=60)
    assert list(truth) == TRUTH_KEYS
    assert json.loads((out / "truth.json").read_text()) == truth
    assert truth["kind"] == "collection" and truth["version"] == 1 and truth["cfa"] == "RGGB"
    assert (truth["black_level"], truth["white_level"]) == (512, 16383)  # 14-bit
    assert truth["make"] and truth["model"] and truth["serial"]
    assert sorted(p.name for p in out.iterdir()) == sorted(truth["files"] + ["truth.json"])
    assert [m["file"] for m in truth["frames_meta"]] == truth["files"]
    for m in truth["frames_meta"]:
        assert set(m) == {"file", "exposure", "iso", "time", "unix", "nr", "dark"}
        assert calendar.timegm(time.strptime(m["time"], "%Y-%m-%dT%H:%M:%S")) == m["unix"]
    w, h = truth["size"]
    cfa = cfa_colour_index(h, w)
    for d in truth["defects"]:
        assert set(d) == DEFECT_KEYS, d
        assert d["channel"] == 0 and d["color"] == "RGB"[cfa[d["y"], d["x"]]]
        assert d["kind"] in ("hot", "stuck", "dead", "noisy", "column", "row")


def test_every_kind_and_variant_is_planted(collections):
    _, truth, _ = collections(frames=60)
    defects = truth["defects"]
    hot = [d for d in defects if d["kind"] == "hot"]
    assert any(d["warm"] and d["rate"] == 0 and d["offset"] > 0 for d in hot)
    plain = [d for d in hot if not d["warm"]]
    assert all(20 <= d["rate"] <= 3000 and d["offset"] == 0 for d in plain)
    assert 0.2 < sum(d["since"] is not None for d in hot) / len(hot) < 0.5  # about a third have an onset
    first, last = truth["frames_meta"][0]["unix"], truth["frames_meta"][-1]["unix"]
    for d in hot:
        if d["since"]:
            assert d["since_unix"] == calendar.timegm(time.strptime(d["since"], "%Y-%m-%d"))
            assert first - 86400 < d["since_unix"] < last
    assert {d["mode"] for d in defects if d["kind"] == "noisy"} == {"rts1", "rts2", "rts3", "gaussian"}
    for d in defects:
        if d["kind"] == "noisy" and d["mode"] != "gaussian":
            assert 0.05 <= d["p_high"] <= 0.95 and d["step"] > 0
    dead = [d for d in defects if d["kind"] == "dead"]
    assert any(d["cold"] and 0 < d["gain"] < 1 for d in dead) and any(d["gain"] == 0 for d in dead)
    assert all(512 < d["value"] <= 16383 for d in defects if d["kind"] == "stuck")
    for kind in ("column", "row"):
        lines = [d for d in defects if d["kind"] == kind]
        assert lines and all(d["direction"] == kind and 20 <= d["length"] <= 200 for d in lines)
        assert all((d["rate"] > 0) != (d["offset"] > 0) for d in lines)
    assert any(d["cluster"] is not None for d in defects) and any(d["border"] for d in defects)


def test_exposures_iso_and_dates_span_the_collection(collections):
    _, truth, _ = collections(frames=200, seed=5, fmt="png16", size=(160, 120), dark_fraction=0.1)
    meta = truth["frames_meta"]
    photos = [m for m in meta if not m["dark"]]
    exposures = [m["exposure"] for m in photos]
    isos = [m["iso"] for m in photos]
    assert min(exposures) <= 1 / 1000 and max(exposures) >= 4 and max(exposures) <= 8
    assert min(isos) == 100 and max(isos) == 6400
    assert {float(s) for s in SHUTTER_SERIES} >= {m["exposure"] for m in meta}
    assert set(ISO_SERIES) >= {m["iso"] for m in meta}
    # the program: low ISO for short exposures; ISO rises at 1/30 s; only ISO 6400 goes longer
    assert all(m["iso"] == 100 for m in photos if m["exposure"] < 1 / 30)
    assert all(m["iso"] == 6400 for m in photos if m["exposure"] > 1 / 30)
    # dates: sorted, spread over the two years from the start
    unix = [m["unix"] for m in meta]
    assert unix == sorted(unix)
    start = calendar.timegm((2024, 1, 1, 0, 0, 0))
    assert start <= unix[0] < start + 30 * 86400 and start + 700 * 86400 < unix[-1] < start + 730 * 86400
    # darks and noise reduction
    assert sum(m["dark"] for m in meta) == 20
    assert all(m["exposure"] >= 1 for m in meta if m["dark"] or m["nr"])
    long = [m for m in meta if m["exposure"] >= 1]
    assert sum(m["nr"] for m in meta) == max(1, round(0.15 * len(long)))


def test_the_exposure_program_keeps_mid_grey_at_18_percent():
    """For any scene, t * ISO / 100 matches the metered exposure within ~1/6 stop (until 8 s at ISO 6400).

    Up to 0.21 stop where the shutter series' steps are uneven (1/8 -> 1/6, 0.3 -> 0.4).
    """
    sensor = COLLECTION_SENSOR
    last_t, last_iso = Fraction(0), 0
    for ev in np.linspace(15, -5, 201):
        t, iso, ratio = sensor.program(float(ev))
        assert abs(math.log2(ratio)) <= 0.22, (ev, t, iso)
        assert ratio == pytest.approx(float(t) * iso / 100 / (sensor.f_number**2 / 2**ev))
        assert t >= last_t and iso >= last_iso  # darker scenes: never a shorter exposure or a lower ISO
        last_t, last_iso = t, iso
    assert sensor.program(15) == (Fraction(1, 2000), 100, pytest.approx(1, abs=0.05))
    assert sensor.program(-5)[:2] == (Fraction(8), 6400)
    assert sensor.program(7)[0] == Fraction(1, 30)  # handheld limit, ISO rising
    assert 100 < sensor.program(7)[1] < 6400


def test_raw_signal_of_the_scene_stays_near_18_percent(collections):
    """Auto-exposure: the green sensels' mean stays near 18 % of the range from 1/2000 to 8 s."""
    _, truth, stack = collections(frames=60)
    span = truth["white_level"] - truth["black_level"]
    h, w = stack.shape[1:]
    levels = []
    for i, m in enumerate(truth["frames_meta"]):
        if not m["dark"] and not m["nr"]:
            green = stack[i, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4][0::2, 1::2]  # centre, G sensels
            levels.append((green.mean() - truth["black_level"]) / span)
    assert 0.1 < np.median(levels) < 0.3 and np.percentile(levels, 90) / np.percentile(levels, 10) < 2.5


def test_read_noise_and_gain_grow_with_iso():
    s = COLLECTION_SENSOR
    assert s.gain(6400) == 64 * s.gain(100)
    noise = [s.read_noise(iso) for iso in ISO_SERIES]
    assert noise == sorted(noise) and noise[0] < 3 and noise[-1] > 30


# --------------------------------------------------------------------------- metadata in every format


def _pillow_meta(path) -> dict:
    from PIL import Image

    with Image.open(path) as im:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
    return {"exposure": float(sub[33434]), "iso": sub[34855], "time": sub[36867], "make": exif[271],
            "model": exif[272], "serial": sub[42033]}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_metadata_reads_back(collections, fmt):
    out, truth, _ = collections(frames=6, size=(160, 120), fmt=fmt, seed=1, dark_fraction=0.3)
    for m in truth["frames_meta"]:
        path = out / m["file"]
        want_time = m["time"].replace("-", ":").replace("T", " ")
        if fmt == "dng":
            rawpy = pytest.importorskip("rawpy")
            with rawpy.imread(str(path)) as raw:
                other = raw.other
                assert raw.raw_image_visible.shape == (120, 160)
                assert raw.white_level == truth["white_level"]
                assert list(raw.black_level_per_channel) == [truth["black_level"]] * 4
            assert other.iso_speed == m["iso"]
            assert other.shutter_speed == pytest.approx(m["exposure"], rel=1e-6)
            assert other.timestamp == datetime.fromisoformat(m["time"])  # LibRaw: local time, as written
            import tifffile

            with tifffile.TiffFile(path) as tif:
                tags = tif.pages[0].tags
                exif = tags["ExifTag"].value
                assert (tags["Make"].value, tags["Model"].value) == (truth["make"], truth["model"])
                assert tags["CameraSerialNumber"].value == truth["serial"]
                assert tags["DateTimeOriginal"].value == want_time and tags["ISOSpeedRatings"].value == m["iso"]
                assert Fraction(*exif["ExposureTime"]) == Fraction(m["exposure"]).limit_denominator(10000)
                assert exif["DateTimeOriginal"] == want_time and exif["BodySerialNumber"] == truth["serial"]
            continue
        got = _pillow_meta(path)
        assert got == {"exposure": pytest.approx(m["exposure"], rel=1e-9), "iso": m["iso"], "time": want_time,
                       "make": truth["make"], "model": truth["model"], "serial": truth["serial"]}
        if fmt.startswith("tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                exif = tif.pages[0].tags["ExifTag"].value
                assert exif["ISOSpeedRatings"] == m["iso"] and exif["DateTimeOriginal"] == want_time
                assert Fraction(*exif["ExposureTime"]) == Fraction(m["exposure"]).limit_denominator(10000)
                assert tif.pages[0].dtype == (np.uint16 if fmt == "tiff16" else np.uint8)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_holds_the_same_sensor(collections, fmt):
    """Mosaics are 14-bit raw values; developed frames are RGB and channel is the CFA colour's RGB index."""
    out, truth, stack = collections(frames=6, size=(160, 120), fmt=fmt, seed=1, dark_fraction=0.3)
    if fmt in MOSAIC_FORMATS:
        ref = collections(frames=6, size=(160, 120), fmt="tiff16", seed=1, dark_fraction=0.3)
        np.testing.assert_array_equal(stack, ref[2])
        assert truth["defects"] == ref[1]["defects"]
        assert stack.max() <= truth["white_level"]
    else:
        import imageio.v3 as iio

        img = iio.imread(out / truth["files"][0])
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        assert all(d["channel"] == "RGB".index(d["color"]) for d in truth["defects"])


def test_developed_frames_look_normally_exposed(collections):
    import imageio.v3 as iio

    out, truth, _ = collections(frames=24, size=(160, 120), fmt="jpeg", seed=2)
    means = [iio.imread(out / m["file"]).mean() for m in truth["frames_meta"] if not m["nr"]]
    assert 60 < np.median(means) < 160 and min(means) > 25


# --------------------------------------------------------------------------- layout


def test_lines_clusters_border_and_spacing(collections):
    _, truth, _ = collections(frames=60)
    w, h = truth["size"]
    defects = [d for d in truth["defects"] if not d["population"]]
    cfa = cfa_colour_index(h, w)
    for d in defects:
        pts = sensels(d)
        assert len({cfa[y, x] for x, y in pts}) == 1  # a line is one colour
        assert all(0 <= x < w and 0 <= y < h for x, y in pts)
        on_border = any(x < 2 or x >= w - 2 or y < 2 or y >= h - 2 for x, y in pts)
        assert d["border"] == on_border, d
    clusters: dict[int, list[dict]] = {}
    for d in defects:
        if d["cluster"] is not None:
            clusters.setdefault(d["cluster"], []).append(d)
    assert clusters and all(2 <= len(m) <= 3 for m in clusters.values())
    for members in clusters.values():
        xy = [(d["x"], d["y"]) for d in members]
        assert len(set(xy)) == len(xy)
        for x, y in xy:  # each member touches another (8-neighbours), so the cluster is connected for <= 3
            assert any(max(abs(x - u), abs(y - v)) == 1 for u, v in xy if (u, v) != (x, y))
    # everything else is >= MIN_SPACING apart (Chebyshev), sensel to sensel
    owner = [(i, x, y) for i, d in enumerate(defects) for x, y in sensels(d)]
    for i, x, y in owner:
        for j, u, v in owner:
            if i != j and not (defects[i]["cluster"] is not None and defects[i]["cluster"] == defects[j]["cluster"]):
                assert max(abs(x - u), abs(y - v)) >= MIN_SPACING, (defects[i], defects[j])


def test_population_lists_every_extra_defect(collections):
    """With a population, the frames differ from the same seed's without it only at listed sensels."""
    kw = {"frames": 12, "size": (160, 120), "fmt": "png16", "seed": 4, "dark_fraction": 0.5}
    _, base, base_stack = collections(**kw)
    _, truth, stack = collections(**kw, population=0.02)
    extra = [d for d in truth["defects"] if d["population"]]
    assert len(extra) == round(0.02 * 160 * 120)
    assert [d for d in truth["defects"] if not d["population"]] == base["defects"]
    assert {d["kind"] for d in extra} == {"hot", "noisy"}
    assert all(d["mode"] == "rts1" for d in extra if d["kind"] == "noisy")
    assert all(5 <= d["rate"] <= 50 for d in extra if d["kind"] == "hot")
    assert len({(d["x"], d["y"]) for d in truth["defects"]}) == len(truth["defects"])
    listed = np.zeros(stack.shape[1:], bool)
    for d in truth["defects"]:
        if d["population"] or d["kind"] == "noisy":  # the regular telegraph states are drawn after the population
            listed[d["y"], d["x"]] = True
    changed = (stack != base_stack).any(axis=0)
    assert changed.any() and not (changed & ~listed).any()
    # every weak hot sensel of the population shows in the longest dark frame
    longest = max((i for i, m in enumerate(truth["frames_meta"]) if m["dark"] and not m["nr"]),
                  key=lambda i: truth["frames_meta"][i]["exposure"] * truth["frames_meta"][i]["iso"])
    m = truth["frames_meta"][longest]
    for d in extra:
        if d["kind"] == "hot":
            excess = stack[longest, d["y"], d["x"]] - base_stack[longest, d["y"], d["x"]]
            want = d["rate"] * m["exposure"] * m["iso"] / 100
            assert excess > min(0.5 * want, 0.5 * (truth["white_level"] - base_stack[longest, d["y"], d["x"]])), d


# --------------------------------------------------------------------------- determinism, reruns, arguments


def test_deterministic_whatever_the_thread_count(tmp_path, monkeypatch):
    a = synthesize_collection(tmp_path / "a", frames=5, size=(160, 120), fmt="png16", seed=9, dark_fraction=0.4)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    b = synthesize_collection(tmp_path / "b", frames=5, size=(160, 120), fmt="png16", seed=9, dark_fraction=0.4)
    c = synthesize_collection(tmp_path / "c", frames=5, size=(160, 120), fmt="png16", seed=10, dark_fraction=0.4)
    assert a == b and a != c
    for name in a["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_parts_render_the_written_frames_and_other_noise_keeps_the_scene(tmp_path):
    """``collection_parts`` draws what ``synthesize_collection`` drew: its frames render again to the
    bit (the JPEG oracle renders them so); ``noise_rng`` redraws the noise only, the scene and the
    defects staying (the oracle's noise realisations)."""
    import imageio.v3 as iio

    from pipeline.synth.collection import collection_parts
    from pipeline.synth.physics import render_frame

    truth = synthesize_collection(tmp_path, frames=4, size=(96, 64), fmt="png16", seed=5, dark_fraction=0.25,
                                  population=0.01)
    parts = collection_parts(4, (96, 64), 5, dark_fraction=0.25, population=0.01)
    assert [(d["kind"], d["x"], d["y"]) for d in parts.plan.defects] == \
        [(d["kind"], d["x"], d["y"]) for d in truth["defects"]]
    for f, name in enumerate(truth["files"]):
        mosaic = render_frame(np.random.default_rng(parts.frame_seeds[f]), parts.body, parts.plan, f, parts.shots[f],
                              parts.sensor)
        assert np.array_equal(mosaic, iio.imread(tmp_path / name))
    lit = next(f for f, s in enumerate(parts.shots) if not s.dark)
    a, b = (render_frame(np.random.default_rng(parts.frame_seeds[lit]), parts.body, parts.plan, lit, parts.shots[lit],
                         parts.sensor, np.random.default_rng(k)).astype(np.float64) for k in (1, 2))
    written = iio.imread(tmp_path / truth["files"][lit]).astype(np.float64)
    assert not np.array_equal(a, b)
    # the same scene: two noise draws differ by noise, not by the scene's texture
    assert abs(np.mean(a) - np.mean(written)) < 0.01 * np.mean(written)
    assert np.corrcoef(a.ravel(), written.ravel())[0, 1] > 0.9


def test_rerun_replaces_previous_frames(tmp_path):
    synthesize_collection(tmp_path, frames=6, size=(160, 120), fmt="png16")
    (tmp_path / "notes.txt").write_text("mine")
    truth = synthesize_collection(tmp_path, frames=3, size=(160, 120), fmt="jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(truth["files"] + ["notes.txt", "truth.json"])


def test_invalid_arguments():
    bad = "/nonexistent/never-written"
    for kwargs, match in [({"fmt": "bmp"}, "unknown format"), ({"size": (30, 30)}, "too small"),
                          ({"frames": 0}, "frames"), ({"nr_fraction": 1.5}, "nr_fraction"),
                          ({"dark_fraction": -0.1}, "dark_fraction"), ({"population": 0.7}, "population"),
                          ({"start": "01/02/2024"}, "start"), ({"span_days": -1}, "span_days")]:
        with pytest.raises(ValueError, match=match):
            synthesize_collection(bad, **kwargs)


def test_cli_writes_a_collection(tmp_path, capsys):
    from pipeline.cli import main

    assert main(["synth", str(tmp_path), "--collection", "--frames", "4", "--size", "160x120", "--format", "png16",
                 "--seed", "2"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["kind"] == "collection" and truth["frames"] == 4 and truth["format"] == "png16"
    assert truth["size"] == [160, 120] and truth["seed"] == 2
    assert "collection of 4 png16 frames" in capsys.readouterr().out
    assert main(["synth", str(tmp_path / "d"), "--collection", "--dark", "--frames", "3", "--size", "160x120"]) == 0
    assert all(m["dark"] for m in json.loads((tmp_path / "d" / "truth.json").read_text())["frames_meta"])



def test_cli_writes_an_scmos_movie_as_one_tiff_stack(tmp_path, capsys):
    """``synth --movie``: the frames as pages of movie.tif, and every flickering sensel in truth.json,
    with the variance that makes a lab call it noisy (a telegraph step or a Gaussian read noise)."""
    import tifffile

    from pipeline.cli import main

    assert main(["synth", str(tmp_path), "--movie", "--frames", "30", "--size", "128x96", "--seed", "1"]) == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    frames = tifffile.imread(tmp_path / "movie.tif")
    assert frames.shape == (30, 96, 128) and frames.dtype == np.uint16
    assert truth["kind"] == "movie" and truth["files"] == ["movie.tif"] and len(truth["frames_meta"]) == 30
    assert len(truth["defects"]) == round(0.01 * 128 * 96)
    assert {d["mode"] for d in truth["defects"]} == {"rts1", "rts2", "gaussian"}
    var = frames.astype(np.float64).var(0)
    flicker = np.array([var[d["y"], d["x"]] for d in truth["defects"]])
    assert np.median(flicker) > 20 * np.median(var)
    assert "sCMOS movie of 30 frames" in capsys.readouterr().out
