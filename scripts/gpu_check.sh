#!/usr/bin/env bash
# GPU smoke and capacity check (scripts/gpu_check.py): a random-init Qwen3-4B-shaped model in bf16,
# one LCLR epoch, a few CRAFT GRPO steps with LoRA, full fine-tuning in bf16 weights and full
# fine-tuning in fp32 weights with bf16 autocast; prints peak GPU memory, tokens/s and step time
# and writes gpu_check.json to $OUT (default build/gpu_check).
# No network. Budget: under 8 minutes on one H100 (the run is cut at 470 s).
#
#   scripts/gpu_check.sh                          # the paper shape
#   scripts/gpu_check.sh --shape tiny --steps 2   # extra arguments go to gpu_check.py
#
# Packages: if .whl/ holds wheels (pinned trl, datasets, transformers and what they need that a
# bare GPU image lacks), they are installed into /tmp/site and put first on PYTHONPATH;
# otherwise the repository's .venv is used when present, else python3 as it is. To make .whl/ for an
# offline Python 3.12 x86-64 image that has torch but not trl or datasets, on a machine with network:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl trl==1.16.0 datasets==5.2.0 transformers==5.24.0 \
#       peft==0.21.2 dill multiprocess regex
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
