"""Same-colour planes: every comparison in detection is between a sensel and its own colour.

A CFA mosaic has one plane per position of its pattern (4 of stride 2 in Bayer, 36 of stride 6
in X-Trans; one colour each); an RGB image one per channel; a gray image one. The sensor
layout (``pipeline.layout``) decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layout import SensorLayout

# sample spacing of the neighbourhoods in a 3-channel (demosaiced) image: steps over the
# demosaic's and JPEG's smear of a defect into its direct neighbours
RGB_SPACING = 2
# the same for a single-channel image that is not a mosaic: its neighbours are its own samples
GRAY_SPACING = 1


@dataclass(frozen=True)
class Plane:
    """One same-colour plane: the sensor rows/columns ``y0 + step*i``, ``x0 + step*j`` of
    ``channel``, named ``color``."""

    channel: int
    color: str
    y0: int = 0
    x0: int = 0
    step: int = 1

    @property
    def key(self) -> int:
        """A number that tells the planes apart (suppression compares only the same plane in a
        mosaic): its position in the pattern, then its channel."""
        return self.y0 * self.step + self.x0 + max(4, self.step * self.step) * self.channel

    def size(self, height: int, width: int) -> tuple[int, int]:
        """The plane's rows and columns in a sensor of ``height`` x ``width``."""
        return len(range(self.y0, height, self.step)), len(range(self.x0, width, self.step))

    def select(self, array, rows: slice = slice(None)):
        """This plane of a sensor-shaped (H, W[, C]) array, plane rows ``rows`` (sensor rows start
        on this plane's parity, so a band that starts on an even row keeps the pattern)."""
        if self.step == 1:
            sub = array[rows]
            return sub[:, :, self.channel] if array.ndim == 3 else sub
        plane = array[self.y0 :: self.step, self.x0 :: self.step]
        return plane[rows]


def planes(pixel_shape: tuple[int, ...], layout: SensorLayout) -> tuple[list[Plane], bool]:
    """The planes of a sensor, and whether it is a mosaic."""
    if layout.cfa is not None:
        refusal = layout.refusal()
        if refusal:
            raise ValueError(refusal)
        if len(pixel_shape) != 2:
            raise ValueError(f"a CFA pattern needs a 2-D mosaic, got pixel shape {pixel_shape}")
        desc = layout.colors or "RGBG"
        out = []
        n = layout.period
        for oy in range(n):
            for ox in range(n):
                idx = int(layout.cfa[oy][ox])
                color = desc[idx] if 0 <= idx < len(desc) else str(idx)
                out.append(Plane(0, color, oy, ox, n))
        return out, True
    if len(pixel_shape) == 3:
        colors = layout.colors
        names = colors if colors and len(colors) == pixel_shape[2] else "RGBA"[: pixel_shape[2]]
        if len(names) < pixel_shape[2]:
            return [Plane(c, str(c)) for c in range(pixel_shape[2])], False
        return [Plane(c, names[c]) for c in range(pixel_shape[2])], False
    if len(pixel_shape) == 2:
        return [Plane(0, (layout.colors or "L")[:1])], False
    raise ValueError(f"pixel shape must be (H, W) or (H, W, C), got {pixel_shape}")


def spacing(pixel_shape: tuple[int, ...], mosaic: bool) -> int:
    """Sample spacing of the neighbourhoods: 1 in a mosaic's plane, else per image kind."""
    if mosaic:
        return 1
    return RGB_SPACING if len(pixel_shape) == 3 else GRAY_SPACING
