#!/usr/bin/env bash
# GPU smoke and capacity check (scripts/gpu_check.py): a random-init Qwen3-4B-shaped model in bf16,
# one LCLR epoch, a few CRAFT GRPO steps with LoRA and with full fine-tuning; prints peak GPU
# memory, tokens/s and step time and writes gpu_check.json to $OUT (default build/gpu_check).
# No network. Budget: under 8 minutes on one H100 (the run is cut at 470 s).
#
#   scripts/gpu_check.sh                          # the paper shape
#   scripts/gpu_check.sh --shape tiny --steps 2   # extra arguments go to gpu_check.py
#
# Packages: if .whl/ holds wheels (pinned trl, datasets, transformers and what they need that a
# bare GPU image lacks), they are installed into /tmp/site and put first on PYTHONPATH;
# otherwise the repository's .venv is used when present, else python3 as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=python3
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

exec timeout 470 "$PY" scripts/gpu_check.py --shape qwen3-4b --out "${OUT:-build/gpu_check}" "$@"
