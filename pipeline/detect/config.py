"""What a user tunes in detection: the thresholds, the stack kind and the resources.

Everything else detection uses is a tuned constant beside the code that uses it, with the
reason for its value (``criteria/*``, ``candidates.py``, ``suppress.py``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..setting import setting


@dataclass
class DetectConfig:
    """Thresholds of :func:`pipeline.detect.detect`. Every score is a robust z (about N(0, 1) on
    a clean sensor), except the range counts', whose threshold comes from a stated null."""

    hot_threshold: float = setting(7.0, "level z above which a sensel is hot (includes weak \"warm\" sensels)")
    dead_threshold: float = setting(7.0, "level z below -this: dead (includes \"cold\": consistently darker)")
    stuck_threshold: float = setting(7.0, "variance z below -this: stuck (or dead when it also gives no signal)")
    noisy_threshold: float = setting(7.0, "residual-variance z above this: noisy (flicker, random telegraph noise)")
    tail_false_alarms: float = setting(0.2, "raise a threshold until clean sensels would pass it this often per "
                                            "image, by the map's own tail (0: off)")
    use_counts: bool = setting(True, "score the range counts (warm and flickering sensels in photos); false: the "
                                     "moments alone")
    counts_false_alarms: float = setting(0.1, "expected false reports per image from the range counts' null: sets "
                                              "their threshold")
    dark_min_sigmas: float = setting(2.0, "raw darks: a hot sensel's offset is at least this x its neighbours' "
                                          "temporal sigma (it shows in single frames)")
    black_level: float | None = setting(None, "raw black level for the signal ratios; null: from the files, else "
                                              "the plane's darkest mean")
    stack_kind: str = setting("auto", "\"photos\", \"darks\", or \"auto\" to decide from the statistics (the report "
                                      "says why)")
    threads: int = setting(0, "threads that score the row stripes of a plane; 0 = one per core, up to 4")
    max_defects: int = setting(200_000, "report at most this many (strongest first); the score maps are complete")
