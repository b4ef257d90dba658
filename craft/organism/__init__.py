"""The SSA model organism: a synthetic world, its tokenizer, tiny Qwen3/Llama builders and SFT."""
