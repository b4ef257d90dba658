"""GCG adversarial suffixes against the model under test (paper Fig. 4, adaptive attacks).

Greedy Coordinate Gradient (Zou et al. 2023, "Universal and Transferable Adversarial Attacks on
Aligned Language Models", arXiv 2307.15043) optimises a suffix of ``n`` tokens appended to a
harmful goal so that the model's continuation starts with a chosen target string: at every step
the gradient of the target's cross-entropy with respect to the one-hot suffix tokens proposes the
``topk`` most promising replacements per position, ``search_width`` candidates each swap
``n_replace`` positions, and the candidate with the lowest loss becomes the new suffix. The
optimisation itself is the ``nanogcg`` package (GraySwan's reference implementation, used as a
library); this module runs one optimisation per goal and makes what it optimised exactly what
the evaluation sends. Works for any causal LM with a chat template (the organism and the paper
models alike); the caller picks the target (paper scale: JailbreakBench's "Sure, here is ..."
column; organism: the opening of an unsafe reasoning trace).

Deviations from plain ``nanogcg.run``, and why:

- **In-context token filter.** nanogcg keeps a candidate when its suffix re-tokenises to itself
  on its own. Here a candidate is kept only when ``render_prompt(tokenizer, goal + suffix)``,
  tokenised as :func:`craft.evaluate.generate` tokenises it, is *exactly* the token sequence the
  loss was computed on (prompt head + candidate + prompt tail). A BPE can merge the goal's last
  characters with the suffix's first ones; such a candidate would be optimised as one sequence and
  evaluated as another. The default suffix starts every token with a space (``" x" * 10``), so the
  suffix reads as words after the goal.
- **Vocabulary.** Besides nanogcg's non-ASCII tokens, special and added tokens (chat-role
  markers, ``<think>``) and embedding rows past the tokenizer are never proposed: a suffix that
  forged a chat turn would be a template-injection attack, not GCG.
- **No prefix KV cache** (``use_prefix_cache=False``): nanogcg 0.3.0 indexes ``past_key_values``
  as per-layer tuples, and transformers 5 returns a ``DynamicCache`` object, which is not
  subscriptable (a ``TypeError`` on the first step). Without the cache every candidate forward
  re-reads the prompt head: slower, same result.
- **The best suffix seen, the initial one included.** nanogcg returns the best per-step candidate
  (a step may move to a worse suffix); when no step beats the initial suffix, it is returned.
- **Side effects contained.** nanogcg with a seed switches on deterministic algorithms globally
  and reseeds the global RNGs, logs warnings about CPU / float32 through its own ``nanogcg``
  logger and shows a per-step bar; here the deterministic-algorithms switch, the RNG states, the
  logger level and the model's train/eval mode are restored after the call, nanogcg's logger is
  quiet (ERROR) during it, and its bar follows ``progress``. Its per-batch ``gc.collect()`` runs
  with the objects alive before the call frozen (``gc.freeze``): on a small model a full
  collection of a process that has imported transformers otherwise takes most of a step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from unittest import mock

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from craft.config import check_fields, rule
from craft.io import bar_options
from craft.models import render_prompt
from craft.timing import timed

__all__ = ["GCGOutcome", "GCGSettings", "gcg_prompts", "gcg_suffix", "target_loss"]

PLACEHOLDER = "{optim_str}"      # where nanogcg puts the suffix in the user message


@dataclass(frozen=True)
class GCGSettings:
    """GCG hyper-parameters (nanogcg's names). ``suffix_init`` is the initial suffix; its token count
    is the suffix length. ``batch_size``: candidates per forward (None: all ``search_width``).

    The defaults are sized for the organism on two CPU cores (about 0.09 s a step, 2 s a goal);
    GCG's own (Zou et al.; nanogcg's defaults) are 250-500 steps, width 512, top-k 256 and 20
    tokens, for models of billions of parameters on a GPU."""

    num_steps: int = field(default=20, metadata=rule(ge=1))
    search_width: int = field(default=64, metadata=rule(ge=1))
    topk: int = field(default=64, metadata=rule(ge=1))
    n_replace: int = field(default=1, metadata=rule(ge=1))
    suffix_init: str = " x" * 10
    early_stop: bool = False        # stop once a candidate's greedy continuation is the target
    seed: int = 0
    batch_size: int | None = None

    def __post_init__(self):
        check_fields(self)
        if not self.suffix_init.strip():
            raise ValueError("suffix_init must hold at least one non-space character")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")


@dataclass(frozen=True)
class GCGOutcome:
    """One optimisation: ``prompt`` (``goal + suffix``) is the user message to send; ``loss`` the
    best mean target cross-entropy (nats per target token), ``losses`` the best of each step,
    ``initial_loss`` that of the initial suffix."""

    goal: str
    target: str
    suffix: str
    prompt: str
    loss: float
    losses: tuple[float, ...]
    seconds: float
    initial_loss: float = float("nan")


@torch.no_grad()
def target_loss(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, target: str) -> float:
    """Mean teacher-forced cross-entropy of ``target``'s tokens after the chat-templated ``prompt``:
    the quantity GCG minimises, for a prompt as the evaluation sends it."""
    head = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    tail = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + tail], device=model.device)                  # (1, P + T)
    logits = model(input_ids=ids).logits[0, len(head) - 1:-1].float()       # (T, V): position t predicts t + 1
    return float(torch.nn.functional.cross_entropy(logits, ids[0, len(head):]))


def _prompt_ids(tokenizer, goal: str) -> tuple[list[int], list[int]]:
    """The token ids nanogcg puts before and after the suffix: it renders the chat template with
    the placeholder, drops a leading bos text and tokenises the head with special tokens (bos)."""
    text = render_prompt(tokenizer, goal + PLACEHOLDER)
    if tokenizer.bos_token and text.startswith(tokenizer.bos_token):
        text = text.replace(tokenizer.bos_token, "")
    head, tail = text.split(PLACEHOLDER)
    return tokenizer(head)["input_ids"], tokenizer(tail, add_special_tokens=False)["input_ids"]


def _in_context_filter(tokenizer, goal: str, head: list[int], tail: list[int]):
    """nanogcg's ``filter_ids(ids, tokenizer)`` replaced: keep the candidates (rows of ``ids``,
    shape (W, n)) whose prompt, rendered and tokenised as the evaluation does, is head + row + tail."""
    def keep(ids: torch.Tensor, _tokenizer) -> torch.Tensor:
        texts = [render_prompt(tokenizer, goal + s) for s in tokenizer.batch_decode(ids)]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        rows = [i for i, (row, enc) in enumerate(zip(ids.tolist(), encoded)) if enc == head + row + tail]
        if not rows:
            raise RuntimeError("GCG: no candidate suffix survives re-tokenisation in its prompt; "
                               "try another suffix_init or a larger search_width")
        return ids[rows]                                                    # (W', n)
    return keep


def _banned_ids(tokenizer, n_embeddings: int) -> list[int]:
    """Special and added tokens, and embedding rows no token of the tokenizer uses."""
    banned = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    return sorted(banned | set(range(len(tokenizer), n_embeddings)))


@contextlib.contextmanager
def _contained(model, progress: bool):
    """Undo nanogcg's global side effects (see the module docstring) when the block ends."""
    import nanogcg.gcg

    logger = logging.getLogger("nanogcg")
    level, training = logger.level, model.training
    det, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    froze = gc.get_freeze_count() == 0
    bar = partial(tqdm, desc="gcg steps", leave=False, **bar_options(progress))
    try:
        logger.setLevel(logging.ERROR)
        model.eval()
        if froze:
            gc.freeze()
        with torch.random.fork_rng(devices=devices), mock.patch.object(nanogcg.gcg, "tqdm", bar):
            yield nanogcg.gcg
    finally:
        if froze:
            gc.unfreeze()
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        random.setstate(py_state)
        np.random.set_state(np_state)
        logger.setLevel(level)
        model.train(training)


