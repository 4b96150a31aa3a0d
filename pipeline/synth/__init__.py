"""Synthetic sensor data with known planted defects (for ``make demo``, tests, benchmarks).

Detection quality measured on synthetic data only means something if the data looks like a
real camera's, so this package simulates the whole chain rather than painting dots on noise:

1. **Scene** (``scene``; per frame, all different): gradients, soft blobs, occluding shapes
   with lens-blurred edges, fine textures and stripes, specular highlights and thin lines,
   under a random exposure (some frames dark, some clipped). It is evaluated directly on the
   sensel grid (each sensel sees only its CFA colour), never as full RGB, so memory stays at
   one float32 plane per frame.
2. **Sensor** (``sensor``, ``exposure``): a 2x2 RGGB Bayer mosaic of 12-bit linear sensels
   (black level 256, white 4095) with fixed vignetting and PRNU, dark current (a log-normal
   body whose tail stays clear of the warm-pixel criterion: see ``sensor.build_camera``), shot
   noise whose variance grows with the signal (Gaussian with Poisson's variance: 4x cheaper
   than ``rng.poisson``), and Gaussian read noise. In dark mode (lens cap) there is no scene.
3. **Defects** (``plan``), planted at sensel level and recorded in ``truth.json``: hot (strong
   and weak "warm"), stuck (constant, noiseless), dead (no response, or low-gain "cold") and
   noisy (random telegraph noise, or large extra Gaussian noise).
4. **Camera pipeline** (``in_camera``, ``writers``) for the 8-bit formats: bilinear demosaic,
   white balance, sRGB tone curve, 8-bit RGB (JPEG quality 92, or lossless PNG/TIFF). Mosaic
   formats (``tiff16``, ``png16``, ``dng``) store the raw 12-bit values in 16-bit containers,
   undemosaiced. ``dng`` needs the optional ``pidng``: ``pip install 'hotpixels[synth]'``.

``stack.synthesize`` ties them together and writes the frames and ``truth.json``;
deterministic for a seed (see ``stack``).

``collection.synthesize_collection`` makes a realistic collection over time instead: one
14-bit camera (``physics``) over years, every exposure and ISO its program picks from daylight
to night, lens-cap darks, in-camera noise reduction, defects that behave as real ones do
(``defects``: dark current that scales with exposure and ISO, onsets, telegraph flicker,
partial lines, clusters, border defects, populations) and the shooting data in every file
(``metadata``: EXIF, or DNG tags that LibRaw reads).

``movie.synthesize_movie`` makes an sCMOS movie: a monochrome sensor with a population of
telegraph and Gaussian-noisy sensels, saved as one multi-page TIFF.
"""

from .collection import COLLECTION_MODEL, COLLECTION_VERSION, synthesize_collection
from .in_camera import demosaic_bilinear, develop, develop_levels
from .movie import MOVIE_VERSION, synthesize_movie
from .physics import COLLECTION_SENSOR, ISO_SERIES, SHUTTER_SERIES, CollectionSensor
from .plan import MIN_SPACING, default_defects_per_kind
from .sensor import BLACK_LEVEL, CFA, MAKE, MODEL, SENSOR, WARM_SIGMAS, WHITE_LEVEL, SensorModel, cfa_colour_index
from .stack import TRUTH_VERSION, synthesize
from .writers import FORMATS, MOSAIC_FORMATS

__all__ = [
    "BLACK_LEVEL",
    "WHITE_LEVEL",
    "CFA",
    "COLLECTION_MODEL",
    "COLLECTION_SENSOR",
    "COLLECTION_VERSION",
    "CollectionSensor",
    "FORMATS",
    "ISO_SERIES",
    "MOSAIC_FORMATS",
    "MOVIE_VERSION",
    "MAKE",
    "MODEL",
    "MIN_SPACING",
    "SENSOR",
    "SHUTTER_SERIES",
    "TRUTH_VERSION",
    "WARM_SIGMAS",
    "SensorModel",
    "cfa_colour_index",
    "default_defects_per_kind",
    "demosaic_bilinear",
    "develop",
    "develop_levels",
    "synthesize",
    "synthesize_collection",
    "synthesize_movie",
]
