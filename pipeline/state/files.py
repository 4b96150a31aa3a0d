"""files.csv: what became of every file a scan considered (used, or skipped and why)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..records import FileStatus
from . import atomic

FILES_NAME = "files.csv"


def write_files_csv(out_dir: Path, statuses: list[FileStatus]) -> Path:
    """files.csv: path,status,reason for every file considered (status used|skipped)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(FileStatus._fields)
    writer.writerows(statuses)
    return atomic.write_text(out_dir / FILES_NAME, text.getvalue())


def read_files_csv(out_dir: Path) -> list[FileStatus]:
    with open(out_dir / FILES_NAME, newline="") as fh:
        return [FileStatus(r["path"], r["status"], r["reason"]) for r in csv.DictReader(fh)]
