"""The HTML report page (``pipeline.report.page``): light and quick for a 24 MP sensor, and it says
what was found and where. The page is read back from the bokeh document embedded in it."""

from __future__ import annotations

import html
import time
import types

import numpy as np
import pytest

from pipeline.defect import KINDS, Defect
from pipeline.report import write_report

from .bokeh_doc import document as _doc
from .bokeh_doc import models as _objects
from .bokeh_doc import value as _value

# ------------------------------------------------------------------ reading the bokeh document back


def _sources(doc) -> list[dict]:
    out = []
    for obj in _objects(doc, "ColumnDataSource"):
        data = obj.get("attributes", {}).get("data")
        if data and data.get("type") == "map":
            out.append({k: _value(v) for k, v in data["entries"]})
    return out


def _divs(doc) -> str:
    return "\n".join(o["attributes"]["text"] for o in _objects(doc, "Div") if "text" in o.get("attributes", {}))


def _table_source(doc) -> dict:
    return next(s for s in _sources(doc) if "detail" in s)


# ------------------------------------------------------------------ fixtures


def _defects(h, w, n, rng, channels=1):
    out = []
    for i in range(n):
        kind = KINDS[i % 4]
        out.append(Defect(x=int(rng.integers(w)), y=int(rng.integers(h)), channel=i % channels, kind=kind,
                          mean=float(rng.uniform(0, 4000)), std=float(rng.uniform(0, 50)),
                          score=float(rng.uniform(6, 500)), color="RGB"[i % 3] if channels == 3 else "L",
                          neighbour_mean=100.0, detail=f"evidence {i}"))
    return out


def _detection(shape, rng):
    z = rng.standard_normal(shape).astype(np.float32)
    return types.SimpleNamespace(
        scores={"value_z": z, "flicker": np.abs(z)},
        thresholds={"value_z": 6.0, "value_z_dead": -6.0, "flicker": 5.0, "other": 1.0},
        stack_kind="dark frames", stack_reason="median level 2% of full scale")


# ------------------------------------------------------------------ 24 MP


@pytest.mark.slow
@pytest.mark.parametrize("channels", [1, 3])
def test_24mp_report_is_small_and_quick(tmp_path, channels):
    import bokeh.embed  # noqa: F401  (import cost is not the report's)

    rng = np.random.default_rng(1)
    h, w = 4000, 6000
    shape = (h, w) if channels == 1 else (h, w, channels)
    mean = np.full(shape, 100.0)
    var = rng.random(shape)  # float64, as the stats give it
    defects = _defects(h, w, 3000, rng, channels)
    for d in defects[:50]:
        var[(d.y, d.x) + ((d.channel,) if channels == 3 else ())] = 1e6
    det = _detection((h, w), rng)
    files = [(f"/frames/IMG_{i:05d}.CR2", "used", "") for i in range(20000)]
    files.append(("/frames/broken.CR2", "skipped", "truncated"))
    t0 = time.perf_counter()
    p = write_report(tmp_path / "report.html", value_mean=mean, value_var=var, defects=defects, files=files,
                     detection=det, meta={"n_images": 20000, "shape": shape})
    elapsed = time.perf_counter() - t0
    size = p.stat().st_size
    print(f"\n24 MP x {channels}: {elapsed:.2f} s, {size / 1e6:.2f} MB")
    assert size < 6e6
    assert elapsed < 20  # a few seconds on a quiet 2-core machine; slack for a busy one
    doc = _doc(p)
    (img_src,) = [s for s in _sources(doc) if "image" in s][:1]
    img = img_src["image"][0]
    assert img.size <= 512 * 512
    assert img.max() == pytest.approx(1e6)  # block max keeps single hot pixels visible
    for obj in _objects(doc, "Image"):
        a = obj["attributes"]
        assert a["dw"]["value"] >= w and a["dh"]["value"] >= h  # drawn in the full-res frame
        assert a["dw"]["value"] - w < a["dw"]["value"] / img.shape[1]
    assert len(_table_source(doc)["x"]) == 2000  # capped
    assert "the 2,000 highest-scoring of 3,000" in _divs(doc)


