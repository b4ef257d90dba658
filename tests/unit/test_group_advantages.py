"""TRL's group advantage, as craft.r2l.group computes it for one group by hand."""

import numpy as np
import pytest

from craft.r2l import group_advantages
from craft.r2l.group import TRL_STD_EPS


def test_group_rule_centres_and_scales_by_the_bessel_std_plus_trl_epsilon():
    r = np.array([1.0, 0.0, 0.5, 0.5])
    expected = (r - r.mean()) / (np.std(r, ddof=1) + TRL_STD_EPS)
    np.testing.assert_allclose(group_advantages(r), expected)
    np.testing.assert_allclose(group_advantages(r, "none"), r - r.mean())


def test_a_group_of_equal_rewards_has_zero_advantage():
    """The zero-advantage case of output-only GRPO on a group of safe answers behind unsafe reasoning."""
    assert np.all(group_advantages([1.0] * 8) == 0.0)


def test_batch_scaling_is_not_a_one_group_rule():
    with pytest.raises(ValueError, match="'group' or 'none'"):
        group_advantages([0.0, 1.0], "batch")
