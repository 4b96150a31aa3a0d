"""``mask.png``: 255 exactly at the defective sensels, 0 elsewhere."""

import imageio.v3 as iio
import numpy as np

from pipeline.outputs.mask_png import write_mask_png

from .conftest import H, W, distinct


def test_mask_png(tmp_path, defects):
    p = write_mask_png(defects, (H, W, 3), tmp_path / "mask.png")
    mask = iio.imread(p)
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    ys, xs = np.nonzero(mask)
    assert set(zip(xs.tolist(), ys.tolist())) == distinct(defects)
    assert set(np.unique(mask).tolist()) == {0, 255}
