"""files.csv: what became of every file a scan considered (used, or skipped and why), and each
frame's shooting data (exposure, ISO, capture time, temperature, an astronomy camera's gain
setting, and why any of it stays out of the physics model)."""

from __future__ import annotations

import csv
import io
import time
from typing import NamedTuple

from ..records import FileStatus
from . import atomic, place

FILES_NAME = "files.csv"
INFO_COLUMNS = ("exposure", "iso", "time", "temperature", "note", "gain")


class FrameInfo(NamedTuple):
    exposure: float | None = None
    iso: float | None = None
    time: float | None = None
    temperature: float | None = None
    note: str = ""
    gain: float | None = None


def write_files_csv(out_dir: place.Where, statuses: list[FileStatus],
                    info: dict[str, FrameInfo] | None = None) -> place.Folder:
    """files.csv: path,status,reason for every file considered (status used|skipped), then its
    shooting data where known: exposure (s), iso, time (UTC, ISO 8601), temperature (°C), note,
    gain (the camera's own setting; a column added last, so readers by position still read the rest)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow((*FileStatus._fields, *INFO_COLUMNS))
    for s in statuses:
        meta = (info or {}).get(s.path, FrameInfo())
        writer.writerow((*s, _number(meta.exposure), _number(meta.iso), _when(meta.time), _number(meta.temperature),
                         meta.note, _number(meta.gain)))
    return atomic.write_text(place.folder(out_dir) / FILES_NAME, text.getvalue())


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _when(unix: float | None) -> str:
    if unix is None:
        return ""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))
    except (OverflowError, OSError, ValueError):
        return ""


def read_files_csv(out_dir: place.Where) -> list[FileStatus]:
    with (place.folder(out_dir) / FILES_NAME).open(newline="") as fh:
        return [FileStatus(r["path"], r["status"], r["reason"]) for r in csv.DictReader(fh)]
