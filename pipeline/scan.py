"""The scan: discover -> group -> read (delayed chunks) -> partial stats -> tree merge -> save.

This module only sequences the steps and talks to the user; each step lives in its own module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client

from . import __version__
from .cluster import open_client, run
from .config import Config
from .discover import Group, expand, group, probe
from .readers import Header, read_pixels
from .reduce import image_array, planes_to_stats, stats_planes
from .stats import PixelStats, max_batch_frames, neighbour_stride
from .store import write_files_csv, write_stats

Status = tuple[str, str, str]


class NoImagesError(RuntimeError):
    """Nothing usable was found; the CLI turns this into exit status 2 and one line."""


@dataclass
class ScanResult:
    out_dir: Path
    stats: PixelStats
    attrs: dict
    statuses: list[Status]
    elapsed: float
    outputs: list[Path] = field(default_factory=list)

    @property
    def skipped(self) -> list[Status]:
        return [s for s in self.statuses if s[1] == "skipped"]


def scan(inputs: list[str], out_dir: str | Path, config: Config | None = None, client: Client | None = None,
         log: Callable[[str], None] = print, progress: bool = True) -> ScanResult:
    """Scan image files into per-pixel statistics saved in ``out_dir``.

    Uses ``client`` if given (e.g. in a notebook), else the cluster described by ``config``.
    """
    config = config or Config()
    out_dir = Path(out_dir)
    started = time.monotonic()
    expansion = expand(list(inputs))
    if not expansion.paths:
        raise NoImagesError(f"no image files found in {', '.join(inputs) or 'the given inputs'}")
    discovery_skips: list[Status] = [(i, "skipped", why) for i, why in expansion.problems]
    log(f"found {len(expansion.paths)} files")

    def with_client(c: Client) -> ScanResult:
        headers = _probe_all(c, expansion.paths, config.scan.probe_batch, progress)
        main, skipped = _choose_group(headers)
        pixels, statuses = _reduce(c, main, config, progress)
        n = sum(1 for s in statuses if s[1] == "used")
        all_statuses = discovery_skips + skipped + statuses
        if n == 0:
            write_files_csv(_ensure(out_dir), all_statuses)
            raise NoImagesError(f"none of the {len(statuses)} files of the main group could be decoded "
                                f"(first: {statuses[0][2]}); see {out_dir / 'files.csv'}")
        stats = planes_to_stats(pixels, n)
        attrs = _attrs(main, config)
        outputs = [write_stats(out_dir, stats, attrs), write_files_csv(out_dir, all_statuses)]
        return ScanResult(out_dir, stats, attrs, all_statuses, time.monotonic() - started, outputs)

    if client is not None:
        return with_client(client)
    with open_client(config.cluster, log) as c:
        return with_client(c)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _probe_all(client: Client, paths: list[str], batch: int, progress: bool) -> list[Header]:
    """Read every header once, in parallel on the workers."""
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    futures = client.map(probe, chunks, pure=False)
    if progress and len(chunks) > 1:
        from .cluster import ProgressBar

        ProgressBar(futures, "headers", scheduler=client.scheduler.address, interval="200ms")
    return [h for part in client.gather(futures) for h in part]


def _choose_group(headers: list[Header]) -> tuple[Group, list[Status]]:
    """The largest group of stackable files; every other file is skipped with its reason."""
    skipped: list[Status] = [(h.path, "skipped", h.error) for h in headers if h.error]
    groups = group(headers)
    if not groups:
        first = skipped[0][2] if skipped else "no files"
        raise NoImagesError(f"none of the {len(headers)} files could be read as an image (first: {first})")
    main = groups[0]
    for other in groups[1:]:
        why = f"different sensor or layout: {other.describe()} (scanning the largest group, {main.describe()})"
        skipped.extend((h.path, "skipped", why) for h in other.headers)
    return main, skipped


def _reduce(client: Client, main: Group, config: Config, progress: bool) -> tuple:
    """Build the graph for one group and run it: (stat planes, per-file statuses)."""
    first = main.first
    shape, dtype = tuple(first.shape), first.dtype
    stride = neighbour_stride(first.raw)
    batch_size = max(1, min(config.scan.batch_size, max_batch_frames(dtype)))
    paths = [h.path for h in main.headers]
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    row_values = shape[1] * (shape[2] if len(shape) > 2 else 1)
    tile_rows = max(2, config.scan.tile_values // row_values) // 2 * 2
    images, statuses = image_array(batches, shape, dtype, tile_rows, halo=stride, reader=read_pixels)
    planes = stats_planes(images, stride=stride, halo=stride, split_every=config.scan.split_every)
    return run(client, [planes, statuses], f"scanning {len(paths)} files", show_progress=progress)


def _attrs(main: Group, config: Config) -> dict:
    h = main.first
    return {
        "dtype": h.dtype,
        "raw": h.raw,
        "make": h.make,
        "model": h.model,
        "serial": h.serial,
        "cfa_pattern": [list(r) for r in h.cfa_pattern] if h.cfa_pattern else None,
        "color_desc": h.color_desc,
        "black_level": list(h.black_level),
        "white_level": h.white_level,
        "group": main.describe(),
        "neighbour_stride": neighbour_stride(h.raw),
        "hotpixels_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
