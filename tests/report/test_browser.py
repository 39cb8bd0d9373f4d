"""The clinician report in a real headless browser (the distribution's Chromium): it renders,
requests nothing from the network, logs no console errors and prints to A4 PDF.

Chromium and chromedriver come from the system (``.ci/run`` installs them with apt-get).
Without them the test is skipped locally; with ``REQUIRE_BROWSER=1`` (set by ``.ci/run``)
their absence is a failure.
"""

import base64
import json
import os
import shutil

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

if not (BROWSER and DRIVER):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium and chromedriver are required (apt-get install chromium "
                    "chromium-driver)", pytrace=False)  # fmt: skip
    pytest.skip("Chromium/chromedriver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.print_page_options import PrintOptions  # noqa: E402


@pytest.fixture(scope="module")
def page(reported, tmp_path_factory):
    root, _, _ = reported
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400",
                "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    url = (root / "reports/clinician.html").resolve().as_uri()
    driver.get(url)
    yield driver, url, tmp_path_factory.mktemp("browser")
    driver.quit()


def test_renders_with_its_figures(page):
    driver, _, out = page
    assert driver.title.startswith("Early engagement and outcomes")
    sizes = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg')).map("
        "s => [s.getBoundingClientRect().width, s.getBoundingClientRect().height])"
    )
    assert len(sizes) >= 3 and all(w > 200 and h > 100 for w, h in sizes)
    headings = driver.execute_script(
        "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)"
    )
    assert headings[0] == "Key findings" and "Limitations" in headings
    assert driver.save_screenshot(str(out / "clinician.png"))


def test_makes_no_network_request_and_logs_no_error(page):
    driver, url, _ = page
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    assert all(r == url or r.startswith("data:") for r in requests), requests
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_prints_to_a4_pdf(page):
    driver, _, out = page
    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7
    pdf = base64.b64decode(driver.print_page(options))
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 5  # sections break pages
    (out / "clinician.pdf").write_bytes(pdf)
