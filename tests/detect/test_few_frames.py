"""Few frames: 6 plain darks of a million sensels give no false defect.

Over 6 frames a slope's t statistic has Student's tails and a sample variance chi-square's long
lower tail; read as normal z's they made 589 "hot" and 25 "stuck" sensels out of Gaussian noise
(``detect/nulls.py``). Planted defects are still found."""

from __future__ import annotations

import numpy as np
import tifffile

from pipeline import Config, scan
from pipeline.defect import read_csv

QUIET = {"progress": False, "log": lambda m: None}


def test_six_plain_darks_of_a_megapixel_give_only_the_planted_defects(tmp_path, local_client):
    rng = np.random.default_rng(11)
    folder = tmp_path / "darks"
    folder.mkdir()
    for i in range(6):  # no exposure time: each frame's mean level stands in for it
        frame = rng.normal(1000 + 3 * i, 10, (1000, 1000))
        frame[300, 400] += 150 * i  # dark current: rises with the frames' dark level
        frame[700, 123] = 1800  # the same value in every frame, 800 DN above the rest
        tifffile.imwrite(folder / f"dark_{i}.tif", frame.round().astype(np.uint16))
    scan([str(folder)], tmp_path / "out", Config(), client=local_client, **QUIET)
    found = {(d.x, d.y): d.kind for d in read_csv(tmp_path / "out" / "defects.csv")}
    # 6 identical values are not improbable enough to call "stuck" at z 7 (chi-square over 5
    # degrees of freedom: z -5.2 for a variance of 1/12 against 100); its level says hot
    assert found == {(400, 300): "hot", (123, 700): "hot"}
