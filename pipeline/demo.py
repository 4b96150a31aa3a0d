"""`make demo`: make a synthetic stack with planted defects, scan it, say where the results are."""

from __future__ import annotations

import sys
from pathlib import Path

from . import cli
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
        print(f"\ndemo results are in {root / 'result'}/", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
