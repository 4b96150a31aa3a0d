"""The dask graph: delayed batch reads -> an image array -> a custom tree reduction.

Knows nothing of file formats (the reader is passed in) and no statistics beyond calling
``stats.py``. The image array has shape (N, H, W[, C]); each block is one batch of files
(read once, by one task) cut into row tiles. Its frame count per block is unknown (NaN)
until run time, because a file that fails to decode is dropped from its batch and reported
instead of failing the task.

Each block also carries ``halo`` extra rows above and below its tile (reflected at the image
edge), which the chunk function uses only as neighbours for the residual stream. Declared
block shapes are the tile's core rows, which is the shape of the partial statistics the
chunk function returns; the array is internal and only ever consumed by the reduction.

Partials are ``PixelStats`` of one tile: (n, mean, M2) in float64 for two streams, merged
with Chan's formula by ``combine``; memory per task is bounded by the tile, not the sensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .stats import STREAMS, IntegerSums, PixelStats, accumulate, pad_rows_reflect

PLANES = tuple(f"{s}_{m}" for s in STREAMS for m in ("mean", "m2"))

Reader = Callable[[str], tuple[np.ndarray, str]]  # path -> (pixels, content digest)
Status = tuple[str, str, str]  # (path, "used" | "skipped", reason)


class ReadBatch(NamedTuple):
    frames: np.ndarray  # (k_used, *pixel_shape)
    statuses: list[Status]
    digests: dict[str, str]  # path -> content digest, for the files used


def read_batch(paths: list[str], pixel_shape: tuple[int, ...], dtype: str, reader: Reader,
               known: dict[str, str] | None = None) -> ReadBatch:
    """Decode a batch of files; a file that fails or does not match is skipped with a reason.

    ``known`` maps content digests already counted (in saved stats) to the path they were
    counted under: such a file, or a second copy within the batch, is skipped, not counted again.
    """
    from .readers import failure_reason

    frames = np.empty((len(paths), *pixel_shape), dtype)
    statuses: list[Status] = []
    seen = dict(known or {})
    digests: dict[str, str] = {}
    used = 0
    for path in paths:
        try:
            pixels, digest = reader(path)
        except Exception as exc:  # noqa: BLE001 - a bad file never fails the job
            statuses.append((path, "skipped", failure_reason(exc)))
            continue
        if digest and digest in seen:
            statuses.append((path, "skipped", f"already counted: same content as {seen[digest]}"))
        elif pixels.shape != pixel_shape:
            statuses.append((path, "skipped", f"decoded shape {_fmt(pixels.shape)} differs from the group's {_fmt(pixel_shape)}"))
        elif pixels.dtype != np.dtype(dtype):
            statuses.append((path, "skipped", f"decoded dtype {pixels.dtype} differs from the group's {dtype}"))
        else:
            frames[used] = pixels
            used += 1
            statuses.append((path, "used", ""))
            if digest:
                seen[digest], digests[path] = path, digest
    return ReadBatch(frames[:used], statuses, digests)


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def tile_with_halo(batch: ReadBatch, y0: int, y1: int, halo: int) -> np.ndarray:
    """Rows y0-halo .. y1+halo of every frame, reflected where they leave the image."""
    frames = batch.frames
    height = frames.shape[1]
    lo, hi = max(0, y0 - halo), min(height, y1 + halo)
    return pad_rows_reflect(frames[:, lo:hi], halo - (y0 - lo), halo - (hi - y1))


def batch_statuses(batch: ReadBatch) -> tuple[list[Status], dict[str, str]]:
    return batch.statuses, batch.digests


def concat_statuses(parts: list[tuple[list[Status], dict[str, str]]]) -> tuple[list[Status], dict[str, str]]:
    """All files' statuses in input order, and the digests of the files used."""
    return [s for statuses, _ in parts for s in statuses], {p: d for _, digests in parts for p, d in digests.items()}


