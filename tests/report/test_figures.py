"""The report's bokeh models (``pipeline.report.figures``), built without writing a page: kinds
drawn in their ``pipeline.kinds`` colours and order, markers in full-resolution coordinates,
tables capped and readable."""

from __future__ import annotations

import math

import numpy as np

from pipeline.defect import Defect
from pipeline.kinds import BY_NAME, KINDS, TABLE
from pipeline.report import figures


def _defects():
    return [Defect(17, 23, 0, "hot", 812.25, 3.5, 123.456, color="L", neighbour_mean=10.0, detail="much brighter"),
            Defect(4, 5, 0, "dead", 0.0, 0.0, 77.5, color="L", neighbour_mean=math.nan),
            Defect(9, 1, 0, "hot", 500.0, 2.0, 50.0, color="L"),
            Defect(30, 2, 0, "noisy", 100.0, 90.0, 9.75, color="L")]


def test_counts_per_class_in_kinds_order_and_colours():
    p = figures.counts_figure({"hot": 2, "dead": 1, "noisy": 1})
    assert list(p.x_range.factors) == list(KINDS) == [k.name for k in TABLE]
    (bars,) = p.renderers
    data = bars.data_source.data
    assert list(data["x"]) == list(KINDS) and list(data["top"]) == [{"hot": 2, "dead": 1, "noisy": 1}.get(k, 0)
                                                                      for k in KINDS]
    assert list(data["fill_color"]) == [BY_NAME[k].colour for k in KINDS]


def test_markers_one_source_per_kind_in_its_colour():
    from bokeh.plotting import figure

    sources = figures.marker_sources(_defects())
    assert list(sources) == [k for k in KINDS if k in {"hot", "dead", "noisy"}]
    hot = sources["hot"].data
    assert list(hot["px"]) == [17, 9] and list(hot["x"]) == [17.5, 9.5] and list(hot["y"]) == [23.5, 1.5]
    p = figure()
    figures.add_markers(p, sources, legend=True)
    assert {r.data_source.data["kind"][0]: r.glyph.line_color for r in p.renderers} == {
        k: BY_NAME[k].colour for k in sources}
    assert [item.label["value"] for item in p.legend.items] == list(sources)


def test_defect_table_is_sorted_capped_and_plain():
    table, n = figures.defect_table(_defects(), 2)
    data = table.source.data
    assert n == 2 and data["score"] == [123.456, 77.5] and data["kind"] == ["hot", "dead"]
    assert data["neighbour_mean"] == [10.0, None]  # no NaN in the page's JSON


def test_files_table_lists_skipped_first():
    files = [("a.png", "used", None), ("b.png", "skipped", "unreadable"), ("c.png", "used", "")]
    table, n = figures.files_table(files, 2)
    assert n == 2 and table.source.data["path"] == ["b.png", "a.png"]
    assert table.source.data["reason"] == ["unreadable", ""]


def test_histogram_figure_draws_the_thresholds():
    from bokeh.models import Label, Span

    hist = {"counts": np.array([0, 5, 0, 2]), "edges": np.linspace(0, 4, 5), "note": "2 above", "n": 7}
    p = figures.histogram_figure("z", hist, {"z": 3.0, "z_dead": 0.5})
    assert sorted(s.location for s in p.center if isinstance(s, Span)) == [0.5, 3.0]
    assert list(p.renderers[0].data_source.data["top"]) == [5.0, 2.0]  # empty bins are not embedded
    # a threshold in the right half is labelled to its left, where the plot does not cut it off
    labels = {lab.x: lab for lab in p.center if isinstance(lab, Label) and lab.x_units == "data"}
    assert (labels[3.0].text_align, labels[3.0].text.strip()) == ("right", "z = 3")
    assert (labels[0.5].text_align, labels[0.5].text.strip()) == ("left", "z_dead = 0.5")
