"""Exact, mergeable per-pixel statistics: numpy and numba only, no dask, no file formats.

``accumulate`` adds frames to a partition's exact integer sums (``IntegerSums``);
``IntegerSums.to_stats`` turns them into float64 moments (``PixelStats``); ``merge_partials``
and ``PixelStats.merge`` join partitions exactly (integers) or with Chan's formula (floats).
"""

from .accumulate import accumulate, accumulate_numpy, row_neighbours, stats_of_stack
from .moments import COUNTS, RESIDUAL_SCALE, STREAMS, PixelStats, count_dtype, merge_counts
from .sums import IntegerSums, max_batch_frames, merge_partials, sum_types

__all__ = ["COUNTS", "RESIDUAL_SCALE", "STREAMS", "IntegerSums", "PixelStats", "accumulate", "accumulate_numpy",
           "count_dtype", "max_batch_frames", "merge_counts", "merge_partials", "row_neighbours", "stats_of_stack",
           "sum_types"]
