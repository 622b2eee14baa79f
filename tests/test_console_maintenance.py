"""The console's maintenance windows and the ending of silences, over plain HTTP against the shared
daemon (tests/http_fixtures.py): what the NOC plans, cancels and ends is in the daemon's state and
its audit log; a helpdesk user's attempt and a window ending before it starts change nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from tests.http_fixtures import Api
from tests.test_console import audit_count, browsing, on_daemon_loop, sign_in

pytest_plugins = ["tests.http_fixtures"]


def local(api: Api, hours: float) -> str:
    """A time `hours` from now as a browser's datetime-local field sends it (no offset)."""
    at = datetime.now(ZoneInfo(api.daemon.config.timezone)) + timedelta(hours=hours)
    return at.strftime("%Y-%m-%dT%H:%M")


def windows(api: Api) -> set[str]:
    return {w.window.id for w in api.daemon.maintenance()}


@on_daemon_loop
async def test_noc_plans_and_cancels_a_window(api: Api) -> None:
    device = sorted(api.topology.devices)[0]
    before = windows(api)
    async with browsing(api) as browser:
        await sign_in(browser, api, "noc")
        status, page = await browser.get("/console/maintenance?lang=en")
        assert status == 200 and 'id="window-mw-config-planned"' in page and "From the config file" in page
        form = {"csrf": browser.csrf, "scope": f"device:{device}", "start": local(api, 24), "end": local(api, 26)}
        status, page, _ = await browser.post("/console/maintenance", form | {"reason": "Kart değişimi <b>"})
        assert status == 200 and "Saved." in page and "Kart değişimi &lt;b&gt;" in page
        (added,) = windows(api) - before
        window = next(w for w in api.daemon.maintenance() if w.window.id == added)
        assert window.source == "api" and [str(n) for n in window.window.scope] == [f"device:{device}"]
        assert window.window.end - window.window.start == 2 * 3600
        assert [(e.action, e.target, e.actor) for e in api.daemon.store.audit(1)] == [("plan_maintenance", added, "noc")]
        assert f'id="cancel-{added}"' in page and 'id="cancel-mw-config-planned"' not in page

        status, page, _ = await browser.post(f"/console/maintenance/{added}/cancel", {"csrf": browser.csrf})
        assert status == 200 and "Cancelled." in page and f'id="window-{added}"' not in page
        assert windows(api) == before
        assert [(e.action, e.target) for e in api.daemon.store.audit(1)] == [("cancel_maintenance", added)]
        audits = audit_count(api)
        status, page, _ = await browser.post("/console/maintenance/mw-config-planned/cancel", {"csrf": browser.csrf})
        assert status == 409 and "comes from the config file" in page
        assert windows(api) == before and audit_count(api) == audits


@on_daemon_loop
async def test_a_window_ending_before_it_starts_is_refused_with_the_reason(api: Api) -> None:
    before, audits = windows(api), audit_count(api)
    async with browsing(api) as browser:
        await sign_in(browser, api, "noc")
        form = {"csrf": browser.csrf, "scope": "region:" + sorted(api.topology.regions)[0], "reason": "Fiber çekimi"}
        status, page, _ = await browser.post("/console/maintenance", form | {"start": local(api, 5), "end": local(api, 3)})
        assert status == 400 and escape("end: the window ends before it starts") in page
        assert 'value="Fiber çekimi"' in page, "what was entered is kept for the correction"
        status, page, _ = await browser.post("/console/maintenance", form | {"start": "yarın", "end": local(api, 3)})
        assert status == 400 and escape("start: 'yarın' is not a date and time") in page
        status, page, _ = await browser.post(
            "/console/maintenance", form | {"scope": "exchange:nowhere", "start": local(api, 1), "end": local(api, 2)}
        )
        assert status == 400 and escape("scope[0]: no exchange 'nowhere'") in page
    assert windows(api) == before and audit_count(api) == audits + 1  # the sign-in alone


@on_daemon_loop
async def test_noc_ends_a_silence_from_the_silences_page(api: Api) -> None:
    line = sorted(api.topology.lines)[-1]
    async with browsing(api) as browser:
        await sign_in(browser, api, "noc")
        form = {"csrf": browser.csrf, "node": f"line:{line}", "duration": "1h", "comment": "müşteri taşınıyor"}
        assert (await browser.post("/console/silences", form))[0] == 200
        silence = next(s for s in api.daemon.silences() if s.comment == "müşteri taşınıyor")
        status, page, _ = await browser.post(f"/console/silences/{silence.id}/expire", {"csrf": browser.csrf})
        assert status == 200 and "Susturma sonlandırıldı." in page and f'id="silence-{silence.id}"' not in page
        status, page, _ = await browser.post(f"/console/silences/{silence.id}/expire", {"csrf": browser.csrf})
        assert status == 400 and "no active or planned silence" in page
    ended = next(s for s in api.daemon.silences() if s.id == silence.id)
    assert ended.expired_by == "noc" and ended.end <= api.daemon.clock()
    assert [(e.action, e.target) for e in api.daemon.store.audit(1)] == [("expire_silence", silence.id)]


@on_daemon_loop
async def test_helpdesk_may_not_plan_cancel_or_end(api: Api) -> None:
    line = sorted(api.topology.lines)[-1]
    async with browsing(api) as noc:
        await sign_in(noc, api, "noc")
        form = {"csrf": noc.csrf, "node": f"line:{line}", "duration": "1h", "comment": "helpdesk cannot end this"}
        await noc.post("/console/silences", form)
        form = {"csrf": noc.csrf, "scope": f"line:{line}", "start": local(api, 30), "end": local(api, 31), "reason": "r"}
        await noc.post("/console/maintenance", form)
    silence = next(s for s in api.daemon.silences() if s.comment == "helpdesk cannot end this")
    (window,) = [w.window.id for w in api.daemon.maintenance() if w.window.scope[0].id == line]
    before, audits = windows(api), audit_count(api)
    try:
        async with browsing(api) as helpdesk:
            await sign_in(helpdesk, api, "helpdesk")
            _, page = await helpdesk.get("/console/maintenance")
            assert 'id="plan"' not in page and "cancel-" not in page  # no forms offered
            _, page = await helpdesk.get("/console/silences")
            assert "expire-" not in page
            form = {"csrf": helpdesk.csrf, "scope": f"line:{line}", "start": local(api, 40), "end": local(api, 41)}
            status, page, _ = await helpdesk.post("/console/maintenance", form)
            assert status == 403 and "helpdesk role may not plan maintenance" in page
            assert (await helpdesk.post(f"/console/maintenance/{window}/cancel", {"csrf": helpdesk.csrf}))[0] == 403
            assert (await helpdesk.post(f"/console/silences/{silence.id}/expire", {"csrf": helpdesk.csrf}))[0] == 403
            assert (await helpdesk.post(f"/console/silences/{silence.id}/expire", {"csrf": "forged"}))[0] == 403
        assert windows(api) == before and audit_count(api) == audits + 1  # the sign-in alone
        assert next(s for s in api.daemon.silences() if s.id == silence.id).expired_by is None
    finally:
        await api.daemon.expire_silence(silence.id, "test")
        await api.daemon.cancel_maintenance(window)
    assert re.fullmatch(r"mw-\d{8}-\d{4}-[0-9a-f]{4}", window)
