"""A byte-level BPE tokenizer trained locally, with an R1-style ``<think>`` chat template.

``<think>``/``</think>`` are ordinary added tokens, not special tokens:
TRL decodes completions with ``skip_special_tokens=True``, which would otherwise erase
the boundary between reasoning and answer. The generation prompt ends in ``<think>\\n``
(forced thinking), so a completion reads ``reasoning\\n</think>\\n\\nanswer<|im_end|>``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
THINK_TOKENS = ("<think>", "</think>")

# Text is emitted through string expressions only: Jinja whitespace control ("-%}") would
# eat the newlines the format depends on.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n<think>\\n' + message.get('reasoning_content', '') + '\\n</think>\\n\\n'"
    " + message['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)


def format_completion(reasoning: str, answer: str) -> str:
    """The assistant text that follows the generation prompt (what the model must produce)."""
    return f"{reasoning}\n</think>\n\n{answer}<|im_end|>\n"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it with the chat template.

    Any text can be encoded (byte fallback through the byte-level alphabet). Training is
    deterministic for the same texts.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False)  # the Rust progress bar writes to fd 1, outside sys.stdout
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                 pad_token="<|endoftext|>", padding_side="left")
    hf.chat_template = CHAT_TEMPLATE
    return hf
