"""The figures a newcomer reads first say what they show: colours follow the rule the
title states, legends lie outside the data, values spanning decades get a log axis with
the trivial baseline drawn and named, a zero is a marker, and ranges only with seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from suite.analysis import figures, overview, plotting

BASELINE = 0.1667
# the demo's adding results: AntisymmetricRNN and expRNN beat the baseline by a hair, not by half
DEMO = {"gru": 0.00049, "lem": 0.0012, "lstm": 0.016, "cornn": 0.027, "hdnn-h2": 0.077,
        "antisymmetric": 0.1618, "exprnn": 0.165, "hrnn": 0.169}


def _summary(seeds: int = 1):
    models = list(DEMO)
    summary = pd.DataFrame({
        "task": "adding", "variant": "T=100", "model": models, "metric": "mse ↓",
        "test_mean": [DEMO[m] for m in models], "diverged": 0, "baseline": BASELINE,
        "ratio_init": [-19.6, -1.4, -19.8, -13.5, 0.3, 0.0, -0.0, 0.0],
        "ratio_end": [-0.5, 0.5, 0.1, -0.6, 0.5, 0.0, -0.3, 0.5]})
    runs = pd.DataFrame([{"task": "adding", "variant": "T=100", "model": m, "status": "ok", "seed": s,
                          "test": DEMO[m] * (1 + 0.1 * s)} for m in models for s in range(seeds)])
    return summary, runs


@pytest.fixture
def plt():
    plt = plotting.pyplot()
    yield plt
    plt.close("all")


def _dots(ax):
    """(y, colour) of the big dots in the metric panel: one per model."""
    return [(line.get_ydata()[0], line.get_color()) for line in ax.lines
            if line.get_marker() == "o" and line.get_markersize() == 8]


def test_each_dot_has_the_colour_the_stated_rule_gives_it(plt):
    fig = overview.draw(*_summary())
    ax = fig.axes[0]
    order = [t.get_text() for t in ax.get_yticklabels()]
    for y, colour in _dots(ax):
        test = DEMO[order[int(round(y))]]
        expected = plotting.LEARNED if test < BASELINE / 2 else plotting.NOT_LEARNED
        assert to_rgba(colour) == to_rgba(expected), (order[int(round(y))], test, colour)
    assert "below half the trivial baseline" in ax.get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "learned: below half the trivial baseline" in labels and "did not learn" in labels


def test_grey_means_one_thing_across_the_panels(plt):
    fig = overview.draw(*_summary())
    colours = {to_rgba(p.get_facecolor())[:3] for p in fig.axes[1].patches}
    assert to_rgba(plotting.NOT_LEARNED)[:3] not in colours  # no grey bar in the gradient panel


def test_a_zero_ratio_is_a_marker_on_the_zero_line(plt):
    fig = overview.draw(*_summary())
    points = [(x, y) for line in fig.axes[1].lines if line.get_marker() == "o"
              for x, y in zip(line.get_xdata(), line.get_ydata())]
    zeros = [p for p in points if p[0] == 0]
    assert len(zeros) >= 3  # antisymmetric's, hrnn's and expRNN's ratios at initialization


def _ranges(ax):
    return [line for line in ax.lines if len(line.get_xdata()) == 2 and not line.get_label().startswith("trivial")]


def test_the_seeds_range_is_drawn_only_where_there_are_seeds(plt):
    one = overview.draw(*_summary(seeds=1))
    assert not _ranges(one.axes[0])
    assert "range" not in one.axes[0].get_xlabel()
    three = overview.draw(*_summary(seeds=3))
    assert len(_ranges(three.axes[0])) == len(DEMO)
    assert "range over the seeds" in three.axes[0].get_xlabel()


def test_the_metric_axis_is_logarithmic_with_the_baseline_named(plt):
    fig = overview.draw(*_summary())
    assert fig.axes[0].get_xscale() == "log"
    assert any("trivial baseline 0.167" in t.get_text() for t in fig.legends[0].get_texts())


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_ratio_panel_tick_labels_do_not_run_together(plt):
    fig = overview.draw(*_summary())
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[1].get_xticklabels() if t.get_text()]
    assert len(boxes) >= 3
    assert not any(_overlap(a, b) for a, b in itertools.combinations(boxes, 2))


def _profiles(models=("antisymmetric", "hrnn", "gru"), seeds=1, T=50):
    rows = []
    for m, s, when in itertools.product(models, range(seeds), ("init", "end")):
        decay = 0.0 if m != "gru" else 0.4  # antisymmetric and hrnn lie on each other
        rows += [{"model": m, "seed": s, "t": t, figures.NORM: 10 ** (-decay * (T - t)), "when": when}
                 for t in range(1, T + 1)]
    return pd.DataFrame(rows)


def test_the_gradient_legend_is_one_and_covers_no_line_end(plt):
    fig = figures.draw_gradients(_profiles(), "adding T=100")
    fig.canvas.draw()
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    legend = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        for line in ax.lines:
            x, y = line.get_xdata()[-1], line.get_ydata()[-1]  # where the lines meet, at t = T
            px, py = ax.transData.transform((x, y))
            assert not (legend.x0 <= px <= legend.x1 and legend.y0 <= py <= legend.y1)


def test_lines_lying_on_each_other_are_told_apart_by_style(plt):
    fig = figures.draw_gradients(_profiles(), "adding T=100")
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    a, h = lines["antisymmetric"], lines["hrnn"]
    assert np.allclose(a.get_ydata(), h.get_ydata())
    assert (a.get_color(), a.get_linestyle()) != (h.get_color(), h.get_linestyle())
    assert a.get_linestyle() != h.get_linestyle() or a.get_color() != h.get_color()


def _curves(seeds=1):
    final = {"gru": 0.0005, "lem": 0.001, "lstm": 0.016}
    return pd.DataFrame([{"model": m, "seed": s, "step": step, "value": 0.17 * (v / 0.17) ** (step / 2000)}
                         for m, v in final.items() for s in range(seeds) for step in range(250, 2001, 250)])


def test_the_validation_curves_have_a_log_axis_and_the_named_baseline(plt):
    fig = figures.draw_curves(_curves(), "mse", BASELINE, "adding T=100")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # 0.0005 and 0.016 would both sit on zero on a linear axis
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "trivial baseline 0.167" in labels
    assert not any("band" in label for label in labels)  # one seed: no band, nothing to explain


def test_a_band_is_drawn_and_explained_only_with_seeds(plt):
    fig = figures.draw_curves(_curves(seeds=3), "mse", BASELINE, "adding T=100")
    assert fig.axes[0].collections  # the seeds' range
    assert any("range over the seeds" in t.get_text() for t in fig.legends[0].get_texts())


def test_a_saved_figure_keeps_its_outside_legend(plt, tmp_path):
    fig = figures.draw_curves(_curves(), "mse", BASELINE, "adding T=100")
    fig.canvas.draw()
    width = fig.get_size_inches()[0] * 110
    path = plotting.save(fig, tmp_path / "c.png")
    from matplotlib.image import imread

    assert imread(path).shape[1] > width  # the legend beside the axes widened the saved image


def test_no_model_line_takes_the_baselines_colour(plt):
    models = [f"m{i}" for i in range(12)]
    styles = plotting.model_style(models)
    reserved = {to_rgba(plotting.BASELINE), to_rgba(plotting.NOT_LEARNED)}
    assert not {to_rgba(s["color"]) for s in styles.values()} & reserved
    assert len({(s["color"], s["linestyle"]) for s in styles.values()}) == len(models)
