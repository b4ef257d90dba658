"""vLLM rollouts are TRL's: R2LConfig's vLLM fields reach GRPOConfig unchanged (nothing here needs
vllm installed, since TRL imports it only when the trainer starts generating)."""

import pytest

from craft.r2l import PAPER_DEFAULTS, R2LConfig, grpo_config


def test_off_by_default(tmp_path):
    assert not grpo_config(PAPER_DEFAULTS, str(tmp_path)).use_vllm


@pytest.mark.parametrize("mode, url", [("colocate", ""), ("server", "http://localhost:8000")])
def test_modes_are_passed_to_trl(tmp_path, mode, url):
    cfg = R2LConfig(use_vllm=True, vllm_mode=mode, vllm_server_base_url=url, vllm_gpu_memory_utilization=0.4)
    args = grpo_config(cfg, str(tmp_path))
    assert args.use_vllm and args.vllm_mode == mode and args.vllm_gpu_memory_utilization == 0.4
    if url:
        assert args.vllm_server_base_url == url


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="vllm_mode must be colocate or server"):
        R2LConfig(use_vllm=True, vllm_mode="remote")
