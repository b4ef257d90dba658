"""Reading the reasoning as it streams (beyond the paper, on its §3 premise).

=====================  ==================================================================
module                 what it holds
=====================  ==================================================================
:mod:`.stream`         p_z of every generated token during ``generate`` (a stopping
                       criterion on the captured latent), alarms and their actions
:mod:`.metrics`        thresholds fixed on benign completions, detection AUROC, lead times
=====================  ==================================================================
"""

from craft.monitor.metrics import (
    alarm_positions,
    auroc,
    auroc_at_fractions,
    calibrate_threshold,
    first_harmful_prefix,
    halfway_threshold,
    lead_times,
    p_z_at_fraction,
)
from craft.monitor.stream import (
    ACTIONS,
    LatentMonitor,
    MonitoredBatch,
    check_heads,
    monitored_generate,
    replay_alarms,
    replay_p_z,
)

__all__ = ["ACTIONS", "LatentMonitor", "MonitoredBatch", "alarm_positions", "auroc", "auroc_at_fractions",
           "calibrate_threshold", "check_heads", "first_harmful_prefix", "halfway_threshold", "lead_times",
           "monitored_generate", "p_z_at_fraction", "replay_alarms", "replay_p_z"]
