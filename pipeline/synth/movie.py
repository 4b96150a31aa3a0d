"""An sCMOS movie: a dim static scene on a low-noise monochrome sensor with a population of
flickering sensels, saved as one multi-page TIFF, as microscopy and astronomy capture programs
save a burst.

What makes such a sensor (design notes, section 3: many-defect sensors): each sensel has its own
read noise (a skewed spread around the median, 1.5 DN here) and a small offset of its own; a few
per cent of the sensels are defects, most of them random telegraph noise (RTN) of one or two
sides (a step of 10-60 DN in 5-50 % of the frames; two-sided ones jump up or down from their
normal level), and some are Gaussian-noisy (a read noise of 5-20 DN). Their variance is tens to
hundreds of times the median's: a lab calls a sensel noisy where its variance passes 50x the
median, and ``over_median_variance`` lists those of a movie as its scan measures them.
Every defect is its own sensel; they may touch (the population is drawn without spacing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MOVIE_VERSION = 1
READ_NOISE_DN = 1.5  # the median sensel's
READ_NOISE_SPREAD = 0.2  # sd of the log of a sensel's read noise
OFFSET_DN = 100.0
DSNU_DN = 0.3  # sd of the sensels' own offsets
# shares of the defect population by mode
MODES = (("rts1", 0.4), ("rts2", 0.3), ("gaussian", 0.3))
FRAME_SECONDS = 0.01


def synthesize_movie(out_dir: str | Path, frames: int = 200, size: tuple[int, int] = (512, 512),
                     share: float = 0.01, seed: int = 0, start_unix: float = 1_750_000_000.0) -> dict:
    """Write ``movie.tif`` (``frames`` frames of ``size`` = (width, height), uint16) and
    ``truth.json`` (its defects, and each frame's time) into ``out_dir``; returns the truth."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    scene = 2 + 8 * np.exp(-((yy - 0.4 * height) ** 2 + (xx - 0.6 * width) ** 2) / (2 * (0.25 * width) ** 2))
    offset = OFFSET_DN + rng.normal(0, DSNU_DN, (height, width))
    noise = READ_NOISE_DN * np.exp(rng.normal(0, READ_NOISE_SPREAD, (height, width)))
    count = int(round(share * width * height))
    flat = rng.choice(width * height, count, replace=False)
    ys, xs = np.divmod(flat, width)
    modes = rng.choice([m for m, _ in MODES], count, p=[p for _, p in MODES])
    step = rng.uniform(10, 60, count)
    p_high = rng.uniform(0.05, 0.5, count)
    gaussian = modes == "gaussian"
    noise[ys[gaussian], xs[gaussian]] = rng.uniform(5, 20, int(gaussian.sum()))
    telegraph = ~gaussian
    ty, tx = ys[telegraph], xs[telegraph]
    t_step, t_p, both = step[telegraph], p_high[telegraph], modes[telegraph] == "rts2"
    stack = np.empty((frames, height, width), np.uint16)
    for f in range(frames):
        image = rng.poisson(scene) + rng.normal(0, 1, (height, width)) * noise + offset
        jump = rng.random(len(ty)) < t_p
        sign = np.where(both & (rng.random(len(ty)) < 0.5), -1.0, 1.0)
        image[ty, tx] += np.where(jump, sign * t_step, 0.0)
        stack[f] = np.clip(np.rint(image), 0, 65535)
    import tifffile

    tifffile.imwrite(out / "movie.tif", stack, photometric="minisblack")
    defects = []
    for i in range(count):
        mode = str(modes[i])
        entry = {"kind": "noisy", "x": int(xs[i]), "y": int(ys[i]), "channel": 0, "color": "L", "mode": mode,
                 "border": bool(min(xs[i], ys[i], width - 1 - xs[i], height - 1 - ys[i]) < 2), "cluster": None,
                 "population": False}
        if mode == "gaussian":
            entry["sigma"] = float(noise[ys[i], xs[i]])
        else:
            entry.update(step=float(step[i]), p_high=float(p_high[i]))
        defects.append(entry)
    truth = {"kind": "movie", "version": MOVIE_VERSION, "format": "tiff", "size": [width, height], "frames": frames,
             "seed": seed, "files": ["movie.tif"],
             "frames_meta": [{"file": f"movie.tif#frame={f}", "unix": start_unix + f * FRAME_SECONDS}
                             for f in range(frames)],
             "defects": defects}
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def over_median_variance(var: np.ndarray, ratio: float = 50.0) -> list[tuple[int, int]]:
    """(x, y) of the sensels whose variance over the frames is over ``ratio`` x the median's."""
    ys, xs = np.nonzero(var > ratio * np.median(var))
    return list(zip(xs.tolist(), ys.tolist()))
