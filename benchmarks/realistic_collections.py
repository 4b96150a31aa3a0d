"""Detection quality on realistic collections: a camera's frames over two years, with real physics.

    python benchmarks/realistic_collections.py [--quick] [--workdir DIR] [-v]

(also run by ``benchmarks/detection.py``). Each collection is written by
``pipeline.synth.synthesize_collection`` (design notes, section 3): exposures from 1/4000 to
30 s and ISO 100 to 6400 from a camera's program, dates over two years, in-camera dark
subtraction in some long frames, and the defects real sensors have: dark-current hot sensels
(some appearing on a date), warm offsets, stuck, dead and cold sensels, one-sided, two-sided
and three-level telegraph pixels, partial columns and rows, clusters, border defects, and in
one collection a population of weak defects (a "many-defect sensor").

Every collection is scanned the way a user scans it (``pipeline.scan.scan`` on a local
cluster, reading each file's shooting data), and defects.csv is matched against truth.json:

- a point report matches a planted defect at its exact sensel (raw mosaics) or within 1 px
  (JPEG, where demosaicing smears a sensel), one to one;
- a line (``column`` / ``row``) is reported as one when a report of that kind covers at least
  half of its sensels; single reports on a line's sensels are its "fragments": true, but not
  the line reported as one;
- "class ok": hot (dark current or warm), stuck, dead (or cold), noisy (any telegraph or
  Gaussian flicker), column, row;
- onset: a planted onset must be reported within ``ONSET_DAYS`` days; a defect there from the
  start must have no ``since``;
- dark rate: within ``RATE_TOLERANCE`` of the planted rate, for dark-current sensels of at
  least ``RATE_FLOOR`` DN/s at ISO 100;
- precision: reports that match nothing planted are false.

On the raw collections it also runs ``rawpy.enhance.find_bad_pixels`` (see detection.py) on
the same files, and scores how detectable each planted defect is from these very frames
(``detectability.py``: the z of a matched filter that knows the defect's signal in every frame,
against the residual noise measured around it, PRNU as a nuisance). A defect of oracle z >= 5
(``DETECTABLE_Z``) is "detectable"; "recall of detectable" counts the misses that are the
detector's, not the physics'. The oracle's z is cached in the scan folder (oracle.json).

The JPEG collection holds the same frames as the raw one, developed by a camera's JPEG engine:
what JPEG loses shows in the hot/stuck/dead recall beside the raw one's.
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from detectability import DETECTABLE_Z, cached_oracle_z
from jpeg_detectability import cached_jpeg_oracle_z

from pipeline.defect import Defect, read_csv
from pipeline.synth.matching import LINES, details, line_sensels, match, subkind

ONSET_DAYS = 60
RATE_TOLERANCE = 0.25
RATE_FLOOR = 100.0
MOSAIC = {"dng", "png16", "tiff16", "movie"}  # one value per sensel: a report matches at its own sensel
# the rows of the per-class table: (label, subkinds)
ROWS = (("hot (dark current)", ["hot"]), ("  with an onset", ["hot-onset"]), ("warm", ["warm"]),
        ("stuck", ["stuck"]), ("dead", ["dead"]), ("cold", ["cold"]), ("telegraph 1-sided", ["rts1"]),
        ("telegraph 2-sided", ["rts2"]), ("telegraph 3-level", ["rts3"]), ("noisy gauss", ["gaussian"]),
        ("column", ["column"]), ("row", ["row"]), ("population", ["population"]))


@dataclass(frozen=True)
class Case:
    """One collection: its format, size, seed and what makes it special."""

    name: str
    fmt: str
    size: tuple[int, int]
    seed: int
    frames: int = 60
    population: float = 0.0
    dark_fraction: float = 0.0

    def folder(self, workdir: Path) -> Path:
        pop = f"_pop{self.population:g}" if self.population else ""
        dark = f"_dark{self.dark_fraction:g}" if self.dark_fraction else ""
        return workdir / f"collection_{self.fmt}_{self.size[0]}x{self.size[1]}_s{self.seed}_n{self.frames}{pop}{dark}"


def cases(quick: bool, only: str | None = None) -> list[Case]:
    return [c for c in _cases(quick) if only is None or only in c.name]


def _cases(quick: bool) -> list[Case]:
    if quick:
        return [Case("raw", "dng", (320, 240), 0, 40), Case("jpeg", "jpeg", (320, 240), 0, 40)]
    out = []
    for seed in (0, 1, 2):
        out += [Case("raw", "dng", (640, 480), seed), Case("jpeg", "jpeg", (640, 480), seed)]
    out.append(Case("raw + darks", "dng", (640, 480), 3, 60, dark_fraction=0.2))
    out.append(Case("many-defect sensor", "dng", (640, 480), 4, 60, population=0.02))
    out.append(Case("many-defect darks", "dng", (640, 480), 5, 60, population=0.02, dark_fraction=1.0))
    out.append(Case("sCMOS movie", "movie", (512, 512), 6, 200, population=0.01))
    return out


def generate(case: Case, workdir: Path) -> tuple[Path, dict]:
    """Write (or reuse) one collection; returns its folder and truth."""
    from pipeline.synth import MOVIE_VERSION, synthesize_collection, synthesize_movie
    from pipeline.synth.collection import COLLECTION_VERSION

    folder = case.folder(workdir)
    path = folder / "truth.json"
    version = MOVIE_VERSION if case.fmt == "movie" else COLLECTION_VERSION
    if path.is_file():
        truth = json.loads(path.read_text())
        if truth.get("version") == version and all((folder / f).is_file() for f in truth["files"]):
            return folder, truth
    if case.fmt == "movie":
        return folder, synthesize_movie(folder, frames=case.frames, size=case.size, share=case.population,
                                        seed=case.seed)
    truth = synthesize_collection(folder, frames=case.frames, size=case.size, fmt=case.fmt, seed=case.seed,
                                  population=case.population, dark_fraction=case.dark_fraction)
    return folder, truth


# --------------------------------------------------------------------------- matching
def day_of(unix: float) -> float:
    return unix / 86400.0


def since_day(since: str) -> float | None:
    if not since:
        return None
    return day_of(calendar.timegm(time.strptime(since[:10], "%Y-%m-%d")))


@dataclass
class Tally:
    """Counts over the collections of one group."""

    planted: dict = field(default_factory=lambda: defaultdict(int))
    found: dict = field(default_factory=lambda: defaultdict(int))
    correct: dict = field(default_factory=lambda: defaultdict(int))
    peer_found: dict = field(default_factory=lambda: defaultdict(int))
    # oracle detectability (detectability.py for raw, jpeg_detectability.py for JPEG): planted defects
    # the oracle assessed (not a JPEG's lines), and of them those with oracle z >= DETECTABLE_Z, found or not
    assessed: dict = field(default_factory=lambda: defaultdict(int))
    detectable: dict = field(default_factory=lambda: defaultdict(int))
    found_detectable: dict = field(default_factory=lambda: defaultdict(int))
    detectable_indep: int = 0  # with the independent-frames z (no PRNU nuisance, 4-neighbour residual)
    oracle: int = 0  # collections with an oracle
    reports: int = 0
    false: int = 0
    fragments: int = 0  # point reports on a line's sensels
    lines_as_one: int = 0
    lines: int = 0
    onset_n: int = 0
    onset_ok: int = 0
    onset_errors: list = field(default_factory=list)
    start_n: int = 0  # defects there from the start, and how many got no onset
    start_ok: int = 0
    rate_n: int = 0
    rate_ok: int = 0
    rate_errors: list = field(default_factory=list)
    peer_reports: int = 0
    peer_true: int = 0
    # a lab's criterion for a noisy sensel: its variance over 50x the median (movies)
    over_median: int = 0
    over_median_noisy: int = 0
    collections: int = 0
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    rates: bool = True  # raw DN: a JPEG's tone curve makes the rate no DN/s of the sensor

    def add(self, truth: dict, defects: list[Defect], tol: int, verbose: bool = False,
            oracle: list[tuple[float, float]] | None = None) -> None:
        """Match ``defects`` against ``truth``; ``oracle``: each planted defect's (z, z_indep), or None."""
        matches, false = match(truth, defects, tol)
        self.collections += 1
        self.oracle += oracle is not None
        self.reports += len(defects)
        self.false += len(false)
        self.fragments += sum(len(m.fragments) for m in matches)
        first = min(f["unix"] for f in truth["frames_meta"])
        for i, m in enumerate(matches):  # matches are in the truth's order, as the oracle's z
            t, d = m.truth, m.report
            sk = subkind(t)
            self.planted[sk] += 1
            line = t["kind"] in LINES
            self.lines += line
            z = _oracle_note(oracle[i]) if oracle is not None else ""
            if oracle is not None:
                self.assessed[sk] += not math.isnan(oracle[i][0])
                self.detectable[sk] += oracle[i][0] >= DETECTABLE_Z
                self.found_detectable[sk] += m.found and oracle[i][0] >= DETECTABLE_Z
                self.detectable_indep += oracle[i][1] >= DETECTABLE_Z
            if not m.found:
                if verbose:
                    self.notes.append(f"missed {sk} at ({t['x']},{t['y']}) {_what(t)}{z}")
                continue
            self.found[sk] += 1
            self.correct[sk] += m.right_class
            if line and d is not None:
                self.lines_as_one += 1
            elif line:
                if verbose:
                    self.notes.append(f"{t['kind']} at ({t['x']},{t['y']}) length {t['length']}: "
                                      f"{len(m.fragments)} single reports, no line{z}")
                continue
            assert d is not None
            if verbose and not m.right_class:
                self.notes.append(f"{sk} at ({t['x']},{t['y']}) {_what(t)} called {d.kind}: {d.detail}")
            self._onset(t, d, first, verbose)
            if (self.rates and t["kind"] == "hot" and not t.get("warm") and t["rate"] >= RATE_FLOOR
                    and not t.get("population")):
                self.rate_n += 1
                err = abs(d.dark_rate - t["rate"]) / t["rate"] if d.dark_rate == d.dark_rate else float("inf")
                self.rate_errors.append(err)
                self.rate_ok += err <= RATE_TOLERANCE
                if verbose and not err <= RATE_TOLERANCE:
                    self.notes.append(f"rate of {sk} at ({t['x']},{t['y']}): {d.dark_rate:.4g} vs {t['rate']:.4g} DN/s")
        if verbose:
            for d in false:
                self.notes.append(f"false {d.kind} at ({d.x},{d.y}) score {d.score:.1f}: {d.detail}")

    def _onset(self, t: dict, d: Defect, first: float, verbose: bool) -> None:
        got = since_day(d.since)
        if t.get("since_unix"):
            self.onset_n += 1
            err = abs(got - day_of(t["since_unix"])) if got is not None else float("inf")
            self.onset_errors.append(err)
            self.onset_ok += err <= ONSET_DAYS
            if verbose and not err <= ONSET_DAYS:
                self.notes.append(f"onset of {subkind(t)} at ({t['x']},{t['y']}): {d.since or 'none'} vs {t['since']}")
        else:
            self.start_n += 1
            self.start_ok += got is None or got <= day_of(first) + ONSET_DAYS
            if verbose and not (got is None or got <= day_of(first) + ONSET_DAYS):
                self.notes.append(f"{subkind(t)} at ({t['x']},{t['y']}) there from the start, reported since {d.since}")

    def add_over_median(self, out: Path, defects: list[Defect]) -> None:
        """The sensels whose variance over the frames (the scan's stats.zarr) passes 50x the median,
        and how many of them are reported noisy."""
        import zarr

        from pipeline.synth.movie import over_median_variance

        group = zarr.open_group(str(out / "stats.zarr"), mode="r")
        over = over_median_variance(np.asarray(group["m2"][...]) / group.attrs["n_images"])
        kinds = {(d.x, d.y): d.kind for d in defects}
        self.over_median += len(over)
        self.over_median_noisy += sum(kinds.get(p) == "noisy" for p in over)

    def add_peer(self, truth: dict, coords) -> None:
        """rawpy's reports (row, column): recall by subkind, and precision (line sensels count as true)."""
        cells: dict[tuple[int, int], int] = {}
        for ti, t in enumerate(truth["defects"]):
            for c in line_sensels(t) if t["kind"] in LINES else {(t["x"], t["y"])}:
                cells[c] = ti
        hit = {cells[(int(x), int(y))] for y, x in coords if (int(x), int(y)) in cells}
        for ti, t in enumerate(truth["defects"]):
            self.peer_found[subkind(t)] += ti in hit
        self.peer_reports += len(coords)
        self.peer_true += sum((int(x), int(y)) in cells for y, x in coords)

    def detected(self, sks) -> tuple[int, int, int]:
        """Of the planted defects of these subkinds with oracle z >= DETECTABLE_Z: (found, how many),
        and how many the oracle assessed."""
        return (sum(self.found_detectable[s] for s in sks), sum(self.detectable[s] for s in sks),
                sum(self.assessed[s] for s in sks))

    def recall(self, sks) -> tuple[float, float, int]:
        n = sum(self.planted[s] for s in sks)
        if not n:
            return float("nan"), float("nan"), 0
        return sum(self.found[s] for s in sks) / n, sum(self.correct[s] for s in sks) / n, n


