"""The running total of a scan, saved as it grows, so an interrupted scan resumes instead of
starting over.

A scan is cut into segments of files. The client merges each segment's partial into one
running total as its tiles arrive, in segment order, and after each segment saves the total
(n, mean, M2 per stream, the range counts) and the statuses and digests of every file in the
segments it holds, under a folder named after the run (the files, their sizes and mtimes, and
the settings that change the numbers). Running the same command again loads it and skips
those segments. One total, not one partial per segment, is what keeps the client's memory the
same for 2 segments or 200.

Files are written to a temp name and renamed, arrays before the record that names them, so a
crash mid-write leaves the previous checkpoint intact. Nothing is pickled: the arrays go to
.npz (loaded with allow_pickle=False) and the statuses to JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from .stats import PixelStats

CHECKPOINT_DIR = ".hotpixels-checkpoints"
Status = tuple[str, str, str]
Records = dict[str, tuple[list[Status], dict[str, str]]]  # segment id -> (statuses, digests of files used)


class Checkpoints:
    def __init__(self, out_dir: Path, run_id: str):
        self.root = out_dir / CHECKPOINT_DIR
        self.folder = self.root / run_id
        self.record_path = self.folder / "total.json"

    def _record(self) -> dict:
        """The saved record (which arrays file, which segments), or {} if none can be read."""
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def segments(self) -> list[str]:
        """Ids of the segments the saved total holds (reads no arrays)."""
        return [detail[0] for detail in self._record().get("segments_detail", [])]

    def load(self) -> tuple[PixelStats | None, Records]:
        """The saved total and the records of its segments; (None, {}) if there is none or it
        cannot be read (the scan then simply starts over)."""
        try:
            record = self._record()
            arrays = self.folder / record["arrays"]
            records = {seg: ([tuple(s) for s in statuses], dict(digests))
                       for seg, statuses, digests in record["segments_detail"]}
            with np.load(arrays, allow_pickle=False) as data:
                counts = data["counts"] if "counts" in data.files else None
                total = PixelStats(int(data["n"]), data["mean"], data["m2"], counts)
        except Exception:  # noqa: BLE001 - truncated, empty (EOFError, BadZipFile) or foreign: start over
            return None, {}
        return total, records

    def save(self, total: PixelStats, records: Records) -> None:
        """Replace the saved total with ``total``, which holds the segments in ``records``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._record().get("arrays")
        name = f"total-{uuid.uuid4().hex}.npz"
        tmp_arrays, tmp_record = self.folder / f".{name}", self.folder / f".total-{uuid.uuid4().hex}.json"
        counts = {} if total.counts is None else {"counts": total.counts}
        with open(tmp_arrays, "wb") as fh:
            np.savez(fh, n=np.int64(total.n), mean=total.mean, m2=total.m2, **counts)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the record that names it (power loss)
        os.replace(tmp_arrays, self.folder / name)
        detail = [[seg, statuses, digests] for seg, (statuses, digests) in records.items()]
        tmp_record.write_text(json.dumps({"arrays": name, "segments_detail": detail}))
        os.replace(tmp_record, self.record_path)  # the switch: from here on the new total counts
        if old and old != name:
            (self.folder / old).unlink(missing_ok=True)

    def clear(self) -> None:
        """After a finished run: the results hold everything, the total is no longer needed."""
        shutil.rmtree(self.root, ignore_errors=True)
