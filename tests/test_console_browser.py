"""The web console as a person uses it (issue 16 item 3): a real headless Chromium (Debian's
chromium and chromium-driver, driven by selenium with the system driver, as
tests/test_track_browser.py) against the shared daemon on the simulated ISP. Sign in, see a
DSLAM's outage appear on the board without reloading, look its subscriber up and read the
verdict, acknowledge the outage, add a silence and end it, find the DSLAM's exchange marked down
in the network tree (and close and open a node with the keyboard), plan a maintenance window
and cancel it, sign out.

The browser runs in a thread of its own while the daemon runs on the test's loop.
Screenshots are kept in test-artifacts/ (git-ignored): console-<step>.png, overwritten by each run.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from lab.isp import console_password
from monitord.console_pages import REFRESH_SECONDS
from monitord.demo import until
from monitord.model import NodeRef
from tests.http_fixtures import Api
from tests.test_console import open_outage, restored
from tests.test_track_browser import ARTIFACTS, browser

pytest_plugins = ["tests.http_fixtures"]
on_daemon_loop = pytest.mark.asyncio(loop_scope="session")
T = TypeVar("T")


def unless_replaced(condition: Callable[[webdriver.Chrome], T]) -> Callable[[webdriver.Chrome], T | None]:
    """The condition, not yet met while the page replaces the element it reads: chromedriver reports
    such an element as stale or, caught mid-replace, as a node that "does not belong to the document"."""

    def met(driver: webdriver.Chrome) -> T | None:
        try:
            return condition(driver)
        except StaleElementReferenceException:
            return None
        except WebDriverException as error:
            if "does not belong to the document" not in str(error):
                raise
            return None

    return met


class Person:
    """What a person does in the browser, step by step, with a screenshot after each."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url
        self.shots: list[Path] = []

    def shot(self, step: str) -> None:
        path = ARTIFACTS / f"console-{step}.png"
        assert self.driver.save_screenshot(str(path))
        self.shots.append(path)

    def wait_for(self, css: str, timeout: float, containing: str = "") -> str:
        """The element's text once it is there (and holds `containing`); read inside the wait, since
        a click's page may still be loading and the board's refresh replaces its rows."""
        wait = WebDriverWait(self.driver, timeout)
        texts = lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, css) if containing in e.text][:1] or None  # noqa: E731
        return str(wait.until(unless_replaced(texts))[0])

    def click(self, element_id: str) -> None:
        """Click it, found again if the board's refresh replaced it meanwhile."""
        wait = WebDriverWait(self.driver, 10)
        wait.until(unless_replaced(lambda d: d.find_element(By.ID, element_id).click() or True))

    def submit(self, element_id: str) -> str:
        """Press a form's button and read the message of the page the post leads to: the page
        still shown may hold the last one's message ("Kaydedildi." before "İptal edildi.")."""
        shown = self.driver.find_elements(By.ID, "message")
        self.click(element_id)
        if shown:
            WebDriverWait(self.driver, 10).until(staleness_of(shown[0]))
        return self.wait_for("#message", 10)

    def sign_in(self, user: str, password: str) -> None:
        self.driver.get(f"{self.url}/console?lang=en")  # sent on to the sign-in page
        assert self.driver.current_url.endswith("/console/login")
        self.driver.get(f"{self.url}/console/login?lang=en")
        self.driver.find_element(By.ID, "user").send_keys(user)  # found by its label's field: labelled inputs
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.shot("sign-in")
        self.driver.find_element(By.ID, "sign-in").click()
        self.wait_for("#board", 10)
        self.shot("board-quiet")

    def look_up(self, query: str, line: str) -> str:
        self.driver.find_element(By.LINK_TEXT, "Abone sorgula").click()
        self.wait_for("#q", 10)
        self.driver.find_element(By.ID, "q").send_keys(query)
        self.driver.find_element(By.ID, "search").click()
        verdict = self.wait_for(f"#subscriber-{line} .summary", 10)
        self.shot("lookup")
        return verdict


@dataclass(slots=True)
class Handover:
    """Between the browser's thread and the test: signed in (the test breaks a DSLAM), then its outage's number."""

    signed_in: threading.Event = field(default_factory=threading.Event)
    tracking: queue.Queue[str] = field(default_factory=queue.Queue)


