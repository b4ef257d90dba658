"""R2L on 2 CPU processes (torchrun, gloo): both ranks train and the run exits cleanly (issue:
multi-GPU). ``accelerate launch --cpu`` would silently run one process (DESIGN §5), so the test
launches ``python -m craft.r2l`` as a GPU cluster would, through torch's own launcher."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from craft import pipeline
from craft.paper_config import load_paper_run

from paper_fixtures import paper_params



def test_two_process_r2l(tmp_path):
    params = paper_params(tmp_path, "qwen3", judge="refusal")
    run = load_paper_run(params)
    pipeline.lclr_stage(run.config, run.run_dir, progress=False)          # heads, single process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "craft.r2l", "--config", str(params), "--variant", "craft", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"rank"')
             or line.startswith('{"stage"')]
    by_rank = {line["rank"]: line["summary"]["craft"] for line in lines}
    assert sorted(by_rank) == [0, 1], proc.stdout[-2000:]
    for summary in by_rank.values():
        assert summary["steps"] == 2 and summary["world_size"] == 2
    out = pipeline.policy_dir(run.run_dir, "craft")
    assert (out / "model.safetensors").is_file() and (out.parent / "result.json").is_file()
    assert yaml.safe_load(params.read_text())["paper"]["r2l"]["steps"] == 2
