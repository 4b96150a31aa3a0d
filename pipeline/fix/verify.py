"""`hotpixels verify RESULT_DIR FILE...`: the maps applied to real frames as their consumers apply them.

Coordinates are the commonest silent failure with bad pixel maps: dcraw skips a line outside the
image without a word, and a map read with another LibRaw's margins lands beside every defect. So
each entry is checked in each frame:

- **outside**: it lies outside the image its consumer applies it to (dcraw.badpixels: LibRaw's
  visible area; the opcode: the DNG's stage 1);
- **changes nothing**: the consumer leaves the frame as it was there (dcraw.badpixels goes
  through LibRaw itself, rawpy's ``postprocess(bad_pixels_path=...)``, compared with the same
  development without it; the opcode through our reader, ``opcodes.apply_fix_bad_pixels``;
  other formats through ``repair``);
- **not seen**: the defect should show in a frame and does not where the entry points. A stuck
  or dead sensel must hold the level the map recorded (its mean, within 3 of its sigmas or 2
  DN); a hot one must stand above its same-colour neighbours by 3 noise sigmas wherever its
  expected excess (dark rate x exposure x ISO/100, or its recorded offset) is over 6. Flicker
  and onsets after the frame are not tested. An entry not seen in any frame where it should
  show is a problem: a map moved by a margin hits healthy sensels and is caught here.

Every problem is printed; the command exits non-zero if there is one.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..defect import Defect
from ..io import read_headers, read_pixels
from ..io.header import Header
from ..outputs.text import sensels
from ..state.lock import check_free
from .defect_map import DefectMap
from .repair import colour_plane, repair

NOISE_SAMPLE = 4000  # good sensels whose corrections give the frame's noise
SHOW, EXPECT = 3.0, 6.0  # an entry shows at SHOW noise sigmas; it should where EXPECT are expected


@dataclass
class Tally:
    """Per entry, over the frames: where it was due and where it acted (or should show and did)."""

    due: dict[Any, int] = field(default_factory=dict)
    done: dict[Any, int] = field(default_factory=dict)

    def add(self, key: Any, acted: bool) -> None:
        self.due[key] = self.due.get(key, 0) + 1
        self.done[key] = self.done.get(key, 0) + int(acted)

    def never(self) -> list[Any]:
        """The entries that never acted in a frame where they were due."""
        return sorted(k for k, n in self.due.items() if n and not self.done.get(k, 0))


def verify(result_dir: str | Path, files: list[str], log: Callable[[str], None] = print) -> list[str]:
    """Every problem found (also logged), empty when every entry lands and acts."""
    folder = Path(result_dir)
    check_free(folder)
    defect_map = DefectMap.load(folder)
    problems: list[str] = []
    seen, libraw, opcode = Tally(), Tally(), Tally()
    # a video, a FITS cube or a TIFF stack is each of its frames
    for header in (h for file in files for h in read_headers(file)):
        path = header.path
        why = defect_map.mismatch(header)
        if why:
            problems.append(f"{path}: not a frame of the map's sensor: {why}")
            continue
        defects, _ = defect_map.in_frame(header.time)
        entries = {(d.x, d.y): d for d in sensels(defects, defect_map.stride)}
        pixels = read_pixels(path)
        if header.raw and (folder / "dcraw.badpixels").exists():
            problems += _through_libraw(path, folder / "dcraw.badpixels", header, pixels.shape[:2], libraw)
        if header.raw and path.lower().endswith(".dng"):
            problems += _opcode(path, opcode)
        corrections, noise = _corrections(pixels, defect_map, entries)
        for (x, y), d in entries.items():
            value = float(np.mean(pixels[y, x]))
            shows, expected = _shows(d, value, corrections[(x, y)], noise, header)
            if expected:
                seen.add((y, x), shows)
        log(f"{path}: {len(entries)} entries, noise {noise:.3g} DN per sensel")
    problems += [f"dcraw.badpixels {x} {y}: LibRaw changes nothing there in any of the {libraw.due[(y, x)]} frames "
                 "where it applies" for y, x in libraw.never()]
    problems += [f"opcode {what} changes nothing in any of the {opcode.due[(what,)]} frames"
                 for (what,) in opcode.never()]
    unseen = seen.never()
    problems += [f"entry x={x} y={y}: not seen in the {seen.due[(y, x)]} frames where it should show (the sensel "
                 "there behaves as its neighbours: is the map moved?)" for y, x in unseen]
    tested = len(seen.due)
    log(f"{tested - len(unseen)} of {tested} entries testable in these frames are seen where the map puts them")
    for p in problems:
        log(f"problem: {p}")
    log("verified: no problem" if not problems else f"{len(problems)} problems")
    return problems


def _corrections(pixels: np.ndarray, defect_map: DefectMap, entries: dict[tuple[int, int], Defect]
                 ) -> tuple[dict[tuple[int, int], float], float]:
    """Each entry's correction (its value minus its same-colour replacement, channels averaged),
    and the noise of that correction at good sensels (1.4826 MAD over a sample)."""
    layout = defect_map.meta.layout
    height, width = pixels.shape[:2]
    colours = colour_plane(layout, height, width)
    period = layout.stride if layout.mosaic else 1
    bad = np.zeros((height, width), bool)
    for x, y in entries:
        bad[y, x] = True
    fixed, _ = repair(pixels, bad, colours, period)
    delta = (pixels.astype(np.float64) - fixed.astype(np.float64))
    delta = delta.mean(axis=-1) if delta.ndim == 3 else delta
    rng = np.random.default_rng(0)
    probe = np.zeros_like(bad)
    ys, xs = rng.integers(2, max(3, height - 2), NOISE_SAMPLE), rng.integers(2, max(3, width - 2), NOISE_SAMPLE)
    probe[ys, xs] = True
    probe &= ~bad
    sample, _ = repair(pixels, probe | bad, colours, period)
    d = pixels.astype(np.float64) - sample.astype(np.float64)
    d = (d.mean(axis=-1) if d.ndim == 3 else d)[probe]
    noise = float(1.4826 * np.median(np.abs(d - np.median(d)))) if d.size else 0.0
    return {xy: float(delta[xy[1], xy[0]]) for xy in entries}, max(noise, 0.5)


def _shows(d: Defect, value: float, correction: float, noise: float, header: Header) -> tuple[bool, bool]:
    """(does the defect show at its entry, should it show in this frame)."""
    if d.kind in ("stuck", "dead"):
        if math.isnan(d.mean):
            return False, False
        return abs(value - d.mean) <= max(3 * (d.std if math.isfinite(d.std) else 0), 2.0), True
    if d.kind not in ("hot", "column", "row"):
        return False, False
    excess = d.residual_mean
    if math.isfinite(d.dark_rate) and d.dark_rate > 0:
        if header.exposure is None:
            return False, False
        gain = (header.iso or 100.0) / 100.0
        excess = d.dark_rate * header.exposure * gain  # dark_rate: DN/s at ISO 100
    if not math.isfinite(excess) or abs(excess) < EXPECT * noise:
        return False, False
    return correction * np.sign(excess) > SHOW * noise, True


def _through_libraw(path: str, badpixels: Path, header: Header, shape: tuple[int, ...], tally: Tally) -> list[str]:
    """dcraw.badpixels through LibRaw: lines outside the visible area; and, into ``tally``, for
    each line due in this frame by its time, whether LibRaw's development changed there (a
    sensel that happens to equal its neighbours' mean in one frame changes nothing in it)."""
    import rawpy

    height, width = shape
    stamp = int(header.time) if header.time is not None else 0
    lines = _dcraw_lines(badpixels)
    problems = [f"dcraw.badpixels: {x} {y} lies outside the {width}x{height} image (LibRaw skips it silently)"
                for x, y, _ in lines if not (0 <= x < width and 0 <= y < height)]
    due = [(x, y) for x, y, t in lines if 0 <= x < width and 0 <= y < height and t <= stamp]
    if not due:
        return problems
    kwargs: dict[str, Any] = {"user_flip": 0, "no_auto_bright": True, "output_bps": 16, "gamma": (1, 1),
                              "use_camera_wb": False, "user_wb": [1, 1, 1, 1], "output_color": rawpy.ColorSpace.raw,
                              "demosaic_algorithm": rawpy.DemosaicAlgorithm.LINEAR}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "badpixels.txt"  # rawpy wants a path it can open; the file as written
        copy.write_bytes(badpixels.read_bytes())
        with rawpy.imread(path) as raw:
            plain = raw.postprocess(rawpy.Params(**kwargs))
        params = rawpy.Params(**kwargs)
        params.bad_pixels = os.fsencode(copy)  # type: ignore[attr-defined] # rawpy keeps a str, its C call wants bytes
        with rawpy.imread(path) as raw:
            fixed = raw.postprocess(params)
    if plain.shape[:2] != (height, width):
        return problems + [f"{path}: LibRaw develops it to {plain.shape[1]}x{plain.shape[0]}, not its visible "
                           f"{width}x{height}: dcraw.badpixels cannot be checked on it"]
    changed = np.any(plain != fixed, axis=-1)
    for x, y in due:
        tally.add((y, x), bool(changed[max(0, y - 1):y + 2, max(0, x - 1):x + 2].any()))
    return problems