def use_the_console(
    url: str, password: str, handover: Handover, line: str, node: str, exchange: str, start: str, end: str
) -> dict[str, object]:
    """In a thread: everything the person does, and what they read on the way."""
    ARTIFACTS.mkdir(exist_ok=True)
    driver = browser()
    person, seen = Person(driver, url), {}
    try:
        person.sign_in("noc", password)
        seen["lang"] = driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
        handover.signed_in.set()
        tracking = handover.tracking.get(timeout=300)
        assert tracking, "no outage to look at"
        started = time.monotonic()
        seen["row"] = person.wait_for(f"#incident-{tracking}", REFRESH_SECONDS * 4)  # appears without a reload
        seen["appeared_after"] = time.monotonic() - started
        person.shot("board-outage")

        driver.get(f"{url}/console?lang=tr")  # Turkish now, as the switch link does
        seen["verdict"] = person.look_up(line, line)
        seen["lookup_tracking"] = f"<strong>{tracking}</strong>" in driver.page_source
        driver.find_element(By.LINK_TEXT, "Arıza panosu").click()
        person.click(f"ack-{tracking}")
        seen["acked"] = person.wait_for(f"#incident-{tracking}", 10, containing="noc onayladı")
        person.shot("acknowledged")
        driver.find_element(By.LINK_TEXT, "Susturmalar").click()
        person.wait_for("#node", 10)
        driver.find_element(By.ID, "node").send_keys(node)
        driver.find_element(By.ID, "comment").send_keys("DSLAM arızası, ekip yolda")
        seen["silenced"] = person.submit("silence")
        seen["silences"] = driver.find_element(By.TAG_NAME, "table").text
        seen["page_width"] = driver.execute_script("return document.documentElement.scrollWidth;")
        person.shot("silenced")
        silence_id = driver.find_element(By.CSS_SELECTOR, "button[id^=expire-]").get_attribute("id")
        seen["silence_ended"] = person.submit(str(silence_id))

        driver.find_element(By.LINK_TEXT, "Bölge / santral / cihaz").click()
        seen["tree"] = person.wait_for(f"#exchange-{exchange} > summary", 10)
        seen["tree_opened_by_trouble"] = driver.find_element(By.ID, f"exchange-{exchange}").get_attribute("open")
        region = driver.find_element(By.CSS_SELECTOR, "#tree > li > details > summary")
        region.send_keys(Keys.ENTER)  # the keyboard closes a node, and opens it again
        seen["closed_by_keyboard"] = region.find_element(By.XPATH, "..").get_attribute("open")
        region.send_keys(Keys.ENTER)
        seen["tree_width"] = driver.execute_script("return document.documentElement.scrollWidth;")
        person.shot("tree")

        driver.find_element(By.LINK_TEXT, "Bakım çalışmaları").click()
        person.wait_for("#scope", 10)
        driver.find_element(By.ID, "scope").send_keys(node)
        for field_id, value in (("start", start), ("end", end)):  # a datetime-local field, as its picker fills it
            driver.execute_script("arguments[0].value = arguments[1];", driver.find_element(By.ID, field_id), value)
        driver.find_element(By.ID, "reason").send_keys("Kart değişimi")
        seen["planned"] = person.submit("plan")
        seen["windows"] = driver.find_element(By.TAG_NAME, "table").text
        person.shot("maintenance")
        seen["cancelled"] = person.submit(str(driver.find_element(By.CSS_SELECTOR, "button[id^=cancel-]").get_attribute("id")))
        driver.find_element(By.ID, "sign-out").click()
        person.wait_for("#sign-in", 10)
        seen["after_sign_out"] = driver.current_url
        person.shot("signed-out")
        driver.get(f"{url}/console")
        seen["board_after_sign_out"] = driver.current_url
    finally:
        driver.quit()
    return seen | {"shots": person.shots}


@on_daemon_loop
async def test_a_noc_engineer_works_an_outage_in_the_browser(api: Api) -> None:
    for old in ARTIFACTS.glob("console-*.png"):
        old.unlink()
    dslam = api.dslams()[0]
    root, line = NodeRef("device", dslam), api.lines_of(dslam)[0]
    handover = Handover()
    password = console_password(api.root, "noc")
    exchange = api.topology.devices[dslam].exchange
    tomorrow = datetime.now(ZoneInfo(api.daemon.config.timezone)) + timedelta(days=1)
    start, end = (f"{tomorrow + timedelta(hours=h):%Y-%m-%dT%H:%M}" for h in (0, 2))
    windows = {w.window.id for w in api.daemon.maintenance()}
    browsing = asyncio.create_task(
        asyncio.to_thread(use_the_console, api.url, password, handover, line, str(root), exchange, start, end)
    )
    try:
        await until(lambda: handover.signed_in.is_set() or browsing.done(), 60, "the browser to sign in")
        if browsing.done():
            await browsing
        _, tracking = await open_outage(api)
        # the engine opened it; the store has it once that step's commit is through (the writer thread's)
        outage = await until(lambda: api.daemon.incident(tracking), 30, "the outage written")
        handover.tracking.put(tracking)
        seen = await browsing
    finally:
        handover.tracking.put("")  # a browser still waiting gives up (its test failed before the outage)
        await restored(api)
    assert seen["lang"] == "en"
    assert dslam in str(seen["row"]) and str(len(outage.affected)) in str(seen["row"]), seen
    assert float(seen["appeared_after"]) < REFRESH_SECONDS * 3, seen  # type: ignore[arg-type]
    assert f"{dslam} does not answer" in str(seen["verdict"]) and seen["lookup_tracking"], seen
    assert "noc onayladı" in str(seen["acked"]), seen
    assert seen["silenced"] == "Kaydedildi." and "DSLAM arızası, ekip yolda" in str(seen["silences"]), seen
    assert str(seen["after_sign_out"]).endswith("/console/login") and str(seen["board_after_sign_out"]).endswith("/console/login")
    silence = next(s for s in api.daemon.silences() if s.comment == "DSLAM arızası, ekip yolda")
    assert silence.author == "noc" and silence.expired_by == "noc" and seen["silence_ended"] == "Susturma sonlandırıldı."
    assert "Arızalı" in str(seen["tree"]) and seen["tree_opened_by_trouble"] == "true" and seen["closed_by_keyboard"] is None
    assert seen["tree_width"] == seen["page_width"], seen  # no sideways scrolling on a phone
    assert seen["planned"] == "Kaydedildi." and "Kart değişimi" in str(seen["windows"]) and str(root) in str(seen["windows"])
    assert seen["cancelled"] == "İptal edildi." and {w.window.id for w in api.daemon.maintenance()} == windows
    actions = [e.action for e in api.daemon.store.audit(7)]
    assert actions == ["sign_out", "cancel_maintenance", "plan_maintenance", "expire_silence", "silence", "ack", "sign_in"]
    assert [e.target for e in api.daemon.store.audit(7)][3:6] == [silence.id, silence.id, outage.tracking]
    for shot in seen["shots"]:  # type: ignore[attr-defined]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 3000
