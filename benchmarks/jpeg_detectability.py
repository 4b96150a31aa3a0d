"""Oracle detectability of a synthetic JPEG collection's planted point defects: what the camera's
JPEG engine leaves of them.

    python benchmarks/jpeg_detectability.py FOLDER [--population P] [--dark-fraction D]

(used by ``benchmarks/realistic_collections.py`` for its JPEG collections). ``detectability.py``
works out a raw defect's signal from the truth; in a JPEG the signal has gone through the
bilinear demosaic, the white balance, the JPEG engine's brightening of an under-exposed frame,
the sRGB tone curve, 8-bit rounding and the JPEG's quantisation, none of which is linear. So this
oracle renders it: the collection's frames are drawn again from its seed
(``pipeline.synth.collection.collection_parts``), once as written and once with every defect
neutralised (the same noise, to the bit). For each planted defect and frame, the written mosaic
with only that defect's sensel put back to its healthy value is developed and JPEG-encoded as
the collection's writer does (``develop_levels``, Pillow quality 92) and decoded as the scan
decodes (simplejpeg), on a crop of whole 16 x 16 blocks around it, which gives the full frame's
pixels there to the bit (checked against every written file).

- **Signal** ``s_f``: the change the defect makes to the residual the scan scores, 4v minus its 4
  neighbours, at the defect's pixel, in each RGB channel. For flicker it is the frame's actual
  signal (the oracle knows the telegraph states), which is more than a detector can know.
- **Noise** ``sigma_f``: 1.4826 x MAD of that residual in that channel over ``WINDOW`` x ``WINDOW``
  pixels of the written frame around the defect, every planted defect's surroundings left out.
- **PRNU**, as the raw oracle takes it: a sensel 0.5 % too sensitive (``tau``) moves its pixel's
  residual by ``v_f`` (rendered the same way, from its healthy level); ``z^2 = s^T C^-1 s`` with
  ``C = diag(sigma^2 - v^2) + v v^T``.

A channel's ``z`` is that matched filter's; the defect's is its best channel's (the scan scores
each channel apart). The residual noise of neighbouring pixels is correlated by the demosaic and
the JPEG, so a detector pooling a blob's pixels gains less than independent pixels would; this
oracle uses the one pixel. Lines are not assessed (NaN): JPEG lines are not searched.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectability import LINE_KINDS, PRNU, WINDOW, cached_z, print_oracle  # noqa: E402

JPEG_ORACLE_VERSION = 1  # bump when what jpeg_oracle_z computes changes: invalidates cached results
MCU = 16  # a 4:2:0 JPEG's block of pixels: crops start and end on it
MARGIN_MCUS = 2  # whole blocks each side of the defect's: the decoder's upsampling reaches one
QUALITY = 92  # pipeline.synth.metadata.write_collection_frame's JPEG quality
# the planted defects' surroundings left out of the noise window: a demosaiced JPEG smears a
# sensel over its 3 x 3 and the JPEG's block a little beyond
EXCLUDE = 3
SIGMA_FLOOR = 0.5  # 8-bit levels: a clipped or flat window has no residual noise; keep s / sigma finite
TRIM = 0.01  # the share of a noise window's residuals left out as the scene's edges
# noise realisations of every frame (its scene and settings kept): the defect's expected signal is
# their mean, which the JPEG's requantisation (a sensel moved by a level reshuffles its block's
# rounding) does not inflate as one realisation's difference does
REALISATIONS = 4


def neutral(plan):
    """``plan`` with every defect's effect set to nothing and its random draws kept (the Gaussian
    flicker's normals are drawn for its sensels whatever their sigma)."""
    return dataclasses.replace(plan, rate=np.zeros_like(plan.rate), offset=np.zeros_like(plan.offset),
                               dead_gain=np.ones_like(plan.dead_gain), stuck_idx=plan.stuck_idx[:0],
                               stuck_value=plan.stuck_value[:0], rts_step=np.zeros_like(plan.rts_step),
                               gauss_sigma=np.zeros_like(plan.gauss_sigma))


def _decode(data: bytes) -> np.ndarray:
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=False, fastupsample=False)


def _encode(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=QUALITY)
    return buf.getvalue()