def _dcraw_lines(path: Path) -> list[tuple[int, int, int]]:
    """The lines dcraw's bad_pixels() reads: cut at '#', three ints, else skipped."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split("#", 1)[0].split()
        try:
            col, row, when = (int(v) for v in fields[:3])
        except ValueError:
            continue
        if len(fields) >= 3:
            out.append((col, row, when))
    return out


def _opcode(path: str, tally: Tally) -> list[str]:
    """Our FixBadPixelsList in the DNG's OpcodeList1, applied by our reader to stage 1: entries
    outside it; and, into ``tally``, whether each point changed this frame."""
    import rawpy

    from .dng_copy import raw_ifd
    from .opcodes import FixBadPixelsList, apply_fix_bad_pixels, parse_opcode_list

    ifd = raw_ifd(Path(path))
    if not ifd.opcode_list1:
        return []
    problems = []
    with rawpy.imread(path) as raw:
        stage1 = raw.raw_image.copy()
    height, width = stage1.shape[:2]
    for op in parse_opcode_list(ifd.opcode_list1):
        if op.id != 5:
            continue
        fix = FixBadPixelsList.from_params(op.params)
        problems += [f"{path}: opcode point row {r} col {c} lies outside stage 1 ({width}x{height})"
                     for r, c in fix.points if not (0 <= r < height and 0 <= c < width)]
        problems += [f"{path}: opcode rectangle {rect} lies outside stage 1 ({width}x{height})"
                     for rect in fix.rects
                     if not (0 <= rect[0] < rect[2] <= height and 0 <= rect[1] < rect[3] <= width)]
        after = apply_fix_bad_pixels(stage1, fix)
        for r, c in fix.points:
            if 0 <= r < height and 0 <= c < width:
                tally.add((f"point row {r} col {c}",), bool(after[r, c] != stage1[r, c]))
    return problems

