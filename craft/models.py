"""Model loading, prompt rendering and the reasoning/answer split.

Reasoning LMs (DeepSeek-R1 distills, Qwen3) emit ``<think> … </think>`` before
their final answer. CRAFT (arXiv 2603.17305) treats the two parts separately:
§3 defines the latent/contrastive objectives over the *reasoning* trace and the
*answer*, and §6 evaluates the safety of each part on its own. Every judge and
metric in this package therefore goes through :func:`split_reasoning`, whose
rules are the single contract for where reasoning ends and the answer begins.

Deviations from the paper: none. The paper does not spell out how truncated or
malformed generations are split; the conservative rules used here are
documented in :func:`split_reasoning`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from craft.timing import timed

__all__ = ["DTYPES", "STOP_STRINGS", "ModelLoadError", "SplitGeneration", "judged_response", "load_model",
           "plain_text", "render_prompt", "split_reasoning"]

# String names accepted by ``load_model(dtype=...)``; strings keep configs YAML-friendly.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

# from_pretrained's errors for a hub id with no local copy and no network.
_HUB_ERRORS = (OSError, HfHubHTTPError, LocalEntryNotFoundError, HFValidationError)


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded; the message says what to do."""


def _resolve_dtype(dtype: str) -> torch.dtype:
    """Map a dtype name to a ``torch.dtype``.

    Args:
        dtype: one of ``DTYPES`` ("float32", "bfloat16", "float16").

    Returns:
        The matching ``torch.dtype``.

    Raises:
        ValueError: for any other name, listing the valid choices.
    """
    try:
        return DTYPES[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}") from None


def _looks_local(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is meant as a filesystem path rather than a hub id.

    Args:
        name_or_path: the string passed to :func:`load_model`.

    Returns:
        True for explicit paths (``.``, ``/``, ``~`` prefixes, backslashes),
        strings with more than one ``/`` (hub ids are ``owner/name`` at most),
        and strings whose parent directory exists (a partially existing path).
    """
    if name_or_path.startswith((".", "/", "~")) or "\\" in name_or_path:
        return True
    if name_or_path.count("/") > 1:
        return True
    parent = Path(name_or_path).parent
    return parent != Path(".") and parent.exists()


@timed("model loading")
def load_model(
    name_or_path: str,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for inference.

    Args:
        name_or_path: a local directory written by ``save_pretrained`` or a hub id.
        dtype: weight dtype name, one of ``DTYPES``.
        device: torch device string the model is moved to (e.g. "cpu", "cuda:0").
        trust_remote_code: allow repository-supplied modelling code (off by default).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode on ``device`` and the
        tokenizer has a pad token (eos if it had none).

    Raises:
        ValueError: unknown ``dtype``.
        ModelLoadError: missing local path, or a hub id with no local copy while
            the hub is unreachable.
    """
    torch_dtype = _resolve_dtype(dtype)
    expanded = os.path.expanduser(name_or_path)
    if not os.path.isdir(expanded) and _looks_local(name_or_path):
        raise ModelLoadError(
            f"model path '{name_or_path}' does not exist (resolved to "
            f"'{os.path.abspath(expanded)}'); check the path or pass a hub id"
        )
    source = expanded if os.path.isdir(expanded) else name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=torch_dtype,
            use_safetensors=True,  # never unpickle .bin weights
            trust_remote_code=trust_remote_code,
        )
    except SafetensorError as e:
        raise ModelLoadError(f"could not load '{name_or_path}': its safetensors weights are damaged or cut short "
                             f"({e}); copy or save the checkpoint again") from None
    except (*_HUB_ERRORS, ValueError) as e:  # ValueError: e.g. no tokenizer files in a dir
        if source == expanded and os.path.isdir(expanded):
            raise ModelLoadError(
                f"could not load '{name_or_path}': the directory exists but is not a complete "
                f"safetensors checkpoint with tokenizer files ({type(e).__name__}: {e})"
            ) from e
        if not isinstance(e, _HUB_ERRORS):
            raise
        maybe_path = "" if name_or_path.count("/") != 1 else (
            f" (read as a hub id; as a local path it would be '{os.path.abspath(expanded)}', which does not exist)")
        raise ModelLoadError(
            f"could not load '{name_or_path}'{maybe_path}: no local copy and the hub is unreachable; "
            f"download it on a machine with network (`hf download {name_or_path}`; older "
            f"huggingface_hub: `huggingface-cli download {name_or_path}`) and pass the local "
            f"directory instead"
        ) from e
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Batched generation needs padding; eos is the usual stand-in for decoder LMs.
        tokenizer.pad_token = tokenizer.eos_token
    gen_cfg = getattr(model, "generation_config", None)
    if gen_cfg is not None and gen_cfg.pad_token_id is None:
        gen_cfg.pad_token_id = tokenizer.pad_token_id  # silences generate()'s pad warning
    model.to(device)
    model.eval()
    return model, tokenizer


ZERO_WIDTH_SPACE = "\u200b"