def _oracle_note(z: tuple[float, float]) -> str:
    """A planted defect's oracle z for a note, and whether it is detectable."""
    if math.isnan(z[0]):
        return " [oracle: not assessed]"
    tag = "detectable" if z[0] >= DETECTABLE_Z else "undetectable"
    return f" [oracle z {z[0]:.1f} ({z[1]:.1f} independent frames): {tag}]"


def _what(t: dict) -> str:
    bits = details(t)
    for k in ("border", "cluster"):
        if t.get(k):
            bits.append(f"{k} {t[k]}")
    return "(" + ", ".join(bits) + ")" if bits else ""


# --------------------------------------------------------------------------- running
def scan_collection(folder: Path, truth: dict, out: Path, client, redetect: bool = False) -> tuple[list[Defect], float]:
    """Scan the collection into ``out``; with ``redetect``, where ``out`` holds a finished scan
    of it, classify again from its stats.zarr (``hotpixels detect``) without reading a frame."""
    from pipeline.scan import scan

    t0 = time.perf_counter()
    if redetect and (out / "stats.zarr").exists() and (out / "defects.csv").exists():
        import contextlib
        import io

        from pipeline.cli import main as cli

        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["detect", str(out)])
        if code != 0:
            raise RuntimeError(f"hotpixels detect {out} failed")
    else:
        scan([str(folder / f) for f in truth["files"]], out, client=client, log=lambda s: None, progress=False)
    return read_csv(out / "defects.csv"), time.perf_counter() - t0


