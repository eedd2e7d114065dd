"""report.html as a person sees it: headless Chromium renders a page that is not blank and whose script runs
without errors (sorting and filters wired). Skipped, with the reason, where no Chromium binary is installed
(Debian: ``apt-get install chromium``; CI installs it when apt works)."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.report.example_page import PAGE_NAME

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


@pytest.fixture(scope="session")  # session scope: looked for before the session-scoped tiny run is made
def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)}): the report.html render check "
                    "needs one (Debian: apt-get install chromium)")
    return found


def _headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def _console(done: subprocess.CompletedProcess) -> list[str]:
    """The page's console messages (Chromium logs them to stderr as ``INFO:CONSOLE``), uncaught errors included."""
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_page_renders_with_content(chromium, tiny_run, tmp_path):
    shot = tmp_path / "page.png"
    done = _headless(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000",
                     (tiny_run.parent / PAGE_NAME).as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 15 and (pixels < 250).mean() > 0.05  # text, table and pictures, not a white page
    assert _console(done) == []


def _dump(chromium: str, page: Path, profile: Path, fragment: str = "") -> tuple[str, list[str]]:
    done = _headless(chromium, profile, "--dump-dom", page.as_uri() + fragment)
    assert 'data-script="done"' in done.stdout, done.stderr[-2000:]  # the page's script ran to its end
    return done.stdout, _console(done)


def test_page_script_runs_without_errors(chromium, tiny_run, tmp_path):
    dom, console = _dump(chromium, tiny_run.parent / PAGE_NAME, tmp_path / "profile", "#show=unchanged")
    assert console == [] and '<div id="page-errors" data-count="0"></div>' in dom
    pressed = re.findall(r'data-filter="(\w+)" aria-pressed="true"', dom)
    assert pressed == ["unchanged", "unchanged"]  # both directions' filters set from the address by the script
    articles = re.findall(r'<article class="example" data-outcome="(\w+)"( hidden(?:="")?)?', dom)
    assert len(articles) == 12
    for outcome, hidden in articles:
        assert bool(hidden) == (outcome != "unchanged")


def test_a_script_error_would_be_caught(chromium, tiny_run, tmp_path):
    """Control: the checks above do see an error (a page with one more, failing, script)."""
    broken = tmp_path / PAGE_NAME
    broken.write_text((tiny_run.parent / PAGE_NAME).read_text(encoding="utf-8").replace(
        "</body>", "<script>window.setTimeout(function () { undefinedFunction(); }, 0);</script></body>"),
        encoding="utf-8")
    dom, console = _dump(chromium, broken, tmp_path / "profile")
    assert any("Uncaught ReferenceError" in line for line in console)
    assert 'data-count="1"' in dom and "undefinedFunction is not defined" in dom
