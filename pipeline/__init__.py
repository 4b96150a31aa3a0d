"""hotpixels: find hot, stuck, dead and noisy pixels from per-pixel statistics over many frames.

The public face of the package; see the README for the command line.
"""

__version__ = "0.1.0"

from .config import Config, ConfigError, load as load_config  # noqa: E402
from .scan import NoImagesError, ScanResult, scan  # noqa: E402
from .stats import PixelStats  # noqa: E402
from .store import read_stats  # noqa: E402

__all__ = ["Config", "ConfigError", "NoImagesError", "PixelStats", "ScanResult", "load_config", "read_stats", "scan"]
