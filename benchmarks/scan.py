"""Speed and memory of `hotpixels scan` side by side with its peers, on this machine.

    .venv/bin/python benchmarks/scan.py [--files 400] [--size 3000x2000] [--repeat 3] [--quick]
    .venv/bin/python benchmarks/scan.py --small-pngs 20000      # scale in files: tiny PNGs
    .venv/bin/python benchmarks/scan.py --dngs 40               # raw: 12 MP DNGs against rawpy
    .venv/bin/python benchmarks/scan.py --profile               # where one partition spends its time

It builds a deterministic JPEG set (cached under $TMPDIR/hotpixels-bench/scan: smooth random
scenes with sensor noise and a fixed set of hot pixels, 8-bit RGB, quality 90, 4:2:0) and runs,
each as a whole process (interpreter and pool or cluster start-up included), measuring wall time
and peak memory:

- ``decode-pillow``: decode only, imageio's Pillow path, ``multiprocessing.Pool(2)``;
- ``decode-simplejpeg``: decode only, simplejpeg (libjpeg-turbo), Pool(2): the physical floor;
- ``seed``: the seed article's method: Pool(2), each process keeps float64 Welford (mean, M2)
  over its half of the files, then the halves are merged by SUMMING their M2. That is wrong (it
  drops the between-partition term d^2*na*nb/n; see tests/stats/test_moments.py), but it is what the
  article did, and it is the speed to beat;
- ``dask-var``: ``dask.array.stack([from_delayed(imread(p)) ...]).var(0)`` on the threaded
  scheduler, on a subset it survives (``--dask-files``, default 24), reported per file;
- ``scan``: ``hotpixels scan FOLDER --out DIR`` (the CLI: LocalCluster start-up, discovery and
  every output included), with ``--scan-workers`` (e.g. ``1,2``) for time against workers, and
  once more with ``scan.range_counts: false`` (moments only), so the cost of that third
  statistic shows; each scan's log says how many bytes its workers sent, per image.

With ``--dngs N`` it builds N raw DNGs instead (16-bit RGGB mosaics, 4000x3000 unless
``--size``, written by the project's own ``pipeline.synth.synthesize``) and runs
``decode-rawpy`` (decode only, ``rawpy.imread(p).raw_image_visible``, Pool(2)), ``rawpy-enhance``
(``rawpy.enhance.find_bad_pixels`` over all files in one process, the peer detector) and the
scan with 2 workers.

Peak memory: "largest" is the peak RSS of the largest single process in the method's process
tree (``os.wait4``'s ``ru_maxrss``, which the kernel keeps for reaped descendants, combined with
100 ms psutil samples); "tree" is the largest sampled sum over the tree. Times are medians of
``--repeat`` runs, interleaved so that drift hits every method alike. Before timing, every file
is read once (warm page cache for all) and a small scan warms numba's on-disk kernel cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GENERATOR_VERSION = 2
HOT_PIXELS = 300  # fixed defects planted in every frame
DNG_VERSION = 1  # of the DNG sets (what synthesize writes for a seed is versioned by its TRUTH_VERSION)
DNG_WORKERS = 2  # the scan's workers on the DNG set, and decode-rawpy's processes
RAW_SPEED_TARGET = 4.0  # the DNG set's target: scan / rawpy decode-only
ENHANCE_TARGET = 5.0  # and rawpy.enhance.find_bad_pixels / scan


# ----------------------------------------------------------------------------- data sets

def _frame_pixels(index: int, width: int, height: int):
    """Frame ``index``: a random scene with texture, +-10 noise, fixed hot pixels. Deterministic."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng([2026, GENERATOR_VERSION, index])
    def smooth(cell: int):
        coarse = rng.integers(0, 256, (height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
        return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)

    # large shapes, fine texture and noise: about 1.8 MB per 6 MP frame, like a camera's JPEG
    scene = (smooth(150) * 7 + smooth(6) * 3) // 10
    scene += rng.integers(-10, 11, scene.shape, dtype=np.int16)
    frame = np.clip(scene, 0, 255).astype(np.uint8)
    defects = np.random.default_rng([2026, GENERATOR_VERSION]).integers(0, (height, width), (HOT_PIXELS, 2))
    frame[defects[:, 0], defects[:, 1]] = 255
    return frame


def _write_jpeg(job) -> None:
    import simplejpeg

    index, width, height, path = job
    data = simplejpeg.encode_jpeg(_frame_pixels(index, width, height), quality=90, colorsubsampling="420")
    tmp = Path(f"{path}.part")
    tmp.write_bytes(data)
    tmp.rename(path)


def jpeg_set(root: Path, files: int, width: int, height: int) -> Path:
    """A folder holding exactly ``files`` JPEGs (hard links into a shared pool per size)."""
    pool = root / f"jpeg-{width}x{height}-v{GENERATOR_VERSION}" / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i:05d}.jpg" for i in range(files)]
    missing = [(i, width, height, pool / n) for i, n in enumerate(names) if not (pool / n).exists()]
    if missing:
        print(f"building {len(missing)} JPEGs of {width}x{height} in {pool} ...", flush=True)
        from multiprocessing import Pool

        started = time.monotonic()
        with Pool(2) as p:
            for _ in p.imap_unordered(_write_jpeg, missing, chunksize=4):
                pass
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return _linked_set(pool, names, pool.parent / f"n{files}")


