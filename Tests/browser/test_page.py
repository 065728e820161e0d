"""End-to-end test of the page at `/` in headless Chromium (Debian's chromium + chromium-driver).

Run by scripts/test-browser.sh, which starts `stream-proxy serve --workers 1` in demo mode and sets
STREAMPROXY_URL. The demo route has 6 upstreams; upstream 5 is malformed and ends with an error.

The screenshot for the README (docs/screenshot.png, 1200x900) is written when it is missing or
when UPDATE_SCREENSHOT=1; otherwise it goes to .build/browser-test/ so that a test run leaves the
work tree clean.
"""

import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ.get("STREAMPROXY_URL")
if not BASE:
    pytest.skip("STREAMPROXY_URL is not set: run scripts/test-browser.sh", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

# True once every card is done or error and the summary says done.
FINISHED_JS = """
const cards = [...document.querySelectorAll('#cards .card')];
return cards.length > 0
    && cards.every(c => c.dataset.state === 'done' || c.dataset.state === 'error')
    && document.getElementById('summary').dataset.state === 'done';
"""


def streams_total():
    """The sum over workers of streamproxy_streams_total in /metrics."""
    with urllib.request.urlopen(BASE + "/metrics", timeout=5) as r:
        text = r.read().decode()
    values = re.findall(r"^streamproxy_streams_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert values, "streamproxy_streams_total missing from /metrics"
    return sum(float(v) for v in values)


def set_viewport(driver, width, height):
    """An exact viewport (the window size of headless Chromium includes its invisible frame)."""
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--window-size=1200,900", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    d.set_script_timeout(10)
    yield d
    d.quit()


def run_demo(driver, width, height):
    """Loads `/` at the given viewport, runs the demo route and waits until the page is done."""
    set_viewport(driver, width, height)
    driver.get(BASE + "/")
    wait = WebDriverWait(driver, 10)
    wait.until(lambda d: d.find_element(By.ID, "run").is_enabled())
    assert driver.find_element(By.ID, "route").get_attribute("value") == "demo"
    assert driver.execute_script("return window.__streamProxy.fanouts") == 0
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, 20, poll_frequency=0.1).until(lambda d: d.execute_script(FINISHED_JS))
    return driver.find_elements(By.CSS_SELECTOR, "#cards .card")


def test_demo_route_in_the_browser(driver):
    before = streams_total()
    cards = run_demo(driver, 1200, 900)

    states = {int(c.get_attribute("data-i")): c.get_attribute("data-state") for c in cards}
    assert sorted(states) == list(range(6))
    assert len({round(c.rect["x"]) for c in cards}) == 3  # three columns at 1200 px
    assert [i for i, s in states.items() if s == "error"] == [5]
    assert all(s == "done" for i, s in states.items() if i != 5)

    error_card = cards[5]
    assert "protocol" in error_card.find_element(By.CSS_SELECTOR, ".err").text
    badges = {int(c.get_attribute("data-i")): c.find_element(By.CSS_SELECTOR, ".badge").text for c in cards}
    assert badges[0] == "200" and badges[3] == "404"
    assert "s4" in cards[3].find_element(By.CSS_SELECTOR, ".badge").get_attribute("class")

    # chunk text is text: no markup, multi-byte characters intact
    pres = driver.execute_script(
        "return [...document.querySelectorAll('#cards pre')].map(p => [p.children.length, p.textContent])")
    assert all(n == 0 for n, _ in pres)
    utf8 = pres[1][1]
    for s in ("é", "☃", "𝄞", "日本語", "🙂"):
        assert s in utf8
    assert "\ufffd" not in utf8

    # the time-to-first-byte bars are scaled against the largest
    widths = driver.execute_script(
        "return [...document.querySelectorAll('#cards .card')].map(c => c.querySelector('.bar').style.width)")
    assert "100%" in widths

    # the summary, and an EventSource that was closed, not left to reconnect
    summary = driver.find_element(By.ID, "summary")
    assert summary.get_attribute("data-state") == "done"
    assert "5 ok" in summary.text and "1 failed" in summary.text
    state = driver.execute_script("return Object.assign({}, window.__streamProxy)")
    assert state["done"] is True and state["fanouts"] == 1 and state["readyState"] == 2
    assert state["events"] >= 1 + 6 + 1

    shot = ROOT / "docs" / "screenshot.png"
    if shot.exists() and os.environ.get("UPDATE_SCREENSHOT") != "1":
        shot = ROOT / ".build" / "browser-test" / "screenshot.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(shot))

    # no reconnect: 3 s later the server has still started exactly one fan-out for the page
    time.sleep(3)
    assert driver.execute_script("return window.__streamProxy.fanouts") == 1
    assert streams_total() - before == 1

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_narrow_window_is_one_column(driver):
    cards = run_demo(driver, 400, 900)
    rects = [c.rect for c in cards]
    assert len(rects) == 6
    assert len({round(r["x"]) for r in rects}) == 1, rects
    assert all(a["y"] + a["height"] <= b["y"] for a, b in zip(rects, rects[1:])), rects
    assert all(r["x"] + r["width"] <= 400 for r in rects), rects
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 400



def test_refused_stream_shows_a_banner(driver):
    """A stream the server refuses (here an unknown route: 404) ends in a banner, not a retry loop."""
    set_viewport(driver, 1200, 900)
    driver.get(BASE + "/")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "run").is_enabled())
    driver.execute_script("""
        const o = document.createElement('option');
        o.value = o.textContent = 'no-such-route';
        document.getElementById('route').append(o);
        document.getElementById('route').value = 'no-such-route';""")
    driver.find_element(By.ID, "run").click()
    banner = driver.find_element(By.ID, "banner")
    WebDriverWait(driver, 10, poll_frequency=0.1).until(lambda d: banner.is_displayed())
    assert "did not accept" in banner.text
    assert driver.find_element(By.ID, "summary").get_attribute("data-state") == "error"
    state = driver.execute_script("return Object.assign({}, window.__streamProxy)")
    assert state["readyState"] == 2 and state["fanouts"] == 0 and state["done"] is False
    assert driver.find_element(By.ID, "run").is_enabled()
