"""The report's physics section: the dark-rate map, the onset timeline and what the model did with
the frames (``results.physics_notes``), on a realistic raw collection scanned on a real cluster,
and the pieces on their own. The page is read back from the bokeh document embedded in it."""

from __future__ import annotations

import calendar
import csv
import html
import re
import time
from collections import Counter

import numpy as np
import pytest

from pipeline.defect import Defect, read_csv
from pipeline.detect import Detection
from pipeline.records import StackMeta
from pipeline.report.figures import timeline_figure
from pipeline.results import physics_notes
from pipeline.stats.fit import FrameTable
from pipeline.stats.model import EXPOSURE_UNIT, NO_FACTOR, exposure_factor

from .bokeh_doc import document as _document
from .bokeh_doc import models as _models
from .bokeh_doc import value as _value

RATE_TITLE = "dark current above the neighbours', DN/s at ISO 100"
TIMELINE_TITLE = "defects present by capture date (ticks: the frames)"
MS_PER_DAY = 86400 * 1000.0


# --------------------------------------------------------------------------- reading the page back


def _data(source: dict) -> dict:
    return {k: _value(v) for k, v in source["attributes"]["data"]["entries"]}


def _figure(doc, title: str) -> dict:
    (fig,) = [f for f in _models(doc, "Figure") if f["attributes"]["title"]["attributes"]["text"].startswith(title)]
    return fig


def _figure_sources(fig) -> list[dict]:
    return [_data(s) for s in _models(fig["attributes"]["renderers"], "ColumnDataSource")]


def _titles(doc) -> list[str]:
    return [f["attributes"]["title"]["attributes"]["text"] for f in _models(doc, "Figure")]


def _notes(doc) -> list[str]:
    (div,) = [d["attributes"]["text"] for d in _models(doc, "Div")
              if "<h2>Dark current and onsets</h2>" in d["attributes"].get("text", "")]
    return [html.unescape(n) for n in re.findall(r"<li>(.*?)</li>", div)]


# --------------------------------------------------------------------------- a scanned collection


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, local_client):
    """60 raw frames of one camera over two years (1/2000 s to 5 s, ISO 100 to 6400, one long
    exposure dark-subtracted in camera), scanned as `hotpixels scan` does."""
    pytest.importorskip("pidng")
    from pipeline import Config, scan
    from pipeline.synth import synthesize_collection

    root = tmp_path_factory.mktemp("physics-report")
    truth = synthesize_collection(root / "frames", frames=60, size=(320, 240), fmt="dng", seed=0)
    out = root / "out"
    scan([str(root / "frames")], out, Config(), client=local_client, progress=False, log=lambda m: None)
    return out, truth, _document(out / "report.html"), read_csv(out / "defects.csv")


def test_the_physics_section_sits_between_the_maps_and_the_scores(scanned):
    _, _, doc, _ = scanned
    titles = _titles(doc)
    rate = next(i for i, t in enumerate(titles) if t.startswith(RATE_TITLE))
    assert titles[rate - 1].startswith("mean") and titles[rate + 1] == TIMELINE_TITLE
    assert titles[rate + 2] == "defects per class"
    assert titles[rate] == RATE_TITLE + ", block max, full resolution"  # 320x240 fits the page unreduced


def test_the_dark_rate_map_is_each_sensels_fitted_rate_with_the_hot_defects_circled(scanned):
    import zarr

    out, truth, doc, defects = scanned
    fig = _figure(doc, RATE_TITLE)
    (image,) = [s["image"][0] for s in _figure_sources(fig) if "image" in s]
    saved = zarr.open_group(str(out / "stats.zarr"), mode="r")["dark_rate"][...]
    np.testing.assert_allclose(image, np.nan_to_num(saved, nan=0.0), rtol=1e-6)
    # the planted hot pixels there from the start: their rate on the map (DN/s at ISO 100)
    steady = [d for d in truth["defects"] if d["kind"] == "hot" and d["rate"] >= 500 and not d["since"]]
    assert steady
    for d in steady:
        assert image[d["y"], d["x"]] == pytest.approx(d["rate"], rel=0.1), d
    marked = {(int(x), int(y)) for s in _figure_sources(fig) if "px" in s for x, y in zip(s["px"], s["py"])}
    assert marked == {(d.x, d.y) for d in defects if d.kind in ("hot", "column", "row")}
    assert {(d["x"], d["y"]) for d in steady} <= marked


