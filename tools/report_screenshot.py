"""The first screen of a Snakemake report as a real browser shows it: a PNG, and the page's DOM
after its scripts ran (headless Chromium).

    python tools/report_screenshot.py results/report.html results/report_screenshot.png [--dom dom.html]

Needs Chromium (Debian: `apt-get install chromium`); without it, one line says so and the exit
status is 2. The report's landing page shows results/tables/overview.html: the verdicts of every
method, coloured, which is what a reader should see first.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Chromium as root, headless, with nothing that reaches the network (a closed machine).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000")


def browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def render(report: Path, png: Path, width: int, height: int, dom: Path | None = None, timeout: float = 120) -> None:
    """Write the first screen of ``report`` (``width`` x ``height``) to ``png``, and its DOM to ``dom``."""
    chromium = browser()
    if chromium is None:
        raise FileNotFoundError(f"no Chromium ({', '.join(BROWSERS)}) on PATH: apt-get install chromium")
    url = Path(report).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        png.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*common, f"--screenshot={png}", url], capture_output=True, timeout=timeout, check=True)
        if dom is not None:
            out = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=timeout,
                                 check=True)
            Path(dom).write_text(out.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--dom", type=Path, help="also write the rendered DOM here")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"ERROR: no report {args.report} (snakemake --report {args.report})", file=sys.stderr)
        return 2
    try:
        render(args.report, args.png, args.width, args.height, args.dom)
    except FileNotFoundError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
