"""The package's shape: a light import, the public API, a layout that shows the flow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pipeline

PACKAGE = Path(pipeline.__file__).parent
HEAVY = ("distributed", "dask", "bokeh", "zarr", "numba")


def test_import_pipeline_is_light():
    """`import pipeline` (and the scan and detect functions it names) loads none of the heavy
    dependencies: they load where they are used."""
    code = ("import sys, pipeline; pipeline.scan, pipeline.detect, pipeline.DetectConfig, pipeline.SensorLayout; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_public_api_resolves_to_the_functions():
    import pipeline.cli
    import pipeline.detect.detector

    assert callable(pipeline.scan) and pipeline.scan.__module__ == "pipeline.scan"
    assert callable(pipeline.detect) and pipeline.detect.__module__ == "pipeline.detect.detector"
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name


def test_the_stages_are_subpackages_and_no_module_is_over_600_lines():
    for stage in ("io", "stats", "engine", "state", "detect", "outputs", "report", "synth"):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_the_core_never_imports_synth_or_dask_outside_the_engine():
    """synth is for demo, tests and benchmarks; dask lives in engine/ (and the CLI's worker preload)."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text()
        if not rel.startswith(("synth/", "demo.py", "cli.py", "__init__.py")):
            assert "from .synth" not in text and "from ..synth" not in text, rel
        if not rel.startswith(("engine/", "worker_setup.py")):
            typing_only = False  # imports under `if TYPE_CHECKING:` are for the type checker alone
            for line in text.splitlines():
                stripped = line.strip()
                if line and not line[0].isspace():
                    typing_only = stripped == "if TYPE_CHECKING:"
                heavy = stripped.startswith(("import dask", "from dask", "from distributed", "import distributed"))
                assert typing_only or not heavy, (rel, line)