@dataclasses.dataclass(frozen=True)
class Crop:
    """The pixels rendered around a defect: whole MCUs ``y0:y1, x0:x1`` of the frame, developed from
    its mosaic with 2 more sensels each side (where the frame has them: the demosaic's reach)."""

    y0: int
    y1: int
    x0: int
    x1: int
    my0: int
    my1: int
    mx0: int
    mx1: int
    width: int
    height: int

    @classmethod
    def around(cls, x: int, y: int, width: int, height: int) -> Crop:
        bx, by = x // MCU, y // MCU
        x0, x1 = max(0, (bx - MARGIN_MCUS) * MCU), min(width, (bx + MARGIN_MCUS + 1) * MCU)
        y0, y1 = max(0, (by - MARGIN_MCUS) * MCU), min(height, (by + MARGIN_MCUS + 1) * MCU)
        return cls(y0, y1, x0, x1, max(0, y0 - 2), min(height, y1 + 2), max(0, x0 - 2), min(width, x1 + 2), width,
                   height)

    def render(self, mosaic: np.ndarray, develop) -> np.ndarray:
        """The crop's pixels (float32 RGB) as the written JPEG decodes them."""
        rgb = develop(mosaic[self.my0 : self.my1, self.mx0 : self.mx1])
        rows, cols = slice(self.y0 - self.my0, self.y1 - self.my0), slice(self.x0 - self.mx0, self.x1 - self.mx0)
        rgb = np.ascontiguousarray(rgb[rows, cols])
        return _decode(_encode(rgb)).astype(np.float32)

    def inner(self, pixels: np.ndarray) -> np.ndarray:
        """The crop's blocks but its outermost (unless on the frame's edge): the full frame's pixels
        there, the decoder's upsampling having had its neighbours."""
        h, w = pixels.shape[:2]
        top = 0 if self.y0 == 0 else MCU
        left = 0 if self.x0 == 0 else MCU
        bottom = h if self.y1 == self.height else h - MCU
        right = w if self.x1 == self.width else w - MCU
        return pixels[top:bottom, left:right]

    def residual_at(self, pixels: np.ndarray, x: int, y: int) -> np.ndarray:
        """The scan's residual at (x, y), per channel: the defect lies blocks away from the crop's
        edges but at the frame's, where both reflect alike."""
        return residual_maps(pixels)[y - self.y0, x - self.x0]


