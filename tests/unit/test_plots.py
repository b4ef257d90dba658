"""craft.plots: the R2L figures draw what they are given (one panel per metric, one bar per row)."""

import matplotlib
import matplotlib.collections

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from craft import plots  # noqa: E402


def test_training_curves_mean_line_and_seed_band():
    history = pd.DataFrame({"variant": ["a"] * 4 + ["b"] * 2, "seed": [0, 0, 1, 1, 0, 0],
                            "step": [0, 10, 0, 10, 0, 10], "ssa": [0.2, 0.4, 0.4, 0.8, 0.5, 0.5]})
    fig = plots.training_curves(history, {"ssa": "SSA"})
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [0.3, 0.6])              # mean over seeds
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.2) and band.max() == pytest.approx(0.8)   # lowest..highest seed
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (n=2)", "b (n=1)"]
    plt.close(fig)


def test_interval_bars_one_bar_per_row_and_metric():
    table = pd.DataFrame({"x": [0.5, 0.2], "x_lo": [0.4, 0.1], "x_hi": [0.6, 0.3],
                          "y": [0.9, 0.8], "y_lo": [0.9, 0.7], "y_hi": [0.9, 0.9]}, index=["craft", "no_ls"])
    fig = plots.interval_bars(table, {"x": "X", "y": "Y"})
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches)
    assert heights == [0.2, 0.5, 0.8, 0.9]
    plt.close(fig)


def test_run_dots_one_dot_per_run_and_the_reference_line():
    rows = {"craft": pd.DataFrame({"x": [0.0, 0.1]}), "no_lclr": pd.DataFrame({"x": [0.2, 0.9, 0.4, 0.1, 0.6]})}
    fig = plots.run_dots(rows, {"x": "X"}, margin=0.05)
    ax = fig.axes[0]
    dots = [c.get_offsets() for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert [len(d) for d in dots] == [2, 5]
    np.testing.assert_allclose(sorted(dots[1][:, 1]), [0.1, 0.2, 0.4, 0.6, 0.9])
    assert ax.get_lines()[-1].get_ydata()[0] == pytest.approx(0.1)     # craft's mean 0.05 + the margin
    plt.close(fig)


def test_run_dots_wrap_panels_that_would_be_too_wide_for_a_page():
    rows = {v: pd.DataFrame({m: [0.1, 0.2] for m in "abcd"}) for v in ("p", "q", "r", "s", "t")}
    fig = plots.run_dots(rows, {m: m.upper() for m in "abcd"})
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 4 and fig.get_figwidth() <= plots.MAX_WIDTH
    assert len({round(ax.get_position().y0, 3) for ax in shown}) == 2          # two rows of panels
    plt.close(fig)


def test_method_table_one_cell_per_method_and_column():
    columns = pd.MultiIndex.from_tuples([("direct", "reasoning"), ("direct", "response")])
    table = pd.DataFrame([[0.5, 0.25], [0.0, float("nan")]], index=["base", "craft"], columns=columns)
    fig = plots.method_table(table)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.00", "0.25", "0.50", "–"]
    plt.close(fig)


def test_reliability_diagram_equal_count_bins_are_all_populated():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0.0, 0.1, 500), rng.uniform(0.9, 1.0, 500)])   # piled up near 0 and 1
    y = (p > 0.5).astype(float)
    fig = plots.reliability_diagram(p, y, n_bins=10, strategy="uniform")
    heights = [b.get_height() for b in fig.axes[0].patches]
    assert sum(np.isfinite(heights)) == 2                                # equal width: only the end bins hold traces
    plt.close(fig)
    fig = plots.reliability_diagram(p, y, n_bins=10, strategy="quantile")
    x, f = fig.axes[0].get_lines()[1].get_data()
    assert len(x) == 10 and np.isfinite(f).all()                         # equal count: every point is populated
    np.testing.assert_allclose(f, [0] * 5 + [1] * 5)
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown strategy"):
        plots.reliability_diagram(p, y, strategy="log")


def test_probe_controls_one_line_per_pool_and_the_bag_of_words():
    rows = [{"model": "m", "pool": pool, "layer": layer, "unseen_auroc": 0.5 + 0.1 * layer, "control_auroc": 0.6}
            for pool in ("mean", "last", "max") for layer in range(3)]
    fig = plots.probe_controls(pd.DataFrame(rows), pd.DataFrame({"model": ["m"], "probe_auroc_bow_unseen": [0.55]}))
    ys = [tuple(np.round(line.get_ydata(), 3)) for line in fig.axes[0].get_lines()]
    assert ys.count((0.5, 0.6, 0.7)) == 3 and ys.count((0.6, 0.6, 0.6)) == 3    # a probe and a control per pool
    assert (0.55, 0.55) in ys                                                       # the bag of words, dashed
    plt.close(fig)


def test_coded_shift_draws_both_judges_and_the_coded_share_per_policy():
    pooled = pd.DataFrame({"reasoning_harm": [0.7, 0.5], "surface_harm": [0.5, 0.1], "coded_share": [0.3, 0.8]},
                          index=["base", "reasoning_judge"])
    for col in list(pooled.columns):
        pooled[f"{col}_lo"], pooled[f"{col}_hi"] = pooled[col] - 0.05, pooled[col] + 0.05
    fig = plots.coded_shift(pooled)
    left, right = fig.axes
    assert sorted(round(p.get_height(), 3) for p in left.patches) == [0.1, 0.5, 0.5, 0.7]
    assert [round(p.get_height(), 3) for p in right.patches] == [0.3, 0.8]
    plt.close(fig)


def test_coupled_ssa_draws_the_measured_mean_and_each_model_path():
    paths = {"jailbroken": {"coupled": np.array([0.1, 0.05, 0.0]), "independent": np.array([0.1, 0.3, 0.5])}}
    history = pd.DataFrame({"seed": [0, 0, 1, 1], "step": [0, 40, 0, 40], "ssa_rate_jailbroken": [0.0, 0.2, 0.1, 0.3]})
    fig = plots.coupled_ssa(paths, history)
    ax, top = fig.axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.05, 0.25])      # mean over seeds
    assert [line.get_label() for line in top.get_lines()] == ["model: coupled", "model: independent"]
    plt.close(fig)


def test_token_heat_colours_each_token_by_its_value_and_marks_the_alarm():
    html = plots.token_heat(["take", " the", " <x>"], [0.9, 0.4, 0.1], threshold=0.2, marks={2: "alarm"})
    assert html.count('title="p_z = ') == 3 and 'title="p_z = 0.100"' in html
    assert "&lt;x&gt;" in html and "<x>" not in html                          # token text is escaped
    assert html.count("text-decoration:underline") == 1                        # only 0.1 is at or below 0.2
    assert html.index(">alarm<") < html.index("&lt;x&gt;")                     # the mark sits before its token
    with pytest.raises(ValueError, match="one value per token"):
        plots.token_heat(["a"], [0.1, 0.2])
