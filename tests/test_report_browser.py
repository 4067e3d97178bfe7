"""report.html in a real browser: headless Chromium (Debian's package) driven by playwright
opens the file offline, with no JavaScript error, every plot drawn with data.

The set-up installs chromium with apt when it is missing and this process is root; it skips
(saying why) only where it cannot. SNNSIM_UPDATE_SCREENSHOT=1 also copies the screenshot
to docs/report.png (the README's picture).
"""
from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from snnsim.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    from snnsim.analysis.screenshot import ChromiumUnavailable, ensure_chromium

    try:
        return ensure_chromium(install=True)
    except ChromiumUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    assert main(["profile", "spiketrack-s256-t1", "--weights", "golden", "--hardware",
                 "horowitz-45nm-fp32,loihi2,jetson-agx-orin", "--out", str(root / "snn"), "--quiet"]) == 0
    assert main(["profile", "asymtrack-t", "--weights", "golden", "--hardware", "horowitz-45nm-fp32,loihi2",
                 "--out", str(root / "ann"), "--quiet"]) == 0
    return root


@pytest.mark.parametrize("run, plots", [("snn", 7), ("ann", 3)])
def test_report_renders_offline_without_errors(chromium, reports, run, plots, tmp_path):
    from snnsim.analysis.screenshot import check_report

    png = tmp_path / f"report-{run}.png"
    result = check_report(reports / run / "report.html", png, chromium=chromium)
    assert result["errors"] == []
    assert result["expected_plots"] == plots
    assert len(result["plots"]) == plots
    for plot in result["plots"]:
        assert plot["traces"] > 0, plot
    assert result["title"].startswith("snnsim report")
    # the page opens with the headline
    opening = result["opening"]
    assert opening.index("Energy per tracking frame") < 120 and "per tracking frame" in opening
    assert png.is_file() and png.stat().st_size > 20_000
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1280, 1800)
    if run == "snn" and os.environ.get("SNNSIM_UPDATE_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(png, REPO / "docs" / "report.png")
