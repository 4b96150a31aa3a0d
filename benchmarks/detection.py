"""Detection quality on synthetic stacks with planted defects, side by side with rawpy's peer.

    python benchmarks/detection.py [--quick] [--workdir DIR] [--frames N] [--no-collections]

It runs in two parts. First, short stacks of one kind each (below). Then the realistic
collections of ``benchmarks/realistic_collections.py`` (a camera's frames over two years, with real
physics: dark current, onsets, telegraph flicker, lines, clusters, borders, in-camera dark
subtraction, many-defect sensors), scanned by the CLI, per class beside rawpy.enhance; see that
module for how they are scored.

For several seeds, sizes and formats (8-bit JPEG and PNG photos, 16-bit mosaic PNG and DNG
photos, JPEG and DNG darks) it writes a stack with ``pipeline.synth.synthesize``, scans it as a
user does (``pipeline.scan.scan`` on a local cluster: the range counts and the physics model's
sums the scan keeps with them, such as the strong counts and the across sums), runs
``pipeline.detect.detect`` on the saved statistics (timed alone) and matches the reports
against ``truth.json``. (It once computed the moments and counts in process, without the model's
sums: 2 PNG photo stacks scored precision 1.000 while a scan of 7 other seeds made 8 false
reports each, from the strong counts.)

- a report matches a planted defect within 1 px (demosaiced formats, where one sensel
  smears into a blob) or at the exact sensel (mosaic formats), one to one;
- recall per planted kind (hot, warm, stuck, dead, cold, noisy RTS, noisy Gaussian) counts a
  defect as found at its position, "class ok" also needs the right class (warm is hot,
  cold is dead);
- precision per reported class is the share of its reports that match a planted defect, with
  the false reports per stack; "by counts" is the share of the reports that only the range
  counts (``PixelStats.counts``: frames beyond the neighbours and the frame's noise) made (warm and
  flickering sensels in photos), and how many of those were true;
- in darks, recall counts only the defects that are *detectable* there (printed per group): a
  level defect (hot, warm, dead, cold) must be at least ``warm_sigmas`` (3) temporal noise
  sigmas of a healthy sensel in the dark away from it, the criterion that defines "warm"
  (``truth.json``'s ``dark_signal``). A dead or cold sensel loses only its dark signal (about
  1 DN per frame, under half a sigma), which no statistic over the stack can tell from the
  dark-current spread of its neighbours: it is listed as not detectable, and a report of it
  is not counted as false. Stuck and noisy sensels are always detectable (no variance, or
  4-10 sigmas of extra noise). The synthetic sensor has no unlisted sensel that meets the
  warm criterion (see ``pipeline.synth._camera``), so every report elsewhere is false.

On the DNG stacks it also runs ``rawpy.enhance.find_bad_pixels`` (a 3x3 median per CFA
plane and a fixed threshold per frame, confirmed in 90 % of frames) on the same files. That
module needs OpenCV or scikit-image for its median filter; when neither is installed, a
numpy 3x3 median with OpenCV's replicated border is supplied as ``cv2.medianBlur`` so that
rawpy's own code runs unchanged.

Stacks are cached in the work directory (default: $TMPDIR/hotpixels-bench) by parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detect import DetectConfig, Detection, detect
from pipeline.detect.describe import BY_COUNTS
from pipeline.state.store import read_stats

MOSAIC = {"png16", "tiff16", "dng"}
TRUTH_CLASS = {"hot": "hot", "stuck": "stuck", "dead": "dead", "noisy": "noisy"}
SUBKINDS = ("hot", "warm", "stuck", "stuck-sat", "dead", "cold", "noisy-rts", "noisy-gauss")


def undetectable(d: dict, truth: dict) -> str | None:
    """Why a planted defect is not detectable in this stack (see the module docstring), or None."""
    if not truth.get("dark") or d["kind"] not in ("hot", "dead"):
        return None
    ds = truth["dark_signal"]  # the warm criterion (generate() makes stacks without it again)
    need = ds["warm_sigmas"] * ds["sigma"]
    if abs(d["amplitude"]) >= need:
        return None
    return f"{abs(d['amplitude']):.1f} DN < {ds['warm_sigmas']:g} sigma = {need:.1f} DN"


def detectable_rule(truth: dict) -> str | None:
    """The detectability rule of a stack, in words (None: every planted defect counts)."""
    if not truth.get("dark"):
        return None
    ds = truth["dark_signal"]
    return (f"level defects (hot, warm, dead, cold) >= {ds['warm_sigmas']:g} temporal sigmas "
            f"({ds['warm_sigmas'] * ds['sigma']:.1f} DN) from a healthy sensel; stuck and noisy always")


def subkind(d: dict) -> str:
    """Finer truth label: warm/cold/saturated stuck/noise mode, for honest per-variant recall."""
    k = d["kind"]
    if k == "hot" and d.get("warm"):
        return "warm"
    if k == "dead" and d.get("cold"):
        return "cold"
    if k == "stuck" and d.get("saturated"):
        return "stuck-sat"
    if k == "noisy":
        return f"noisy-{d.get('mode', 'rts')[:5]}"
    return k


# --------------------------------------------------------------------------- data
def generate(workdir: Path, fmt: str, size: tuple[int, int], dark: bool, seed: int, frames: int) -> tuple[Path, dict]:
    """Write (or reuse) one synthetic stack; returns its folder and truth."""
    from pipeline.synth import TRUTH_VERSION, synthesize

    folder = workdir / f"{fmt}_{size[0]}x{size[1]}_{'dark' if dark else 'photo'}_s{seed}_n{frames}"
    truth_path = folder / "truth.json"
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        if truth.get("version") == TRUTH_VERSION and all((folder / f).is_file() for f in truth["files"]):
            return folder, truth
    truth = synthesize(folder, frames=frames, size=size, fmt=fmt, dark=dark, seed=seed)
    return folder, truth


def scan_and_detect(folder: Path, truth: dict, fmt: str, out: Path, client, config: DetectConfig
                    ) -> tuple[Detection, float, float]:
    """Scan the stack as a user does, then detect on its saved statistics in this process with
    what the scan gives detection (``results.detection_inputs``: the black level, the physics
    model's frames and days), timed apart: (detection, scan seconds, detect seconds). 16-bit
    mosaic PNG and TIFF carry no CFA tag: synth's RGGB is declared, as a user would with --cfa."""
    from pipeline import Config, scan
    from pipeline.results import detection_inputs
    from pipeline.state.store import read_manifest

    scan_config = Config()
    if fmt in MOSAIC and fmt != "dng":
        scan_config.scan.cfa = "RGGB"
    t0 = time.perf_counter()
    scan([str(folder / f) for f in truth["files"]], out, scan_config, client=client, detect_defects=False,
         log=lambda m: None, progress=False)
    stats, meta = read_stats(out)
    config, frames, days = detection_inputs(out, stats, meta, config, read_manifest(out))
    t1 = time.perf_counter()
    det = detect(stats, config, layout=meta.layout, frames=frames, days=days, jpeg=meta.file_format == "jpeg")
    return det, t1 - t0, time.perf_counter() - t1


# --------------------------------------------------------------------------- matching
def match(reports: list[tuple[int, int, str, float]], truth: list[dict], tol: int):
    """One-to-one matching of reports (x, y, kind, score) to planted defects within ``tol`` px.

    Returns (list of (truth, report index or None), set of matched report indices).
    """
    pairs = []
    for ti, t in enumerate(truth):
        for ri, (x, y, _, s) in enumerate(reports):
            d = max(abs(x - t["x"]), abs(y - t["y"]))
            if d <= tol:
                pairs.append((d, -s, ti, ri))
    pairs.sort()
    t_to_r: dict[int, int] = {}
    used: set[int] = set()
    for _, _, ti, ri in pairs:
        if ti not in t_to_r and ri not in used:
            t_to_r[ti] = ri
            used.add(ri)
    return [(t, t_to_r.get(i)) for i, t in enumerate(truth)], used


class Tally:
    """Counts over many stacks of one group (e.g. JPEG photos)."""

    def __init__(self) -> None:
        self.planted = defaultdict(int)
        self.found = defaultdict(int)
        self.correct = defaultdict(int)
        self.reported = defaultdict(int)
        self.true_reports = defaultdict(int)
        self.by_counts = 0  # reports made by the range counts, and how many of them matched a planted defect
        self.by_counts_true = 0
        self.hidden = defaultdict(int)  # planted but not detectable (darks), by subkind
        self.hidden_found = defaultdict(int)
        self.rules: set[str] = set()
        self.stacks = 0
        self.seconds = 0.0

    def add(self, reports, truth: list[dict], tol: int, meta: dict | None = None, counted=None) -> None:
        """Count one stack; ``meta`` (the whole truth.json) decides what is detectable; ``counted``:
        per report, whether the range counts made it."""
        pairs, used = match(reports, truth, tol)
        rule = detectable_rule(meta) if meta else None
        if rule:
            self.rules.add(rule)
        for t, ri in pairs:
            sk = subkind(t)
            if meta and undetectable(t, meta):
                self.hidden[sk] += 1
                self.hidden_found[sk] += ri is not None
                continue
            self.planted[sk] += 1
            if ri is not None:
                self.found[sk] += 1
                kind = reports[ri][2]
                if kind is None or kind == TRUTH_CLASS[t["kind"]]:
                    self.correct[sk] += 1
        for ri, r in enumerate(reports):
            k = r[2] or "any"
            self.reported[k] += 1
            self.true_reports[k] += ri in used
            if counted is not None and counted[ri]:
                self.by_counts += 1
                self.by_counts_true += ri in used
        self.stacks += 1

    def recall(self, sks) -> tuple[float, float, int]:
        n = sum(self.planted[s] for s in sks)
        if not n:
            return float("nan"), float("nan"), 0
        return sum(self.found[s] for s in sks) / n, sum(self.correct[s] for s in sks) / n, n

    def precision(self, kinds) -> tuple[float, int]:
        n = sum(self.reported[k] for k in kinds)
        return (sum(self.true_reports[k] for k in kinds) / n if n else float("nan")), n


# --------------------------------------------------------------------------- rawpy peer
def rawpy_find_bad_pixels():
    """rawpy.enhance.find_bad_pixels, with a numpy median filter if OpenCV/scikit-image are absent."""
    try:
        import rawpy.enhance as enhance
    except ImportError:
        shim = types.ModuleType("cv2")

        def median_blur(src, ksize=3):
            r = ksize // 2
            p = np.pad(src, r, mode="edge")  # OpenCV's medianBlur replicates the border
            h, w = src.shape
            views = [p[dy : dy + h, dx : dx + w] for dy in range(ksize) for dx in range(ksize)]
            return np.median(np.stack(views), axis=0).astype(src.dtype)

        shim.medianBlur = median_blur
        sys.modules["cv2"] = shim
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import rawpy.enhance as enhance
        print("note: OpenCV/scikit-image not installed; rawpy.enhance runs with a numpy 3x3 median (same result)")
    return enhance.find_bad_pixels


# --------------------------------------------------------------------------- main
def cases(quick: bool):
    """(group, fmt, (w, h), dark, seeds)."""
    if quick:
        return [
            ("jpeg photos", "jpeg", (320, 240), False, (0, 1)),
            ("mosaic photos", "dng", (320, 240), False, (0, 1)),
            ("jpeg darks", "jpeg", (320, 240), True, (0,)),
            ("mosaic darks", "dng", (320, 240), True, (0,)),
        ]
    return [
        ("jpeg photos", "jpeg", (640, 480), False, (0, 1, 2, 3)),
        ("jpeg photos", "jpeg", (1024, 768), False, (4,)),
        ("jpeg photos", "jpeg", (480, 640), False, (5,)),
        ("png photos", "png", (640, 480), False, (0, 1, 2, 3, 4, 5, 6)),
        ("mosaic photos", "dng", (640, 480), False, (0, 1, 2)),
        ("mosaic photos", "png16", (1024, 768), False, (4,)),
        ("mosaic photos", "tiff16", (480, 640), False, (5,)),
        ("jpeg darks", "jpeg", (640, 480), True, (0, 1)),
        ("mosaic darks", "dng", (640, 480), True, (0, 1)),
        ("mosaic darks", "png16", (1024, 768), True, (4,)),
    ]


def run(args) -> dict[str, Tally]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = DetectConfig()
    ours: dict[str, Tally] = defaultdict(Tally)
    peer: dict[str, Tally] = defaultdict(Tally)
    kinds_seen: dict[str, list[str]] = defaultdict(list)
    find_bad = None
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        for group, fmt, size, dark, seeds in cases(args.quick):
            for seed in seeds:
                find_bad = run_stack(args, workdir, config, client, ours, peer, kinds_seen, find_bad,
                                     group, fmt, size, dark, seed)
    print()
    for group, tally in ours.items():
        print_group(group, tally, peer.get(group), kinds_seen[group])
    return ours


def run_stack(args, workdir: Path, config: DetectConfig, client, ours, peer, kinds_seen, find_bad,
              group: str, fmt: str, size: tuple[int, int], dark: bool, seed: int):
    """Scan one stack, detect on its statistics, and count the reports (and rawpy's, on DNGs)."""
    folder, truth = generate(workdir, fmt, size, dark, seed, args.frames)
    det, scanned, detected = scan_and_detect(folder, truth, fmt, workdir / "scans" / folder.name, client, config)
    tol = 0 if fmt in MOSAIC else 1
    reports = [(d.x, d.y, d.kind, d.score) for d in det.defects]
    counted = [BY_COUNTS in d.detail for d in det.defects]  # see detect.describe
    ours[group].add(reports, truth["defects"], tol, truth, counted)
    ours[group].seconds += detected
    kinds_seen[group].append(det.stack_kind)
    line = (f"{fmt:6s} {size[0]}x{size[1]} {'dark ' if dark else 'photo'} seed {seed}: "
            f"{len(det.defects)} reports, {det.stack_kind} ({scanned:.1f}s scan, {detected:.2f}s detect)")
    if fmt == "dng":
        find_bad = find_bad or rawpy_find_bad_pixels()
        t3 = time.perf_counter()
        coords = find_bad([str(folder / f) for f in truth["files"]])
        peer[group].add([(int(x), int(y), None, 0.0) for y, x in coords], truth["defects"], 0, truth)
        peer[group].seconds += time.perf_counter() - t3
        line += f"; rawpy: {len(coords)} reports ({time.perf_counter() - t3:.1f}s)"
    if args.verbose:
        pairs, used = match(reports, truth["defects"], tol)
        for t, ri in pairs:
            r = reports[ri] if ri is not None else None
            if r is None or r[2] != TRUTH_CLASS[t["kind"]]:
                why = undetectable(t, truth)
                what = r[2] if r else ("missed, not detectable: " + why if why else "MISSED")
                line += f"\n    {subkind(t):11s} amp {t['amplitude']:8.1f} at ({t['x']},{t['y']}) -> {what}"
        for ri in range(len(reports)):
            if ri not in used:
                d = det.defects[ri]
                line += f"\n    false {d.kind} ({d.x},{d.y},{d.channel}) score {d.score:.1f}: {d.detail}"
    print(line, flush=True)
    return find_bad


def _fmt(x: float) -> str:
    return "  -  " if x != x else f"{x:5.3f}"


def print_group(group: str, t: Tally, peer: Tally | None, kinds: list[str]) -> None:
    print(f"== {group}: {t.stacks} stacks, detected as {', '.join(sorted(set(kinds)))}; detect {t.seconds:.2f}s total")
    for rule in sorted(t.rules):
        print(f"  detectable: {rule}")
    head = f"  {'planted':12s} {'n':>4s} {'recall':>7s} {'class ok':>8s}"
    if peer and peer.stacks:
        head += f" {'rawpy recall':>13s}"
    print(head)
    rows = [("hot (strong)", ["hot"]), ("warm", ["warm"]), ("stuck", ["stuck", "stuck-sat"]),
            ("  saturated", ["stuck-sat"]), ("dead", ["dead"]), ("cold", ["cold"]),
            ("noisy RTS", ["noisy-rts"]), ("noisy gauss", ["noisy-gauss"]), ("all", list(SUBKINDS))]
    for name, sks in rows:
        r, c, n = t.recall(sks)
        if not n:
            continue
        line = f"  {name:12s} {n:4d} {_fmt(r):>7s} {_fmt(c):>8s}"
        if peer and peer.stacks:
            line += f" {_fmt(peer.recall(sks)[0]):>13s}"
        print(line)
    if t.hidden:
        n = sum(t.hidden.values())
        kinds_n = ", ".join(f"{k} {v}" for k, v in sorted(t.hidden.items()))
        line = f"  not detectable: {n} ({kinds_n}), reported anyway: {sum(t.hidden_found.values())}"
        if peer and peer.stacks:
            line += f"; rawpy: {sum(peer.hidden_found.values())}"
        print(line + " (neither recall nor false reports)")
    print(f"  {'reported':12s} {'n':>4s} {'precision':>9s}")
    for k in ("hot", "stuck", "dead", "noisy"):
        p, n = t.precision([k])
        print(f"  {k:12s} {n:4d} {_fmt(p):>9s}")
    p, n = t.precision(["hot", "stuck", "dead", "noisy"])
    false = n - sum(t.true_reports[k] for k in ("hot", "stuck", "dead", "noisy"))
    print(f"  {'all':12s} {n:4d} {_fmt(p):>9s}   {false / max(t.stacks, 1):.2f} false reports per stack; "
          f"by counts {t.by_counts} ({t.by_counts_true} true)")
    if peer and peer.stacks:
        p, n = peer.precision(["any"])
        print(f"  {'rawpy (all)':12s} {n:4d} {_fmt(p):>9s}   ({peer.seconds:.1f}s, reads the files itself)")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small stacks, fewer seeds (about a minute)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hotpixels-bench"),
                    help="where synthetic stacks are written and cached")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss, misclassification and false report")
    ap.add_argument("--no-collections", action="store_true", help="the short stacks only")
    args = ap.parse_args(argv)
    run(args)
    if not args.no_collections:
        import importlib.util

        # benchmarks/realistic_collections.py, beside this file (by path: benchmarks/ is no package)
        spec = importlib.util.spec_from_file_location("realistic", Path(__file__).with_name("realistic_collections.py"))
        assert spec is not None and spec.loader is not None
        realistic = importlib.util.module_from_spec(spec)
        sys.modules["realistic"] = realistic  # its dataclasses look their module up
        spec.loader.exec_module(realistic)
        print("== realistic collections (benchmarks/realistic_collections.py)\n", flush=True)
        realistic.main((["--quick"] if args.quick else []) + ["--workdir", args.workdir]
                       + (["-v"] if args.verbose else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
