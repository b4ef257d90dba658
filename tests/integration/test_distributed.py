"""R2L on 2 CPU processes (torchrun, gloo): both ranks train, only rank 0 writes, and the run exits
cleanly. ``accelerate launch --cpu`` would silently run one process, so the test launches the
``craft`` CLI as a GPU cluster would, through torch's own launcher."""

import json
import os
import subprocess
import sys

import pytest
from paper_fixtures import paper_params

from craft.stages import load_params, open_run
from craft.stages.lclr import lclr_stage

pytestmark = pytest.mark.slow


def test_two_process_r2l(tmp_path):
    params = paper_params(tmp_path, "qwen3", judge="refusal")
    run = open_run(load_params(params), progress=False)
    lclr_stage(run)                                                     # heads, single process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "craft", "r2l", "--config", str(params), "--variant", "craft", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]   # every rank's
    assert proc.returncode == 0, "\n".join(errors[-30:]) + "\n...\n" + proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"rank"')]
    by_rank = {line["rank"]: line["summary"]["craft-seed0"] for line in lines}
    assert sorted(by_rank) == [0, 1], proc.stdout[-2000:]
    for summary in by_rank.values():
        assert summary["steps"] == 2 and summary["world_size"] == 2
    folder = run.r2l_dir("craft", 0)
    assert (folder / "model" / "model.safetensors").is_file() and (folder / "DONE").is_file()
