"""How large a file may declare itself: one limit, checked before anything is allocated.

A decoder allocates what a header declares, whatever the file holds: a 900-byte PNG may declare
12,000 x 12,000 RGBA (576 MB), a FITS header 100,000 x 100,000 (20 GB), a SER header 2 billion
frames. The sensors this tool is for have 1 to 150 MP (the largest, Phase One's IQ4 150MP, is
14,204 x 10,652), so a frame is refused where it declares more than ``MAX_MEGAPIXELS`` pixels,
or more than ``MAX_VALUES`` values (200 MP of 4 values: RGB, RGBA or a linear raw's colours),
by every probe and every decode before it allocates. The largest frame read is then 800 M
values, 1.6 GB at 16 bits. Pillow's own bomb check is moved to the same limit (``pillow``).
"""

from __future__ import annotations

from math import prod

from .header import Header
from .source import frame_ref

MAX_MEGAPIXELS = 200
MAX_PIXELS = MAX_MEGAPIXELS * 1_000_000  # a frame's height x width
MAX_CHANNELS = 4  # values per pixel counted in MAX_VALUES
MAX_VALUES = MAX_PIXELS * MAX_CHANNELS  # values one decode may allocate
# a file read whole (not by frame) is at most a frame of MAX_VALUES at 32 bits per value: a
# sparse 50 GB file named .png is refused, not read into memory
MAX_FILE_BYTES = MAX_VALUES * 4
# frames a truncated video or cube lists one by one: a header that declares more (a flipped bit in
# a frame count) lists the rest as one line, not as millions of headers
MAX_MISSING_FRAMES = 10_000


class TooLarge(ValueError):
    """A file that declares more than this tool reads: refused before anything is allocated."""


def check_frame(height: int, width: int, channels: int = 1, frames: int = 1) -> None:
    """Refuse (``TooLarge``) a frame of ``height`` x ``width`` pixels of ``channels`` values (and
    ``frames`` of them, for a container read whole) larger than ``MAX_PIXELS`` or ``MAX_VALUES``."""
    pixels = int(height) * int(width)
    if pixels > MAX_PIXELS:
        raise TooLarge(f"declares {width} x {height} pixels ({_megapixels(pixels)} MP): larger than any sensor this "
                       f"tool reads (limit {MAX_MEGAPIXELS} MP)")
    values = pixels * int(channels) * int(frames)
    if values > MAX_VALUES:
        what = f"{frames} images of " if frames != 1 else ""
        raise TooLarge(f"declares {what}{width} x {height} pixels of {channels} values ({values / 1e6:.0f} M "
                       f"values): more than any sensor this tool reads (limit {MAX_MEGAPIXELS} MP of "
                       f"{MAX_CHANNELS} values)")


def _megapixels(pixels: int) -> str:
    """'1600' of 1.6e9 pixels; '200.1' just over the limit, where a whole number would read as it."""
    mp = pixels / 1e6
    return f"{mp:.0f}" if round(mp) > MAX_MEGAPIXELS else f"{mp:.6g}"


def check_shape(shape: tuple[int, ...]) -> None:
    """``check_frame`` of an array shape: (H, W), (H, W, C), or frames first (N, ..., H, W, C)."""
    if len(shape) < 2:
        if prod(shape) > MAX_VALUES:
            raise TooLarge(f"declares {prod(shape)} values: more than any sensor this tool reads")
        return
    if len(shape) == 2:
        check_frame(shape[0], shape[1])
    else:
        check_frame(shape[-3], shape[-2], shape[-1], prod(shape[:-3]))


def missing_frames(path: str, whole: int, declared: int, reason: str) -> list[Header]:
    """The headers of a file's missing frames (``whole`` to ``declared``), each with ``reason``:
    one per frame up to ``MAX_MISSING_FRAMES``, else one for them all, named by the first."""
    if declared - whole <= MAX_MISSING_FRAMES:
        return [Header(frame_ref(path, i), error=reason) for i in range(whole, declared)]
    return [Header(frame_ref(path, whole), error=f"{reason} (frames {whole} to {declared - 1}, listed as one)")]


def pillow():
    """Pillow's ``Image`` module, its bomb limit moved to ours: it warns above ``MAX_PIXELS`` and
    refuses above twice that, so a sensor of 89 to 200 MP (over its default) is read without a
    warning. Every reader checks the declared size itself first, so that this tool's limit and
    reason are what speak; Pillow's refusal stays as a backstop."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    return Image