# ------------------------------------------------------------------ content


def test_table_values_counts_and_summary(tmp_path):
    h, w = 30, 50
    defects = [
        Defect(17, 23, 0, "hot", 812.25, 3.5, 123.456, color="L", neighbour_mean=10.0, detail="much brighter"),
        Defect(4, 5, 0, "dead", 0.0, 0.0, 77.5, color="L"),
        Defect(9, 1, 0, "hot", 500.0, 2.0, 50.0, color="L"),
        Defect(30, 2, 0, "noisy", 100.0, 90.0, 9.75, color="L"),
    ]
    p = write_report(tmp_path / "r.html", value_mean=np.ones((h, w)), value_var=np.ones((h, w)), defects=defects,
                     files=[("a.png", "used", ""), ("b.png", "skipped", "wrong shape (10, 10)")],
                     detection=_detection((h, w), np.random.default_rng(0)),
                     meta={"camera": "Canon EOS 6D", "black_level": 2048, "elapsed_s": 12.5})
    doc = _doc(p)
    table = _table_source(doc)
    assert table["score"][:2] == [123.456, 77.5]  # sorted by score
    assert (table["x"][0], table["y"][0], table["kind"][0], table["mean"][0]) == (17, 23, "hot", 812.25)
    assert table["detail"][0] == "much brighter"
    assert "123.456" in html.unescape(p.read_text())  # the values are in the page as text
    divs = _divs(doc)
    for kind, n in {"hot": 2, "dead": 1, "noisy": 1, "stuck": 0}.items():
        assert f"<b>{kind}</b>: <span class='count-{kind}'>{n}</span>" in divs
    assert "dark frames" in divs and "median level 2% of full scale" in divs
    assert "Canon EOS 6D" in divs and "black_level" in divs
    files = next(s for s in _sources(doc) if "reason" in s)
    assert files["status"][0] == "skipped" and files["reason"][0] == "wrong shape (10, 10)"
    # thresholds drawn where they belong: value_z gets 6 and -6, flicker gets 5, 'other' nowhere
    spans = sorted(o["attributes"]["location"] for o in _objects(doc, "Span"))
    assert spans == [-6.0, 5.0, 6.0]


def test_markers_stay_in_full_resolution(tmp_path):
    h, w = 300, 400
    defects = [Defect(399, 299, 0, "hot", 1, 1, 10), Defect(0, 0, 0, "dead", 1, 1, 9),
               Defect(123, 45, 0, "stuck", 1, 1, 8)]
    p = write_report(tmp_path / "r.html", value_mean=np.ones((h, w)), value_var=np.ones((h, w)), defects=defects,
                     files=[], max_map_pixels=50 * 50)
    doc = _doc(p)
    img = next(s for s in _sources(doc) if "image" in s)["image"][0]
    assert img.size <= 2500
    marks = {(int(px), int(py)): (float(x), float(y))
             for s in _sources(doc) if "px" in s for px, py, x, y in zip(s["px"], s["py"], s["x"], s["y"])}
    assert marks == {(d.x, d.y): (d.x + 0.5, d.y + 0.5) for d in defects}
    y_ranges = [o for o in _objects(doc, "Range1d") if o["attributes"].get("start", 0) > o["attributes"].get("end", 0)]
    assert y_ranges and y_ranges[0]["attributes"]["start"] == h  # row 0 at the top


@pytest.mark.parametrize("shape", [(64, 96), (64, 96, 3)])
def test_grayscale_and_rgb_without_detection(tmp_path, shape):
    rng = np.random.default_rng(3)
    mean, var = rng.random(shape) * 100, rng.random(shape)
    p = write_report(tmp_path / "r.html", value_mean=mean, value_var=var,
                     defects=_defects(64, 96, 12, rng, shape[2] if len(shape) == 3 else 1), files=[])
    doc = _doc(p)
    assert "No detection details" in _divs(doc)
    img = next(s for s in _sources(doc) if "image" in s)["image"][0]
    assert img.shape == (64, 96)
    assert not list(_objects(doc, "Span"))


