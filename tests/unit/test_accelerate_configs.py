"""The accelerate configs of the README's multi-GPU commands load as accelerate reads them."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
EXPECTED = {"multi_gpu": "MULTI_GPU", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp2": "FSDP"}


def test_the_four_configs_exist():
    assert {p.stem for p in CONFIGS.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads(name):
    cfg = ClusterConfig.from_yaml_file(str(CONFIGS / f"{name}.yaml"))     # unknown keys raise
    assert cfg.distributed_type.value == EXPECTED[name]
    assert cfg.mixed_precision == "bf16" and not cfg.use_cpu and cfg.num_processes >= 2
    if name.startswith("deepspeed"):
        assert cfg.deepspeed_config["zero_stage"] == int(name[-1])
    if name == "fsdp2":
        assert cfg.fsdp_config["fsdp_version"] == 2