def _import_nanogcg():
    try:
        import nanogcg  # noqa: F401
    except ImportError as e:
        raise ImportError("GCG needs the nanogcg package, installed without its dependencies (it pins an "
                          "older transformers): pip install --no-deps -r requirements-nodeps.txt") from e


def _check_inputs(tokenizer, goal: str, target: str, settings: GCGSettings) -> list[int]:
    """The initial suffix's ids, after checking what nanogcg would trip over later."""
    if not tokenizer.chat_template:
        raise ValueError("GCG needs a tokenizer with a chat template (the prompt is rendered as a chat turn)")
    if PLACEHOLDER in goal:
        raise ValueError(f"goal must not contain nanogcg's placeholder {PLACEHOLDER!r}")
    if not target:
        raise ValueError("target must be a non-empty string")
    init = tokenizer(settings.suffix_init, add_special_tokens=False)["input_ids"]
    if settings.n_replace > len(init):
        raise ValueError(f"n_replace={settings.n_replace} exceeds the suffix length ({len(init)} tokens of "
                         f"suffix_init={settings.suffix_init!r})")
    return init


def gcg_suffix(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, goal: str, target: str,
               settings: GCGSettings = GCGSettings(), progress: bool = False) -> GCGOutcome:
    """Optimise a suffix for one ``goal`` so that the model's continuation of
    ``render_prompt(tokenizer, goal + suffix)`` starts with ``target`` (see the module docstring).

    ``model`` stays frozen (it is put in eval mode for the call and its mode restored); the same
    settings and seed give the same suffix on the same machine. ``progress`` shows nanogcg's
    per-step bar.
    """
    _import_nanogcg()
    init_ids = _check_inputs(tokenizer, goal, target, settings)
    head, tail = _prompt_ids(tokenizer, goal)
    init_suffix = tokenizer.decode(init_ids)
    sent = tokenizer(render_prompt(tokenizer, goal + init_suffix), add_special_tokens=False)["input_ids"]
    if sent != head + init_ids + tail:
        raise ValueError(f"the prompt with suffix_init={settings.suffix_init!r} tokenises differently in context "
                         "than the suffix alone; start the suffix with a space or pick another suffix_init")
    start = time.perf_counter()
    with _contained(model, progress) as gcg_mod:
        init_loss = target_loss(model, tokenizer, goal + init_suffix, target)
        config = gcg_mod.GCGConfig(
            num_steps=settings.num_steps, optim_str_init=settings.suffix_init, search_width=settings.search_width,
            batch_size=settings.batch_size, topk=settings.topk, n_replace=settings.n_replace,
            early_stop=settings.early_stop, seed=settings.seed, use_prefix_cache=False, verbosity="WARNING")
        attack = gcg_mod.GCG(model, tokenizer, config)
        n_embeddings = attack.embedding_layer.num_embeddings
        banned = set(_banned_ids(tokenizer, n_embeddings))
        if attack.not_allowed_ids is not None:
            banned |= set(attack.not_allowed_ids.tolist())
        if settings.topk > n_embeddings - len(banned):
            raise ValueError(f"topk={settings.topk} exceeds the {n_embeddings - len(banned)} tokens a suffix may use")
        attack.not_allowed_ids = torch.tensor(sorted(banned), device=model.device)
        with mock.patch.object(gcg_mod, "filter_ids", _in_context_filter(tokenizer, goal, head, tail)):
            result = attack.run(goal, target)
    seconds = time.perf_counter() - start
    losses = tuple(float(v) for v in result.losses)
    if min(losses) >= init_loss:        # no step beat the initial suffix
        return GCGOutcome(goal, target, init_suffix, goal + init_suffix, init_loss, losses, seconds, init_loss)
    suffix, loss = result.best_string, float(result.best_loss)
    return GCGOutcome(goal, target, suffix, goal + suffix, loss, losses, seconds, init_loss)


@timed("attacks")
def gcg_prompts(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, goals: Sequence[str],
                targets: Sequence[str], settings: GCGSettings = GCGSettings(),
                progress: bool = False) -> list[GCGOutcome]:
    """One :func:`gcg_suffix` per goal (individual, not universal, suffixes), goal ``i`` with seed
    ``settings.seed + i``; ``targets`` holds one target per goal."""
    if isinstance(goals, str) or isinstance(targets, str):
        raise TypeError("goals and targets must be sequences of strings, not one string")
    if len(goals) != len(targets):
        raise ValueError(f"got {len(goals)} goals but {len(targets)} targets; pass one target per goal")
    return [gcg_suffix(model, tokenizer, goal, target, dataclasses.replace(settings, seed=settings.seed + i))
            for i, (goal, target) in enumerate(tqdm(list(zip(goals, targets)), desc="gcg", **bar_options(progress)))]
