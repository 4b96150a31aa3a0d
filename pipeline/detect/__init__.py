"""Detection: robust per-sensel defect scores and classes from the final statistics; pure numpy.

Every comparison is between a sensel and its *same-colour* neighbourhood (``planes``): the
same channel of an RGB image, the same CFA sub-plane (stride 2) of a raw mosaic. Locations come
from local medians and scales from local MADs (``filters``, ``scale``), so that one defect, the
scene or vignetting never set the yardstick for another sensel.

One module per physical test (``criteria``: level, variance, flicker, counts), then
``candidates``, ``tails``, ``classify``, ``suppress`` and ``describe``; ``detector`` runs them
over bands of the statistics (``bands``) in two passes, so that a band can be scored anywhere.
"""

from .config import DetectConfig
from .detector import Detection, detect
from .filters import pseudo_median

__all__ = ["DetectConfig", "Detection", "detect", "pseudo_median"]
