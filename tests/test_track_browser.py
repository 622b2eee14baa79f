"""The tracking page in a real headless Chromium at a phone's size (issue 12 item 2): the stage
is visible and nothing overflows sideways. Debian's chromium and chromium-driver (./dev.sh
installs them), driven by selenium with the system driver: nothing is downloaded.

Screenshots are kept in test-artifacts/ at the repository's root (git-ignored): one per language,
track-<lang>.png, overwritten by each run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from monitord.config.model import TrackingConfig
from tests.track_fixtures import serving

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}  # a small Android phone, in CSS pixels
LONG_NAME = "Kağıthane Gültepe Çağlayan Seyrantepe Hamidiye Santrali"  # the longest kind of name an inventory holds


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=360,740"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    return driver


def look(url: str, shots: list[Path]) -> list[dict[str, object]]:
    """Load each language's page; what the page measures of itself, and a screenshot of each."""
    seen = []
    driver = browser()
    try:
        for language, shot in zip(("tr", "en"), shots):
            driver.get(f"{url}/track/ARZ-2026-000123?lang={language}")
            stage = driver.find_element(By.ID, "stage")
            measured = driver.execute_script(
                "const r = arguments[0].getBoundingClientRect();"
                "return {viewport: window.innerWidth, page: document.documentElement.scrollWidth,"
                " body: document.body.scrollWidth, left: r.left, right: r.right, top: r.top, bottom: r.bottom,"
                " height: window.innerHeight};",
                stage,
            )
            seen.append({**measured, "text": stage.text, "displayed": stage.is_displayed()})
            assert driver.save_screenshot(str(shot))
        # the control: the same measure does see a page that is too wide
        widened = "const wide = document.createElement('div'); wide.style.width = '500px'; wide.textContent = 'x'; document.querySelector('main').append(wide);"
        seen.append({"widened": driver.execute_script(widened + "return document.documentElement.scrollWidth;")})
    finally:
        driver.quit()
    return seen


async def test_the_page_fits_a_phone(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shots = [ARTIFACTS / f"track-{language}.png" for language in ("tr", "en")]
    for shot in shots:
        shot.unlink(missing_ok=True)
    async with serving(tmp_path, TrackingConfig("127.0.0.1", 0, rate=100.0, burst=100), LONG_NAME) as url:
        tr, en, control = await asyncio.to_thread(look, url, shots)
    assert control["widened"] > PHONE["width"]
    assert tr["text"] == "Arıza tespit edildi" and en["text"] == "Fault detected"
    for seen in (tr, en):
        assert seen["displayed"] and seen["viewport"] == PHONE["width"], seen
        # a mobile browser widens its layout viewport (innerWidth) to a page too wide: compare with the phone's width
        assert seen["page"] <= PHONE["width"] and seen["body"] <= PHONE["width"], f"overflows sideways: {seen}"
        assert 0 <= seen["left"] < seen["right"] <= seen["viewport"] and 0 <= seen["top"] < seen["bottom"] <= seen["height"], seen
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
