"""The running total of a scan, saved as it grows, so an interrupted scan resumes instead of
starting over.

A scan is cut into segments of files (each about ``scan.checkpoint_seconds`` of work), and the
sensor into row tiles. The workers merge each
segment's tiles into the running total of their rows and write each merged tile to its own
file here (``save_tile``, in a worker); when every tile of a segment is written, the client
saves a record that names those files and lists the segments they hold. Each segment's
statuses and digests are written once, to their own file, when it completes: rewriting every
finished segment's files at every checkpoint would make 100,000 files cost O(segments^2).
Running the same command again loads the record and skips those segments. The total never
gathers in one process: a tile at a time is read, merged and written.

Files are written to a temp name, fsynced and renamed (in a remote ``--out``, each uploaded whole),
the tiles and the segments' files before the record that names them, so a crash mid-write
leaves the previous checkpoint intact.
Nothing is pickled: the arrays go to .npz (loaded with allow_pickle=False), the rest to JSON.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..records import ReadRecord
from ..stats import PixelStats
from . import atomic, place

CHECKPOINT_DIR = ".hotpixels-checkpoints"
Records = dict[str, ReadRecord]  # segment id -> its files' statuses, digests and factors
EXTRA_PREFIX = "extra_"  # the model's sums in the arrays file


@dataclass(frozen=True)
class SavedTotal:
    """A checkpointed running total: ``n`` frames, one file per row tile (in the record's folder)."""

    n: int
    tiles: tuple[str, ...]


def save_tile(folder: place.Where, stats: PixelStats) -> str:
    """One row tile of a running total, to a new file in ``folder`` (run in the worker that
    merged it); its name, for the record."""
    folder = place.folder(folder)
    place.make(folder)
    name = f"tile-{uuid.uuid4().hex}.npz"
    arrays: dict[str, Any] = {"n": np.int64(stats.n), "mean": stats.mean, "m2": stats.m2}
    if stats.counts is not None:
        arrays["counts"] = stats.counts
    arrays.update({EXTRA_PREFIX + k: v for k, v in stats.extra.items()})
    atomic.write_with(folder / name, lambda fh: np.savez(fh, **arrays))
    return name


def tile_readable(path: Any) -> bool:
    """Whether a tile file is whole and holds plain numbers: every array's header is read (not
    its data), and one of objects (a pickle: saved state may come from someone else) or a file
    cut short by a crash (its zip directory, at the end, is missing) is refused, so the scan
    starts over instead of failing in a worker."""
    try:
        with path.open("rb") as fh, zipfile.ZipFile(fh) as archive:
            names = archive.namelist()
            for name in names:
                with archive.open(name) as member:
                    major, _ = np.lib.format.read_magic(member)
                    header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    _, _, dtype = header(member)
                    if dtype.hasobject:
                        return False
    except Exception:  # noqa: BLE001 - not a zip, truncated, not an array
        return False
    return {"n.npy", "mean.npy", "m2.npy"} <= set(names)


def load_tile(folder: place.Where, name: str) -> PixelStats:
    """A row tile saved by ``save_tile``."""
    with (place.folder(folder) / name).open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        counts = data["counts"] if "counts" in data.files else None
        extra = {k[len(EXTRA_PREFIX):]: data[k] for k in data.files if k.startswith(EXTRA_PREFIX)}
        return PixelStats(int(data["n"]), data["mean"], data["m2"], counts, extra)


class Checkpoints:
    def __init__(self, out_dir: place.Where, run_id: str):
        self.root = place.folder(out_dir) / CHECKPOINT_DIR
        self.folder = self.root / run_id
        self.record_path = self.folder / "total.json"
        self.segment_folder = self.folder / "segments"
        self._written: set[str] = set()  # segments whose file is the one the saved record means

    def _record(self) -> dict:
        """The saved record (which arrays file, which segments), or {} if none can be read."""
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def segments(self) -> list[str]:
        """Ids of the segments the saved total holds, in order (reads no arrays)."""
        return [str(seg) for seg in self._record().get("segments", [])]

    def sizes(self) -> list[int]:
        """Files of each saved segment, in order: segments are cut by time, so a rerun cuts the
        files it resumes exactly as the interrupted run did."""
        return [int(n) for n in self._record().get("sizes", [])]

    def load(self, tiles: int) -> tuple[SavedTotal | None, Records]:
        """The saved total (if cut into ``tiles`` row tiles) and the records of its segments;
        (None, {}) if there is none or it cannot be read (the scan then simply starts over)."""
        try:
            record = self._record()
            names = tuple(str(t) for t in record["tiles"])
            if len(names) != tiles or not all(tile_readable(self.folder / t) for t in names):
                return None, {}
            records = {}
            for seg in record["segments"]:
                records[seg] = ReadRecord.from_json(json.loads(self._segment_path(seg).read_text()))
            total = SavedTotal(int(record["n"]), names)
        except Exception:  # noqa: BLE001 - truncated, empty, missing or foreign: start over
            return None, {}
        self._written = set(records)
        return total, records

    def save(self, total: SavedTotal, records: Records, sizes: list[int]) -> None:
        """Replace the saved total with ``total`` (its tiles written by ``save_tile`` in this
        folder), which holds the segments in ``records`` (in order, of ``sizes`` files each);
        the tiles it replaces are removed."""
        place.make(self.segment_folder)
        for seg, rec in records.items():
            if seg not in self._written:  # once per segment (a file left by a crashed run is replaced)
                atomic.write_bytes(self._segment_path(seg), json.dumps(rec.to_json()).encode())
                self._written.add(seg)
        old = set(self._record().get("tiles", [])) - set(total.tiles)
        # the switch: from here on the new total counts (its tiles and segments are on disk)
        atomic.write_bytes(self.record_path, json.dumps({"n": total.n, "tiles": list(total.tiles),
                                                         "segments": list(records), "sizes": sizes}).encode())
        for name in old:
            (self.folder / str(name)).unlink(missing_ok=True)

    def _segment_path(self, seg: str) -> place.Folder:
        if not seg or any(c in seg for c in "/\\") or seg.startswith("."):
            raise ValueError(f"not a segment id: {seg!r}")
        return self.segment_folder / f"{seg}.json"

    def clear(self) -> None:
        """After a finished run: the results hold everything, the total is no longer needed."""
        place.remove_tree(self.root)
