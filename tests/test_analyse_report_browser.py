"""The analysis report in headless Chromium: every inline figure decodes and shows, offline.

Skipped, with the reason, where Chromium and its driver are not installed
(``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
    ),
]


def open_headless(tmp_path, width: int = 1200, height: int = 1600):
    """A headless Chromium driver without network access (the report must need none)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--proxy-server=127.0.0.1:9",  # any request to the network fails
        f"--window-size={width},{height}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def test_report_figures_load_in_chromium(tmp_path, monkeypatch) -> None:
    from course_lib.analyse import analyse
    from course_lib.analyse.run import ANALYSES

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    analyse("resnet_tiny", out=tmp_path / "out", profile="smoke", progress=False)
    driver = open_headless(tmp_path)
    try:
        driver.get((tmp_path / "out" / "report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map("
            "i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width])"
        )
        assert len(images) == len(ANALYSES)
        for complete, natural_width, shown_width in images:
            assert complete and natural_width > 100 and shown_width > 100
    finally:
        driver.quit()
