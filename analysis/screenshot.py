"""Open a report in headless Chromium, check it renders, and take a screenshot.

    python -m snnsim.analysis.screenshot snnsim-demo/spiketrack-s256-t1/report.html docs/report.png

Checks what a reader would notice: JavaScript errors (uncaught exceptions and console
errors), and every plotly div drawn with data. Uses playwright (python) with the system
Chromium (/usr/bin/chromium, Debian's package); `ensure_chromium` installs it with apt when
it is missing and this process may.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ChromiumUnavailable(RuntimeError):
    """No Chromium and none can be installed here (the message says why)."""


def find_chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium")
    return found


def ensure_chromium(install: bool = True, timeout: int = 900) -> str:
    """Path of a Chromium binary; installs Debian's `chromium` with apt-get when missing,
    running as root and `install` is set. Raises ChromiumUnavailable with the reason."""
    path = find_chromium()
    if path:
        return path
    if not install:
        raise ChromiumUnavailable("chromium is not installed (/usr/bin/chromium); install it with "
                                  "`apt-get install -y chromium`")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise ChromiumUnavailable("chromium is not installed and this process is not root, so it cannot run "
                                  "`apt-get install -y chromium`")
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable("chromium is not installed and there is no apt-get to install it with")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise ChromiumUnavailable(f"`{' '.join(cmd)}` failed: {err}") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ChromiumUnavailable(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {last[0]}")
    path = find_chromium()
    if not path:
        raise ChromiumUnavailable("apt-get installed chromium but no binary was found at /usr/bin/chromium")
    return path


_PLOTS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    d => ({id: d.id, traces: (d.data || []).length,
           points: (d.data || []).reduce((n, t) => n + ((t.x && t.x.length) || (t.y && t.y.length) ||
                                                        (t.z && t.z.length) || 0), 0)}))"""


def check_report(report: str | os.PathLike, screenshot: str | os.PathLike | None = None, *,
                 chromium: str | None = None, width: int = 1280, height: int = 1800,
                 full_page: bool = False, timeout_ms: int = 60000) -> dict:
    """Load `report` (file://), wait until every plotly div is drawn, return
    {'errors': [...], 'plots': [{'id', 'traces', 'points'}], 'expected_plots': n, 'title',
    'opening': the first 600 characters of the page's text}
    and save a screenshot when asked."""
    from playwright.sync_api import sync_playwright

    path = pathlib.Path(report).resolve()
    chromium = chromium or ensure_chromium()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" else None)
            page.goto(path.as_uri(), wait_until="load", timeout=timeout_ms)
            expected = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
            page.wait_for_function(
                "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n", arg=expected,
                timeout=timeout_ms)
            plots = page.evaluate(_PLOTS_JS)
            title = page.title()
            opening = page.inner_text("main")[:600]
            if screenshot is not None:
                pathlib.Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return {"errors": errors, "plots": plots, "expected_plots": expected, "title": title, "opening": opening}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m snnsim.analysis.screenshot",
                                 description="Check a report renders in headless Chromium and screenshot it.")
    ap.add_argument("report", help="report.html to open")
    ap.add_argument("png", nargs="?", default="docs/report.png", help="screenshot path (default docs/report.png)")
    ap.add_argument("--full-page", action="store_true", help="the whole page, not the first screen")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1800)
    args = ap.parse_args(argv)
    try:
        result = check_report(args.report, args.png, width=args.width, height=args.height, full_page=args.full_page)
    except ChromiumUnavailable as err:
        print(f"screenshot: error: {err}", file=sys.stderr)
        return 2
    empty = [p["id"] for p in result["plots"] if p["traces"] == 0]
    print(f"{args.report}: {len(result['plots'])}/{result['expected_plots']} plots drawn, "
          f"{len(result['errors'])} JS error(s); screenshot {args.png}")
    for e in result["errors"]:
        print("  " + e)
    return 1 if result["errors"] or empty or len(result["plots"]) != result["expected_plots"] else 0


if __name__ == "__main__":
    sys.exit(main())
