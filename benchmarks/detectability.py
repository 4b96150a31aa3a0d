"""Oracle detectability of a synthetic raw collection's planted defects: which misses physics forces.

    python benchmarks/detectability.py FOLDER [FOLDER ...]   (collection folders with truth.json)

(used by ``benchmarks/realistic_collections.py``). For each planted defect the signal it adds to the
residual of its sensels in each frame is worked out from the truth and the frames' settings, the
way ``pipeline.synth.physics.render_frame`` renders it, and set against the residual's noise in
that frame around the defect, measured on the actual frames.

- **Residual:** a sensel minus the mean of its same-colour neighbours at distance 2 (those inside
  the image): all 4 for a point defect; for a line's sensels the 2 across the line (a column's
  left and right ones), which carry none of the line's signal. The 4-neighbour residual of a
  line sensel keeps only ``1 - (line neighbours) / (neighbours)`` of its signal (a half inside the
  line, 3/4 at its ends) for about the same noise: comparing a line with its sides is what a line
  detector can do, and gives ~1.8x the z.
- **Signal** ``s_f`` (DN) in frame ``f``, with ``base`` the healthy level there above black (the
  mean of the defect's neighbours that are not planted sensels), ``span`` the white level minus
  black, ``k = t * ISO/100``:

  - dark current and offsets (hot, warm, column, row): ``E = rate * k`` (from ``since_unix`` on)
    ``+ offset``; the sensel reads ``min(span, base + E)``; with in-camera dark subtraction
    (frames_meta ``nr``) the closed frame's ``min(span, E)`` is taken off again: only clipping
    is left;
  - dead and cold: ``(gain - 1) * base`` (the lost gain acts on light and dark signal alike);
  - stuck: ``value - black - base``;
  - telegraph and Gaussian flicker (after dark subtraction, in every frame; the step scales with
    ISO/100 and clips at white): the states are unknown, so the expected energy ``E[s_f^2]``:
    ``p step^2`` one-sided, ``step^2 / 4`` two-sided, ``2p(1-p) step^2 + p^2 (2 step)^2``
    three-level, ``sigma^2`` Gaussian (and the mean ``E[s_f]`` for the PRNU term below).

- **Noise** ``sigma_f``: 1.4826 x MAD of the same residual over the sensels of the defect's colour
  in a ``WINDOW`` x ``WINDOW`` window around each of its sensels, leaving out planted sensels and
  those whose residual includes one. Scene texture dominates it in lit frames; the rare large
  residuals of edges and highlights (1 % of healthy sensels beyond 5 sigma in a lit frame) do
  not count: a robust detector (clipping each frame at ~2.5 sigma) loses almost nothing to them.
  Nor do they hide the planted defects: capping each lit frame's share of ``z^2`` at 12 (the
  rarity of a healthy residual beyond ~30 sigma, 0.2 %) moved no defect across ``DETECTABLE_Z``
  in the raw collections of realistic_collections.py when this was written.

The oracle is the matched filter of a detector that knows the signal in every frame. With the
frames independent it is ``z_indep = sqrt(sum_f s_f^2 / sigma_f^2)`` (summed over a line's
sensels too). They are not quite: a sensel's PRNU (0.5 % of its response) puts
``delta * base_f`` in its residual in every frame, with one ``delta`` per sensel, so a constant
offset looks like a sensel that is 0.5 % too sensitive wherever frames have like levels. On a
warm template at healthy sensels the independent-frames statistic spreads with a sigma of ~1.8,
not 1, so ``z_indep = 5`` is no 5 sigma. The oracle ``z`` takes the PRNU as a nuisance of known
variance ``tau^2 = prnu^2 (1 + 1/n_neighbours)``: with ``D_f = sigma_f^2 - tau^2 base_f^2`` (the rest of
the noise) and ``C = diag(D) + tau^2 base base^T``, ``z^2 = s^T C^-1 s`` (Sherman-Morrison). At
healthy sensels this statistic (robust) spreads with sigma 1.08. No detector working from these
frames' residuals does better; one that must also guess the rate, offset, onset or telegraph
states does worse (much worse for two-sided and Gaussian flicker, which add variance and little
mean). A hot sensel's own shot noise is left out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORACLE_VERSION = 2  # bump when what oracle_z computes changes: invalidates cached results
WINDOW = 33  # px a side of the noise window (17 x 17 sensels of the defect's colour)
MAD_SIGMA = 1.4826  # sigma of a normal distribution per unit of MAD
SIGMA_FLOOR = 1.0  # DN: a saturated window has no residual noise; keep s / sigma finite
PRNU = 0.005  # pipeline.synth.physics.CollectionSensor.prnu: a sensel's fixed relative response error
# A defect is "detectable" when its oracle z reaches this. A detector tests ~300k sensels
# (640x480) and must keep about 0.1 false alarms per sensor: a one-sided Gaussian tail of
# P(z > 5) = 2.9e-7 gives 300k x 2.9e-7 = 0.09 (two-sided, for dark defects, 0.17). Below 5 even
# the oracle's statistic cannot clear that look-elsewhere threshold; at 5 it does half the time.
DETECTABLE_Z = 5.0
LINE_KINDS = ("column", "row")
# same-colour neighbours at distance 2, (dx, dy): of a point, and across a column or a row
SCHEMES = {"point": ((-2, 0), (2, 0), (0, -2), (0, 2)), "column": ((-2, 0), (2, 0)), "row": ((0, -2), (0, 2))}


def sensels(t: dict) -> tuple[np.ndarray, np.ndarray]:
    """A planted defect's sensels (x, y): one, or a line's every other sensel from the first."""
    if t["kind"] in LINE_KINDS:
        run = 2 * np.arange(int(t["length"]))
        if t["kind"] == "column":
            return np.full(len(run), t["x"]), t["y"] + run
        return t["x"] + run, np.full(len(run), t["y"])
    return np.array([t["x"]]), np.array([t["y"]])


def residual(v: np.ndarray, scheme: str = "point") -> np.ndarray:
    """Each sensel minus the mean of its same-colour neighbours of ``scheme`` inside the image."""
    h, w = v.shape
    pad = np.full((h + 4, w + 4), np.nan, np.float32)
    pad[2:-2, 2:-2] = v
    nb = np.stack([pad[2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w] for dx, dy in SCHEMES[scheme]])
    return v - np.nanmean(nb, axis=0)


def _shifted_or(mask: np.ndarray, scheme: str) -> np.ndarray:
    """``mask`` and every sensel that has a ``mask`` sensel among its ``scheme`` neighbours."""
    h, w = mask.shape
    out = mask.copy()
    for dx, dy in SCHEMES[scheme]:
        out[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)] |= \
            mask[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
    return out


def _median(a: np.ndarray) -> np.ndarray:
    """Median over the last axis of a 2-d array, NaN (missing) values left out; NaN where none is left."""
    a = np.sort(a, axis=-1)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=-1)
    lo = np.take_along_axis(a, (np.maximum(n - 1, 0) // 2)[:, None], -1)[:, 0]
    hi = np.take_along_axis(a, (n // 2)[:, None], -1)[:, 0]
    return np.where(n > 0, (lo + hi) / 2, np.nan)


def window_sigma(r: np.ndarray, excluded: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Robust sigma (1.4826 MAD) of the residual ``r`` of each position's colour in a ``WINDOW`` window,
    the ``excluded`` sensels left out."""
    half = WINDOW // 4  # in sensels of one colour: 33 px -> 8 each side
    out = np.full(len(xs), np.nan, np.float32)
    masked = np.where(excluded, np.nan, r).astype(np.float32)
    for py in (0, 1):
        for px in (0, 1):
            sel = np.flatnonzero((ys % 2 == py) & (xs % 2 == px))
            if not len(sel):
                continue
            plane = np.pad(masked[py::2, px::2], half, constant_values=np.nan)
            win = np.lib.stride_tricks.sliding_window_view(plane, (2 * half + 1, 2 * half + 1))
            vals = win[ys[sel] // 2, xs[sel] // 2].reshape(len(sel), -1)
            med = _median(vals)
            out[sel] = MAD_SIGMA * _median(np.abs(vals - med[:, None]))
    return out


def read_frames(folder: Path, truth: dict):
    """Each frame's raw mosaic (float32 DN), in the truth's order."""
    import rawpy

    for name in truth["files"]:
        with rawpy.imread(str(folder / name)) as raw:
            yield raw.raw_image_visible.astype(np.float32)


@dataclass
class Measured:
    """All planted sensels in a row (defect after defect); per sensel and, where (frames, n), per frame.

    ``frac``, ``tau2`` and ``sigma`` belong to the residual the oracle uses (across a line for a
    line's sensels); ``frac4`` and ``sigma4`` to the 4-neighbour residual (``z_indep``).
    """

    owner: np.ndarray  # index of the defect in the truth
    frac: np.ndarray
    tau2: np.ndarray
    frac4: np.ndarray
    base: np.ndarray  # (frames, n): healthy level above black
    sigma: np.ndarray  # (frames, n)
    sigma4: np.ndarray  # (frames, n)


def _neighbours(xs, ys, scheme, w, h, owner_map, ids, planted):
    """For each sensel, (n_nb, n) arrays: its ``scheme`` neighbours, clipped coordinates, inside the
    image, in the same defect, and healthy (inside and not planted)."""
    d = np.array(SCHEMES[scheme])
    nx, ny = xs[None, :] + d[:, :1], ys[None, :] + d[:, 1:]
    inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
    nx, ny = np.clip(nx, 0, w - 1), np.clip(ny, 0, h - 1)
    same = inside & (owner_map[ny, nx] == ids[None, :])
    return nx, ny, inside, same, inside & ~planted[ny, nx]


def measure(folder: Path, truth: dict) -> Measured:
    """Read the frames once: each planted sensel's healthy level and residual noise in every frame."""
    w, h = truth["size"]
    black = float(truth["black_level"])
    per = [sensels(t) for t in truth["defects"]]
    xs = np.concatenate([p[0] for p in per]).astype(np.int64)
    ys = np.concatenate([p[1] for p in per]).astype(np.int64)
    ids = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(per)])
    planted = np.zeros((h, w), bool)
    planted[ys, xs] = True
    owner_map = np.full((h, w), -1, np.int64)
    owner_map[ys, xs] = ids
    scheme = np.array([t["kind"] if t["kind"] in LINE_KINDS else "point" for t in truth["defects"]])[ids]
    touched = {s: _shifted_or(planted, s) for s in SCHEMES}  # sensels whose residual includes a planted one

    n = len(xs)
    frac, tau2 = np.ones(n), np.zeros(n)
    nbs = {}  # scheme -> (positions, neighbour coordinates, which to take the base from)
    for s in SCHEMES:
        at = np.flatnonzero(scheme == s)
        if not len(at):
            continue
        nx, ny, inside, same, healthy = _neighbours(xs[at], ys[at], s, w, h, owner_map, ids[at], planted)
        frac[at] = 1 - same.sum(0) / np.maximum(inside.sum(0), 1)
        tau2[at] = PRNU**2 * (1 + 1 / np.maximum(inside.sum(0), 1))
        nbs[s] = (at, nx, ny, np.where(healthy.any(0), healthy, inside))  # all planted: take any
    _, _, inside4, same4, _ = _neighbours(xs, ys, "point", w, h, owner_map, ids, planted)
    frac4 = 1 - same4.sum(0) / np.maximum(inside4.sum(0), 1)

    frames = len(truth["files"])
    base = np.empty((frames, n), np.float32)
    sigma = np.empty((frames, n), np.float32)
    sigma4 = np.empty((frames, n), np.float32)
    for f, v in enumerate(read_frames(folder, truth)):
        r4 = residual(v)
        sigma4[f] = window_sigma(r4, touched["point"], xs, ys)
        for s, (at, nx, ny, use) in nbs.items():
            base[f, at] = np.nanmean(np.where(use, v[ny, nx], np.nan), axis=0) - black
            sigma[f, at] = sigma4[f, at] if s == "point" else window_sigma(residual(v, s), touched[s], xs[at],
                                                                          ys[at])
    return Measured(ids, frac, tau2, frac4, base, np.maximum(sigma, SIGMA_FLOOR), np.maximum(sigma4, SIGMA_FLOOR))


