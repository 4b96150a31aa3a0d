"""`make demo`: make a synthetic stack with planted defects, scan it, say where the results are."""

from __future__ import annotations

import sys
from pathlib import Path

from . import cli
from .defect import Defect, read_csv
from .synth import synthesize


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "demo")
    frames = root / "frames"
    print(f"making 40 synthetic 640x480 JPEG photos with planted defects in {frames}/ ...", flush=True)
    truth = synthesize(frames, frames=40, size=(640, 480), fmt="jpeg", seed=1)
    print(f"planted {len(truth['defects'])} defects (see {frames / 'truth.json'})", flush=True)
    status = cli.main(["scan", str(frames), "--out", str(root / "result")])
    if status == 0:
        found, missed, extra = compare(truth, read_csv(root / "result" / "defects.csv"))
        print(f"\nfound {found} of {found + missed} planted defects (within 1 px), {extra} other reports; "
              f"truth in {frames / 'truth.json'}", flush=True)
        print(f"demo results are in {root / 'result'}/ (open report.html in a browser)", flush=True)
    return status


def compare(truth: dict, defects: list[Defect], tolerance: int = 1) -> tuple[int, int, int]:
    """(planted found, planted missed, reports matching no planted defect), matching within ``tolerance`` px."""
    planted = {(d["x"], d["y"]) for d in truth["defects"]}
    reported = {(d.x, d.y) for d in defects}
    near = lambda a, b: abs(a[0] - b[0]) <= tolerance and abs(a[1] - b[1]) <= tolerance
    found = sum(1 for p in planted if any(near(p, r) for r in reported))
    extra = sum(1 for r in reported if not any(near(p, r) for p in planted))
    return found, len(planted) - found, extra


if __name__ == "__main__":
    sys.exit(main())
