"""salaudit.evaluation.figures: display names (figures themselves are drawn in test_scoring.py on a synthetic tree)."""

import numpy as np

from salaudit.evaluation import figures as plots


def test_display_names_are_the_upper_cased_ids():
    from salaudit.saliency import methods  # torch: kept out of plots, which the report environment imports

    assert {m: plots.display(m) for m in methods.DISPLAY_NAMES} == methods.DISPLAY_NAMES


def test_example_panel_lays_out_image_truth_and_every_map():
    mask = np.zeros((8, 8))
    mask[2:5, 2:5] = 1
    panels = [(f"map {i}", np.random.default_rng(i).random((8, 8)), 0.5) for i in range(7)]
    fig = plots.example_panel("demo", "img1", np.zeros((8, 8)), mask, panels)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["image img1", "ground truth"] and titles[2:] == [f"map {i}\nAUPRC 0.50" for i in range(7)]
    assert len(fig.axes) == 12  # 9 panels on a 6-wide grid: 2 rows
    plots.plt.close(fig)
