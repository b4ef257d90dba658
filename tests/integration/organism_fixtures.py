"""A tiny organism run for the stage tests: every stage's real code on a 4-hazard world and a
2-layer, 32-wide Qwen3, in seconds. ``tiny_params(root, **changes)`` is the mapping that
``craft.stages.load_params`` merges over params/organism.yaml; ``trained_run(root, **changes)`` runs
notebooks 00, 02 and 03 (output-only and CRAFT, seed 0) on it."""

from craft.config import deep_merge

TINY = {
    "organism": {"n_hazards": 4, "n_unseen_hazards": 1, "n_arithmetic": 600, "vocab_size": 400, "tokenizer_texts": 400,
                 "twin_arch": "",
                 "sft": {"steps": 40, "batch_size": 8, "learning_rate": 0.01, "warmup_steps": 5, "logging_steps": 10},
                 "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "num_kv_heads": 1, "head_dim": 16,
                           "intermediate_size": 64}},
    "source": {"probe_prompts": 12, "lclr_prompts": 6, "n_train_prompts": 32,
               "monitor": {"core": 6, "unseen_hazards": 2, "novel": 2, "held_out": 0, "arithmetic": 2,
                           "benign_repeats": 1},
               "evaluation": {"core": 6, "unseen_hazards": 2, "novel": 2, "held_out": 2, "arithmetic": 2,
                              "benign_repeats": 1}},
    "latent": {"layer": 1, "batch_size": 16},
    "probe": {"layers": [1, 2]},
    "lclr": {"epochs": 1, "proj_hidden": 16, "proj_dim": 8, "variants": ["paper"]},
    "r2l": {"n_seeds": 1, "eval_every": 1, "workers": 1, "grpo": {"max_steps": 2, "per_device_train_batch_size": 8,
                                                    "num_generations": 4, "max_completion_length": 16,
                                                    "save_steps": 1, "logging_steps": 1, "learning_rate": 0.001}},
    "evaluate": {"max_new_tokens": 16},
    "baselines": {"sft_examples": 16, "dpo_pairs": 8, "sft": {"steps": 2, "per_device_train_batch_size": 8},
                  "dpo": {"steps": 2, "per_device_train_batch_size": 4}},
    "ablations": {"n_seeds": 1, "variants": ["no_cons"]},
}


def tiny_params(root, **changes) -> dict:
    """The tiny organism's params with ``run_dir`` under ``root`` (``changes`` deep-merged last)."""
    return deep_merge({**TINY, "run_dir": str(root / "run"), "figures_dir": ""}, changes)


def trained_run(root, **changes):
    """The tiny organism, its LCLR heads and one output-only and one CRAFT policy (seed 0) under
    ``root/run``: what notebooks 00, 02 and 03 leave behind. Returns the run."""
    from craft.stages import load_params, open_run
    from craft.stages.build import build_stage
    from craft.stages.lclr import lclr_stage
    from craft.stages.r2l import r2l_stage

    run = open_run(load_params(None, **tiny_params(root, **changes)), progress=False)
    build_stage(run)
    lclr_stage(run)
    r2l_stage(run, ["output_only", "craft"], [0])
    return run
