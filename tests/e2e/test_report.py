"""The report as a reader sees it: `snakemake --report` of the tiny run opened in headless
Chromium; its first screen shows the scorecard (the overview's verdict table, coloured), and
the screenshot is kept under the run's results/."""

import subprocess

import numpy as np
import pytest

from helpers import debian
from helpers.repo import REPO, tool_env
from salaudit.evaluation.report_html import COLOURS, OVERVIEW_ID

BINARIES, PACKAGES = ("chromium",), ("chromium",)
SKIP_REASON = debian.unavailable_reason(BINARIES, PACKAGES)
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(SKIP_REASON is not None, reason=f"no Chromium: {SKIP_REASON}")]


def hex_rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_the_first_screen_of_the_report_shows_the_scorecard(tiny_run):
    debian.install(BINARIES, PACKAGES)
    import matplotlib.image
    from test_workflow import snakemake

    report = tiny_run / "report_in_browser.html"
    result = snakemake(tiny_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    screenshot = tiny_run / "results" / "report_screenshot.png"
    dom = tiny_run / "report_dom.html"
    run = subprocess.run(["python", str(REPO / "tools" / "report_screenshot.py"), str(report), str(screenshot),
                          "--width", "1280", "--height", "800", "--dom", str(dom)],
                         capture_output=True, text=True, env=tool_env(), timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    page = " ".join(dom.read_text().split())
    # the landing page renders the overview: the configuration, the controls' check, each dataset
    assert f'id="{OVERVIEW_ID}"' in page and "trained tiny_cnn on 3 folds of siim and rsna at 64 px" in page
    assert "Controls</b>: all" in page and "verdicts as they must be" in page
    for dataset in ("siim", "rsna"):
        assert f"<b>{dataset}</b>: " in page
    # ... and it is on the first screen: the verdict colours fill part of the screenshot
    pixels = (matplotlib.image.imread(screenshot)[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (800, 1280)
    fail = np.all(np.abs(pixels - np.array(hex_rgb(COLOURS["FAIL"]))) <= 2, axis=-1)
    assert fail.mean() > 0.02, f"only {fail.mean():.3%} of the first screen shows FAIL cells"
