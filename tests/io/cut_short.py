"""What a scan of a multi-frame file cut short must give, whatever the format (a SER video, a
TIFF stack): its whole frames counted exactly, and every frame after them listed as skipped."""

from __future__ import annotations

import numpy as np

from pipeline import Config, scan
from pipeline.state.files import read_files_csv

QUIET = {"progress": False, "log": lambda m: None}


def assert_whole_frames_kept(tmp_path, client, file, frames: np.ndarray, kept: int) -> None:
    """Scan ``file``'s folder into ``tmp_path``/out: its statistics are those of ``frames[:kept]``,
    and each of the other frames the file declares is skipped as cut off, with how many it holds."""
    result = scan([str(file.parent)], tmp_path / "out", Config(), client=client, **QUIET)
    assert result.stats.n == kept
    np.testing.assert_array_equal(result.stats.mean[0], frames[:kept].mean(0))
    status = {p: (s, r) for p, s, r in read_files_csv(tmp_path / "out")}
    assert len(status) == len(frames)
    for index in range(kept, len(frames)):
        state, reason = status[f"{file}#frame={index}"]
        assert state == "skipped" and f"holds {kept} of its {len(frames)} frames whole" in reason, (index, reason)