def row_tiles(height: int, tile_rows: int) -> list[tuple[int, int]]:
    return [(y, min(height, y + tile_rows)) for y in range(0, height, tile_rows)]


def image_array(batches: list[list[str]], pixel_shape: tuple[int, ...], dtype: str, tile_rows: int,
                halo: int, reader: Reader, known: list[dict[str, str]] | None = None) -> tuple[da.Array, Delayed]:
    """The stack as a dask array (one read task per batch) and the files' (statuses, digests).

    ``known[b]`` holds the already-counted digests that batch ``b`` must not count again.
    """
    known = known or [{} for _ in batches]
    token = tokenize(batches, pixel_shape, dtype, tile_rows, halo, reader, known)
    read_name, name, status_name = f"read-files-{token}", f"images-{token}", f"file-status-{token}"
    tiles = row_tiles(pixel_shape[0], tile_rows)
    trailing = (0,) * (len(pixel_shape) - 1)
    dsk: dict = {}
    for b, paths in enumerate(batches):
        dsk[(read_name, b)] = (read_batch, list(paths), tuple(pixel_shape), dtype, reader, known[b])
        dsk[(status_name, b)] = (batch_statuses, (read_name, b))
        for t, (y0, y1) in enumerate(tiles):
            dsk[(name, b, t, *trailing)] = (tile_with_halo, (read_name, b), y0, y1, halo)
    dsk[f"all-{status_name}"] = (concat_statuses, [(status_name, b) for b in range(len(batches))])
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = ((np.nan,) * len(batches), tuple(y1 - y0 for y0, y1 in tiles), *((s,) for s in pixel_shape[1:]))
    images = da.Array(graph, name, chunks, meta=np.empty((0,) * (len(pixel_shape) + 1), dtype))
    return images, Delayed(f"all-{status_name}", graph, layer=name)


def _is_meta(block: np.ndarray) -> bool:
    """dask probes the chunk function with an all-empty array to learn its output type."""
    return all(d == 0 for d in block.shape)


def moments_chunk(block, axis, keepdims, stride: int, halo: int, computing_meta: bool = False):
    """One partition: exact integer sums over the block's frames, then float64 moments."""
    if computing_meta or _is_meta(block):
        return block
    core_shape = (block.shape[1] - 2 * halo, *block.shape[2:])
    return accumulate(IntegerSums.zeros(core_shape), block, stride, halo).to_stats()


def _flatten(parts) -> list[PixelStats]:
    if isinstance(parts, PixelStats):
        return [parts]
    return [p for part in parts for p in _flatten(part)]


def moments_combine(parts, axis, keepdims) -> PixelStats:
    return PixelStats.merge_all(_flatten(parts))


def moments_aggregate(parts, axis, keepdims, computing_meta: bool = False) -> np.ndarray:
    """Final merge of one tile, as planes PLANES stacked on a leading axis."""
    if computing_meta:
        return np.empty((0,) * 4)
    stats = moments_combine(parts, axis, keepdims)
    return np.stack([plane for i in range(len(STREAMS)) for plane in (stats.mean[i], stats.m2[i])])


def stats_planes(images: da.Array, stride: int, halo: int, split_every: int) -> da.Array:
    """(len(PLANES), *pixel_shape) float64: the tree reduction over the frame axis."""
    return da.reduction(
        images,
        chunk=lambda block, axis, keepdims, **kw: moments_chunk(block, axis, keepdims, stride, halo, **kw),
        aggregate=moments_aggregate,
        combine=moments_combine,
        axis=0,
        keepdims=True,
        output_size=len(PLANES),
        concatenate=False,
        split_every=split_every,
        dtype=np.float64,
        meta=np.empty((0,) * images.ndim, np.float64),
        name="pixel-moments",
    )


def planes_to_stats(planes: np.ndarray, n: int) -> PixelStats:
    return PixelStats(n, np.ascontiguousarray(planes[0::2]), np.ascontiguousarray(planes[1::2]))
