"""A running scan's progress, told to whoever asks, and its cancellation.

After every finished segment the scan's progress (files done and skipped, the segment, the
rate, an ETA, a preview of the running total's strongest residuals) goes to the status file in
its output folder (``state.status``, what `hotpixels status` reads) and to its scheduler's
metadata under ``["hotpixels", job]`` (what the /hotpixels dashboard page shows).

`hotpixels cancel` sets ``["hotpixels-cancel", job]`` on the scheduler. A thread here polls it
and, once set, cancels the scan's futures in flight; the scan then stops with its finished
segments checkpointed (``ScanCancelled``), so the same command resumes it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from distributed import Client

from ..state import place
from ..state.status import CANCELLED, DONE, FAILED, JobStatus, write_status

CANCEL_KEY = "hotpixels-cancel"
POLL_SECONDS = 1.0


class ScanCancelled(RuntimeError):
    """`hotpixels cancel` stopped the scan; its finished segments stay checkpointed."""


def new_job_id() -> str:
    return secrets.token_hex(6)


class Progress:
    """What one scan tells about itself (``client``: its scheduler; ``out_dir``: its folder)."""

    def __init__(self, client: Client | None, out_dir: place.Folder, job: str, command: str,
                 log: Callable[[str], None]):
        self.client, self.out_dir, self.log = client, out_dir, log
        address = str(client.scheduler.address) if client is not None and client.scheduler is not None else ""
        self.status = JobStatus(job=job, out=str(out_dir), command=command, scheduler=address)
        self.stop = threading.Event()
        self._watching = threading.Event()
        self._futures: list[Any] = []
        self._clock = time.monotonic()
        self._read_here = 0  # files this run read (a resumed run's rate counts only these)
        self._poll: threading.Thread | None = None

    # ----------------------------------------------------------------- telling

    def begin(self, total: int, resumed: int = 0, resumed_skipped: int = 0, resumed_segments: int = 0) -> None:
        """``total`` files to reduce, of which an interrupted run did ``resumed`` (and skipped
        ``resumed_skipped`` of those); the files skipped before the reduction (other groups,
        copies, counted before) are already in ``status.files_skipped`` and the total."""
        s = self.status
        s.files_total = total + s.files_skipped
        s.files_done = resumed - resumed_skipped
        s.files_skipped += resumed_skipped
        s.segments_done = resumed_segments
        self._clock = time.monotonic()
        self._publish()
        if self.client is not None and self._poll is None:
            self._poll = threading.Thread(target=self._watch, name="hotpixels-cancel-watch", daemon=True)
            self._poll.start()

    def segment(self, files: int) -> None:
        """Segments of ``files`` files in all are on their way (a wave of them)."""
        self.status.segment_files = files
        self._publish()

    def segment_done(self, files: int, skipped: int, preview: np.ndarray | None = None) -> None:
        """A segment of ``files`` files is in the running total (``skipped`` of them were not
        counted); ``preview``: the running total's strongest residuals, block by block."""
        s = self.status
        s.files_done += files - skipped
        s.files_skipped += skipped
        s.segments_done += 1
        self._read_here += files
        elapsed = time.monotonic() - self._clock
        s.rate = self._read_here / elapsed if elapsed > 0 else 0.0
        s.eta_seconds = s.files_left / s.rate if s.rate > 0 else None
        if preview is not None:
            s.preview = preview_record(preview)
        self._publish()

    def finish(self, summary: str) -> None:
        self._end(DONE, summary=summary)

    def fail(self, reason: str) -> None:
        self._end(CANCELLED if self.stop.is_set() else FAILED, reason=reason)

    def _end(self, state: str, summary: str = "", reason: str = "") -> None:
        self.status.state, self.status.summary, self.status.reason = state, summary, reason
        self.status.eta_seconds = None
        self._watching.set()
        self._publish()

    def _publish(self) -> None:
        try:
            write_status(self.out_dir, self.status)
        except OSError:
            pass  # the scan's own writes say what is wrong with the folder
        if self.client is not None:
            try:
                self.client.set_metadata(["hotpixels", self.status.job], self.status.to_json())
            except Exception:  # noqa: BLE001 - a scheduler that went away: the scan says so itself
                pass

    # ----------------------------------------------------------------- cancelling

    def watch(self, futures: list[Any]) -> None:
        """Futures in flight, cancelled if the scan is."""
        self._futures = list(futures)
        if self.stop.is_set():
            self._cancel_futures()

    def check(self) -> None:
        """Raise ScanCancelled if `hotpixels cancel` asked."""
        if self.stop.is_set():
            raise ScanCancelled(f"cancelled by `hotpixels cancel` after {self.status.segments_done} segments "
                                f"({self.status.files_done} files); the finished segments stay checkpointed in "
                                f"{self.out_dir}: run the same command again to resume")

    def _watch(self) -> None:
        while not self._watching.wait(POLL_SECONDS):
            try:
                asked = self.client.get_metadata([CANCEL_KEY, self.status.job], default=False)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - the scheduler is gone: the scan finds out itself
                return
            if asked:
                self.stop.set()
                self.log("cancel asked: stopping; the finished segments stay checkpointed")
                self._cancel_futures()
                return

    def _cancel_futures(self) -> None:
        try:
            self.client.cancel(self._futures, force=True)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - already done or gone
            pass


def preview_record(values: np.ndarray) -> dict:
    """A preview plane as the dashboard takes it: 0-255, brighter where the residual is
    larger, scaled by the plane's robust spread."""
    finite = np.where(np.isfinite(values), values, 0.0)
    median = float(np.median(finite))
    spread = float(np.percentile(finite, 99.9) - median) or 1.0
    scaled = np.clip((finite - median) / spread * 255.0, 0, 255).astype(np.uint8)
    return {"width": int(scaled.shape[1]), "height": int(scaled.shape[0]), "values": scaled.tolist()}


def request_cancel(client: Client, job: str) -> None:
    client.set_metadata([CANCEL_KEY, job], True)


