"""The simulated camera body: sensor constants, the noise model and the per-sensel fixed pattern.

Everything here is fixed for a camera, whatever the scene or the frame: the 12-bit RGGB mosaic
(black and white level, colour of each sensel), the noise and colour parameters
(``SensorModel``) and the pattern built once per stack (``build_camera``: vignetting, PRNU and
dark current). The rest of the package only reads these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLACK_LEVEL = 256
WHITE_LEVEL = 4095
CFA = "RGGB"
COLOURS = "RGB"
MAKE, MODEL = "Hotpixels", "Synth 1"


@dataclass(frozen=True)
class SensorModel:
    """Noise and colour parameters of the simulated camera (roughly a 12-bit APS-C at base ISO).

    ``gain`` is DN per electron (full well ~15k e-), so shot-noise variance in DN is
    ``gain * signal``. ``wb`` are the white-balance multipliers that the camera applies:
    raw red and blue respond less than green in daylight, as in real sensors.
    """

    gain: float = 0.25
    read_noise: float = 2.0
    dark_current: float = 1.0  # mean DN per frame; per-sensel values are log-normal around it
    dark_spread: float = 0.5  # sigma of the log of that log-normal: the dark-signal non-uniformity (DSNU)
    dark_healthy_sigmas: float = 1.0  # healthy sensels stay within this many dark-frame noise sigmas of the median
    prnu: float = 0.005  # photo-response non-uniformity (relative std of per-sensel gain)
    vignetting: float = 0.25  # relative light loss in the corners
    wb: tuple[float, float, float] = (2.0, 1.0, 1.5)

    def noise_sigma(self, signal_dn: float) -> float:
        """Per-frame temporal noise (DN) of a healthy sensel at a given signal above black."""
        return float(np.sqrt(self.read_noise**2 + self.gain * (signal_dn + self.dark_current)))

    def dark_median(self) -> float:
        """Median dark signal (DN per frame) of a healthy sensel: the centre of its log-normal."""
        return float(self.dark_current * np.exp(-0.5 * self.dark_spread**2))

    def healthy_dark_max(self) -> float:
        """Largest dark signal (DN per frame) of a healthy sensel: the DSNU body's cut (see ``build_camera``)."""
        return self.dark_median() + self.dark_healthy_sigmas * self.noise_sigma(0.0)


SENSOR = SensorModel()
# warm pixels are this many temporal noise sigmas above a healthy sensel, planted uniformly in
# this range: the lower end is the criterion of "warm" (see ``build_camera`` for why no healthy
# sensel meets it)
WARM_SIGMAS = (3.0, 6.0)


def cfa_colour_index(height: int, width: int) -> np.ndarray:
    """RGB index (0=R, 1=G, 2=B) of every sensel of an RGGB mosaic, shape (H, W) uint8."""
    tile = np.array([[0, 1], [1, 2]], dtype=np.uint8)
    return np.tile(tile, ((height + 1) // 2, (width + 1) // 2))[:height, :width]


@dataclass
class Camera:
    """Fixed per-sensel properties of the simulated camera body, shared by every frame."""

    cidx: np.ndarray  # CFA colour index per sensel
    response: np.ndarray  # DN per unit scene radiance at exposure 1: span * PRNU * vignetting / wb
    dark: np.ndarray  # dark current, DN per frame


def flat_field(rng: np.random.Generator, height: int, width: int, vignetting: float,
               prnu: float) -> tuple[np.ndarray, np.ndarray]:
    """Each sensel's response factor (PRNU, one draw of ``rng``) and the lens's vignetting
    (1 at the centre, 1 - ``vignetting`` in the corners), float32 (height, width)."""
    yy = (np.arange(height, dtype=np.float32)[:, None] - (height - 1) / 2) / max(height, width)
    xx = (np.arange(width, dtype=np.float32)[None, :] - (width - 1) / 2) / max(height, width)
    r2 = (xx * xx + yy * yy) / np.float32(max(float(xx[0, 0] ** 2 + yy[0, 0] ** 2), 1e-9))
    vign = 1 - np.float32(vignetting) * r2
    response = 1 + np.float32(prnu) * rng.standard_normal((height, width), dtype=np.float32)
    return response, vign


def build_camera(rng: np.random.Generator, height: int, width: int, sensor: SensorModel) -> Camera:
    """Build the fixed pattern: vignetting, PRNU and dark-signal non-uniformity.

    The dark signal of a healthy sensel is log-normal around ``dark_current`` (DSNU), with the
    body's far tail cut at ``healthy_dark_max``: 1 temporal sigma of a sensel in the dark above
    the median (values beyond are drawn again, a truncated log-normal; 0.8 % of the sensels at
    the defaults). Why: a sensel whose dark signal is ``WARM_SIGMAS[0]`` (3) temporal sigmas
    above its neighbours *is* a warm pixel, physically the same as a planted one, and
    ``truth.json`` has to list every such sensel. The uncut log-normal put 1-2 unlisted
    sensels per 640x480 stack beyond 3 sigma (e.g. 3.3 and 3.4 sigma at seeds 1 and 4, where
    planted warm pixels start at 3.0) and tens beyond 2 sigma: no detector can tell them from
    the planted ones, so they counted as false reports or forced thresholds that miss the
    planted ones. Real sensors look the same way: defect-free sensels form a narrow body and
    hot/warm pixels a separate population (generation centres at lattice defects), here the
    planted one. The gap between the cut (1 sigma) and the warm criterion (3 sigma) is more
    than 5 standard errors of a measured offset for any stack of >= 10 frames, so no sensel is
    "maybe warm": the truth is unambiguous. In photos the cut changes nothing visible (1-3 DN
    under ~15 DN of shot noise).
    """
    cidx = cfa_colour_index(height, width)
    prnu, vign = flat_field(rng, height, width, sensor.vignetting, sensor.prnu)
    inv_wb = (1 / np.asarray(sensor.wb, dtype=np.float32))[cidx]
    response = np.float32(WHITE_LEVEL - BLACK_LEVEL) * prnu * vign * inv_wb
    mu, cut = -0.5 * sensor.dark_spread**2, sensor.healthy_dark_max()
    dark = sensor.dark_current * rng.lognormal(mu, sensor.dark_spread, (height, width))
    while True:  # a truncated log-normal: draw the sensels beyond the cut again
        over = np.flatnonzero(dark > cut)
        if not len(over):
            break
        dark.flat[over] = sensor.dark_current * rng.lognormal(mu, sensor.dark_spread, len(over))
    return Camera(cidx, response, dark.astype(np.float32))
