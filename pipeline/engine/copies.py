"""Copies of one file among a scan's inputs, found before anything is read for the sums.

The read tasks recognise a copy only within their own partition (the digest of each file is
known once it is read), so two copies that fall in different partitions, segments or waves
would both be counted. Here, before the reduction, the workers compare the files that could be
copies: only files of equal size can be, and of those, only files whose start, middle and end
hash alike (``io.read.sample_digest``, three 64 KiB reads) are hashed whole. JPEGs rarely share a
size, so this costs next to nothing; uncompressed raws, FITS and SER share one size and cost
three small reads each. Frames inside a video or a cube are not files and are not compared.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from distributed import Client

from ..io.read import content_digest, sample_digest
from ..io.source import split_ref

CHUNK = 64  # files per task


def find_copies(client: Client, headers: list[Any]) -> dict[str, str]:
    """Each input whose content equals an earlier input's (in the given order): path -> that
    earlier path."""
    by_size: dict[int, list[str]] = defaultdict(list)
    for h in headers:
        if split_ref(h.path)[1] is None and h.size > 0:
            by_size[h.size].append(h.path)
    alike = [(size, paths) for size, paths in by_size.items() if len(paths) > 1]
    if not alike:
        return {}
    samples = _digests(client, sample_digest, [(p, size) for size, paths in alike for p in paths])
    suspects: dict[tuple[int, str], list[str]] = defaultdict(list)
    for size, paths in alike:
        for p in paths:
            if samples[p]:
                suspects[(size, samples[p])].append(p)
    twins = [p for paths in suspects.values() if len(paths) > 1 for p in paths]
    whole = _digests(client, _whole, [(p, 0) for p in twins])
    first: dict[str, str] = {}
    copies = {}
    for p in twins:  # in input order within each suspect group
        digest = whole[p]
        if not digest:
            continue
        if digest in first:
            copies[p] = first[digest]
        else:
            first[digest] = p
    return copies


def _digests(client: Client, fn, items: list[tuple[str, int]]) -> dict[str, str]:
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    futures = client.map(_chunk, [fn] * len(chunks), chunks, pure=False, key="find-copies")
    out: dict[str, str] = {}
    for part in client.gather(futures):
        out.update(part)
    return out


def _whole(path: str, _size: int) -> str:
    return content_digest(path)


def _chunk(fn, items: list[tuple[str, int]]) -> dict[str, str]:
    """The digests of a chunk of files; '' for a file that cannot be read (its read task says why)."""
    out = {}
    for path, size in items:
        try:
            out[path] = fn(path, size)
        except OSError:
            out[path] = ""
    return out
