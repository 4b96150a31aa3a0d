"""The running total of a scan, saved as it grows, so an interrupted scan resumes instead of
starting over.

A scan is cut into segments of files. The client merges each segment's partial into one
running total as its tiles arrive, in segment order, and after each segment saves the total
(n, mean, M2 per stream, the range counts) under a folder named after the run (the files,
their sizes and mtimes, and the settings that change the numbers), with a record that lists
the segments it holds. Each segment's statuses and digests are written once, to their own
file, when it completes: rewriting every finished segment's files at every checkpoint would
make 100,000 files cost O(segments^2). Running the same command again loads it and skips
those segments. One total, not one partial per segment, is what keeps the client's memory the
same for 2 segments or 200.

Files are written to a temp name, fsynced and renamed, the arrays and the segments' files
before the record that names them, so a crash mid-write leaves the previous checkpoint intact.
Nothing is pickled: the arrays go to .npz (loaded with allow_pickle=False), the rest to JSON.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..records import ReadRecord
from ..stats import PixelStats
from . import atomic

CHECKPOINT_DIR = ".hotpixels-checkpoints"
Records = dict[str, ReadRecord]  # segment id -> its files' statuses, digests and factors
EXTRA_PREFIX = "extra_"  # the model's sums in the arrays file


class Checkpoints:
    def __init__(self, out_dir: Path, run_id: str):
        self.root = out_dir / CHECKPOINT_DIR
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
        """Ids of the segments the saved total holds (reads no arrays)."""
        return [str(seg) for seg in self._record().get("segments", [])]

    def load(self) -> tuple[PixelStats | None, Records]:
        """The saved total and the records of its segments; (None, {}) if there is none or it
        cannot be read (the scan then simply starts over)."""
        try:
            record = self._record()
            arrays = self.folder / record["arrays"]
            records = {}
            for seg in record["segments"]:
                records[seg] = ReadRecord.from_json(json.loads(self._segment_path(seg).read_text()))
            with np.load(arrays, allow_pickle=False) as data:
                counts = data["counts"] if "counts" in data.files else None
                extra = {k[len(EXTRA_PREFIX):]: data[k] for k in data.files if k.startswith(EXTRA_PREFIX)}
                total = PixelStats(int(data["n"]), data["mean"], data["m2"], counts, extra)
        except Exception:  # noqa: BLE001 - truncated, empty (EOFError, BadZipFile), missing or foreign: start over
            return None, {}
        self._written = set(records)
        return total, records

    def save(self, total: PixelStats, records: Records) -> None:
        """Replace the saved total with ``total``, which holds the segments in ``records``."""
        self.segment_folder.mkdir(parents=True, exist_ok=True)
        for seg, rec in records.items():
            if seg not in self._written:  # once per segment (a file left by a crashed run is replaced)
                atomic.write_bytes(self._segment_path(seg), json.dumps(rec.to_json()).encode())
                self._written.add(seg)
        old = self._record().get("arrays")
        name = f"total-{uuid.uuid4().hex}.npz"
        arrays: dict[str, Any] = {"n": np.int64(total.n), "mean": total.mean, "m2": total.m2}
        if total.counts is not None:
            arrays["counts"] = total.counts
        arrays.update({EXTRA_PREFIX + k: v for k, v in total.extra.items()})
        atomic.write_with(self.folder / name, lambda fh: np.savez(fh, **arrays))
        # the switch: from here on the new total counts (its arrays and segments are on disk)
        atomic.write_bytes(self.record_path, json.dumps({"arrays": name, "segments": list(records)}).encode())
        if old and old != name:
            (self.folder / old).unlink(missing_ok=True)

    def _segment_path(self, seg: str) -> Path:
        if not seg or any(c in seg for c in "/\\") or seg.startswith("."):
            raise ValueError(f"not a segment id: {seg!r}")
        return self.segment_folder / f"{seg}.json"

    def clear(self) -> None:
        """After a finished run: the results hold everything, the total is no longer needed."""
        shutil.rmtree(self.root, ignore_errors=True)
