"""craft: Contrastive Reasoning Alignment (CRAFT, arXiv 2603.17305) — reference implementation."""
