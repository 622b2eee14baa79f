"""The console's network tree: counts folded per node, the worst state marked in words, the
schematic map, a 100,000-line inventory drawn in well under a second, and the page served by the
shared daemon (tests/http_fixtures.py)."""

from __future__ import annotations

import re
import time

from monitord.console_pages import Viewer
from monitord.console_tree import GROUPS, build_tree, grouped, tree_map, tree_page
from monitord.model import Device, Exchange, Region, Topology
from rules.tally import STATUSES
from tests.http_fixtures import Api
from tests.test_console import browsing, on_daemon_loop, sign_in

pytest_plugins = ["tests.http_fixtures"]
VIEWER = Viewer("ayse", "helpdesk", "", can_change=False)


def counted(**by_status: int) -> tuple[int, ...]:
    return tuple(by_status.get(s.name.lower(), 0) for s in STATUSES)


def small() -> Topology:
    regions = {"ist": Region("ist", "İstanbul"), "izm": Region("izm", "İzmir")}
    exchanges = {"sisli": Exchange("sisli", "Şişli", "ist"), "kadikoy": Exchange("kadikoy", "Kadıköy <b>", "ist")}
    devices = {
        "sisli-dslam-1": Device("sisli-dslam-1", "dslam", "sisli", "192.0.2.1", None, cabinet="k1", lat=41.06, lon=28.99),
        "sisli-dslam-2": Device("sisli-dslam-2", "dslam", "sisli", "192.0.2.2", None, cabinet="k1", lat=41.07, lon=28.98),
        "kadikoy-olt-1": Device("kadikoy-olt-1", "olt", "kadikoy", "192.0.2.3", None, lat=40.99, lon=29.03),
    }
    return Topology(regions, exchanges, devices, {})


def test_counts_fold_into_groups_and_up_the_tree() -> None:
    assert grouped(counted(ok=3, cpe=1, degraded=1, unreachable=2, down=1, maintenance=4, unknown=5)) == (3, 2, 5, 4, 3)
    assert GROUPS[0] == "down"
    counts = {"sisli-dslam-1": counted(ok=10, down=2), "sisli-dslam-2": counted(ok=5, degraded=1), "kadikoy-olt-1": counted(ok=7)}
    istanbul, izmir = build_tree(small(), counts)
    assert istanbul.counts == (2, 1, 0, 0, 22) and istanbul.worst == "down"
    kadikoy, sisli = istanbul.children
    assert (kadikoy.worst, sisli.worst) == ("up", "down")
    (cabinet,) = sisli.children
    assert cabinet.level == "cabinet" and [d.worst for d in cabinet.children] == ["down", "degraded"]
    assert izmir.children == () and izmir.worst == "empty"
    assert sisli.at is not None and abs(sisli.at[0] - 41.065) < 1e-9


def test_the_page_says_each_state_in_words_and_opens_only_trouble() -> None:
    counts = {"sisli-dslam-1": counted(ok=10, down=2), "sisli-dslam-2": counted(ok=5), "kadikoy-olt-1": counted(ok=7)}
    html = tree_page(build_tree(small(), counts), VIEWER, "en")
    assert re.search(r'<details id="exchange-sisli" open><summary><span class="state"[^>]*>Down</span>', html)
    assert re.search(r'<details id="exchange-kadikoy"><summary><span class="state"[^>]*>Up</span>', html)
    assert "2 down · 22 up" in html and "Kadıköy &lt;b&gt;" in html and "<b>" not in html.split("<main>")[1]
    assert 'id="device-sisli-dslam-1"' in html and "No lines" in html  # İzmir has none
    turkish = tree_page(build_tree(small(), counts), VIEWER, "tr")
    assert "Arızalı" in turkish and "2 arızalı · 22 çalışıyor" in turkish and "Santral" in turkish


def test_the_map_places_exchanges_by_their_devices_coordinates() -> None:
    counts = {"sisli-dslam-1": counted(down=1), "kadikoy-olt-1": counted(ok=1)}
    svg = tree_map(build_tree(small(), counts), {"map": "Map", "state_down": "Down", "state_up": "Up"})
    found = {m[3]: (float(m[1]), float(m[2])) for m in re.finditer(r'cx="([\d.]+)" cy="([\d.]+)".*?>([^<]+): ', svg)}
    assert set(found) == {"Şişli", "Kadıköy &lt;b&gt;"}
    (sx, sy), (kx, ky) = found["Şişli"], found["Kadıköy &lt;b&gt;"]
    assert sx < kx and sy < ky  # Şişli lies north-west of Kadıköy
    assert all(0 <= v <= 640 for v in (sx, sy, kx, ky)) and 'role="img"' in svg and "<title" in svg
    assert tree_map(build_tree(Topology(small().regions, small().exchanges, {}, {}), {}), {}) == ""


def test_a_hundred_thousand_lines_render_well_under_a_second() -> None:
    regions = {f"r{r}": Region(f"r{r}", f"Region {r}") for r in range(7)}
    exchanges = {f"e{e}": Exchange(f"e{e}", f"Exchange {e}", f"r{e % 7}") for e in range(140)}
    devices = {
        f"d{d}": Device(f"d{d}", "dslam", f"e{d % 140}", f"10.0.{d // 250}.{d % 250}", None, cabinet=f"c{d % 560}")
        for d in range(2_000)
    }
    trouble = lambda d: 1 if d % 97 == 0 else 0  # noqa: E731
    counts = {f"d{d}": counted(ok=46 - trouble(d), degraded=3, down=trouble(d), unknown=1) for d in range(2_000)}
    topology = Topology(regions, exchanges, devices, {})
    started = time.perf_counter()
    html = tree_page(build_tree(topology, counts), VIEWER, "en")
    took = time.perf_counter() - started
    assert sum(map(sum, counts.values())) == 100_000 and "21 down · 6,000 degraded · 2,000 unknown · 91,979 up" in html
    assert took < 0.5, took


@on_daemon_loop
async def test_the_tree_page_counts_every_line_of_the_lab(api: Api) -> None:
    async with browsing(api) as browser:
        await sign_in(browser, api, "helpdesk")
        status, page = await browser.get("/console/tree?lang=en")
    assert status == 200
    for region in api.topology.regions:
        assert f'id="region-{region}"' in page
    for device in api.topology.devices:
        assert f'id="device-{device}"' in page
    totals = re.search(r'<p id="totals">([^<]+)</p>', page)
    assert totals is not None and sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) \w+", totals[1])) == len(
        api.topology.lines
    )
    assert 'href="/console/tree"' in page