def moments(t: dict, meta: list[dict], base: np.ndarray, span: float, black: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and mean square of a defect's signal ``s_f`` at its sensels, each (frames, its sensels)."""
    exposure = np.array([m["exposure"] for m in meta])[:, None]
    scale = np.array([m["iso"] for m in meta])[:, None] / 100
    nr = np.array([bool(m.get("nr")) for m in meta])[:, None]
    unix = np.array([m["unix"] for m in meta])[:, None]
    kind = t["kind"]
    if kind in ("hot", *LINE_KINDS):
        since = t.get("since_unix")
        dark = (t.get("rate") or 0.0) * exposure * scale * (unix >= since if since is not None else 1.0)
        excess = dark + (t.get("offset") or 0.0)
        light = np.minimum(span, base + excess)
        s = np.where(nr, light - np.minimum(span, excess), light) - base
    elif kind == "dead":
        s = (t["gain"] - 1.0) * np.maximum(base, 0.0)
    elif kind == "stuck":
        s = t["value"] - black - base
    elif kind == "noisy":
        step = t["step"] * scale + 0 * base
        room = np.maximum(span - base, 0.0)  # the value clips at white
        p = t.get("p_high") or 0.0
        mode = t.get("mode") or "rts1"
        if mode == "gaussian":
            return 0 * step, step * step
        if mode == "rts2":  # +step/2 with p, -step/2 otherwise
            up, down = np.minimum(step / 2, room), step / 2
            return p * up - (1 - p) * down, p * up * up + (1 - p) * down * down
        if mode == "rts3":  # two traps, each high with p: 0, step or 2 step
            one, two = np.minimum(step, room), np.minimum(2 * step, room)
            return 2 * p * (1 - p) * one + p * p * two, 2 * p * (1 - p) * one**2 + p * p * two**2
        one = np.minimum(step, room)
        return p * one, p * one * one
    else:
        raise ValueError(f"unknown planted kind {kind!r}")
    return s, s * s


def oracle_z(folder: Path, truth: dict) -> list[tuple[float, float]]:
    """``(z, z_indep)`` of every planted defect, in the truth's order (see the module docstring)."""
    m = measure(folder, truth)
    black = float(truth["black_level"])
    span = float(truth["white_level"]) - black
    out = []
    for i, t in enumerate(truth["defects"]):
        at = np.flatnonzero(m.owner == i)
        base, sigma = m.base[:, at], m.sigma[:, at]
        mean, square = moments(t, truth["frames_meta"], base, span, black)
        indep = np.sum(m.frac4[at] ** 2 * square / m.sigma4[:, at] ** 2)
        # per sensel: s^T C^-1 s with C = diag(D) + tau^2 b b^T, b = base (the PRNU term), and for
        # flicker its expectation: E[(sum s b / D)^2] = (sum mean b / D)^2 + sum (E[s^2] - mean^2) (b / D)^2
        mean, square = m.frac[at] * mean, m.frac[at] ** 2 * square
        tau2 = m.tau2[at]
        rest = np.maximum(sigma**2 - tau2 * base**2, sigma**2 / 4)
        sb = np.sum(mean * base / rest, 0) ** 2 + np.sum((square - mean**2) * (base / rest) ** 2, 0)
        z2 = np.sum(square / rest, 0) - tau2 * sb / (1 + tau2 * np.sum(base**2 / rest, 0))
        out.append((float(math.sqrt(max(float(np.sum(z2)), 0.0))), float(math.sqrt(indep))))
    return out


def cached_oracle_z(folder: Path, truth: dict, cache: Path) -> list[tuple[float, float]]:
    """``oracle_z``, kept as JSON at ``cache`` for the same collection (version, seed, frames, defects)."""
    return cached_z(truth, cache, ORACLE_VERSION, lambda: oracle_z(folder, truth))


def cached_z(truth: dict, cache: Path, version: int, compute) -> list[tuple[float, float]]:
    """An oracle's ``(z, z_indep)`` per planted defect (``compute()``), kept as JSON at ``cache`` and
    read back for the same collection and oracle ``version``."""
    key = {"oracle": version, "collection": truth.get("version"), "seed": truth.get("seed"),
           "size": truth.get("size"), "files": len(truth["files"]), "defects": len(truth["defects"])}
    if cache.is_file():
        try:
            got = json.loads(cache.read_text())
            if got.get("key") == key:
                return [(float(d["z"]), float(d["z_indep"])) for d in got["defects"]]
        except (ValueError, KeyError, TypeError):
            pass
    z = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"kind": t["kind"], "x": t["x"], "y": t["y"], "z": round(a, 3), "z_indep": round(b, 3)}
            for t, (a, b) in zip(truth["defects"], z)]
    head = json.dumps({"key": key, "detectable_z": DETECTABLE_Z})[:-1]
    cache.write_text(head + ', "defects": [\n' + ",\n".join(json.dumps(r) for r in rows) + "\n]}\n")
    return z


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="synthetic raw collections (folders with truth.json)")
    args = ap.parse_args(argv)
    for folder in map(Path, args.folders):
        truth = json.loads((folder / "truth.json").read_text())
        keys = ("rate", "offset", "step", "p_high", "length", "since")
        print_oracle(folder.name, truth, oracle_z(folder, truth), keys)
    return 0


def print_oracle(name: str, truth: dict, z: list[tuple[float, float]], keys: tuple[str, ...],
                 what: str = "planted defects") -> None:
    """How many planted defects reach ``DETECTABLE_Z``, then each with its z and its truth's ``keys``,
    weakest first; the ones an oracle did not assess (NaN) left out."""
    assessed = [(t, p) for t, p in zip(truth["defects"], z) if not math.isnan(p[0])]
    print(f"{name}: {sum(a >= DETECTABLE_Z for _, (a, _) in assessed)} of {len(assessed)} {what} with oracle z "
          f">= {DETECTABLE_Z:g} ({sum(b >= DETECTABLE_Z for _, (_, b) in assessed)} by z_indep)")
    for t, (a, b) in sorted(assessed, key=lambda p: p[1][0]):
        bits = [f"{k} {t[k]}" for k in keys if t.get(k)]
        print(f"  z {a:9.1f} (indep {b:9.1f})  {t['kind']:6s} {t.get('mode') or '':8s} ({t['x']},{t['y']}) "
              + ", ".join(bits))


if __name__ == "__main__":
    sys.exit(main())