def test_the_timeline_ticks_every_frame_and_steps_up_at_each_onset(scanned):
    _, truth, doc, defects = scanned
    sources = _figure_sources(_figure(doc, TIMELINE_TITLE))
    frame_days = sorted(int(m["unix"] // 86400) for m in truth["frames_meta"])
    (ticks,) = [s for s in sources if "x" in s and "what" not in s and len(s["x"]) == len(frame_days)]
    np.testing.assert_array_equal(np.asarray(ticks["x"]), np.array(frame_days) * MS_PER_DAY)
    dated = sorted((d for d in defects if d.since), key=lambda d: d.since)
    assert dated, "the collection has defects that appeared during it"
    (onsets,) = [s for s in sources if "what" in s]
    assert list(onsets["what"]) == [f"{d.kind} ({d.x}, {d.y}) since {d.since}" for d in dated]
    # the count: those there from the first frame, one more at each onset, all of them at the end
    assert list(onsets["y"]) == [len(defects) - len(dated) + i + 1 for i in range(len(dated))]
    np.testing.assert_array_equal(np.asarray(onsets["x"]), [_day(d.since) * MS_PER_DAY for d in dated])


def test_the_notes_say_what_the_model_did_with_the_frames(scanned):
    out, truth, doc, defects = scanned
    notes = _notes(doc)
    assert notes[0].startswith("exposure model: each frame's exposure time x ISO/100 (EXIF); 60 of 60 frames with one")
    nr = [m["file"] for m in truth["frames_meta"] if m["nr"]]
    assert len(nr) == 1
    assert notes[1].startswith("1 frame was dark-subtracted in camera (long-exposure noise reduction")
    with open(out / "files.csv", newline="") as fh:
        flagged = [r["path"].rsplit("/", 1)[-1] for r in csv.DictReader(fh) if "dark-subtracted" in r["note"]]
    assert flagged == nr  # the one the camera subtracted, named in files.csv
    first, last = (time.strftime("%Y-%m-%d", time.gmtime(f(m["unix"] for m in truth["frames_meta"])))
                   for f in (min, max))
    dated = sum(1 for d in defects if d.since)
    assert notes[2] == f"capture dates from {first} to {last}; {dated} defects appeared during them"
    assert len(notes) == 3 + any(d.kind in ("column", "row") for d in defects)


def test_the_exposure_note_gives_the_frames_shortest_and_longest_exposure(scanned):
    _, truth, doc, _ = scanned
    factors = [exposure_factor(m["exposure"], m["iso"], True) * EXPOSURE_UNIT for m in truth["frames_meta"]]
    assert _notes(doc)[0].endswith(f", {min(factors):.4g} to {max(factors):.4g} s at ISO 100")


# --------------------------------------------------------------------------- the pieces on their own


def _day(date: str) -> int:
    return calendar.timegm(time.strptime(date, "%Y-%m-%d")) // 86400


def _detection(defects=()) -> Detection:
    return Detection(list(defects), {}, {}, "photos", "")


def _defect(kind="hot", since="", x=1, y=2) -> Defect:
    return Defect(x=x, y=y, channel=0, kind=kind, mean=1.0, std=1.0, score=10.0, since=since)


def test_notes_count_the_frames_without_exposure_and_the_dark_subtracted_ones():
    factors = np.array([round(t / EXPOSURE_UNIT) for t in (0.001, 0.01, 0.1, 1.0, 10.0)] + [NO_FACTOR] * 2)
    table = FrameTable(factors, True, np.array([0, 0, 0, 0, 1, 0, 0], bool))
    notes = physics_notes(StackMeta("uint16", exposure_source="exif"), table, None, _detection())
    assert notes[0].startswith("exposure model: each frame's exposure time x ISO/100 (EXIF); 5 of 7 frames with one, ")
    assert notes[1].startswith("1 frame was dark-subtracted in camera")
    assert len(notes) == 2  # no dates, no lines


def test_notes_say_where_no_frame_had_an_exposure_or_there_is_no_model():
    table = FrameTable(np.array([100, 220, 480, 900]), physical=False)
    darks = Detection([], {}, {}, "darks", "")
    (note,) = physics_notes(StackMeta("uint16", exposure_source="frame mean"), table, None, darks)
    assert note == "exposure model: each frame's mean level (no frame has an exposure time; darks); 4 of 4 frames with one"
    # in photos detection leaves the stand-in out (their mean levels are the scene's): the report says so
    (note,) = physics_notes(StackMeta("uint16", exposure_source="frame mean"), table, None, _detection())
    assert note.startswith("no exposure model: no frame has an exposure time, and each frame's mean level stands in "
                           "for it only in darks")
    (note,) = physics_notes(StackMeta("uint8"), None, None, _detection())
    assert note == "no exposure model: the frames' exposures are unknown or all alike"


def test_notes_count_the_onsets_and_the_lines():
    days = np.array([19725, 19800, 20100])  # 2024-01-03 .. 2025-01-12
    defects = [_defect(since="2024-06-01"), _defect(), _defect("column"), _defect("row", since="2024-09-09"),
               _defect("noisy")]
    notes = physics_notes(StackMeta("uint16"), None, days, _detection(defects))
    assert notes[1:] == ["capture dates from 2024-01-03 to 2025-01-12; 2 defects appeared during them",
                         "2 partial columns or rows (each one defect; the exports list their sensels)"]


def test_the_timeline_steps_from_the_defects_there_from_the_start_to_all_of_them():
    days = [19800, 19725, 20100, 19900]
    defects = [_defect(since="2024-09-09"), _defect(), _defect(since="2024-06-01"), _defect()]
    p = timeline_figure(days, defects, 600)
    data = [r.data_source.data for r in p.renderers]
    step = next(d for d in data if len(d["x"]) == 4 and "what" not in d and list(d["y"]) != [0] * 4)
    assert list(step["x"]) == [d * MS_PER_DAY for d in (19725, _day("2024-06-01"), _day("2024-09-09"), 20100)]
    assert list(step["y"]) == [2, 3, 4, 4]
    ticks = next(d for d in data if "what" not in d and list(d["y"]) == [0] * 4)
    assert list(ticks["x"]) == [d * MS_PER_DAY for d in sorted(days)]
    onsets = next(d for d in data if "what" in d)
    assert onsets["what"] == ["hot (1, 2) since 2024-06-01", "hot (1, 2) since 2024-09-09"]
    assert Counter(type(r.glyph).__name__ for r in p.renderers) == {"Step": 1, "Scatter": 2}