def _linked_set(pool: Path, names: list[str], folder: Path) -> Path:
    if folder.exists() and sorted(p.name for p in folder.iterdir()) == sorted(names):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        os.link(pool / name, folder / name)
    return folder


def png_set(root: Path, files: int, width: int = 64, height: int = 48) -> Path:
    """``files`` small 8-bit RGB PNGs (scene + noise + hot pixels), built in this process."""
    import numpy as np
    from PIL import Image

    pool = root / f"png-{width}x{height}-v{GENERATOR_VERSION}" / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i:05d}.png" for i in range(files)]
    todo = [i for i, n in enumerate(names) if not (pool / n).exists()]
    if todo:
        print(f"building {len(todo)} PNGs of {width}x{height} in {pool} ...", flush=True)
        defects = np.random.default_rng([7, GENERATOR_VERSION]).integers(0, (height, width), (5, 2))
        for i in todo:
            rng = np.random.default_rng([2026, GENERATOR_VERSION, i])
            y, x = np.mgrid[0:height, 0:width]
            base = rng.integers(0, 200, 3) + (x[..., None] * rng.integers(0, 2, 3)) + (y[..., None] // 2)
            frame = np.clip(base + rng.integers(-6, 7, (height, width, 3)), 0, 255).astype(np.uint8)
            frame[defects[:, 0], defects[:, 1]] = 255
            Image.fromarray(frame).save(pool / names[i])
    return _linked_set(pool, names, pool.parent / f"n{files}")


def _dngs_needed(folder: Path) -> bool:
    sys.path.insert(0, str(REPO))
    from pipeline.synth import TRUTH_VERSION

    truth_path = folder / "truth.json"
    if not truth_path.is_file():
        return True
    truth = json.loads(truth_path.read_text())
    return truth.get("version") != TRUTH_VERSION or not all((folder / f).is_file() for f in truth["files"])


def _synthesize_dngs(folder: Path, files: int, width: int, height: int) -> None:
    sys.path.insert(0, str(REPO))
    from pipeline.synth import synthesize

    synthesize(folder, frames=files, size=(width, height), fmt="dng", dark=False, seed=0)


def dng_set(root: Path, files: int, width: int, height: int) -> Path:
    """A folder of ``files`` raw DNGs (16-bit RGGB, 12-bit values) written by ``pipeline.synth.synthesize``
    (photos, seed 0: deterministic), with its ``truth.json``, which a scan ignores.

    Checked and built in a pool process, so that this one stays small: the kernel counts the RSS
    of the process that starts a child in that child's ``ru_maxrss``, which ``measure`` reads."""
    from multiprocessing import Pool

    folder = root / f"dng-{width}x{height}-v{DNG_VERSION}" / f"n{files}"
    with Pool(1) as pool:
        if pool.apply(_dngs_needed, (folder,)):
            print(f"building {files} DNGs of {width}x{height} in {folder} ...", flush=True)
            started = time.monotonic()
            pool.apply(_synthesize_dngs, (folder, files, width, height))
            print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return folder


def warm_cache(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


# ----------------------------------------------------------------------------- child methods
# Each runs in its own process: `python benchmarks/scan.py --child METHOD --list FILE --out DIR`.

def _decode_pillow(path: str) -> int:
    import imageio.v3 as iio
    import numpy as np

    return int(np.asarray(iio.imread(path)).shape[0])


def _decode_simplejpeg(path: str) -> int:
    import simplejpeg

    with open(path, "rb") as fh:
        return int(simplejpeg.decode_jpeg(fh.read()).shape[0])


def _decode_rawpy(path: str) -> int:
    import numpy as np
    import rawpy

    with rawpy.imread(path) as raw:
        mosaic = np.array(raw.raw_image_visible)  # a copy of the visible CFA mosaic (LibRaw unpacks here)
    return int(mosaic[0].sum())


def child_decode(paths: list[str], decoder: str, processes: int) -> None:
    from multiprocessing import Pool

    fn = {"pillow": _decode_pillow, "simplejpeg": _decode_simplejpeg, "rawpy": _decode_rawpy}[decoder]
    with Pool(processes) as pool:
        done = sum(1 for _ in pool.imap_unordered(fn, paths, chunksize=max(1, len(paths) // (processes * 32))))
    print(f"decoded {done} files")


def _seed_partition(paths: list[str]):
    """The seed article's worker: float64 Welford over its files, one full-size frame at a time."""
    import imageio.v3 as iio
    import numpy as np

    n, mean, m2 = 0, None, None
    for path in paths:
        x = np.asarray(iio.imread(path), dtype=np.float64)
        if mean is None:
            mean, m2 = np.zeros_like(x), np.zeros_like(x)
        n += 1
        delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
    return n, mean, m2


def child_seed(paths: list[str], out: Path, processes: int) -> None:
    from multiprocessing import Pool

    import numpy as np

    size = -(-len(paths) // processes)
    parts = [paths[i : i + size] for i in range(0, len(paths), size)]
    with Pool(processes) as pool:
        results = pool.map(_seed_partition, parts)
    n = sum(r[0] for r in results)
    mean = sum(r[0] * r[1] for r in results) / n
    m2 = sum(r[2] for r in results)  # the seed's merge: wrong, it misses d^2*na*nb/n
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "mean.npy", mean)
    np.save(out / "var.npy", m2 / n)
    print(f"seed method over {n} files")


def child_dask_var(paths: list[str], out: Path, processes: int) -> None:
    import dask
    import dask.array as da
    import imageio.v3 as iio
    import numpy as np

    props = iio.improps(paths[0])
    frames = [da.from_delayed(dask.delayed(iio.imread)(p), shape=props.shape, dtype=props.dtype) for p in paths]
    var = da.stack(frames).var(axis=0)
    result = var.compute(scheduler="threads", num_workers=processes)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "var.npy", result)
    print(f"dask.array var over {len(paths)} files")


def child_rawpy_enhance(paths: list[str], out: Path, processes: int) -> None:
    """``rawpy.enhance.find_bad_pixels`` over all files, in this one process (it has no parallelism).

    rawpy.enhance needs OpenCV or scikit-image for its median filter; when neither is installed,
    a numpy 3x3 median with OpenCV's replicated border stands in as ``cv2.medianBlur`` (the shim of
    benchmarks/detection.py, copied: importing that module loads the pipeline), and the time it
    takes is printed, since OpenCV's would be far less."""
    import types
    import warnings

    import numpy as np

    median_seconds = [0.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its warnings that OpenCV or scikit-image is missing
            import rawpy.enhance as enhance
        shimmed = False
    except ImportError:
        def median_blur(src, ksize=3):
            started = time.perf_counter()
            r = ksize // 2
            p = np.pad(src, r, mode="edge")  # OpenCV's medianBlur replicates the border
            h, w = src.shape
            views = [p[dy : dy + h, dx : dx + w] for dy in range(ksize) for dx in range(ksize)]
            result = np.median(np.stack(views), axis=0).astype(src.dtype)
            median_seconds[0] += time.perf_counter() - started
            return result

        shim = types.ModuleType("cv2")
        shim.medianBlur = median_blur
        sys.modules["cv2"] = shim
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import rawpy.enhance as enhance
        shimmed = True
    started = time.perf_counter()
    coords = enhance.find_bad_pixels(paths, find_hot=True, find_dead=True)
    total = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "bad_pixels.txt").write_text(f"{len(coords)}\n")
    print(f"rawpy.enhance.find_bad_pixels over {len(paths)} files: {len(coords)} bad pixels in {total:.1f} s")
    if shimmed:
        print(f"note: OpenCV/scikit-image not installed; the numpy 3x3 median stood in for cv2.medianBlur: "
              f"{median_seconds[0]:.1f} s of the {total:.1f} s")


CHILDREN = {
    "decode-pillow": lambda paths, out, procs: child_decode(paths, "pillow", procs),
    "decode-simplejpeg": lambda paths, out, procs: child_decode(paths, "simplejpeg", procs),
    "decode-rawpy": lambda paths, out, procs: child_decode(paths, "rawpy", procs),
    "rawpy-enhance": child_rawpy_enhance,
    "seed": child_seed,
    "dask-var": child_dask_var,
}


# ----------------------------------------------------------------------------- measuring

class Run:
    def __init__(self, wall: float, largest: int, tree: int, code: int, log: Path, client: int = 0):
        self.wall, self.largest, self.tree, self.code, self.log = wall, largest, tree, code, log
        self.client = client  # the peak of the process started (the scan's client), without its children


def measure(cmd: list[str], log: Path, env: dict | None = None) -> Run:
    """Wall time and peak memory of one whole process tree."""
    import psutil

    peaks = {"largest": 0, "tree": 0, "client": 0}
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        stop = threading.Event()

        def sample():
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not stop.is_set():
                try:
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    break
                sizes = []
                for p in procs:
                    try:
                        sizes.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                try:
                    peaks["client"] = max(peaks["client"], root.memory_info().rss)
                except psutil.Error:
                    pass
                if sizes:
                    peaks["largest"] = max(peaks["largest"], max(sizes))
                    peaks["tree"] = max(peaks["tree"], sum(sizes))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
    largest = max(peaks["largest"], usage.ru_maxrss * 1024)  # Linux reports KiB
    return Run(wall, largest, max(peaks["tree"], largest), proc.returncode, log, peaks["client"])


def child_cmd(method: str, paths: list[str], work: Path, out: Path, processes: int = 2) -> list[str]:
    listing = work / f"{method}-{len(paths)}.txt"
    listing.write_text("\n".join(paths))
    return [sys.executable, str(Path(__file__).resolve()), "--child", method, "--list", str(listing),
            "--out", str(out), "--processes", str(processes)]


def scan_cmd(folder: Path, out: Path, workers: int | None, config: Path | None = None) -> list[str]:
    exe = BIN / "hotpixels"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipeline.cli"]
    cmd += ["scan", str(folder), "--out", str(out), "--no-progress"]
    cmd += ["--config", str(config)] if config else []
    return cmd + (["--workers", str(workers)] if workers else [])


# ----------------------------------------------------------------------------- reporting

def mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def table(rows: list[tuple[str, int, list[Run]]]) -> dict:
    print()
    print(f"{'method':<26} {'files':>6} {'wall s':>8} {'ms/file':>8} {'largest MB':>11} {'client MB':>10} "
          f"{'tree MB':>9}  runs")
    summary = {}
    for name, files, runs in rows:
        ok = [r for r in runs if r.code == 0]
        if not ok:
            print(f"{name:<26} {files:>6} {'FAILED':>8}  (exit {runs[-1].code}; see {runs[-1].log})")
            continue
        wall = statistics.median(r.wall for r in ok)
        largest = max(r.largest for r in ok)
        client = max(r.client for r in ok)
        tree = max(r.tree for r in ok)
        walls = " ".join(f"{r.wall:.1f}" for r in ok)
        print(f"{name:<26} {files:>6} {wall:>8.2f} {1000 * wall / files:>8.1f} {mb(largest):>11} {mb(client):>10} "
              f"{mb(tree):>9}  [{walls}]")
        summary[name] = {"files": files, "wall": wall, "per_file": wall / files, "largest": largest, "tree": tree,
                         "client": client}
    return summary


def targets(values: int) -> tuple[float, int]:
    """The speed issue's targets for a set: scan / simplejpeg decode-only, and the largest process
    (bytes): 10x and 3.5 GB for a 45 MP RGB sensor, 3x and 1 GB for 6 MP."""
    return (10.0, int(3.5 * 2**30)) if values >= 100_000_000 else (3.0, 2**30)


CLIENT_TARGET = 2**29  # the client stays at 0.5 GB or less, whatever the sensor


def ratios(summary: dict, scan_key: str, values: int = 0) -> None:
    speed, memory = targets(values)

    def get(key, field="wall"):
        return summary[key][field] if key in summary else None

    scan = get(scan_key)
    if scan is None:
        return
    print()
    simple = get("decode-simplejpeg")
    pillow = get("decode-pillow")
    seed = get("seed")
    raw = get("decode-rawpy")
    enhance = get("rawpy-enhance")
    if raw:
        print(f"scan / decode-only (rawpy)         = {scan / raw:5.2f}   (target <= {RAW_SPEED_TARGET:g})")
    if enhance:
        print(f"rawpy-enhance / scan               = {enhance / scan:5.2f}   (target >= {ENHANCE_TARGET:g})")
    if simple:
        print(f"scan / decode-only (simplejpeg)    = {scan / simple:5.2f}   (target <= {speed:g})")
    if pillow:
        print(f"scan / decode-only (Pillow)        = {scan / pillow:5.2f}")
    if seed:
        print(f"seed / scan                        = {seed / scan:5.2f}   (target >= 4)")
    if "dask-var" in summary:
        print(f"dask-var / scan, per file          = {get('dask-var', 'per_file') / get(scan_key, 'per_file'):5.2f}")
    print(f"scan largest process               = {mb(summary[scan_key]['largest'])} MB   (target <= {mb(memory)} MB)")
    print(f"scan client process                = {mb(summary[scan_key]['client'])} MB   "
          f"(target <= {mb(CLIENT_TARGET)} MB)")


def detection_line(log: Path) -> str:
    """What the scan says detection and the outputs took, per sensor value."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.search(r"defects found in ([\d.]+ s \(\d+ ns per sensor value\)), outputs written in "
                      r"([\d.]+ s \(\d+ ns per sensor value\))", text)
    return f"detection {found.group(1)}, outputs {found.group(2)}" if found else "detection: not reported"


def network_line(log: Path) -> str:
    """What the scan says its workers sent (partials between workers, and the result to the client)."""
    found = re.search(r"partial statistics sent by the workers: ([\d,]+ MB \([\d.]+ MB per image\))",
                      log.read_text(errors="replace")) if log.exists() else None
    return f"network {found.group(1)}" if found else "network: not reported"


# ----------------------------------------------------------------------------- modes

def run_jpeg(args, root: Path) -> None:
    width, height = args.size
    folder = jpeg_set(root, args.files, width, height)
    dask_folder = jpeg_set(root, min(args.dask_files, args.files), width, height)
    paths = sorted(str(p) for p in folder.iterdir())
    dask_paths = sorted(str(p) for p in dask_folder.iterdir())
    total = sum(os.path.getsize(p) for p in paths)
    print(f"{len(paths)} JPEGs of {width}x{height} ({total / len(paths) / 2**20:.1f} MB each) in {folder}")
    work = Path(tempfile.mkdtemp(prefix="hotpixels-bench-"))
    warm_cache(folder)
    workers = [int(w) for w in str(args.scan_workers).split(",")]
    no_counts = work / "no-range-counts.yaml"
    no_counts.write_text("scan:\n  range_counts: false\n")
    warm = measure(scan_cmd(dask_folder, work / "warmup", workers[0]), work / "warmup.log")
    # the moments-only kernel is its own compiled function: warm it too
    measure(scan_cmd(dask_folder, work / "warmup", workers[0], no_counts), work / "warmup-no-counts.log")
    shutil.rmtree(work / "warmup", ignore_errors=True)
    print(f"warm-up scan of {len(dask_paths)} files: {warm.wall:.1f} s "
          "(includes numba's compile if its cache was cold)",
          flush=True)
    methods = [m for m in ("decode-pillow", "decode-simplejpeg", "seed", "dask-var") if m not in args.skip]
    runs: dict[str, list[Run]] = {m: [] for m in methods}
    scan_names = [f"scan ({w} worker{'s' if w > 1 else ''})" for w in workers]
    # the range counts (a third statistic for detection) measured both ways, on the most workers
    variants = [(name, w, None) for w, name in zip(workers, scan_names)]
    variants.append((f"scan, no range counts ({workers[-1]})", workers[-1], no_counts))
    runs.update({name: [] for name, _, _ in variants})
    for rep in range(args.repeat):
        for method in methods:
            out = work / f"{method}-out"
            shutil.rmtree(out, ignore_errors=True)
            subset = dask_paths if method == "dask-var" else paths
            runs[method].append(measure(child_cmd(method, subset, work, out), work / f"{method}-{rep}.log"))
            shutil.rmtree(out, ignore_errors=True)  # outputs are large (GBs over a run); logs stay
            print(f"  {method}: {runs[method][-1].wall:.1f} s", flush=True)
        for i, (name, w, config) in enumerate(variants):
            out, log = work / f"scan-{i}-out", work / f"scan-{i}-{rep}.log"
            shutil.rmtree(out, ignore_errors=True)
            runs[name].append(measure(scan_cmd(folder, out, w, config), log))
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {name}: {runs[name][-1].wall:.1f} s; {network_line(log)}; {detection_line(log)}", flush=True)
    rows = [(m, len(dask_paths) if m == "dask-var" else len(paths), runs[m]) for m in methods]
    rows += [(name, len(paths), runs[name]) for name, _, _ in variants]
    summary = table(rows)
    ratios(summary, scan_names[-1], width * height * 3)
    plain = summary.get(variants[-1][0])
    if plain and scan_names[-1] in summary:
        print(f"scan without range counts / with   = {plain['wall'] / summary[scan_names[-1]]['wall']:5.2f}"
              f"   (largest process {mb(plain['largest'])} MB)")
    _save(args, summary, work)


def run_dngs(args, root: Path) -> None:
    width, height = args.size
    folder = dng_set(root, args.dngs, width, height)
    names = sorted(p.name for p in folder.iterdir() if p.suffix == ".dng")
    paths = [str(folder / n) for n in names]
    total = sum(os.path.getsize(p) for p in paths)
    print(f"{len(paths)} DNGs of {width}x{height} ({total / len(paths) / 2**20:.1f} MB each, "
          f"{total / 2**30:.2f} GiB in all) in {folder}")
    work = Path(tempfile.mkdtemp(prefix="hotpixels-bench-"))
    warm_cache(folder)
    # the warm-up compiles (or loads) the kernels for 16-bit mosaics, on a few of the files
    warm_folder = folder.parent / f"warmup-of-n{len(names)}"
    shutil.rmtree(warm_folder, ignore_errors=True)  # hard links: made afresh, in case the set was rebuilt
    warm_folder = _linked_set(folder, names[: min(8, len(names))], warm_folder)
    warm = measure(scan_cmd(warm_folder, work / "warmup", DNG_WORKERS), work / "warmup.log")
    shutil.rmtree(work / "warmup", ignore_errors=True)
    print(f"warm-up scan of {len(list(warm_folder.iterdir()))} files: {warm.wall:.1f} s "
          "(includes numba's compile if its cache was cold)", flush=True)
    methods = [m for m in ("decode-rawpy", "rawpy-enhance") if m not in args.skip]
    scan_name = f"scan ({DNG_WORKERS} workers)"
    runs: dict[str, list[Run]] = {m: [] for m in [*methods, scan_name]}
    for rep in range(args.repeat):
        for method in methods:
            out = work / f"{method}-out"
            shutil.rmtree(out, ignore_errors=True)
            log = work / f"{method}-{rep}.log"
            runs[method].append(measure(child_cmd(method, paths, work, out, DNG_WORKERS), log))
            found = out / "bad_pixels.txt"
            extra = f"; {found.read_text().strip()} bad pixels" if found.exists() else ""
            shutil.rmtree(out, ignore_errors=True)
            print(f"  {method}: {runs[method][-1].wall:.1f} s{extra}", flush=True)
        out, log = work / "scan-out", work / f"scan-{rep}.log"
        shutil.rmtree(out, ignore_errors=True)
        runs[scan_name].append(measure(scan_cmd(folder, out, DNG_WORKERS), log))
        shutil.rmtree(out, ignore_errors=True)
        print(f"  {scan_name}: {runs[scan_name][-1].wall:.1f} s; {network_line(log)}; {detection_line(log)}",
              flush=True)
    summary = table([(m, len(paths), r) for m, r in runs.items()])
    ratios(summary, scan_name, width * height)
    _save(args, summary, work)


def run_pngs(args, root: Path) -> None:
    folder = png_set(root, args.small_pngs)
    paths = sorted(str(p) for p in folder.iterdir())
    print(f"{len(paths)} PNGs of 64x48 in {folder}")
    work = Path(tempfile.mkdtemp(prefix="hotpixels-bench-"))
    warm_cache(folder)
    runs: dict[str, list[Run]] = {"decode-pillow": [], "scan": []}
    for rep in range(args.repeat):
        decode = child_cmd("decode-pillow", paths, work, work / "d")
        runs["decode-pillow"].append(measure(decode, work / f"decode-{rep}.log"))
        print(f"  decode-pillow: {runs['decode-pillow'][-1].wall:.1f} s", flush=True)
        out = work / "scan-out"
        shutil.rmtree(out, ignore_errors=True)
        runs["scan"].append(measure(scan_cmd(folder, out, None), work / f"scan-{rep}.log"))
        shutil.rmtree(out, ignore_errors=True)
        print(f"  scan: {runs['scan'][-1].wall:.1f} s", flush=True)
    summary = table([(m, len(paths), r) for m, r in runs.items()])
    if "scan" in summary and "decode-pillow" in summary:
        ratio = summary["scan"]["wall"] / summary["decode-pillow"]["wall"]
        print(f"\nscan / decode-only (PNG, Pillow)   = {ratio:5.2f}"
              f"   (target <= 2.5)")
    _save(args, summary, work)


def run_profile(args, root: Path) -> None:
    """One partition's read tasks, in this process (no dask), step by step: what a worker spends
    per file. The steps are those of ``engine.graph.read_step``, timed apart and then whole."""
    import pickle

    import numpy as np

    sys.path.insert(0, str(REPO))
    from pipeline.config import ScanConfig
    from pipeline.engine.graph import read_step, row_tiles
    from pipeline.engine.plan import choose_batch_size
    from pipeline.io import read_file
    from pipeline.stats import IntegerSums, accumulate, merge_partials, noise_bars

    width, height = args.size
    config = ScanConfig()
    shape, dtype = (height, width, 3), "uint8"
    batch_size = args.batch_size or choose_batch_size(config, shape, dtype)
    tile_values = args.tile_values or config.tile_values
    files = 4 * batch_size
    folder = jpeg_set(root, max(args.files, files), width, height)
    paths = sorted(str(p) for p in folder.iterdir())[:files]
    tiles = row_tiles(height, max(1, tile_values // (width * 3)))
    batches = [paths[i : i + batch_size] for i in range(0, files, batch_size)]
    # numba's kernels load (or compile) on first use: a small first batch, as a worker's warm-up does
    warm = read_step(None, 0, paths[:2], shape, dtype, read_file, None, 1, tiles)
    del warm
    clock = time.perf_counter
    # per batch: decode, bars, kernel; the first batch of a partition also page-faults its fresh
    # sums (and a worker's first, its buffer), so it is shown apart from the steady state
    steps: list[tuple[float, float, float]] = []
    sums = [IntegerSums.zeros((y1 - y0, width, 3), dtype) for y0, y1 in tiles]
    buffer = np.empty((batch_size, *shape), np.uint8)
    for batch in batches:
        t0 = clock()
        for i, path in enumerate(batch):
            read_file(path, buffer[i])
        frames = buffer[: len(batch)]
        t1 = clock()
        bars = noise_bars.bars(frames, 1, (0, height))
        t2 = clock()
        for (y0, y1), tile in zip(tiles, sums):
            accumulate(tile, frames, 1, rows=(y0, y1), bars=bars)
        steps.append((t1 - t0, t2 - t1, clock() - t2))
    del buffer
    whole: list[float] = []
    part = None
    for b, batch in enumerate(batches):
        t = clock()
        part = read_step(part, b, batch, shape, dtype, read_file, None, 1, tiles, last=b == len(batches) - 1)
        whole.append(clock() - t)
    later = batch_size * (len(batches) - 1)
    t_read, t_bars, t_acc = (sum(s[i] for s in steps[1:]) for i in range(3))
    t_whole = sum(whole[1:])
    # the end of a segment as the reduction does it: another partition's sums added exactly,
    # then each tile converted to float64 once
    others = [IntegerSums(t.n, t.s1.copy(), t.s2.copy(), t.counts.copy(), t.max_frames, dict(t.extra)) for t in sums]
    t = clock()
    added = [merge_partials([a, b]) for a, b in zip(sums, others)]
    t_merge = clock() - t
    t = clock()
    parts = [tile.to_stats() for tile in added]
    t_stats = clock() - t
    sums_sent = sum(len(pickle.dumps(t, protocol=5)) for t in sums)
    result_bytes = sum(len(pickle.dumps(p, protocol=5)) for p in parts)
    print(f"\none partition: {files} files of {width}x{height} RGB in batches of {batch_size}, {len(tiles)} tiles "
          f"(tile_values={tile_values}), one process, range counts kept; per file after the first batch")
    print(f"{'step':<44} {'s/partition':>11} {'ms/file':>8}")
    for name, secs, n in [("read + decode into the buffer", t_read, later),
                          ("noise bars (the range counts' 3 sigmas)", t_bars, later),
                          ("accumulate (numba kernel, every tile)", t_acc, later),
                          ("read_step whole, as a worker runs it", t_whole, later),
                          ("  its first batch (fresh sums page-fault)", whole[0], batch_size),
                          ("adding another partition's sums (once)", t_merge, files),
                          ("IntegerSums.to_stats (once)", t_stats, files)]:
        print(f"{name:<44} {secs:>11.3f} {1000 * secs / n:>8.1f}")
    print(f"a partition's sums {sums_sent / 2**20:.0f} MB (what it sends to be added); the segment's float64 result "
          f"{result_bytes / 2**20:.0f} MB, which each tile's worker folds into the total and writes to stats.zarr "
          f"(decoded frames are {np.prod(shape) / 2**20:.1f} MB each)")


def _save(args, summary: dict, work: Path) -> None:
    record = {"argv": sys.argv[1:], "summary": summary, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "load": os.getloadavg(), "cpus": os.cpu_count()}
    (work / "summary.json").write_text(json.dumps(record, indent=1))
    print(f"\nlogs and summary.json in {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(other work on the machine skews every number)")


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--size", type=size, help="WIDTHxHEIGHT of the JPEGs (3000x2000) or DNGs (4000x3000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--quick", action="store_true", help="100 files, 8 for dask-var: 2-3 minutes here")
    parser.add_argument("--dask-files", type=int, default=24, help="files for dask.array var (it needs ~GBs)")
    parser.add_argument("--scan-workers", default="2", help="worker processes of the scan, e.g. 1,2")
    parser.add_argument("--skip", default="", help="comma-separated methods to leave out (e.g. seed,dask-var)")
    parser.add_argument("--small-pngs", type=int, metavar="N", help="scale in files: N PNGs of 64x48")
    parser.add_argument("--dngs", type=int, nargs="?", const=40, metavar="N",
                        help="raw: N DNGs (40 if N is left out) against rawpy decode-only and rawpy.enhance")
    parser.add_argument("--profile", action="store_true", help="time one partition's steps in-process")
    parser.add_argument("--batch-size", type=int, help="(--profile) files per read task; default: the config's")
    parser.add_argument("--tile-values", type=int, help="(--profile) values per tile; default: the config's")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "hotpixels-bench" / "scan")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--list", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child](args.list.read_text().split("\n"), args.out, args.processes)
        return 0
    if args.size is None:
        args.size = (4000, 3000) if args.dngs else (3000, 2000)
    if args.quick:
        args.files, args.dask_files = min(args.files, 100), min(args.dask_files, 8)
    args.skip = set(filter(None, args.skip.split(",")))
    args.root.mkdir(parents=True, exist_ok=True)
    if args.profile:
        run_profile(args, args.root)
    elif args.small_pngs:
        run_pngs(args, args.root)
    elif args.dngs:
        run_dngs(args, args.root)
    else:
        run_jpeg(args, args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
