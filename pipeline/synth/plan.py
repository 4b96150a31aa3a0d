"""Where the planted defects are and how each one behaves: the defect plan of a stack.

The plan is drawn once per stack from its own seed, before any frame: the frames apply it
(``exposure.expose``) and ``truth.json`` lists it, so both read the same positions and
amplitudes. Positions are spread out (``MIN_SPACING``) so that each defect is scored alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sensor import BLACK_LEVEL, COLOURS, WARM_SIGMAS, WHITE_LEVEL, SensorModel, cfa_colour_index

# defect placement: at least this far (Chebyshev, in sensels) from each other and the border
MIN_SPACING = 8
# typical signal of a mid-grey (18 %) photo: the reference level for "a few noise sigmas"
_TYPICAL_SIGNAL = 0.18 * (WHITE_LEVEL - BLACK_LEVEL)


def default_defects_per_kind(width: int, height: int) -> int:
    """8 per kind at 640x480, scaled with the area (real sensors have a roughly fixed density)."""
    return max(3, round(8 * width * height / (640 * 480)))


@dataclass
class DefectPlan:
    """Where the defects are and how they behave, fixed for the whole stack.

    Indices are flat (row-major) sensel indices. RTS states are precomputed because a
    telegraph signal is a Markov chain over frames, while frames are rendered independently.
    """

    defects: list[dict]
    hot_idx: np.ndarray
    hot_amp: np.ndarray
    stuck_idx: np.ndarray
    stuck_val: np.ndarray
    dead_idx: np.ndarray
    dead_gain: np.ndarray
    rts_idx: np.ndarray
    rts_step: np.ndarray
    rts_state: np.ndarray  # (frames, n_rts) bool: high level when True
    gauss_idx: np.ndarray
    gauss_sigma: np.ndarray


def _place(rng: np.random.Generator, width: int, height: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random positions >= MIN_SPACING apart and from the border.

    Positions are jittered inside distinct cells of a grid whose cells are at least
    MIN_SPACING wide; the jitter range (cell - MIN_SPACING) keeps any two points in different
    cells at least MIN_SPACING apart along the axis where their cells differ. Smaller cells
    (less jitter) are used only if the image is too small for the default ones.
    """
    lo = MIN_SPACING
    for cell in (16, 12, MIN_SPACING):
        # usable span [lo, size-1-lo]; a cell's point lies in [start, start + cell - lo]
        nx = (width - 2 * lo - 1 - (cell - lo)) // cell + 1
        ny = (height - 2 * lo - 1 - (cell - lo)) // cell + 1
        if nx > 0 and ny > 0 and nx * ny >= count:
            break
    else:
        raise ValueError(
            f"image {width}x{height} is too small for {count} defects spaced {MIN_SPACING} px apart; "
            "use a larger --size or fewer defects"
        )
    cells = rng.choice(nx * ny, size=count, replace=False)
    jitter = cell - lo + 1
    xs = lo + (cells % nx) * cell + rng.integers(0, jitter, count)
    ys = lo + (cells // nx) * cell + rng.integers(0, jitter, count)
    return xs.astype(np.int64), ys.astype(np.int64)


def plan_defects(
    rng: np.random.Generator, width: int, height: int, per_kind: int, frames: int, dark: bool, sensor: SensorModel
) -> DefectPlan:
    """Choose positions and behaviour of every planted defect, all kinds interleaved spatially.

    Amplitudes are in DN. Weak defects are scaled to the temporal noise a healthy sensel shows
    in this mode (read noise in darks, shot noise at mid-grey in photos), so "warm" means
    "a few sigmas" whatever the mode.
    """
    sigma = sensor.noise_sigma(0.0 if dark else _TYPICAL_SIGNAL)
    xs, ys = _place(rng, width, height, 4 * per_kind)
    order = rng.permutation(4 * per_kind)
    xs, ys = xs[order], ys[order]
    kinds = np.repeat(["hot", "stuck", "dead", "noisy"], per_kind)
    colour_of = cfa_colour_index(2, 2)
    span = WHITE_LEVEL - BLACK_LEVEL
    n_weak = max(1, per_kind // 3)
    defects: list[dict] = []
    arrays: dict[str, list] = {k: [] for k in ("hot", "stuck", "dead", "rts", "gauss")}

    for i, (x, y, kind) in enumerate(zip(xs.tolist(), ys.tolist(), kinds.tolist())):
        c = int(colour_of[y % 2, x % 2])
        d = {"x": x, "y": y, "kind": kind, "channel": c, "color": COLOURS[c]}
        flat = y * width + x
        j = i % per_kind  # rank within its kind: the first n_weak are the weak variant
        if kind == "hot":
            warm = j < n_weak
            amp = rng.uniform(*WARM_SIGMAS) * sigma if warm else float(np.exp(rng.uniform(np.log(150), np.log(3000))))
            d.update(amplitude=round(float(amp), 2), warm=bool(warm))
            arrays["hot"].append((flat, amp))
        elif kind == "stuck":
            saturated = j % 2 == 0
            val = float(WHITE_LEVEL) if saturated else float(round(BLACK_LEVEL + rng.uniform(0.15, 0.7) * span))
            d.update(amplitude=val, value=int(val), saturated=bool(saturated))
            arrays["stuck"].append((flat, val))
        elif kind == "dead":
            cold = j < n_weak
            gain = rng.uniform(0.1, 0.4) if cold else 0.0
            # amplitude (mean DN lost vs. a healthy sensel) is filled in after rendering
            d.update(amplitude=0.0, gain=round(float(gain), 3), cold=bool(cold))
            arrays["dead"].append((flat, gain))
        else:
            if j % 2 == 0:  # random telegraph noise: two levels +-step/2, flips with prob p
                step = rng.uniform(8.0, 20.0) * sigma  # +-step/2: sd 4-10 sigma, like the Gaussian kind
                p = rng.uniform(0.2, 0.5)
                # own stream per pixel, so frame i's state does not depend on the stack length;
                # the forced flip at frame 1 makes both levels occur in any stack of >= 2 frames
                flips = np.random.default_rng(int(rng.integers(2**63))).random(frames) < p
                flips[0], flips[1:2] = False, True
                state = (rng.random() < 0.5) ^ (np.cumsum(flips) % 2).astype(bool)
                d.update(amplitude=round(float(step), 2), mode="rts", p_switch=round(float(p), 3))
                arrays["rts"].append((flat, step, state))
            else:  # much more variance than the neighbours
                s = rng.uniform(4.0, 10.0) * sigma
                d.update(amplitude=round(float(s), 2), mode="gaussian")
                arrays["gauss"].append((flat, s))
        defects.append(d)

    def column(name: str, k: int, dtype: type) -> np.ndarray:
        return np.array([row[k] for row in arrays[name]], dtype=dtype)

    rts_states = [row[2] for row in arrays["rts"]]
    return DefectPlan(
        defects=defects,
        hot_idx=column("hot", 0, np.int64),
        hot_amp=column("hot", 1, np.float32),
        stuck_idx=column("stuck", 0, np.int64),
        stuck_val=column("stuck", 1, np.float32),
        dead_idx=column("dead", 0, np.int64),
        dead_gain=column("dead", 1, np.float32),
        rts_idx=column("rts", 0, np.int64),
        rts_step=column("rts", 1, np.float32),
        rts_state=np.stack(rts_states, axis=1) if rts_states else np.zeros((frames, 0), bool),
        gauss_idx=column("gauss", 0, np.int64),
        gauss_sigma=column("gauss", 1, np.float32),
    )
