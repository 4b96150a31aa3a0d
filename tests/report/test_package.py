"""``pipeline.report`` as a package: its public names, and no bokeh until a page is written."""

from __future__ import annotations

import subprocess
import sys


def test_public_names():
    import pipeline.report as report

    assert sorted(report.__all__) == ["Prepared", "block_reduce", "preload", "write_report"]
    assert all(callable(getattr(report, name)) for name in report.__all__)


def test_import_does_not_load_bokeh():
    code = ("import sys, pipeline.report, pipeline.report.figures, pipeline.report.numbers, pipeline.report.page; "
            "assert not [m for m in sys.modules if m == 'bokeh' or m.startswith('bokeh.')], 'bokeh was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_preload_imports_bokeh():
    code = ("import sys, pipeline.report as r; r.preload().join(); "
            "assert 'bokeh.plotting' in sys.modules and 'bokeh.embed' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
