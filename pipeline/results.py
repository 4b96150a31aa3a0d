"""Final stats -> defects.csv, the maps other tools read, report.html and the terminal summary.

Shared by `hotpixels scan` (right after the reduction) and `hotpixels detect DIR` (again from
saved stats with new thresholds, without reading any image).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .defect import KINDS, Defect, write_csv
from .detect import Detection, detect
from .export import write_dcraw, write_mask_png, write_rawtherapee, write_siril
from .report import write_report
from .stats import PixelStats

DEFECTS_NAME = "defects.csv"


@dataclass
class Results:
    detection: Detection
    outputs: list[Path]


def write_results(out_dir: Path, stats: PixelStats, attrs: dict, statuses: list[tuple[str, str, str]],
                  config: Config, log: Callable[[str], None] = print, elapsed: float | None = None,
                  report_only: bool = False) -> Results:
    """Classify the defects and write every output the config asks for (only report.html
    with ``report_only``: defects.csv and the maps stay as they are)."""
    out_dir = Path(out_dir)
    detect_config = config.detect
    if detect_config.black_level is None and attrs.get("black_level"):
        detect_config = dataclasses.replace(detect_config, black_level=float(np.mean(attrs["black_level"])))
    pattern = np.asarray(attrs["cfa_pattern"]) if attrs.get("cfa_pattern") else None
    detection = detect(stats, detect_config, cfa_pattern=pattern, color_desc=attrs.get("color_desc") or None)
    defects = detection.defects
    height, width = stats.pixel_shape[:2]
    outputs = []
    if not report_only:
        write_csv(defects, out_dir / DEFECTS_NAME)
        outputs.append(out_dir / DEFECTS_NAME)
    if config.output.exports and not report_only:
        header = [f"{len(defects)} defects from {stats.n} frames of {attrs.get('group', '')}"]
        outputs.append(write_dcraw(defects, out_dir / "dcraw.badpixels", header, shape=(height, width)))
        outputs.append(write_siril(defects, out_dir / "siril.lst", height))
        outputs.append(write_mask_png(defects, (height, width), out_dir / "mask.png"))
        rawtherapee = write_rawtherapee(defects, out_dir, attrs.get("make", ""), attrs.get("model", ""))
        if rawtherapee:
            outputs.append(rawtherapee)
    if config.output.report or report_only:
        mean, m2 = stats.stream("value")
        meta = {k: attrs.get(k) for k in ("group", "make", "model", "serial", "dtype", "color_desc", "cfa_pattern",
                                         "black_level", "white_level") if attrs.get(k) not in (None, "", [])}
        meta = {"n_images": stats.n, "shape": "x".join(map(str, stats.pixel_shape)), **meta}
        if elapsed is not None:
            meta["scan time"] = f"{elapsed:.1f} s"
        # M2 and n rather than stats.var: that would be a float64 copy of both streams, only to draw block maxima
        outputs.append(write_report(out_dir / "report.html", value_mean=mean, value_m2=m2, n_frames=stats.n,
                                    defects=defects, files=statuses, detection=detection, meta=meta))
    summarize(detection, log)
    return Results(detection, outputs)


def summarize(detection: Detection, log: Callable[[str], None], top: int = 10) -> None:
    """Counts per class and the strongest defects, as the seed article printed its ten lowest variances."""
    counts = Counter(d.kind for d in detection.defects)
    log(f"stack treated as {detection.stack_kind}: {detection.stack_reason}")
    log("defects: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in KINDS))
    if not detection.defects:
        return
    log(f"strongest {min(top, len(detection.defects))}:")
    log(f"  {'x':>6} {'y':>6} {'ch':>3} {'kind':<6} {'score':>8} {'mean':>9} {'std':>8}  evidence")
    for d in detection.defects[:top]:
        log(f"  {d.x:>6} {d.y:>6} {_channel(d):>3} {d.kind:<6} {d.score:>8.1f} {d.mean:>9.2f} {d.std:>8.2f}  {d.detail}")


def _channel(d: Defect) -> str:
    return d.color or str(d.channel)
