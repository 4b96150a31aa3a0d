"""Checkpointed partials, so an interrupted scan resumes instead of starting over.

A scan is cut into segments of files; each segment's merged partial (n, mean, M2 per stream)
and its files' statuses are saved as soon as it completes, under a folder named after the
run (the files, their sizes and mtimes, and the settings that change the numbers). Running
the same command again finds them and skips those segments. Files are written to a temp
name and renamed, so a crash mid-write leaves no half checkpoint. Nothing is pickled: the
arrays go to .npz (loaded with allow_pickle=False) and the statuses to JSON.
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


class Checkpoints:
    def __init__(self, out_dir: Path, run_id: str):
        self.root = out_dir / CHECKPOINT_DIR
        self.folder = self.root / run_id

    def completed(self, segment_ids: list[str]) -> dict[str, tuple[list[Status], dict[str, str]]]:
        """(statuses, digests) of the segments this run has saved; reads no arrays (see ``stats``)."""
        done = {}
        for seg in segment_ids:
            arrays, record = self.folder / f"{seg}.npz", self.folder / f"{seg}.json"
            if not (arrays.exists() and record.exists()):
                continue
            try:
                data = json.loads(record.read_text())
                done[seg] = ([tuple(s) for s in data["statuses"]], dict(data["digests"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return done

    def stats(self, segment_id: str) -> PixelStats | None:
        """One saved partial, or None if it cannot be read (it is then simply recomputed)."""
        try:
            with np.load(self.folder / f"{segment_id}.npz", allow_pickle=False) as data:
                return PixelStats(int(data["n"]), data["mean"], data["m2"], data["counts"] if "counts" in data.files else None)
        except (OSError, ValueError, KeyError):
            return None

    def save(self, segment_id: str, stats: PixelStats, statuses: list[Status], digests: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex
        tmp_arrays = self.folder / f".{segment_id}.{tag}.npz"
        tmp_statuses = self.folder / f".{segment_id}.{tag}.json"
        counts = {} if stats.counts is None else {"counts": stats.counts}
        np.savez(tmp_arrays, n=np.int64(stats.n), mean=stats.mean, m2=stats.m2, **counts)
        tmp_statuses.write_text(json.dumps({"statuses": statuses, "digests": digests}))
        # statuses first: a segment counts as done only once its arrays are in place too
        os.replace(tmp_statuses, self.folder / f"{segment_id}.json")
        os.replace(tmp_arrays, self.folder / f"{segment_id}.npz")

    def clear(self) -> None:
        """After a finished run: the results hold everything, the partials are no longer needed."""
        shutil.rmtree(self.root, ignore_errors=True)
