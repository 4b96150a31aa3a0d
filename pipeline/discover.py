"""Inputs -> file list -> groups of files that may be stacked together.

Expansion only lists names (cheap, done on the client). Headers are read by ``probe`` on
the workers, so a cluster opens files from its own storage and 100k headers are read in
parallel. Grouping never mixes sensors: make, model, serial, raw-ness, shape and dtype
must all agree.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, replace

from .io import Header, file_stat, format_for, is_remote, is_supported, read_headers, split_ref
from .io.source import hdu_ref
from .layout import SensorLayout
from .records import failure_reason

GLOB_CHARS = set("*?[")


@dataclass
class Expansion:
    paths: list[str]
    problems: list[tuple[str, str]]  # (input, why it gave no file)


def expand(inputs: list[str], hdu: str | None = None) -> Expansion:
    """Files, folders (recursively, image/raw extensions only), quoted globs and fsspec URLs.
    With ``hdu``, each FITS file is named with the HDU its reader must read (``hdu_ref``)."""
    seen: dict[str, None] = {}
    problems: list[tuple[str, str]] = []
    for item in inputs:
        found = _expand_remote(item) if is_remote(item) else _expand_local(item)
        if not found:
            why = "glob matched no image" if GLOB_CHARS & set(item) else "no such file or directory"
            problems.append((item, why))
        for path in found:
            seen.setdefault(hdu_ref(path, hdu) if hdu is not None and _is_fits(path) else path, None)
    return Expansion(list(seen), problems)


def _is_fits(path: str) -> bool:
    fmt = format_for(path)
    return fmt is not None and fmt.name == "fits"


def _expand_local(item: str) -> list[str]:
    item = item[len("file://"):] if item.startswith("file://") else item
    if GLOB_CHARS & set(item):
        out: list[str] = []
        for match in sorted(glob.glob(item, recursive=True)):
            out.extend(_walk(match) if os.path.isdir(match) else [match] if is_supported(match) else [])
        return out
    if os.path.isdir(item):
        return _walk(item)
    return [item] if os.path.lexists(item) else []  # a named file is tried whatever its extension


def _walk(folder: str) -> list[str]:
    out: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        out.extend(os.path.join(root, f) for f in sorted(files) if is_supported(f))
    return out


def _expand_remote(url: str) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    try:
        if GLOB_CHARS & set(root):
            matches = sorted(fs.glob(root))
        elif fs.isdir(root):
            matches = sorted(p for p in fs.find(root) if is_supported(p))
        else:
            return [url] if fs.exists(root) else []
    except (FileNotFoundError, OSError):
        return []
    return [fs.unstrip_protocol(p) if "://" not in p else p for p in matches if is_supported(p)]


def probe(paths: list[str]) -> list[Header]:
    """Read the headers of a batch of files (runs on a worker): one per frame, so a video or a
    FITS cube gives one per frame, named by its frame reference."""
    return [h for p in paths for h in read_headers(p)]


def probe_like(paths: list[str], template: Header) -> list[Header]:
    """For a set the user says is uniform: stat each file, assume the template's layout.

    Nothing is opened; a file that does not match is still caught when it is decoded. A file's
    shooting data are its own, and unread: its exposure, ISO, date and temperature are unknown
    (the template's would be another frame's, written into files.csv and fitted as this one's).
    Where the template is a frame of a video or a cube, each file's frame count is its own, so
    each file's header is read.
    """
    if split_ref(template.path)[1] is not None:
        return probe(paths)
    out = []
    unread = replace(template, exposure=None, iso=None, time=None, temperature=None)
    for path in paths:
        try:
            size, mtime = file_stat(path)
            out.append(replace(unread, path=path, size=size, mtime=mtime))
        except OSError as exc:
            out.append(Header(path, error=failure_reason(exc)))
    return out


@dataclass
class Group:
    headers: list[Header]

    @property
    def first(self) -> Header:
        return self.headers[0]

    def describe(self) -> str:
        h = self.first
        shape = "x".join(str(s) for s in h.shape)
        who = f" {h.camera}" if h.camera else ""
        serial = f" #{h.serial}" if h.serial else ""
        mosaic = f" {h.layout.name}" if h.layout.mosaic and not h.raw else ""  # declared, or read from the frames
        gain = f" GAIN {h.unconverted_gain:g}" if h.unconverted_gain is not None else ""
        return f"{shape} {h.dtype}{' raw' if h.raw else ''}{mosaic}{who}{serial}{gain}"


def group(headers: list[Header]) -> list[Group]:
    """Readable headers grouped by sensor and layout, largest group first (ties: input order)."""
    groups: dict[tuple, list[Header]] = {}
    for h in headers:
        if not h.error:
            groups.setdefault(h.group_key(), []).append(h)
    return sorted((Group(v) for v in groups.values()), key=lambda g: -len(g.headers))


def apply_cfa(headers: list[Header], cfa: str | None) -> list[Header]:
    """The user's ``--cfa`` (a Bayer pattern name) given to the gray files that do not declare a
    layout themselves: a mosaic saved as a plain 16-bit PNG or TIFF. A file that declares
    another pattern, or holds several channels, cannot be that mosaic: it is refused with the
    reason, never scanned with a layout it does not have."""
    if not cfa:
        return headers
    layout = SensorLayout.bayer(cfa)
    out = []
    for h in headers:
        if h.error:
            out.append(h)
        elif h.layout.mosaic:
            out.append(h if h.layout.name == layout.name else replace(
                h, error=f"the file declares its own CFA pattern {h.layout.name}, not --cfa {layout.name}"))
        elif len(h.shape) != 2:
            out.append(replace(h, error=f"--cfa {layout.name} names a mosaic (one value per sensel), but this file "
                                        f"has {h.shape[2]} channels"))
        else:
            out.append(replace(h, layout=layout))
    return out


# frames whose values are looked at for a Bayer mosaic saved as gray (``gray_mosaic``)
MOSAIC_LOOKS = 3


def may_be_gray_mosaic(h: Header) -> bool:
    """A gray frame that declares no layout (no CFA tag, no BAYERPAT, no --cfa): it may be a
    Bayer mosaic saved as gray."""
    return not h.raw and not h.layout.mosaic and len(h.shape) == 2


def gray_mosaic(paths: list[str]):
    """The Bayer signature (``stats.bayer_signature``) these gray frames (the scan passes
    ``MOSAIC_LOOKS`` spread over its group) agree on, or None. Run on a worker: it decodes them."""
    from .io import read_pixels
    from .stats.bayer_signature import agreed, signature

    signatures = []
    for path in paths:
        try:
            signatures.append(signature(read_pixels(path)))
        except Exception:  # noqa: BLE001 - a frame that cannot be decoded is skipped by the scan itself
            continue
    return agreed(signatures)


def mosaic_notice(sig, applied: bool = True) -> str:
    """What the scan says of gray frames that look like a Bayer mosaic: that it reads them as the
    first pattern they fit (``applied``: each sensel then meets its own colour's neighbours; red
    and blue only swap names under the other), or, where it must keep them gray (saved stats of
    them as gray to merge into), that a defect hides among other colours' neighbours."""
    one, other = sig.patterns
    look = (f"these gray frames look like a Bayer mosaic saved without its CFA: {sig.describe()}; green is at "
            f"{'(0,1) and (1,0)' if one == 'RGGB' else '(0,0) and (1,1)'}, so the pattern is {one} or {other} "
            f"(red and blue cannot be told apart from the levels)")
    if applied:
        return (f"{look}. Scanned as {one}: each sensel against its own colour's neighbours (--cfa {other} finds "
                f"the same defects, with red and blue named the other way round; --cfa says which)")
    return (f"{look}. The saved statistics to merge into were scanned as gray, so these are too: each sensel is "
            f"compared with neighbours of other colours, which hides defects in lit frames. Scan them afresh "
            f"into another folder, where they are read as {one}")
