"""stats.zarr: the saved statistics and the record of what they hold, written so that it
appears complete or not at all.

Saved state is zarr, JSON and CSV only, never pickle: a stats folder may come from someone else.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from ..records import Counted, StackMeta
from ..stats import COUNTS, STREAMS, PixelStats
from ..stats.dark_subtraction import hot_candidates
from ..stats.fit import FrameTable, fit_bands

STATS_NAME = "stats.zarr"
ROW_CHUNK_VALUES = 2**21  # values per zarr chunk (16 MiB of float64), whole rows
SMALL_INTEGERS = BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")


def _array_names(stream: str) -> tuple[str, str, str]:
    """The value stream keeps the public names mean/m2/var; others are prefixed."""
    prefix = "" if stream == "value" else f"{stream}_"
    return f"{prefix}mean", f"{prefix}m2", f"{prefix}var"


Manifest = dict[str, Counted]  # path -> its identity, shooting data and model factor, for every file counted
MODEL_PREFIX = "model_"  # the physics model's sums in stats.zarr: model_xr, model_excluded, ...


def write_stats(out_dir: Path, stats: PixelStats, meta: StackMeta, manifest: Manifest | None = None) -> Path:
    """Write stats.zarr atomically: build it beside the target, then swap it in by rename.

    The manifest of counted files lives in the group's attrs, so the stats and the record
    of what they contain can never disagree after a crash.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / STATS_NAME
    tmp = out_dir / f".{STATS_NAME}.partial-{uuid.uuid4().hex}"
    group = zarr.open_group(str(tmp), mode="w")
    shape = stats.pixel_shape
    # float64 statistics barely compress; uncompressed row-band chunks write ~5x faster
    band = max(1, min(shape[0], ROW_CHUNK_VALUES // max(1, int(np.prod(shape[1:])))))
    for i, stream in enumerate(STREAMS):
        names = _array_names(stream)
        for name, data in zip(names, (stats.mean[i], stats.m2[i])):
            group.create_array(name, data=np.ascontiguousarray(data, dtype=np.float64), chunks=(band, *shape[1:]),
                               compressors=None)
        # the variance band by band: a full-sensor temporary would add 8 bytes per value to the peak
        var = group.create_array(names[2], shape=shape, dtype=np.float64, chunks=(band, *shape[1:]), compressors=None)
        for y in range(0, shape[0], band):
            part = PixelStats(stats.n, stats.mean[i : i + 1, y : y + band], stats.m2[i : i + 1, y : y + band])
            var[y : y + band] = part.var[0]
    # the counts and the model's sums are small integers, most of them empty: bit-shuffled lz4 writes
    # them as fast as raw, the rare sums 20-100x smaller, the dense cross term 1.6x (a 24-frame 12 MP
    # raw stack's stats.zarr: 1.6 GB -> 0.8 GB)
    if stats.counts is not None:
        for name, data in zip(COUNTS, stats.counts):
            group.create_array(f"{name}_count", data=data, chunks=(band, *shape[1:]), compressors=SMALL_INTEGERS)
    for name, data in stats.extra.items():
        group.create_array(MODEL_PREFIX + name, data=data, chunks=(band, *shape[1:]), compressors=SMALL_INTEGERS)
    table = frame_table(manifest or {}, meta, stats)
    if table is not None and table.physical and "xr" in stats.extra:
        _write_dark_rate(group, stats, table, band)
    rows: list[list[Any]] = [entry.row(path) for path, entry in sorted((manifest or {}).items())]
    group.attrs.update({**meta.to_attrs(), "n_images": int(stats.n), "shape": list(stats.pixel_shape),
                        "streams": list(STREAMS),
                        "counts": list(COUNTS) if stats.counts is not None else [],
                        "model_sums": sorted(stats.extra),
                        "manifest": {"columns": list(Counted.COLUMNS), "rows": rows}})
    _swap_in(tmp, final)
    return final


def frame_table(manifest: Manifest, meta: StackMeta, stats: PixelStats | None = None) -> FrameTable | None:
    """The exposure factors of the counted frames, where the stack has an exposure model; with
    ``stats``, the frames the camera dark-subtracted are found too (``stats.dark_subtraction``)."""
    if not meta.exposure_source:
        return None
    rows = list(manifest.values())
    candidates = None if stats is None else hot_candidates(stats.mean[1], stats.m2[0])
    return FrameTable.of((c.factor for c in rows), physical=meta.exposure_source == "exif",
                         sketches=[c.spikes for c in rows], candidates=candidates, isos=[c.iso for c in rows])


def dark_subtracted_paths(manifest: Manifest, meta: StackMeta, stats: PixelStats) -> list[str]:
    """The counted frames the camera dark-subtracted (``stats.dark_subtraction``)."""
    table = frame_table(manifest, meta, stats)
    if table is None or table.subtracted is None:
        return []
    return [p for p, s in zip(manifest, table.subtracted) if s]


def frame_days(manifest: Manifest) -> np.ndarray:
    """Each counted frame's capture day (days since 1970), in the manifest's order; a frame with
    no usable date counts at the stack's median day (as the scan summed it: ``frames.py``)."""
    from ..frames import usable_time

    times = [usable_time(c.time) for c in manifest.values()]
    known = sorted(t for t in times if t is not None)
    fill = known[len(known) // 2] if known else 0.0
    return np.array([int((t if t is not None else fill) // 86400) for t in times], np.int64)


def _write_dark_rate(group, stats: PixelStats, table: FrameTable, band: int) -> None:
    """``dark_rate`` and ``dark_rate_se`` (float32, DN/s at ISO 100), fitted band by band: a
    whole-sensor fit would hold several float64 temporaries of the sensor's size."""
    shape = stats.pixel_shape
    rate = group.create_array("dark_rate", shape=shape, dtype=np.float32, chunks=(band, *shape[1:]), compressors=None)
    se = group.create_array("dark_rate_se", shape=shape, dtype=np.float32, chunks=(band, *shape[1:]),
                            compressors=None)
    for rows, fit in fit_bands(stats, table, band):
        rate[rows] = fit.rate.astype(np.float32)
        se[rows] = fit.rate_se.astype(np.float32)


def _swap_in(tmp: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def read_stats(out_dir: str | Path) -> tuple[PixelStats, StackMeta]:
    """Load stats.zarr (written by write_stats) back into PixelStats and what is known of the stack."""
    group = _open(out_dir)
    attrs = dict(group.attrs)
    means, m2s = [], []
    for stream in attrs.get("streams", ["value"]):
        mean_name, m2_name, _ = _array_names(stream)
        means.append(group[mean_name][...])
        m2s.append(group[m2_name][...])
    names = [f"{name}_count" for name in attrs.get("counts", [])]
    counts = np.stack([group[name][...] for name in names]) if names and all(n in group for n in names) else None
    names = [name for name in attrs.get("model_sums", []) if MODEL_PREFIX + name in group]
    extra = {name: group[MODEL_PREFIX + name][...] for name in names}
    stats = PixelStats(int(attrs["n_images"]), np.stack(means), np.stack(m2s), counts, extra)
    return stats, StackMeta.from_attrs(attrs)


def read_manifest(out_dir: str | Path) -> Manifest:
    """The files counted in the saved stats: path -> their ``Counted`` record."""
    manifest = dict(_open(out_dir).attrs).get("manifest") or {}
    columns = list(manifest.get("columns") or ["path", "size", "mtime", "digest"])
    return dict(Counted.from_row(columns, row) for row in manifest.get("rows", []))


def _open(out_dir: str | Path):
    path = Path(out_dir) / STATS_NAME
    if not path.exists():
        raise FileNotFoundError(f"no {STATS_NAME} in {out_dir}: run `hotpixels scan ... --out {out_dir}` first")
    return zarr.open_group(str(path), mode="r")