def run(args) -> dict[str, Tally]:
    from distributed import Client, LocalCluster

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tallies: dict[str, Tally] = defaultdict(Tally)
    find_bad = None
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        for case in cases(args.quick, args.only):
            folder, truth = generate(case, workdir)
            out = workdir / "scans" / folder.name
            defects, seconds = scan_collection(folder, truth, out, client, args.redetect)
            tally = tallies[case.name]
            tally.rates = case.fmt in MOSAIC
            # the raw oracle reads the raw frames; the JPEG one renders the frames again from their seed
            oracle = None
            if case.fmt == "dng":
                oracle = cached_oracle_z(folder, truth, out / "oracle.json")
            elif case.fmt == "jpeg":
                oracle = cached_jpeg_oracle_z(folder, truth, out / "oracle.json", case.population, case.dark_fraction)
            tally.add(truth, defects, 0 if case.fmt in MOSAIC else 1, args.verbose, oracle)
            if case.fmt == "movie":
                tally.add_over_median(out, defects)
            tally.seconds += seconds
            line = f"{case.name:20s} {folder.name}: {len(defects)} reports ({seconds:.1f}s scan)"
            if case.fmt == "dng":
                if find_bad is None:
                    from detection import rawpy_find_bad_pixels

                    find_bad = rawpy_find_bad_pixels()
                t0 = time.perf_counter()
                coords = find_bad([str(folder / f) for f in truth["files"]])
                tally.add_peer(truth, coords)
                line += f"; rawpy: {len(coords)} reports ({time.perf_counter() - t0:.1f}s)"
            print(line, flush=True)
            for note in tally.notes:
                print("    " + note)
            tally.notes.clear()
    print()
    for name, tally in tallies.items():
        print_tally(name, tally)
    return tallies


