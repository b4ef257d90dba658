"""vLLM rollouts are TRL's: the vLLM fields of ``R2LConfig.grpo`` reach GRPOConfig unchanged (nothing
here needs vllm installed, since TRL imports it only when the trainer starts generating). Also the
checks R2LConfig makes when it is built: ``grpo`` holds GRPOConfig fields only, in range, and never
the keys craft sets itself."""

from pathlib import Path

import pytest

from craft.config import ConfigError, load_yaml
from craft.r2l import GRPO_RESERVED, R2LConfig, grpo_config
from craft.r2l.rewards import variant_weights

PARAMS = Path(__file__).resolve().parents[2] / "params"


def _args(cfg: R2LConfig, output_dir: str, **overrides):
    """GRPOConfig of ``cfg`` with its variant's reward weights (what build_trainer passes)."""
    return grpo_config(cfg, output_dir, variant_weights(cfg.variant, cfg.weights, cfg.task_reward), **overrides)


def test_off_by_default(tmp_path):
    assert not _args(R2LConfig(), str(tmp_path)).use_vllm
    for paper in sorted(PARAMS.glob("paper-*.yaml")):           # the paper's runs: vLLM is opt-in
        grpo = load_yaml(paper)["r2l"]["grpo"]
        assert not _args(R2LConfig(grpo=grpo), str(tmp_path)).use_vllm, paper.name


@pytest.mark.parametrize("mode, url", [("colocate", ""), ("server", "http://localhost:8000")])
def test_modes_are_passed_to_trl(tmp_path, mode, url):
    cfg = R2LConfig(grpo=dict(max_steps=3, use_vllm=True, vllm_mode=mode, vllm_server_base_url=url,
                              vllm_gpu_memory_utilization=0.4))
    args = _args(cfg, str(tmp_path))
    assert args.use_vllm and args.vllm_mode == mode and args.vllm_gpu_memory_utilization == 0.4
    if url:
        assert args.vllm_server_base_url == url


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="grpo.vllm_mode"):
        R2LConfig(grpo=dict(max_steps=3, use_vllm=True, vllm_mode="bogus"))


def test_grpo_fields_pass_through_and_craft_sets_its_own(tmp_path):
    cfg = R2LConfig(variant="no_cons", seed=7, w_lat=0.3, grpo=dict(
        max_steps=5, learning_rate=2e-5, beta=0.0, num_generations=4, per_device_train_batch_size=8,
        temperature=0.7, top_p=0.9, max_completion_length=64, epsilon=0.2, epsilon_high=0.3,
        lr_scheduler_type="constant", save_steps=2, logging_steps=1))
    assert cfg.steps == 5
    args = _args(cfg, str(tmp_path), save_total_limit=1)
    assert (args.max_steps, args.learning_rate, args.beta, args.num_generations) == (5, 2e-5, 0.0, 4)
    assert (args.temperature, args.top_p, args.max_completion_length, args.epsilon_high) == (0.7, 0.9, 64, 0.3)
    assert args.lr_scheduler_type == "constant" and args.save_total_limit == 1
    assert args.output_dir == str(tmp_path) and args.seed == 7 and args.reward_weights == [0.3, 0.4]
    assert args.disable_tqdm and not _args(cfg, str(tmp_path), disable_tqdm=False).disable_tqdm
    assert args.report_to in ([], "none", ["none"]) and args.remove_unused_columns is False
    assert R2LConfig(grpo={"max_steps": 12.0}).steps == 12                 # a YAML float that is an int


@pytest.mark.parametrize("changes, key", [
    (dict(w_lat=-0.1), "w_lat"), (dict(w_cons=float("nan")), "w_cons"), (dict(task_reward=-1.0), "task_reward"),
    (dict(lora_r=0), "lora_r"), (dict(variant="nope"), "variant"),
    (dict(grpo={"max_steps": 3, "beta": -0.01}), "grpo.beta"),
    (dict(grpo={"max_steps": 3, "top_p": 1.5}), "grpo.top_p"),
    (dict(grpo={"max_steps": 3, "temperature": 0.0}), "grpo.temperature"),
    (dict(grpo={"max_steps": 3, "learning_rate": float("nan")}), "grpo.learning_rate"),
    (dict(grpo={"max_steps": 3, "num_generations": "eight"}), "grpo.num_generations"),
    (dict(grpo={"max_steps": 3, "use_vllm": "yes"}), "grpo.use_vllm"),
    (dict(grpo={"max_steps": 3, "steps": 3}), "grpo.steps"),               # the old craft name: not TRL's
    (dict(grpo={"max_steps": 3, "output_dir": "/tmp/x"}), "grpo.output_dir"),
    (dict(grpo={"max_steps": 3, "reward_weights": [1.0]}), "grpo.reward_weights"),
    (dict(grpo={"learning_rate": 1e-5}), "grpo.max_steps"),                # required
    (dict(grpo={"max_steps": 0}), "grpo.max_steps"),
])
def test_invalid_values_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        R2LConfig(**changes)


def test_every_reserved_key_is_refused():
    for key in GRPO_RESERVED:
        with pytest.raises(ConfigError, match=f"grpo.{key}"):
            R2LConfig(grpo={"max_steps": 3, key: None})


def test_vllm_rollouts_leave_the_latents_to_the_reward():
    """With vLLM the policy's own generate never runs, so nothing is captured: no rollout function,
    and the reward's truncated forward computes every latent (and so does capture_latents=False)."""
    from craft.latents import LatentSpec
    from craft.r2l import rollout_for
    from craft.r2l.rollout import CapturingRollout

    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [7]}

    scorer, spec = object(), LatentSpec(1)
    assert isinstance(rollout_for(R2LConfig(), scorer, spec, Tok()), CapturingRollout)
    assert rollout_for(R2LConfig(grpo=dict(max_steps=3, use_vllm=True)), scorer, spec, Tok()) is None
    assert rollout_for(R2LConfig(capture_latents=False), scorer, spec, Tok()) is None
    assert rollout_for(R2LConfig(variant="output_only"), None, None, None) is None
