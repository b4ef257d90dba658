"""LCLR (paper §4.1): a projection head and a safety head on the frozen policy's latent.

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.heads`          :class:`LCLRHeads` (fit, score, save with their latent), the config
:mod:`.losses`         L_proto, InfoNCE, L_cal and the released code's extra terms
:mod:`.metrics`        held-out accuracy, AUROC, calibration and prototype geometry
=====================  ==================================================================
"""

from craft.lclr.heads import VARIANTS, LCLRConfig, LCLRHeads, load_heads, save_heads
from craft.lclr.metrics import evaluate_heads

__all__ = ["VARIANTS", "LCLRConfig", "LCLRHeads", "evaluate_heads", "load_heads", "save_heads"]
