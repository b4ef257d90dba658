"""craft.decoding.sample_next: the distribution it samples is temperature -> top-k -> top-p of the
logits, the same support as transformers' logits warpers, and it follows its noise."""

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from craft.decoding import sample_next


def warped_probs(logits, temperature, top_k, top_p):
    """transformers' own processors (what ``model.generate`` applies), as probabilities."""
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    scores = TopKLogitsWarper(top_k)(None, scores)
    scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.softmax(-1)


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.6, 50, 0.95), (1.0, 5, 1.0), (0.3, 20, 0.5)])
def test_empirical_distribution_is_that_of_the_warpers(temperature, top_k, top_p):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 40, generator=g) * 2                                 # one row of 40 tokens
    n = 200_000
    uniform = torch.rand(n, min(top_k, 40), generator=g).clamp_(min=1e-10)
    drawn = sample_next(logits.expand(n, -1), uniform, temperature, top_k, top_p)
    freq = torch.bincount(drawn, minlength=40).double() / n
    want = warped_probs(logits, temperature, top_k, top_p)[0].double()
    assert set(drawn.unique().tolist()) <= set(want.nonzero().squeeze(-1).tolist())   # never outside the support
    assert (freq - want).abs().max() < 5 * (0.25 / n) ** 0.5                            # 5 binomial SDs at p = 0.5


def test_support_matches_the_warpers_on_many_rows():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 300, generator=g) * 3
    want = warped_probs(logits, 0.6, 50, 0.95) > 0                               # (64, 300)
    seen = torch.zeros_like(want)
    for _ in range(400):
        drawn = sample_next(logits, torch.rand(64, 50, generator=g).clamp_(min=1e-10), 0.6, 50, 0.95)
        seen[torch.arange(64), drawn] = True
    assert not (seen & ~want).any()                                              # nothing outside the support
    assert seen.sum() >= 0.9 * want.sum()                                        # and most of it reached


def test_same_noise_same_tokens_and_checks_its_shape():
    logits = torch.randn(3, 30, generator=torch.Generator().manual_seed(2))
    u = torch.rand(3, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sample_next(logits, u, 0.6, 10, 0.9), sample_next(logits, u, 0.6, 10, 0.9))
    assert torch.equal(sample_next(logits, u, 1.0, 10, 1.0)[:1], sample_next(logits[:1], u[:1], 1.0, 10, 1.0))
    with pytest.raises(ValueError, match="noise"):
        sample_next(logits, u[:, :5], 0.6, 10, 0.9)
    every = sample_next(logits, torch.rand(3, 30), 1.0, 0, 1.0)                  # top_k <= 0: the whole vocabulary
    assert every.shape == (3,)
