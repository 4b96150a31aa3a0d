"""Reports against a synthetic collection's truth: which planted defect each report is.

Shared by ``make demo`` and ``benchmarks/realistic_collections.py``:

- a line (``column`` / ``row``) is reported as one when a report of that kind covers at least
  half of its sensels; single reports on its sensels are its fragments;
- a point report matches a planted defect at its exact sensel (raw mosaics) or within ``tol``
  px (demosaiced formats, where a sensel smears into a blob), nearest first, one to one;
- a report that matches nothing planted is false.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..defect import Defect

LINES = ("column", "row")
# the class a planted kind should be reported as
CLASS_OF = {"hot": "hot", "stuck": "stuck", "dead": "dead", "noisy": "noisy", "column": "column", "row": "row"}


@dataclass
class Match:
    """A planted defect (its truth entry) and what reported it: ``report`` (one record, or None),
    ``fragments`` (single reports on a line's sensels)."""

    truth: dict
    report: Defect | None = None
    fragments: list[Defect] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.report is not None or bool(self.fragments)

    @property
    def right_class(self) -> bool:
        return self.report is not None and self.report.kind == CLASS_OF[self.truth["kind"]]


def line_sensels(t: dict) -> set[tuple[int, int]]:
    """The sensels of a planted or reported column or row: every other one (one CFA colour) from the first."""
    n = int(t.get("length") or 1)
    if t["kind"] == "column":
        return {(t["x"], t["y"] + 2 * i) for i in range(n)}
    return {(t["x"] + 2 * i, t["y"]) for i in range(n)}


def match(truth: dict, defects: list[Defect], tol: int) -> tuple[list[Match], list[Defect]]:
    """Each planted defect with what reported it, and the reports that match nothing (false)."""
    planted = truth["defects"]
    matches = [Match(t) for t in planted]
    used: set[int] = set()
    lines = [i for i, t in enumerate(planted) if t["kind"] in LINES]
    cells = {i: line_sensels(planted[i]) for i in lines}
    for i in lines:
        best = None
        for ri, d in enumerate(defects):
            if d.kind not in LINES or ri in used:
                continue
            cover = len(cells[i] & line_sensels({"kind": d.kind, "x": d.x, "y": d.y, "length": d.length}))
            if cover * 2 >= len(cells[i]) and (best is None or cover > best[0]):
                best = (cover, ri)
        if best:
            matches[i].report = defects[best[1]]
            used.add(best[1])
    pairs = []
    for i, t in enumerate(planted):
        if t["kind"] in LINES:
            continue
        for ri, d in enumerate(defects):
            if ri not in used and d.kind not in LINES:
                dist = max(abs(d.x - t["x"]), abs(d.y - t["y"]))
                if dist <= tol:
                    pairs.append((dist, -d.score, i, ri))
    for _, _, i, ri in sorted(pairs):
        if matches[i].report is None and ri not in used:
            matches[i].report = defects[ri]
            used.add(ri)
    for ri, d in enumerate(defects):
        if ri in used:
            continue
        near = {(d.x + dx, d.y + dy) for dx in range(-tol, tol + 1) for dy in range(-tol, tol + 1)}
        for i in lines:
            if cells[i] & near:
                matches[i].fragments.append(d)
                used.add(ri)
                break
    return matches, [d for ri, d in enumerate(defects) if ri not in used]


def subkind(t: dict) -> str:
    """A planted defect's kind with what sets it apart: ``hot-onset``, ``warm``, ``cold``, the
    telegraph modes (``rts1``, ``rts2``, ``rts3``, ``gaussian``) or ``population``."""
    k = t["kind"]
    if t.get("population"):
        return "population"
    if k == "hot":
        return "warm" if t.get("warm") else "hot-onset" if t.get("since_unix") else "hot"
    if k == "dead":
        return "cold" if t.get("cold") else "dead"
    if k == "noisy":
        return t.get("mode") or "rts1"
    return k


def described(t: dict) -> str:
    """A planted defect in a few words: its kind and what makes it one."""
    kind = t["kind"] if not t.get("mode") else f"{t['kind']} ({t['mode']})"
    if t.get("warm"):
        kind = "hot (warm)"
    if t.get("cold"):
        kind = "dead (cold)"
    return ", ".join([kind, *details(t)])


def details(t: dict) -> list[str]:
    """What makes a planted defect one: its rate, offset, step, length and onset, as they apply."""
    bits = []
    if t.get("rate"):
        bits.append(f"{t['rate']:.4g} DN/s")
    if t.get("offset"):
        bits.append(f"+{t['offset']:.3g} DN")
    if t.get("step"):
        bits.append(f"step {t['step']:.3g} DN in {100 * (t.get('p_high') or 0):.0f}% of frames")
    if t.get("length"):
        bits.append(f"length {t['length']}")
    if t.get("since"):
        bits.append(f"since {t['since']}")
    return bits
