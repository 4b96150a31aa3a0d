"""The random scene of a photo frame, evaluated directly on the sensel grid.

Gradients, soft blobs, occluding shapes with lens-blurred edges, fine textures and stripes,
specular highlights and thin lines: enough structure that a detector cannot mistake scene
detail for defects, or the other way round. Each sensel sees only its CFA colour, so a frame
costs one float32 plane, never full RGB.
"""

from __future__ import annotations

import numpy as np


def _colour(rng: np.random.Generator, lo: float = 0.03, hi: float = 1.0) -> np.ndarray:
    """A random linear RGB reflectance: a grey level with a random tint."""
    grey = rng.uniform(lo, hi)
    tint = np.clip(1.0 + rng.uniform(-0.6, 0.6, 3), 0.05, None)
    return (grey * tint / tint.mean()).astype(np.float32)


def _value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid bilinearly upsampled."""
    gh = max(1, round(cells * height / max(height, width)))
    gw = max(1, round(cells * width / max(height, width)))
    coarse = rng.random((gh + 1, gw + 1), dtype=np.float32)
    ys = np.linspace(0, gh, height, dtype=np.float32)
    xs = np.linspace(0, gw, width, dtype=np.float32)
    y0 = np.minimum(ys.astype(np.int64), gh - 1)
    x0 = np.minimum(xs.astype(np.int64), gw - 1)
    fy = (ys - y0)[:, None]
    fx = xs - x0
    rows = coarse[y0] * (1 - fy) + coarse[y0 + 1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def _box(cx: float, cy: float, rx: float, ry: float, width: int, height: int) -> tuple[slice, slice] | None:
    """Bounding box (clipped to the image) of a shape centred at (cx, cy); None if outside."""
    x0, x1 = max(0, int(cx - rx)), min(width, int(cx + rx) + 2)
    y0, y1 = max(0, int(cy - ry)), min(height, int(cy + ry) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _local_uv(box: tuple[slice, slice], cx: float, cy: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of a box's sensels in a frame rotated by ``theta`` around (cx, cy)."""
    yy = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None] - cy
    xx = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :] - cx
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    return xx * c + yy * s, yy * c - xx * s


def _soft_edge(dist: np.ndarray, width: float) -> np.ndarray:
    """Coverage (0..1) of a shape from the signed distance to its edge, blurred over ``width`` px."""
    return np.clip(np.float32(0.5) - dist / np.float32(width), 0.0, 1.0)


def render_scene(rng: np.random.Generator, cidx: np.ndarray) -> np.ndarray:
    """Linear scene radiance seen by each sensel through its colour filter, (H, W) float32.

    Values are relative reflectances (~0..1) except highlights, which go far above 1 and
    clip after exposure, as speculars do.
    """
    h, w = cidx.shape
    size = max(h, w)
    # small details (lines, speculars) scale with the area: a bigger sensor sees more of them
    detail = max(1.0, h * w / (640 * 480))
    # background: a two-colour linear gradient in a random direction
    a, b = _colour(rng), _colour(rng)
    theta = rng.uniform(0, 2 * np.pi)
    ramp_x = np.arange(w, dtype=np.float32) * np.float32(np.cos(theta))
    ramp_y = np.arange(h, dtype=np.float32)[:, None] * np.float32(np.sin(theta))
    t = ramp_x + ramp_y
    t -= t.min()
    t /= max(float(t.max()), 1.0)
    s = a[cidx] + (b - a)[cidx] * t
    # low-frequency texture (shading, clouds, foliage in the distance)
    amp = np.float32(rng.uniform(0.1, 0.6))
    s *= (1 - amp) + 2 * amp * _value_noise(rng, h, w, int(rng.integers(3, 24)))

    # soft blobs (separable Gaussians, computed on their bounding box only)
    for _ in range(int(rng.integers(3, 10))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sig = rng.uniform(0.02, 0.2) * size
        box = _box(cx, cy, 3 * sig, 3 * sig, w, h)
        if box is None:
            continue
        gy = np.exp(-((np.arange(box[0].start, box[0].stop) - cy) ** 2) / (2 * sig * sig)).astype(np.float32)
        gx = np.exp(-((np.arange(box[1].start, box[1].stop) - cx) ** 2) / (2 * sig * sig)).astype(np.float32)
        s[box] += rng.uniform(-0.4, 0.8) * _colour(rng)[cidx[box]] * (gy[:, None] * gx[None, :])
    np.maximum(s, 0.0, out=s)

    # occluding shapes (rotated rectangles and ellipses), some textured. Edges are soft:
    # lenses do not resolve a sensel-sharp step, and the blur varies with focus and depth.
    focus = rng.uniform(0.8, 2.5)
    for _ in range(int(rng.integers(2, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        ra, rb = rng.uniform(0.03, 0.25, 2) * size
        rot = rng.uniform(0, np.pi)
        box = _box(cx, cy, max(ra, rb) + 3, max(ra, rb) + 3, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, rot)
        if rng.random() < 0.5:
            dist = np.maximum(np.abs(u) - np.float32(ra), np.abs(v) - np.float32(rb))
        else:
            dist = (np.sqrt((u / np.float32(ra)) ** 2 + (v / np.float32(rb)) ** 2) - 1) * np.float32(min(ra, rb))
        alpha = _soft_edge(dist, focus * rng.uniform(0.7, 2.0))
        fill = _colour(rng)[cidx[box]] * (1 + np.float32(rng.uniform(-0.4, 0.4)) * u / np.float32(ra))
        r = rng.random()
        if r < 0.25:  # stripes: fabric, fences, blinds (and some moire, as in real cameras)
            period = np.float32(rng.uniform(3.0, 12.0))
            fill *= np.float32(1 - rng.uniform(0.2, 0.5)) + np.float32(rng.uniform(0.1, 0.4)) * np.sin(
                np.float32(2 * np.pi) * v / period
            )
        elif r < 0.45:  # fine random texture (gravel, foliage) at 2-6 px grain
            fh, fw = fill.shape
            grain = _value_noise(rng, fh, fw, max(1, int(max(fh, fw) / rng.uniform(2.0, 6.0))))
            depth = np.float32(rng.uniform(0.2, 0.6))
            fill *= (1 - depth) + 2 * depth * grain
        s[box] += alpha * (fill - s[box])

    # thin lines (wires, edges) and specular highlights far above white
    for _ in range(int(rng.integers(0, 4) * np.sqrt(detail))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        half = rng.uniform(0.1, 0.5) * size
        box = _box(cx, cy, half, half, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, rng.uniform(0, np.pi))
        dist = np.maximum(np.abs(v) - np.float32(rng.uniform(0.3, 1.5)), np.abs(u) - np.float32(half))
        alpha = _soft_edge(dist, focus)
        level = rng.uniform(1.0, 4.0) if rng.random() < 0.5 else 0.01
        s[box] += alpha * (np.float32(level) * _colour(rng, 0.5)[cidx[box]] - s[box])
    for _ in range(int(rng.integers(0, 20) * detail)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rad = rng.uniform(0.5, 4.0)
        box = _box(cx, cy, rad + 3, rad + 3, w, h)
        if box is None:
            continue
        u, v = _local_uv(box, cx, cy, 0.0)
        alpha = _soft_edge(np.sqrt(u * u + v * v) - np.float32(rad), focus)
        s[box] += alpha * np.float32(rng.uniform(1.5, 20.0)) * _colour(rng, 0.8)[cidx[box]]
    return s
