"""Notebook 06's hook: the monitor's threshold rule (``threshold_rule``) in ``craft.monitor.calibrate_threshold``,
``craft.stages.monitor.recalibrate`` and ``monitor_stage`` (Exercise 6.1 builds it; 6.4 recalibrates with another
``min_tokens``)."""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from craft.monitor import alarm_positions, calibrate_threshold, halfway_threshold
from craft.stages.monitor import monitor_stage, recalibrate


def _trajectories(rng, n, low=0.0, high=1.0):
    return [list(rng.uniform(low, high, size=rng.integers(0, 12))) for _ in range(n)]


def _nudged_rule(minima, false_alarm):
    """Another rule: the package's, then 0.05 higher (more alarms)."""
    return halfway_threshold(minima, false_alarm) + 0.05


def test_the_packages_rule_passed_in_gives_the_same_threshold():
    rng = np.random.default_rng(0)
    benign = _trajectories(rng, 60) + [[0.3, 0.3], [0.3]]          # ties, and empty trajectories (never read)
    for false_alarm in (0.0, 0.02, 0.05, 0.2, 0.5):
        for min_tokens in (1, 3, 8):
            own = calibrate_threshold(benign, false_alarm, min_tokens)
            assert calibrate_threshold(benign, false_alarm, min_tokens, threshold_rule=halfway_threshold) == own
            assert calibrate_threshold(benign, false_alarm, min_tokens, threshold_rule=None) == own


def test_the_rule_gets_each_trajectorys_minimum_after_min_tokens_in_order():
    seen = []

    def spy(minima, false_alarm):
        seen.append((list(minima), false_alarm))
        return 0.25

    assert calibrate_threshold([[0.9, 0.1, 0.5], [0.4, 0.6], [0.2]], 0.1, 2, threshold_rule=spy) == 0.25
    assert seen == [([0.1, 0.6, math.inf], 0.1)]
    assert calibrate_threshold([[0.5]], 0.0, threshold_rule=_nudged_rule) != calibrate_threshold([[0.5]], 0.0)
    with pytest.raises(ValueError, match="false_alarm"):       # the checks stay the package's
        calibrate_threshold([[0.5]], 1.0, threshold_rule=spy)


def _base_rollouts(rng) -> pd.DataFrame:
    """Rows shaped like the base policy's ``MonitorResult.rollouts``: benign rows cut into fit / heldout halves,
    harmful rows (seen and unseen hazards) with a verdict, a disclosure and a coded flag."""
    rows = []
    for i in range(40):
        rows.append({"kind": "benign", "benign_split": "fit" if i < 20 else "heldout", "unseen_hazard": False,
                     "reasoning_harmful": False, "disclosure": -1, "coded": False,
                     "p_z": list(rng.uniform(0.2, 1.0, size=10))})
    for i in range(40):
        harmful = bool(i % 3)
        rows.append({"kind": "harmful", "benign_split": "", "unseen_hazard": i >= 30, "reasoning_harmful": harmful,
                     "disclosure": int(rng.integers(2, 10)) if harmful else -1, "coded": i % 5 == 0,
                     "p_z": list(rng.uniform(0.0, 0.8 if harmful else 1.0, size=10))})
    return pd.DataFrame(rows).assign(policy="base", alarm=-1, lead=None)


def _run(false_alarm=0.1, min_tokens=1):
    return SimpleNamespace(params=SimpleNamespace(monitor=SimpleNamespace(
        false_alarm=false_alarm, min_tokens=min_tokens, fractions=[0.25, 0.5, 1.0])))


def test_recalibrate_with_the_packages_rule_is_the_default_and_another_rule_changes_it():
    rng = np.random.default_rng(1)
    base = _base_rollouts(rng)
    run = _run()
    rows, own = recalibrate(run, base)
    fit = base[base.benign_split == "fit"]
    threshold = calibrate_threshold(list(fit.p_z), 0.1, 1)
    assert own["monitor_threshold"] == threshold
    assert list(rows.alarm) == alarm_positions(list(base.p_z), threshold, 1)
    assert own["monitor_false_alarm_benign_fit"] <= 0.1                       # the budget holds where it was fixed
    assert own["monitor_n_benign_fit"] == own["monitor_n_benign_heldout"] == 20
    same_rows, same = recalibrate(run, base, threshold_rule=halfway_threshold)
    assert same.keys() == own.keys()
    assert all(same[k] == own[k] or (isinstance(own[k], float) and math.isnan(own[k]) and math.isnan(same[k]))
               for k in own)
    assert list(same_rows.alarm) == list(rows.alarm)
    other_rows, other = recalibrate(run, base, threshold_rule=_nudged_rule)
    assert other["monitor_threshold"] == pytest.approx(threshold + 0.05)
    assert other["monitor_alarm_rate_harmful"] > own["monitor_alarm_rate_harmful"]
    assert (other_rows.alarm >= 0).sum() > (rows.alarm >= 0).sum()
    assert list(base.alarm) == [-1] * len(base)                                # the input is left as it was


def test_recalibrate_takes_the_runs_settings_unless_told_otherwise():
    rng = np.random.default_rng(2)
    base = _base_rollouts(rng)
    _, from_run = recalibrate(_run(false_alarm=0.2, min_tokens=4), base)
    _, told = recalibrate(_run(), base, false_alarm=0.2, min_tokens=4)
    assert from_run["monitor_threshold"] == told["monitor_threshold"]
    assert told["monitor_min_tokens"] == 4 and told["monitor_false_alarm"] == 0.2
    rows, _ = recalibrate(_run(), base, min_tokens=4)
    assert all(a < 0 or a >= 4 for a in rows.alarm)                # no alarm before min_tokens tokens were read
    with pytest.raises(ValueError, match="fit"):
        recalibrate(_run(), base.drop(columns="benign_split"))


def test_monitor_stage_takes_the_hook():
    hook = inspect.signature(monitor_stage).parameters["threshold_rule"]
    assert hook.default is None and hook.kind is inspect.Parameter.KEYWORD_ONLY
