"""`hotpixels scan | detect | report | fix | verify | synth`: argument parsing and exit codes only.

Exit status: 0 done (even with skipped files); 1 ``verify`` found map entries that fall outside
the image or change nothing; 2 nothing usable (no file fixed), bad usage or bad config; 3 the
cluster could not be reached or started; 4 the folder is in use by a running scan; 5 the output
could not be written (a full disk, a read-only file system, no permission).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, load
from .engine import ClusterError
from .layout import LayoutError
from .scan import ScanError
from .state.disk import explain
from .state.lock import OutputLocked
from .state.place import folder as _folder
from .thread_dump import dump_on_sigusr1

EXIT_OK, EXIT_PROBLEMS, EXIT_NO_INPUT, EXIT_CLUSTER, EXIT_BUSY, EXIT_WRITE = 0, 1, 2, 3, 4, 5


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotpixels",
                                     description="Find hot, stuck, dead and noisy pixels from many frames.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scan", help="scan images into per-pixel statistics and defect maps")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, quoted globs or fsspec URLs")
    p.add_argument("--out", required=True, type=folder, help="output folder, or an fsspec URL the workers can write (s3://...)")
    p.add_argument("--config", type=Path, help="YAML config (see configs/default.yaml)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    p.add_argument("--batch-size", type=int, help="files per read task")
    p.add_argument("--merge", action="store_true", help="add these files to the stats already in --out")
    p.add_argument("--all-groups", action="store_true", default=None,
                   help="scan every camera/shape group into its own subfolder of --out (default: the largest only)")
    p.add_argument("--uniform", action="store_true", default=None,
                   help="all files are from one camera with one layout: read only the first file's header (the "
                        "frames' exposures, ISOs and dates then stay unknown)")
    p.add_argument("--cfa", metavar="PATTERN", help="the files are a Bayer mosaic saved as plain gray 16-bit PNG/TIFF: "
                   "its pattern, RGGB, BGGR, GRBG or GBRG (raw files name their own; without it, lit frames that "
                   "show a mosaic are read as the first pattern that fits)")
    p.add_argument("--hdu", metavar="NAME", help="FITS files: read this HDU, by EXTNAME (SCI) or index from 0 "
                                                 "(default: the first HDU that holds an image)")
    p.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    p.add_argument("--detach", action="store_true", help="with --scheduler: hand the whole scan to the cluster and "
                   "return at once (follow it with `hotpixels status OUT`)")
    p.add_argument("--performance-report", type=Path, metavar="FILE.html",
                   help="write Dask's performance report of the scan to this file")

    st = sub.add_parser("status", help="how a scan into OUT is doing: running (done, skipped, left, rate, ETA), "
                                       "done with its summary, or failed with the reason")
    st.add_argument("dir", type=folder, help="a scan's --out folder or URL")

    ca = sub.add_parser("cancel", help="stop the scan running into OUT; its checkpoints stay, so the same command "
                                       "resumes it")
    ca.add_argument("dir", type=folder, help="a scan's --out folder or URL")

    d = sub.add_parser("detect", help="classify defects again from saved stats (no image is read)")
    d.add_argument("dir", type=folder, help="a scan's --out folder or URL")
    d.add_argument("--config", type=Path, help="YAML config with new thresholds")

    r = sub.add_parser("report", help="write report.html again from saved stats")
    r.add_argument("dir", type=folder, help="a scan's --out folder or URL")
    r.add_argument("--config", type=Path, help="YAML config")

    f = sub.add_parser("fix", help="write copies of frames with a scan's defects fixed (the inputs are never touched)")
    f.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or quoted globs")
    f.add_argument("--map", required=True, type=folder, dest="map_dir",
                   help="a scan's --out folder or URL (its defects.csv)")
    f.add_argument("--out", required=True, type=Path, help="folder for the fixed copies and fixed.csv")
    f.add_argument("--hdu", metavar="NAME", help="FITS files: the HDU to fix, as the scan's --hdu")

    v = sub.add_parser("verify", help="apply a scan's maps to frames the way each tool does and report every "
                                      "entry outside the image or that changes nothing")
    v.add_argument("dir", type=Path, help="a scan's --out folder")
    v.add_argument("files", nargs="+", metavar="FILE",
                   help="frames of the same sensor (a DNG written by fix: its opcode too)")

    s = sub.add_parser("synth", help="write a synthetic stack with planted defects and truth.json")
    s.add_argument("out", type=Path, help="output folder")
    s.add_argument("--frames", type=int, default=40)
    s.add_argument("--size", default="640x480", help="WxH (default 640x480)")
    s.add_argument("--format", default="jpeg", choices=["jpeg", "png", "tiff", "tiff16", "png16", "dng"])
    s.add_argument("--dark", action="store_true", help="dark frames (lens cap) instead of varied photos")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--collection", action="store_true",
                   help="a realistic collection over two years instead: every exposure and ISO, EXIF, defects "
                        "that behave as real ones do (with --dark: all lens-cap darks)")
    s.add_argument("--movie", action="store_true",
                   help="an sCMOS movie instead: a monochrome sensor with 1 %% of its sensels flickering (telegraph "
                        "and Gaussian), saved as one multi-page TIFF (movie.tif)")

    args = parser.parse_args(argv)
    dump_on_sigusr1()
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command in ("detect", "report"):
            return _redetect(args)
        if args.command == "synth":
            return _synth(args)
        if args.command == "fix":
            return _fix(args)
        if args.command == "status":
            return _status(args)
        if args.command == "cancel":
            return _cancel(args)
        if args.command == "verify":
            return _verify(args)
    except (ConfigError, ScanError, LayoutError, FileNotFoundError, ValueError) as exc:
        print(f"hotpixels: error: {exc}", file=sys.stderr)
        return EXIT_NO_INPUT
    except ClusterError as exc:
        print(f"hotpixels: error: {exc}", file=sys.stderr)
        return EXIT_CLUSTER
    except OutputLocked as exc:
        print(f"hotpixels: error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except OSError as exc:
        line = explain(exc, getattr(args, "out", None) or getattr(args, "dir", None))
        if line is None:
            raise
        print(f"hotpixels: error: {line}", file=sys.stderr)
        return EXIT_WRITE
    except KeyboardInterrupt:
        print("hotpixels: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


def folder(text: str):
    """A folder or an fsspec URL, as ``place.folder`` reads it; a URL whose file system cannot be
    loaded (``s3://`` without s3fs) is refused here with the reason."""
    try:
        return _folder(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scan(args) -> int:
    config = load(args.config, {
        "cluster.scheduler": args.scheduler,
        "cluster.workers": args.workers,
        "scan.batch_size": args.batch_size,
        "scan.all_groups": args.all_groups,
        "scan.uniform": args.uniform,
        "scan.cfa": args.cfa,
        "scan.hdu": args.hdu,
    })
    if args.detach:
        return _detach(args, config)
    from .scan import scan

    result = scan(args.inputs, args.out, config, merge=args.merge, log=_say, progress=not args.no_progress,
                  performance_report=args.performance_report)
    for path in [p for r in [result, *result.others] for p in r.outputs]:
        _say(f"wrote {path}")
    return EXIT_OK


def _detach(args, config) -> int:
    """Submit the scan as one task that survives this process (``engine.detach``)."""
    from .engine import ClusterError
    from .engine.cluster import open_client
    from .engine.detach import LOG_NAME, submit
    from .engine.progress import new_job_id
    from .state.lock import check_free

    if not config.cluster.scheduler:
        raise ClusterError("--detach needs --scheduler (a cluster that outlives this process)")
    if args.performance_report:
        raise ValueError("--performance-report needs the scan to run attached (without --detach)")
    check_free(args.out)
    job = new_job_id()
    with open_client(config.cluster, _say) as client:
        key = submit(client, [str(Path(i).resolve()) if Path(i).exists() else i for i in args.inputs],
                     args.out.resolve() if isinstance(args.out, Path) else args.out, config, args.merge, job)
        dashboard = client.dashboard_link
    _say(f"submitted scan {job} (task {key}) into {args.out}")
    where = args.out / LOG_NAME if isinstance(args.out, Path) else "the worker's log"
    _say(f"follow it: hotpixels status {args.out}   (log: {where}; dashboard: "
         f"{dashboard.rsplit('/', 1)[0]}/hotpixels)")
    _say(f"stop it:   hotpixels cancel {args.out}   (its checkpoints stay: the same command resumes)")
    return EXIT_OK


def _status(args) -> int:
    from .engine.jobs import describe

    line, code = describe(args.dir)
    _say(line)
    return code


def _cancel(args) -> int:
    from .engine.jobs import cancel

    line, code = cancel(args.dir, log=_say)
    _say(line)
    return code


def _redetect(args) -> int:
    """Classify again from stats.zarr: new thresholds without reading the images."""
    from .results import write_results
    from .state.files import FILES_NAME, read_files_csv
    from .state.lock import check_free
    from .state.store import read_manifest, read_meta

    config = load(args.config)
    check_free(args.dir)
    meta = read_meta(args.dir)
    statuses = read_files_csv(args.dir) if (args.dir / FILES_NAME).exists() else []
    # band by band from stats.zarr, in this process: the same defects as the scan's, a band in memory at a time
    results = write_results(args.dir, None, meta, statuses, config, log=_say, report_only=args.command == "report",
                            manifest=read_manifest(args.dir))
    for path in results.outputs:
        _say(f"wrote {path}")
    return EXIT_OK


def _fix(args) -> int:
    from .fix.run import FIXED_NAME, fix

    rows = fix(args.inputs, args.map_dir, args.out, log=_say, hdu=args.hdu)
    done = sum(r.status == "fixed" for r in rows)
    _say(f"fixed {done} of {len(rows)} files into {args.out}; see {args.out / FIXED_NAME}")
    return EXIT_OK if done else EXIT_NO_INPUT


def _verify(args) -> int:
    from .fix.verify import verify

    problems = verify(args.dir, args.files, log=_say)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _synth(args) -> int:
    from .synth import synthesize, synthesize_collection, synthesize_movie

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 640x480, got {args.size!r}") from None
    if args.movie:
        truth = synthesize_movie(args.out, frames=args.frames, size=(width, height), seed=args.seed)
        _say(f"wrote an sCMOS movie of {args.frames} frames of {width}x{height} ({args.out / 'movie.tif'}) and "
             f"{len(truth['defects'])} planted defects to {args.out / 'truth.json'}")
        return EXIT_OK
    if args.collection:
        truth = synthesize_collection(args.out, frames=args.frames, size=(width, height), fmt=args.format,
                                      seed=args.seed, dark_fraction=1.0 if args.dark else 0.0)
        meta = truth["frames_meta"]
        _say(f"wrote a collection of {args.frames} {'dark ' if args.dark else ''}{args.format} frames of "
             f"{width}x{height} from {meta[0]['time'][:10]} to {meta[-1]['time'][:10]} and "
             f"{len(truth['defects'])} planted defects to {args.out / 'truth.json'}")
        return EXIT_OK
    truth = synthesize(args.out, frames=args.frames, size=(width, height), fmt=args.format, dark=args.dark,
                       seed=args.seed)
    _say(f"wrote {args.frames} {'dark ' if args.dark else ''}{args.format} frames of {width}x{height} and "
         f"{len(truth['defects'])} planted defects to {args.out / 'truth.json'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
