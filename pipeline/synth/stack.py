"""A whole synthetic stack on disk: the frames and the ``truth.json`` that lists what was planted.

Draws the defect plan and the camera's fixed pattern, renders the frames on a small thread
pool (``exposure.expose``), encodes them (``writers``) and writes the truth, with amplitudes
measured over the stack where they depend on it (dead sensels).

Each frame draws from its own child of ``SeedSequence(seed)``, so output is deterministic
for a seed whatever the thread count, frame i does not depend on the number of frames, and
the sensor mosaic for a given seed and size is the same whatever the output format (only the
encoding differs).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .exposure import expose
from .plan import default_defects_per_kind, plan_defects
from .sensor import BLACK_LEVEL, CFA, MAKE, MODEL, SENSOR, WARM_SIGMAS, WHITE_LEVEL, build_camera
from .writers import FORMATS, MOSAIC_FORMATS, canonical_format, write_frame

# version of what synthesize writes for a seed: caches of synthetic stacks compare it
TRUTH_VERSION = 2
# what synthesize names its frames (any format): what a rerun may delete
_FRAME_NAME = re.compile(r"^frame_\d{4,}\.(jpg|png|tif|dng)$")


def _clear_previous(out: Path) -> None:
    """Remove frames of an earlier synth run in ``out`` (only if its truth.json says so).

    A leftover frame_0039.jpg from a bigger or other-format run would silently join the next
    scan; files we did not write are never touched.
    """
    if not (out / "truth.json").is_file():
        return
    for p in out.iterdir():
        if _FRAME_NAME.match(p.name) and p.is_file():
            p.unlink()


def synthesize(
    out_dir: str | Path,
    frames: int = 40,
    size: tuple[int, int] = (640, 480),
    fmt: str = "jpeg",
    dark: bool = False,
    seed: int = 0,
    defects_per_kind: int | None = None,
) -> dict:
    """Write ``frames`` synthetic frames with planted defects and their ``truth.json``.

    Parameters
    ----------
    out_dir : directory to write ``frame_0000.<ext>``, ... and ``truth.json`` into.
    frames : number of frames.
    size : (width, height) in sensels (= pixels of the RGB output).
    fmt : ``jpeg``, ``png``, ``tiff`` (8-bit sRGB, demosaiced), ``tiff16``, ``png16`` (16-bit
        grayscale CFA mosaic) or ``dng`` (raw CFA DNG).
    dark : lens-cap frames: black level, dark current and read noise only.
    seed : everything is deterministic for a seed.
    defects_per_kind : planted defects of each kind (default scales with the area, min 3).

    Returns
    -------
    The truth dict also written to ``truth.json``. Each defect's ``channel`` is the RGB index
    of its CFA colour for RGB formats and 0 for mosaic formats; ``amplitude`` is in sensor DN:
    the added offset (hot), the constant raw value (stuck), the mean signal lost per frame
    relative to a healthy sensel (dead), the step height (RTS noisy) or the extra standard
    deviation (Gaussian noisy).
    """
    fmt = canonical_format(fmt)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    width, height = (int(v) for v in size)
    if width < 2 or height < 2:
        raise ValueError(f"size must be at least 2x2, got {width}x{height}")
    per_kind = default_defects_per_kind(width, height) if defects_per_kind is None else int(defects_per_kind)
    if per_kind < 1:
        raise ValueError(f"defects_per_kind must be >= 1, got {per_kind}")

    sensor = SENSOR
    plan_ss, camera_ss, frames_ss = np.random.SeedSequence(seed).spawn(3)
    frame_seeds = frames_ss.spawn(frames)  # child i is the same whatever `frames` is
    plan = plan_defects(np.random.default_rng(plan_ss), width, height, per_kind, frames, dark, sensor)
    cam = build_camera(np.random.default_rng(camera_ss), height, width, sensor)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    digits = max(4, len(str(frames - 1)))
    names = [f"frame_{i:0{digits}d}{FORMATS[fmt]}" for i in range(frames)]

    def render(i: int) -> tuple[float, np.ndarray]:
        mosaic, exposure, lost = expose(np.random.default_rng(frame_seeds[i]), cam, plan, i, dark, sensor)
        write_frame(out / names[i], fmt, mosaic, sensor)
        return exposure, lost

    workers = max(1, min(os.cpu_count() or 1, 4, frames))
    with ThreadPoolExecutor(workers) as pool:  # numpy, Pillow and zlib release the GIL
        results = list(pool.map(render, range(frames)))

    lost_mean = np.mean([lost for _, lost in results], axis=0) if len(plan.dead_idx) else []
    dead_defects = [d for d in plan.defects if d["kind"] == "dead"]  # same order as plan.dead_idx
    for d, amp in zip(dead_defects, np.atleast_1d(lost_mean)):
        d["amplitude"] = round(float(amp), 2)
    if fmt in MOSAIC_FORMATS:
        for d in plan.defects:
            d["channel"] = 0

    truth = {
        "format": fmt,
        "size": [width, height],
        "frames": frames,
        "dark": bool(dark),
        "seed": seed,
        "cfa": CFA,
        "black_level": BLACK_LEVEL,
        "white_level": WHITE_LEVEL,
        "make": MAKE,
        "model": MODEL,
        "sensor": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(sensor).items()},
        # what "warm" means in DN, and the healthy dark signal that stays clear of it (see build_camera)
        "dark_signal": {
            "median": round(sensor.dark_median(), 4),
            "healthy_max": round(sensor.healthy_dark_max(), 4),
            "sigma": round(sensor.noise_sigma(0.0), 4),
            "warm_sigmas": WARM_SIGMAS[0],
        },
        "version": TRUTH_VERSION,
        "files": names,
        "exposures": [round(e, 6) for e, _ in results],
        "defects": sorted(plan.defects, key=lambda d: (d["y"], d["x"])),
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
