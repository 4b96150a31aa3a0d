"""A scan's progress as others read it: `hotpixels status`, the /hotpixels dashboard page, and
`hotpixels cancel`.

The scan writes ``.hotpixels-status.json`` in its output folder when it starts, after every
finished segment and when it ends (done with its summary, failed with the reason, or cancelled),
and publishes the same record on its scheduler (``client.set_metadata(["hotpixels", job])``)
for the dashboard. The file is what `status` reads from any machine that can read the folder;
the lock (``state.lock``) tells whether the process that writes it still runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import atomic, place

STATUS_NAME = ".hotpixels-status.json"
RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


@dataclass
class JobStatus:
    """One scan's state (the record of the file and of the scheduler's metadata)."""

    job: str
    out: str
    state: str = RUNNING
    command: str = ""
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    files_total: int = 0
    files_done: int = 0
    files_skipped: int = 0
    segments_done: int = 0
    segment_files: int = 0  # files of the segments running now (a wave of them)
    rate: float = 0.0  # files per second, over what this run has read
    eta_seconds: float | None = None
    summary: str = ""
    reason: str = ""
    scheduler: str = ""  # where a detached job runs, for `cancel`
    preview: dict | None = None  # {"width", "height", "values": rows of 0-255, row 0 on top}

    @property
    def files_left(self) -> int:
        return max(0, self.files_total - self.files_done - self.files_skipped)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_status(out_dir: place.Where, status: JobStatus) -> None:
    status.updated = time.time()
    atomic.write_text(place.folder(out_dir) / STATUS_NAME, json.dumps(status.to_json()))


def read_status(out_dir: place.Where) -> JobStatus | None:
    """The last status a scan wrote into ``out_dir``, or None if none ever did."""
    try:
        return JobStatus.from_json(json.loads((place.folder(out_dir) / STATUS_NAME).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{place.folder(out_dir) / STATUS_NAME} cannot be read: {exc}") from None
