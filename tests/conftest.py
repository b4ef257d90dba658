"""Fixtures shared by the unit and integration tests: a small organism world and its tokenizer,
one torch thread for every test module, and the real benchmark files beside the checkout."""

from pathlib import Path

import pytest
import torch

from craft.organism.corpus import sample_sft_examples
from craft.organism.tokenizer import train_tokenizer
from craft.organism.world import build_world


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Every test module runs on one torch thread: the tests' models are tiny, and a second intra-op
    thread only adds contention on a busy 2-core machine (the notebooks and their kernels keep their
    own setting). Restored after each module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def world():
    """A 4-hazard organism world (same generator as the default run, fewer prompts)."""
    return build_world(seed=0, n_hazards=5, n_unseen_hazards=1, n_arithmetic=600)


@pytest.fixture(scope="module")
def tokenizer(world):
    """A 400-token BPE with the organism's chat template, trained on that world."""
    ex = sample_sft_examples(world, 400, seed=0)
    return train_tokenizer([f"{e.prompt} {e.reasoning} {e.answer}" for e in ex], vocab_size=400)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """``shared_data(folder)``: the real benchmark folder ``<folder>`` of the workplace's data folder
    beside the checkout (``SHARED_DATA``), or skip the test (a fresh clone elsewhere has none)."""
    def get(folder: str) -> Path:
        p = SHARED_DATA / folder
        if not p.is_dir():
            pytest.skip(f"real data folder {p} is absent (only present beside the workplace checkout)")
        return p
    return get
