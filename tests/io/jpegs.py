"""Sample JPEGs for the reader tests: a scene where chroma upsampling and the IDCT both matter."""

import io

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 61, 86  # not square (a rotation would show) and not multiples of the 8/16-pixel MCU


def scene(seed: int = 0) -> np.ndarray:
    """Gradients, edges and noise: chroma upsampling and the IDCT both matter for it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([x * 3, y * 4, (x * y) % 256], -1) + rng.integers(-50, 50, (HEIGHT, WIDTH, 3))
    rgb[20:30, 10:50] = [250, 10, 40]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def pillow_jpeg(pixels: np.ndarray, mode: str | None = None, **options) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=options.pop("quality", 92), **options)
    return buffer.getvalue()


def simplejpeg_jpeg(pixels: np.ndarray, subsampling: str) -> bytes:
    """Subsamplings Pillow cannot write; simplejpeg is imported only by the cases that use it."""
    import simplejpeg

    return simplejpeg.encode_jpeg(pixels, quality=90, colorsubsampling=subsampling)


def orientation_6() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a viewer would show it WIDTH tall
    return exif.tobytes()


CASES = {
    "rgb-420": lambda: pillow_jpeg(scene(), subsampling="4:2:0"),
    "rgb-422": lambda: pillow_jpeg(scene(), subsampling="4:2:2"),
    "rgb-444": lambda: pillow_jpeg(scene(), subsampling="4:4:4"),
    "rgb-440": lambda: simplejpeg_jpeg(scene(), "440"),
    "rgb-411": lambda: simplejpeg_jpeg(scene(), "411"),
    "gray": lambda: pillow_jpeg(scene()[..., 1]),
    "progressive": lambda: pillow_jpeg(scene(1), progressive=True),
    "optimized-q100": lambda: pillow_jpeg(scene(2), optimize=True, quality=100),
    "exif-orientation-6": lambda: pillow_jpeg(scene(3), exif=orientation_6()),
}