def residual_maps(pixels: np.ndarray) -> np.ndarray:
    """The scan's residual of a whole frame (H, W, 3), float32, neighbours reflected at the edges."""
    p = np.pad(pixels.astype(np.float32), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    return 4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


def window_sigma(res: np.ndarray, excluded: np.ndarray, x: int, y: int) -> np.ndarray:
    """The residual's spread per channel in the ``WINDOW`` around (x, y), ``excluded`` left out: the
    root mean square about the median of all but the ``TRIM`` share farthest from it. Not a MAD: a
    JPEG's residual is whole levels, and in a flat, dark window mostly 0, where the MAD is 0 but
    the block edges still move some pixels by a level or two."""
    half = WINDOW // 2
    ys, xs = slice(max(0, y - half), y + half + 1), slice(max(0, x - half), x + half + 1)
    vals = res[ys, xs][~excluded[ys, xs]]
    if len(vals) < 8:
        return np.full(3, SIGMA_FLOOR, np.float32)
    dev = np.abs(vals - np.median(vals, axis=0))
    keep = dev <= np.quantile(dev, 1 - TRIM, axis=0)
    rms = np.sqrt(np.sum(np.where(keep, dev, 0.0) ** 2, axis=0) / np.maximum(keep.sum(0), 1))
    return np.maximum(rms, SIGMA_FLOOR).astype(np.float32)


def _check_plan(plan_defects: list[dict], truth: dict) -> None:
    got = [(d["kind"], d["x"], d["y"]) for d in plan_defects]
    want = [(d["kind"], d["x"], d["y"]) for d in truth["defects"]]
    if got != want:
        raise ValueError("the collection drawn again from its seed plants other defects than its truth.json: "
                         "give its population and dark fraction as it was made")


@dataclasses.dataclass
class Signals:
    """Per planted point defect (``points``: their indices in the truth), frame and RGB channel: the
    signal ``s``, the PRNU's ``v`` and the noise ``sigma`` of the residual at its pixel."""

    points: list[int]
    s: np.ndarray
    v: np.ndarray
    sigma: np.ndarray


def signals(folder: Path, truth: dict, population: float = 0.0, dark_fraction: float = 0.0) -> Signals:
    """Each point defect's signal, PRNU term and noise in every frame (the module docstring says
    how). ``population`` and ``dark_fraction`` are those the collection was made with."""
    from pipeline.synth.collection import collection_parts
    from pipeline.synth.in_camera import develop_levels
    from pipeline.synth.physics import render_frame

    if truth.get("format") != "jpeg":
        raise ValueError(f"{folder} is no JPEG collection (format {truth.get('format')!r})")
    width, height = (int(v) for v in truth["size"])
    parts = collection_parts(int(truth["frames"]), (width, height), int(truth["seed"]), population=population,
                             dark_fraction=dark_fraction)
    _check_plan(parts.plan.defects, truth)
    sensor, shots = parts.sensor, parts.shots
    quiet = neutral(parts.plan)
    points = [i for i, t in enumerate(truth["defects"]) if t["kind"] not in LINE_KINDS]
    excluded = np.zeros((height, width), bool)
    for t in truth["defects"]:
        x0, y0, x1, y1 = t["x"], t["y"], t["x"] + 1, t["y"] + 1
        if t["kind"] == "column":
            y1 = t["y"] + 2 * int(t["length"])
        elif t["kind"] == "row":
            x1 = t["x"] + 2 * int(t["length"])
        excluded[max(0, y0 - EXCLUDE) : y1 + EXCLUDE, max(0, x0 - EXCLUDE) : x1 + EXCLUDE] = True
    tau = PRNU * math.sqrt(1 + 1 / 4)
    frames = len(shots)
    s = np.zeros((len(points), frames, REALISATIONS, 3), np.float32)
    v = np.zeros_like(s)
    sigma = np.ones((len(points), frames, 3), np.float32)
    crops = [Crop.around(truth["defects"][i]["x"], truth["defects"][i]["y"], width, height) for i in points]
    black = float(sensor.black_level)
    for f, shot in enumerate(shots):
        def develop(m: np.ndarray, shot=shot) -> np.ndarray:
            return develop_levels(m, sensor.wb, sensor.black_level, sensor.white_level, gain=1.0 / shot.ratio)

        pixels = _decode((folder / truth["files"][f]).read_bytes())
        res = residual_maps(pixels)
        for k, t in enumerate(truth["defects"][i] for i in points):
            sigma[k, f] = window_sigma(res, excluded, t["x"], t["y"])
        for r in range(REALISATIONS):
            def draw(plan, f=f, shot=shot, r=r) -> np.ndarray:
                """Frame f with ``plan``'s defects: the written frame's noise first, then the same
                scene's drawn anew (the same draw for both plans)."""
                noise = None if r == 0 else np.random.default_rng([int(truth["seed"]), f, r])
                return render_frame(np.random.default_rng(parts.frame_seeds[f]), parts.body, plan, f, shot, sensor,
                                    noise).astype(np.float32)

            written, healthy = draw(parts.plan), draw(quiet)
            for k, (i, crop) in enumerate(zip(points, crops)):
                t = truth["defects"][i]
                x, y = t["x"], t["y"]
                as_written = crop.render(written, develop)
                if r == 0 and not np.array_equal(crop.inner(as_written),
                                                 crop.inner(pixels[crop.y0 : crop.y1, crop.x0 : crop.x1])):
                    raise ValueError(f"the crop around ({x},{y}) of {truth['files'][f]} does not render as written")
                without = written.copy()
                without[y, x] = healthy[y, x]
                lifted = written.copy()
                level = np.mean([healthy[y + dy, x + dx] for dx, dy in ((-2, 0), (2, 0), (0, -2), (0, 2))
                                 if 0 <= y + dy < height and 0 <= x + dx < width]) - black
                lifted[y, x] = min(float(sensor.white_level), written[y, x] + tau * max(level, 0.0))
                r_written = crop.residual_at(as_written, x, y)
                s[k, f, r] = r_written - crop.residual_at(crop.render(without, develop), x, y)
                v[k, f, r] = crop.residual_at(crop.render(lifted, develop), x, y) - r_written
    return Signals(points, s, v, sigma)


def jpeg_oracle_z(folder: Path, truth: dict, population: float = 0.0,
                  dark_fraction: float = 0.0) -> list[tuple[float, float]]:
    """``(z, z_indep)`` of every planted defect, in the truth's order (NaN for lines); see the module
    docstring. ``population`` and ``dark_fraction`` are those the collection was made with."""
    got = signals(folder, truth, population, dark_fraction)
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(truth["defects"])
    for k, i in enumerate(got.points):
        s, v, sigma = got.s[k], got.v[k].mean(1), got.sigma[k]
        mean = s.mean(1)
        # (E s)^2 without the realisations' own scatter: mean^2 less its variance
        square = mean**2 - s.var(1, ddof=1) / REALISATIONS
        rest = np.maximum(sigma**2 - v**2, sigma**2 / 4)
        z2 = np.sum(square / rest, 0) - np.sum(mean * v / rest, 0) ** 2 / (1 + np.sum(v**2 / rest, 0))
        indep = np.sum(square / sigma**2, 0)
        out[i] = (float(math.sqrt(max(float(z2.max()), 0.0))), float(math.sqrt(max(float(indep.max()), 0.0))))
    return out


def cached_jpeg_oracle_z(folder: Path, truth: dict, cache: Path, population: float = 0.0,
                         dark_fraction: float = 0.0) -> list[tuple[float, float]]:
    """``jpeg_oracle_z``, kept as JSON at ``cache`` for the same collection."""
    return cached_z(truth, cache, JPEG_ORACLE_VERSION, lambda: jpeg_oracle_z(folder, truth, population, dark_fraction))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a synthetic JPEG collection (a folder with truth.json)")
    ap.add_argument("--population", type=float, default=0.0, help="the population it was made with")
    ap.add_argument("--dark-fraction", type=float, default=0.0, help="the dark fraction it was made with")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    truth = json.loads((folder / "truth.json").read_text())
    print_oracle(folder.name, truth, jpeg_oracle_z(folder, truth, args.population, args.dark_fraction),
                 ("rate", "offset", "step", "p_high", "since", "cluster"), "planted point defects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