def plain_text(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` made safe to put inside a chat template: every special token it spells out (``<|im_end|>``,
    ``<|im_start|>``, ...) is broken by a zero-width space after its first character, so that it is
    tokenised as ordinary text and a prompt can never close its own turn or open an assistant turn of its
    own. A lone surrogate (not valid Unicode text) is an error that says where it is. Text without either
    is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"text {text[:60]!r} holds a lone surrogate (U+{ord(text[e.start]):04X}) at character "
                         f"{e.start}: it is not valid Unicode; decode the data with errors='replace' (or fix its "
                         "encoding)") from None
    for token in _special_strings(tokenizer):
        if token in text:
            text = text.replace(token, token[0] + ZERO_WIDTH_SPACE + token[1:])
    return text


def _special_strings(tokenizer) -> list[str]:
    """The special tokens of ``tokenizer`` as text (longest first), added special tokens included."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}).values()
    tokens |= {t.content for t in added if getattr(t, "special", False)}
    return sorted((t for t in tokens if len(t) > 1), key=len, reverse=True)


def render_prompt(
    tokenizer: PreTrainedTokenizerBase, user_text: str, system: str | None = None
) -> str:
    """Render a single-turn chat prompt that ends where the assistant starts.

    Args:
        tokenizer: a tokenizer with a chat template.
        user_text: the user message (its special-token text is escaped: :func:`plain_text`).
        system: optional system message, prepended when given.

    Returns:
        The templated text including the generation prompt (for R1-style
        templates this already ends with ``<think>\\n``).
    """
    messages = [] if system is None else [{"role": "system", "content": plain_text(tokenizer, system)}]
    messages.append({"role": "user", "content": plain_text(tokenizer, user_text)})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


# End-of-turn markers (Qwen3 / ChatML, R1-Distill); text after the first one is not the model's.
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>", "<｜end▁of▁sentence｜>")


@dataclass(frozen=True)
class SplitGeneration:
    """A completion split into its reasoning trace and final answer.

    Attributes:
        reasoning: text of the thinking part, tags removed, whitespace-stripped.
        answer: text after the last ``</think>``, whitespace-stripped ("" if none).
        closed: True when a ``</think>`` was found (the model finished thinking).
    """

    reasoning: str
    answer: str
    closed: bool


def split_reasoning(
    text: str,
    *,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    stop_strings: tuple[str, ...] = STOP_STRINGS,
) -> SplitGeneration:
    """Split a generated completion into reasoning and answer.

    The input is the text generated after the prompt; for R1-style templates the
    prompt already ended with ``<think>\\n``, so it usually starts directly with
    the reasoning. Rules (the contract every judge and metric relies on):

    1. Cut the text at the earliest occurrence of any stop string; everything
       after it (including any ``</think>``) is ignored.
    2. Split at the LAST ``close_tag`` (Qwen3's convention: everything up to the
       last ``</think>`` is thinking); the rest is the answer.
    3. Remove every remaining ``open_tag``/``close_tag`` from the reasoning
       (covers templates that do not force the tag, i.e. a leading ``<think>``).
    4. Strip whitespace on both parts.
    5. No ``close_tag`` at all: the whole text is reasoning, answer is "" and
       ``closed`` is False. A truncated generation never reached its answer;
       judging unfinished text as reasoning is the conservative safety choice,
       and an empty answer is not a refusal.

    Args:
        text: the completion text (special tokens may or may not be present).
        open_tag: the tag opening the reasoning.
        close_tag: the tag closing the reasoning.
        stop_strings: end-of-turn markers; text after the first one is dropped.

    Returns:
        A :class:`SplitGeneration`.
    """
    # Rule 1: earliest stop string wins; empty stop strings would cut everything.
    cuts = [i for s in stop_strings if s and (i := text.find(s)) >= 0]
    if cuts:
        text = text[: min(cuts)]
    # Rule 2: split at the last close tag.
    idx = text.rfind(close_tag)
    closed = idx >= 0
    if closed:
        reasoning, answer = text[:idx], text[idx + len(close_tag) :]
    else:
        reasoning, answer = text, ""
    # Rule 3: drop leftover tags inside the reasoning.
    reasoning = reasoning.replace(close_tag, "").replace(open_tag, "")
    return SplitGeneration(reasoning=reasoning.strip(), answer=answer.strip(), closed=closed)


def judged_response(
    text: str,
    *,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    stop_strings: tuple[str, ...] = STOP_STRINGS,
) -> str:
    """The text the RESPONSE judge reads for a completion (and ``R_txt`` rewards): what a user is shown.

    :func:`split_reasoning` serves the latent and the reasoning judge; its answer is not what a
    judge of the response should read in three cases, each of which would otherwise score like a
    refusal (an empty answer refuses nothing, but it discloses nothing either):

    - **unfinished** (no ``close_tag``): the whole completion. A generation cut off mid-reasoning
      has streamed all of it to the user; a recipe in it is a harmful response, not a safe one.
    - **empty answer** (only whitespace after the tag): the whole completion, for the same reason.
    - **several close tags**: everything after the FIRST one, tags removed, so that a harmful answer
      followed by a second ``</think>`` and a refusal is judged with the harmful part in it.

    Text after the first stop string is dropped first, as in :func:`split_reasoning`.
    """
    cuts = [i for s in stop_strings if s and (i := text.find(s)) >= 0]
    if cuts:
        text = text[: min(cuts)]
    idx = text.find(close_tag)
    after = text[idx + len(close_tag):] if idx >= 0 else ""
    shown = after if after.replace(close_tag, "").replace(open_tag, "").strip() else text
    return shown.replace(close_tag, "").replace(open_tag, "").strip()
