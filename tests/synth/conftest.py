"""Shared by the synth tests: small synthetic stacks (generated once), and plain-numpy helpers.

The stats here are computed with plain numpy on purpose, so that these tests check the
generator independently of the pipeline that will later be measured on its output.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from pipeline.synth import synthesize

SIZE = (160, 120)  # for format and layout tests
STACK_SIZE = (320, 240)  # for statistics: large enough that scene detail is not crammed in
FRAMES = 24
KINDS = {"hot", "stuck", "dead", "noisy"}


def load_stack(out: Path, truth: dict) -> np.ndarray:
    """All frames as float64 (N, H, W) for mosaics or (N, H, W, 3) for RGB."""
    frames = []
    for name in truth["files"]:
        if name.endswith(".dng"):
            rawpy = pytest.importorskip("rawpy")
            with rawpy.imread(str(out / name)) as raw:
                frames.append(raw.raw_image_visible.copy())
        else:
            frames.append(iio.imread(out / name))
    return np.stack(frames).astype(np.float64)


def neighbours(a: np.ndarray, x: int, y: int, stride: int) -> np.ndarray:
    """The 4 same-colour neighbours of (x, y) along the last two axes of ``a``."""
    return np.stack([a[..., y - stride, x], a[..., y + stride, x], a[..., y, x - stride], a[..., y, x + stride]])


@pytest.fixture(scope="session")
def stacks(tmp_path_factory):
    """One small stack per (format, dark) combination used by the tests, generated once."""
    cache: dict = {}

    def get(fmt: str, dark: bool = False, seed: int = 7):
        key = (fmt, dark, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{fmt}_{'dark' if dark else 'photo'}_{seed}")
            truth = synthesize(out, frames=FRAMES, size=STACK_SIZE, fmt=fmt, dark=dark, seed=seed)
            cache[key] = (out, truth, load_stack(out, truth))
        return cache[key]

    return get


# --------------------------------------------------------------------------- collections over time

COLLECTION_SIZE = (320, 240)
# same-colour neighbours of a sensel in a Bayer mosaic: the 8 at distance 2
RING = [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if dy or dx]


def load_mosaics(out: Path, truth: dict) -> np.ndarray:
    """A collection's raw mosaics (tiff16, png16 or dng) as float64 (N, H, W)."""
    if truth["format"] == "dng":
        return load_stack(out, truth)
    return np.stack([iio.imread(out / name) for name in truth["files"]]).astype(np.float64)


def ring_median(stack: np.ndarray, x: int, y: int) -> np.ndarray:
    """Per frame, the median of the 8 same-colour neighbours of (x, y)."""
    return np.median(np.stack([stack[:, y + dy, x + dx] for dy, dx in RING]), axis=0)


def sensels(d: dict) -> list[tuple[int, int]]:
    """(x, y) of every sensel of a collection's defect: a line's run of one colour, or the one sensel."""
    if d["kind"] in ("column", "row"):
        return [(d["x"], d["y"] + 2 * i) if d["kind"] == "column" else (d["x"] + 2 * i, d["y"])
                for i in range(d["length"])]
    return [(d["x"], d["y"])]


@pytest.fixture(scope="session")
def collections(tmp_path_factory):
    """Collections by their arguments, generated once: ``collections(fmt=..., seed=..., ...)`` -> (out, truth, mosaics)."""
    from pipeline.synth import synthesize_collection

    cache: dict = {}

    def get(**kw):
        kw = {"frames": 60, "size": COLLECTION_SIZE, "fmt": "tiff16", "seed": 3} | kw
        key = tuple(sorted(kw.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"collection_{kw['fmt']}_{kw['seed']}")
            truth = synthesize_collection(out, **kw)
            stack = load_mosaics(out, truth) if kw["fmt"] in ("tiff16", "png16", "dng") else None
            cache[key] = (out, truth, stack)
        return cache[key]

    return get