def test_no_defects_no_files(tmp_path):
    p = write_report(tmp_path / "r.html", value_mean=np.zeros((8, 8)), value_var=np.zeros((8, 8)), defects=[], files=[])
    assert "<b>0</b> defects" in _divs(_doc(p))


def test_untrusted_text_is_escaped(tmp_path):
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    p = write_report(tmp_path / "r.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 8)),
                     defects=[Defect(1, 1, 0, "hot", 1, 1, 1, detail=evil)],
                     files=[(f"/x/{evil}.jpg", "skipped", evil)], meta={"camera": evil, evil: 1})
    raw = p.read_text()
    assert "<script>alert(1)" not in raw and "<img src=x" not in raw
    divs = _divs(_doc(p))
    assert "<img src=x" not in divs and "&lt;img src=x" in divs


def test_caps_on_files(tmp_path):
    files = [(f"f{i}", "used", "") for i in range(50)] + [(f"s{i}", "skipped", "unreadable") for i in range(5)]
    p = write_report(tmp_path / "r.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 8)), defects=[],
                     files=files, max_file_rows=10)
    doc = _doc(p)
    src = next(s for s in _sources(doc) if "reason" in s)
    assert len(src["path"]) == 10 and src["status"][:5] == ["skipped"] * 5
    assert "10 of 55, skipped first" in _divs(doc)


def test_histogram_hides_nothing(tmp_path):
    z = np.zeros((100, 100))
    z[0, :7] = [1e4, 2e4, 3e4, -5e3, np.nan, np.inf, 8.0]
    det = types.SimpleNamespace(scores={"z": z}, thresholds={"z": 6.0}, stack_kind="photos", stack_reason="")
    p = write_report(tmp_path / "r.html", value_mean=np.ones((100, 100)), value_var=np.ones((100, 100)), defects=[],
                     files=[], detection=det)
    hist = next(s for s in _sources(_doc(p)) if "left" in s)
    assert float(np.sum(hist["top"])) == 100 * 100 - 2  # every finite value is counted somewhere


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3)])
def test_variance_map_from_m2_is_the_same(tmp_path, shape):
    """The scan passes M2 and n, not a float64 M2/n copy: the block maxima commute with the division."""
    rng = np.random.default_rng(2)
    m2 = rng.random(shape) * 1e3
    m2[0, 0] = np.nan
    mean = np.ones(shape)
    images = []
    for kw in ({"value_var": m2 / 7}, {"value_m2": m2, "n_frames": 7}):
        p = write_report(tmp_path / f"{len(images)}.html", value_mean=mean, defects=[], files=[], max_map_pixels=100,
                         **kw)
        images.append(next(s for s in _sources(_doc(p)) if "image" in s)["image"][0])
    np.testing.assert_array_equal(images[0], images[1])
    with pytest.raises(ValueError):
        write_report(tmp_path / "r.html", value_mean=mean, value_var=m2, value_m2=m2, n_frames=7, defects=[], files=[])
    with pytest.raises(ValueError):
        write_report(tmp_path / "r.html", value_mean=mean, value_m2=m2, defects=[], files=[])


def test_mismatched_shapes_rejected(tmp_path):
    with pytest.raises(ValueError):
        write_report(tmp_path / "r.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 9)), defects=[], files=[])


def test_document_validation_setting_is_restored(tmp_path):
    from bokeh.settings import settings

    assert settings.perform_document_validation()
    write_report(tmp_path / "r.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 8)), defects=[], files=[])
    assert settings.perform_document_validation()


def test_atomic_write_leaves_only_the_report(tmp_path):
    write_report(tmp_path / "report.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 8)), defects=[], files=[])
    write_report(tmp_path / "report.html", value_mean=np.ones((8, 8)), value_var=np.ones((8, 8)), defects=[], files=[])
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
