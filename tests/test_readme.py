"""The README's promises, run as a user would: its Python example and a fresh clone's `make demo`."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_python_api_example_runs_as_written(tmp_path):
    synthesize(tmp_path / "photos", frames=12, size=(160, 120), fmt="png", seed=3)
    code = readme_block("Python API")
    # a script (unlike a notebook) must guard the code that starts worker processes
    script = "if __name__ == '__main__':\n" + "".join(f"    {line}\n" for line in code.splitlines())
    (tmp_path / "example.py").write_text(script)
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "12 images," in proc.stdout
    assert (tmp_path / "result" / "stats.zarr").exists() and (tmp_path / "result" / "defects.csv").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_fresh_clone_make_demo_finds_the_planted_defects(tmp_path):
    """What a new user does first: clone, `make demo`, and see every planted defect of a realistic
    raw collection found with its class, dark rate and onset, the same frames as JPEG beside it.

    The clone's demo runs in this test's own environment (``VENV``, its install stamp left as it
    is: ``make -o``): a new .venv is the same recipe that ``make test`` runs first in CI's clean
    clone, and installing it again took 44 of this test's 82 s. The demo imports the clone's
    package (``python -m`` puts the clone first on the path, the editable install's finder last)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    venv = Path(sys.prefix)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
                           cwd=clone, capture_output=True, text=True, timeout=60, env=env)
    assert Path(where.stdout.strip()).is_relative_to(clone), where.stdout + where.stderr
    proc = subprocess.run(["make", "-o", str(venv / ".installed"), "demo", f"VENV={venv}"], cwd=clone,
                          capture_output=True, text=True, timeout=1500, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    truth = json.loads((clone / "demo" / "raw" / "truth.json").read_text())
    with open(clone / "demo" / "result" / "defects.csv") as fh:
        reported = {(int(r["x"]), int(r["y"])): r for r in csv.DictReader(fh)}
    strong = [d for d in truth["defects"] if d["kind"] in ("hot", "stuck", "dead") and not d.get("warm") and not d.get("cold")]
    found = [d for d in strong if (d["x"], d["y"]) in reported]  # a raw mosaic: at the planted sensel
    assert len(found) >= 0.8 * len(strong), f"found {len(found)} of {len(strong)} strong planted defects"
    # the dark-current hot pixels come with their rate, and the table says so
    fast = [d for d in found if d["kind"] == "hot" and d["rate"] >= 500 and not d.get("since")]
    assert fast and all(abs(float(reported[d["x"], d["y"]]["dark_rate"]) - d["rate"]) < 0.25 * d["rate"] for d in fast)
    at = f"({fast[0]['x']},{fast[0]['y']})"
    assert any(at in line and "DN/s" in line for line in proc.stdout.splitlines())
    assert (clone / "demo" / "result-jpeg" / "defects.csv").is_file()
    assert "raw (DNG): found" in proc.stdout and "JPEG: found" in proc.stdout and "the JPEG loses" in proc.stdout
    assert "demo results are in" in proc.stdout