def _f(x: float) -> str:
    return "  -  " if x != x else f"{x:5.3f}"


def print_tally(name: str, t: Tally) -> None:
    peer = t.peer_reports > 0
    oracle = t.oracle > 0
    print(f"== {name}: {t.collections} collections, scan {t.seconds:.1f}s total")
    head = f"  {'planted':20s} {'n':>4s} {'recall':>7s} {'class ok':>8s}"
    head += f" {'rawpy recall':>13s}" if peer else ""
    print(head + (f" {'detectable':>10s} {'recall of detectable':>20s}" if oracle else ""))

    def row(label: str, sks: list[str]) -> None:
        r, c, n = t.recall(sks)
        if not n:
            return
        line = f"  {label:20s} {n:4d} {_f(r):>7s} {_f(c):>8s}"
        if peer:
            line += f" {_f(sum(t.peer_found[s] for s in sks) / n):>13s}"
        if oracle:
            found, det, assessed = t.detected(sks)
            line += f" {det if assessed else '-':>10} {_f(found / det if det else float('nan')):>20s}"
        print(line)

    every: list[str] = []
    for label, sks in ROWS:
        every += [s for s in sks if s not in every]
        row(label, sks)
    row("all", every)
    core = ["hot", "hot-onset", "warm", "stuck", "dead", "cold"]
    r, _, n = t.recall(core)
    if n:  # a movie of flickering sensels has none
        line = f"  hot/stuck/dead recall {_f(r)} of {n}"
        if oracle:
            found, det, _ = t.detected(core)
            line += f"; of the detectable {_f(found / det if det else float('nan'))} ({found} of {det})"
        print(line)
    if oracle:
        found, det, assessed = t.detected(every)
        _, _, n = t.recall(every)
        unassessed = f", {n - assessed} not assessed (lines)" if n > assessed else ""
        print(f"  recall of the detectable: {found} of {det} (oracle z >= {DETECTABLE_Z:g}; {assessed - det} of {n} "
              f"planted are below it{unassessed}; {t.detectable_indep} reach it with independent frames and "
              f"no PRNU)")
    precision = (t.reports - t.false) / t.reports if t.reports else float("nan")
    print(f"  precision {_f(precision)}: {t.reports} reports, {t.false} false "
          f"({t.false / max(t.collections, 1):.2f} per collection); {t.fragments} single reports on lines")
    if peer:
        p = t.peer_true / t.peer_reports
        print(f"  rawpy precision {_f(p)} of {t.peer_reports} reports")
    if t.over_median:
        print(f"  sensels over 50x the median variance reported noisy: {t.over_median_noisy} of {t.over_median}")
    if t.lines:
        print(f"  lines reported as one: {t.lines_as_one} of {t.lines}")
    if t.onset_n:
        errs = sorted(t.onset_errors)
        print(f"  onsets within {ONSET_DAYS} days: {t.onset_ok} of {t.onset_n} "
              f"(median error {errs[len(errs) // 2]:.0f} days)")
    if t.start_n:
        print(f"  there from the start, no onset reported: {t.start_ok} of {t.start_n}")
    if t.rate_n:
        errs = sorted(t.rate_errors)
        print(f"  dark rate within {RATE_TOLERANCE:.0%} (>= {RATE_FLOOR:g} DN/s): {t.rate_ok} of {t.rate_n} "
              f"(median error {errs[len(errs) // 2]:.1%})")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two small collections")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "hotpixels-bench"),
                    help="where collections and their scans are written (and cached)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", help="run the collections whose name contains this")
    ap.add_argument("--redetect", action="store_true",
                    help="where the workdir holds a scan of a collection, classify it again from its stats only")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss, misclassification and false report")
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
