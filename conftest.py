"""Repository-wide pytest configuration (also covers build/check/, where `make nb-check` runs nbval).

- Tests never download: the Hugging Face offline switches are set at import, before any test
  module imports transformers/datasets/huggingface_hub (the Makefile exports them too).
- nbval does not compare rich outputs that embed random ids or versions (after TransformerLens
  demos/conftest.py); PNG/JPEG are already skipped by nbval itself.
"""

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

NBVAL_SKIP_COMPARE = (
    "text/html",
    "application/javascript",
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
)


def pytest_collectstart(collector):
    """Extend nbval's per-notebook list of output types that are never compared."""
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            m for m in NBVAL_SKIP_COMPARE if m not in collector.skip_compare
        )
