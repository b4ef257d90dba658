"""The SFT batch: completion-only labels, right padding, and a clear error for too little data."""

import pytest
import torch

from craft.organism.sft import SFTSettings, collate, train_sft


def test_labels_cover_only_the_completion_and_skip_padding():
    batch = collate([([5, 6, 7, 8, 9], 2), ([1, 2, 3], 1)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8, 9], [-100, 2, 3, -100, -100]]


def test_too_few_examples_is_a_clear_error():
    with pytest.raises(ValueError, match="need 20"):
        train_sft(torch.nn.Linear(1, 1), None, [], SFTSettings(steps=10, batch_size=2), progress=False)
