"""The published book in a real browser: build it (smoke profile), open every page in headless
Chromium, and check what a reader sees: no console errors, every image loads, internal links
resolve, solution toggles open, and search finds a term. Screenshots go to test-artifacts/.

Skipped, with the reason, where Chromium and its driver are not installed
(``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the book in the smoke profile into a temporary folder; serve it on localhost.

    Results go to ``COURSE_TEST_BOOK_CACHE`` where the test command sets it (its own fresh
    cache, which the notebooks under nbval read after this build), else to a fresh folder."""
    out = tmp_path_factory.mktemp("book")
    cache = os.environ.get("COURSE_TEST_BOOK_CACHE") or str(out / "cache")
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_CACHE": cache}
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "-q"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = out / "_build" / "html"
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def content_pages(html: Path) -> list[str]:
    """Relative paths of the book's own pages (not Sphinx's generated index/search pages)."""
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts
    )


def test_every_page_loads_with_images_and_no_console_errors(site, browser):
    html, base = site
    pages = content_pages(html)
    assert {"book/intro.html", "notebooks/setup_check.html"} <= set(pages)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for page in pages:
        browser.get(urljoin(base, page))
        browser.get_log("browser")  # flush; re-read after everything loaded
        browser.refresh()
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            problems.append(f"{page}: console errors {errors}")
        broken = browser.execute_script(
            "return Array.from(document.images)"
            ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
        )
        if broken:
            problems.append(f"{page}: images that did not load {broken}")
        browser.save_screenshot(str(ARTIFACTS / (page.replace("/", "__") + ".png")))
    assert not problems, "\n".join(problems)


def test_chapters_show_computed_figures_and_exercises_passing_checks(site, browser):
    html, base = site
    for page in content_pages(html):
        if not page.startswith("notebooks/"):
            continue
        browser.get(urljoin(base, page))
        if page.startswith("notebooks/exercises/"):  # code exercises: their solutions pass
            outputs = browser.execute_script(
                "return Array.from(document.querySelectorAll('.cell_output'))"
                ".map(o => o.textContent).join(' ');"
            )
            assert "✓" in outputs, f"{page} shows no passing check"
            continue
        figures = browser.execute_script(
            "return Array.from(document.querySelectorAll('.cell_output img'))"
            ".filter(i => i.naturalWidth > 100).length;"
        )
        assert figures >= 1, f"{page} shows no computed figure"


def test_internal_links_resolve(site, browser):
    html, base = site
    missing = set()
    for page in content_pages(html):
        browser.get(urljoin(base, page))
        hrefs = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
        )
        for href in hrefs:
            url = urlparse(href)
            if url.netloc != urlparse(base).netloc:
                continue
            target = html / url.path.lstrip("/")
            if url.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                missing.add(f"{page} -> {url.path}")
            elif url.fragment and target.suffix == ".html":
                text = target.read_text(encoding="utf-8", errors="replace")
                if f'id="{url.fragment}"' not in text:
                    missing.add(f"{page} -> {url.path}#{url.fragment}")
    assert not missing, "broken internal links:\n" + "\n".join(sorted(missing))


def test_solutions_are_hidden_and_toggle_open(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    html, base = site
    pages = [p for p in content_pages(html) if 'class="solution' in (html / p).read_text()]
    if not pages:
        pytest.skip("no page has exercises yet")
    for page in pages:
        browser.get(urljoin(base, page))
        solution = browser.find_element(By.CSS_SELECTOR, "div.solution.dropdown")
        content = solution.find_element(By.CSS_SELECTOR, "section")
        assert not content.is_displayed(), f"{page}: the solution is not hidden"
        button = WebDriverWait(browser, 10).until(
            lambda d, s=solution: s.find_element(By.CSS_SELECTOR, "button.toggle-button")
        )
        browser.execute_script("arguments[0].click();", button)
        WebDriverWait(browser, 10).until(lambda d, c=content: c.is_displayed())


def test_static_sliders_swap_their_frames(site, browser):
    html, base = site
    pages = [p for p in content_pages(html) if "course-frames" in (html / p).read_text()]
    assert "notebooks/00_preliminaries.html" in pages, "the frequency filter lost its frames"
    for page in pages:
        browser.get(urljoin(base, page))
        swapped = browser.execute_script(
            """return Array.from(document.querySelectorAll('.course-frames')).map(box => {
                 const slider = box.querySelector('input[type=range]');
                 const img = box.querySelector('img'), out = box.querySelector('output');
                 const before = [img.src, out.textContent];
                 slider.value = slider.value === '0' ? '1' : '0';
                 slider.dispatchEvent(new Event('input'));
                 return img.src !== before[0] && out.textContent !== before[1];
               });"""
        )
        assert swapped and all(swapped), f"{page}: a frame slider did not swap its picture"


def test_search_finds_a_term(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _, base = site
    browser.get(urljoin(base, "search.html?q=Hessian"))
    WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "ul.search li"))
    )
    results = browser.find_elements(By.CSS_SELECTOR, "ul.search li a")
    assert results, "search for 'Hessian' found nothing"
