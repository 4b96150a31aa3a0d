"""``mask.png``: the sensor as an 8-bit image, 255 where any channel is defective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..defect import Defect
from ..state import atomic, place
from .registry import ExportContext, register
from .text import check_xy, distinct_xy


def write_mask_png(defects: Sequence[Defect], shape: Sequence[int], path: place.Where) -> place.Folder:
    """8-bit grayscale PNG of the sensor: 0 = good, 255 = defect in any channel.

    Parameters
    ----------
    defects : sequence of Defect
    shape : (H, W[, C])
        Image shape; only H and W are used.
    path : path-like
        Output ``.png`` file.
    """
    import imageio.v3 as iio

    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), dtype=np.uint8)
    pts = distinct_xy(defects)
    for x, y in pts:
        check_xy(x, y, w, h)
    if pts:
        xy = np.asarray(pts, dtype=np.int64)
        mask[xy[:, 1], xy[:, 0]] = 255
    data = iio.imwrite("<bytes>", mask, extension=".png")
    return atomic.write_bytes(path, data)


class MaskPng:
    name = "mask"
    what = "mask.png, 255 where a sensel is defective"

    def write(self, ctx: ExportContext) -> list[place.Folder]:
        return [write_mask_png(ctx.sensels(), ctx.shape[:2], ctx.out_dir / "mask.png")]


register(MaskPng())
