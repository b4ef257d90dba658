"""The SFT batch: completion-only labels, right padding, and a clear error for too little data."""

import pytest
import torch

from craft.organism.model import TinyModelConfig, build_model
from craft.organism.sft import SFTSettings, collate, pack, train_sft


def test_labels_cover_only_the_completion_and_skip_padding():
    batch = collate([([5, 6, 7, 8, 9], 2), ([1, 2, 3], 1)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8, 9], [-100, 2, 3, -100, -100]]


def test_too_few_examples_is_a_clear_error():
    with pytest.raises(ValueError, match="need 20"):
        train_sft(torch.nn.Linear(1, 1), None, [], SFTSettings(steps=10, batch_size=2), progress=False)


def test_packing_lays_conversations_end_to_end_with_restarting_positions():
    batch = pack([([5, 6, 7, 8, 9], 2), ([1, 2, 3], 1), ([4, 4], 1)], width=6, pad_id=0)
    # first-fit, longest first: row 0 = the 5-token conversation; row 1 = the 3- and the 2-token ones
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 4, 4]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8, 9], [-100, 2, 3, -100, 4]]
    padded = pack([([5, 6, 7], 1), ([1, 2], 1)], width=3, pad_id=0)
    assert padded["input_ids"].tolist() == [[5, 6, 7], [1, 2, 0]]
    assert padded["position_ids"].tolist() == [[0, 1, 2], [0, 1, 0]]
    assert padded["labels"].tolist() == [[-100, 6, 7], [-100, 2, -100]]
    with pytest.raises(ValueError, match="longer than the packing width"):
        pack([([1, 2, 3, 4], 1)], width=3, pad_id=0)


@pytest.mark.parametrize("arch", ["qwen3", "llama"])
def test_a_packed_batch_has_the_padded_batchs_loss_and_gradients(arch, tokenizer):
    model = build_model(TinyModelConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                        head_dim=16, intermediate_size=64), tokenizer, seed=0)
    gen = torch.Generator().manual_seed(0)
    batch = [(torch.randint(3, 200, (int(n),), generator=gen).tolist(), int(k))
             for n, k in zip(torch.randint(4, 40, (12,), generator=gen), torch.randint(1, 4, (12,), generator=gen))]

    def loss_and_grads(inputs):
        model.zero_grad()
        loss = model(**inputs, use_cache=False).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    packed_loss, packed = loss_and_grads(pack(batch, width=48, pad_id=tokenizer.pad_token_id))
    padded_loss, padded = loss_and_grads(collate(batch, tokenizer.pad_token_id))
    assert pack(batch, width=48, pad_id=0)["input_ids"].shape[0] < len(batch)      # it did pack
    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    for a, b in zip(packed, padded):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
