"""hotpixels: find hot, stuck, dead and noisy pixels from per-pixel statistics over many frames.

The public face of the package; see the README for the command line.
"""

__version__ = "0.1.0"

from .config import Config, ConfigError, load as load_config  # noqa: E402
from .defect import Defect, read_csv as read_defects  # noqa: E402
from .detect import DetectConfig, Detection, detect  # noqa: E402
from .scan import NoImagesError, ScanError, ScanResult, scan  # noqa: E402
from .stats import PixelStats  # noqa: E402
from .store import read_stats  # noqa: E402
from .synth import synthesize  # noqa: E402

__all__ = ["Config", "ConfigError", "Defect", "DetectConfig", "Detection", "NoImagesError", "PixelStats", "ScanError",
           "ScanResult", "detect", "load_config", "read_defects", "read_stats", "scan", "synthesize"]
