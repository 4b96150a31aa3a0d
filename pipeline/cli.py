"""`hotpixels scan | detect | report | synth`: argument parsing and exit codes only.

Exit status: 0 done (even with skipped files); 2 nothing usable, bad usage or bad config;
3 the cluster could not be reached or started.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cluster import ClusterError
from .config import ConfigError, load
from .scan import ScanError, scan

EXIT_OK, EXIT_NO_INPUT, EXIT_CLUSTER = 0, 2, 3


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotpixels", description="Find hot, stuck, dead and noisy pixels from many frames.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("scan", help="scan images into per-pixel statistics and defect maps")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, quoted globs or fsspec URLs")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--config", type=Path, help="YAML config (see configs/default.yaml)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    p.add_argument("--batch-size", type=int, help="files per read task")
    p.add_argument("--merge", action="store_true", help="add these files to the stats already in --out")
    p.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    args = parser.parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
    except (ConfigError, ScanError) as exc:
        print(f"hotpixels: error: {exc}", file=sys.stderr)
        return EXIT_NO_INPUT
    except ClusterError as exc:
        print(f"hotpixels: error: {exc}", file=sys.stderr)
        return EXIT_CLUSTER
    except KeyboardInterrupt:
        print("hotpixels: interrupted", file=sys.stderr)
        return 130
    return EXIT_OK


def _scan(args) -> int:
    config = load(args.config, {
        "cluster.scheduler": args.scheduler,
        "cluster.workers": args.workers,
        "scan.batch_size": args.batch_size,
    })
    result = scan(args.inputs, args.out, config, merge=args.merge, log=_say, progress=not args.no_progress)
    used = result.stats.n
    skipped = result.skipped
    _say(f"scanned {used} images ({result.attrs['group']}) in {result.elapsed:.1f} s; "
         f"{len(skipped)} skipped{_reasons(skipped)}")
    for path in result.outputs:
        _say(f"wrote {path}")
    return EXIT_OK


def _reasons(skipped) -> str:
    """' (3 cannot decode, 1 different sensor ...)': why files were skipped, most common first."""
    if not skipped:
        return ""
    counts: dict[str, int] = {}
    for _, _, reason in skipped:
        key = reason.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return " (" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) + "; see files.csv)"


if __name__ == "__main__":
    sys.exit(main())
