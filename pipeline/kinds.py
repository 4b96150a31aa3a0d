"""The defect kinds: one row each, read by detection, defects.csv, the exports and the report.

A new kind is one row here plus the criterion that finds it (``pipeline.detect.criteria``):
nothing else names kinds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """How one class of defect is named, coded, drawn and handed to other tools.

    ``code`` is its small integer in detection's arrays (0 means "no defect"); ``siril`` is the
    class in a Siril cosmetic-correction list: 'H' (hot-like, replaced by the neighbours'
    average), 'C' (cold-like, by their median), or '' where the sensel's own level decides
    (a stuck sensel above its neighbours is hot-like); ``colour`` marks it in the report;
    ``behaviour`` says in a few words what the sensel does, and ``evidence`` opens the sentence
    of defects.csv's ``detail`` that says why it was called so.
    """

    name: str
    code: int
    colour: str
    siril: str
    behaviour: str
    evidence: str


TABLE: tuple[Kind, ...] = (
    Kind("hot", 1, "#e6194b", "H", "brighter than its neighbours: a fixed offset (warm) or dark current", "brighter"),
    Kind("stuck", 3, "#f58231", "", "sits at one value whatever the light", "stuck"),
    Kind("dead", 2, "#00b7eb", "C", "no or weak response (cold)", "darker"),
    Kind("noisy", 4, "#f032e6", "H", "flickers between levels (random telegraph noise)", "flicker"),
    Kind("column", 5, "#3cb44b", "H", "a run of sensels along a column, brighter or darker together", "column"),
    Kind("row", 6, "#911eb4", "H", "a run of sensels along a row, brighter or darker together", "row"),
)

KINDS: tuple[str, ...] = tuple(k.name for k in TABLE)
BY_NAME: dict[str, Kind] = {k.name: k for k in TABLE}
BY_CODE: dict[int, Kind] = {k.code: k for k in TABLE}


def kind(name: str) -> Kind:
    """The row of ``name``; a ValueError that lists the known kinds otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown defect kind {name!r}; expected one of {KINDS}") from None
