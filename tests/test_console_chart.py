"""The lookup's line quality chart: the level chosen, points scaled into the plot, gaps kept,
values escaped, words for what it shows, and the page a lookup serves (tests/http_fixtures.py)."""

from __future__ import annotations

import re

from monitord.console_chart import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, Series, chart, pick
from tests.http_fixtures import Api
from tests.test_console import browsing, on_daemon_loop, sign_in
from tests.test_rollups_api import dsl_lines, polled_quality

pytest_plugins = ["tests.http_fixtures"]
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z: 03:00 in Istanbul


def polylines(svg: str) -> list[list[tuple[float, float]]]:
    return [
        [(float(x), float(y)) for x, y in (p.split(",") for p in found.split())]
        for found in re.findall(r'<polyline points="([^"]+)" fill="none" stroke="#0b57d0"', svg)
    ]


def test_the_preferred_level_is_charted() -> None:
    points = [(T0, {"attenuation_down_db": (1.0, 2.0, 3.0), "snr_margin_down_db": (5.0, 6.0, 7.0)})]
    series = pick(points)
    assert series is not None and series.metric == "snr_margin_down_db" and series.avg == (6.0,)
    assert pick([(T0, {"crc_errors": (0.0, 1.0, 2.0)})]).metric == "crc_errors"  # type: ignore[union-attr]
    assert pick([]) is None


def test_points_are_scaled_into_the_plot_and_a_gap_breaks_the_line() -> None:
    avg = (10.0, 20.0, None, 30.0)
    series = Series(
        "snr_margin_down_db", tuple(T0 + 300 * n for n in range(4)), (9.0, 19.0, None, 29.0), avg, (11.0, 21.0, None, 31.0)
    )
    svg = chart(series, "Europe/Istanbul", "en", "s1")
    first, second = polylines(svg)
    assert len(first) == 2 and len(second) == 1  # the period without a reading is not bridged
    (x0, y0), (x1, y1) = first
    (x3, y3) = second[0]
    assert x0 == LEFT and x3 == WIDTH - RIGHT and x0 < x1 < x3
    bottom, top = HEIGHT - BOTTOM, TOP
    assert abs(y0 - (top + (31 - 10) / (31 - 9) * (bottom - top))) < 0.1 and top <= y3 < y1 < y0 <= bottom
    assert "Lowest 9, highest 31 dB. Last average 30 dB (03:15)." in svg
    assert 'role="img"' in svg and 'aria-labelledby="chart-s1-title chart-s1-desc"' in svg and ">03:00<" in svg
    assert "Son ortalama 30 dB (03:15)." in chart(series, "Europe/Istanbul", "tr", "s1")


def test_one_value_or_none_at_all() -> None:
    flat = Series("us_rx_power_dbmv", (T0,), (2.5,), (2.5,), (2.5,))
    svg = chart(flat, "UTC", "en", "s2")
    ((x, _),) = polylines(svg)[0]
    assert x == LEFT + (WIDTH - LEFT - RIGHT) / 2 and "dBmV" in svg
    assert chart(None, "UTC", "en", "s3") == '<p class="no-history">No quality history yet.</p>'
    empty = Series("snr_margin_down_db", (T0,), (None,), (None,), (None,))
    assert "Henüz kalite geçmişi yok." in chart(empty, "UTC", "tr", "s3")


def test_values_are_escaped() -> None:
    series = Series('<script>alert("x")</script>', (T0,), (1.0,), (1.0,), (1.0,))
    svg = chart(series, "UTC", "en", '"><b>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg and '"><b>' not in svg


@on_daemon_loop
async def test_a_lookup_charts_the_lines_real_readings(api: Api) -> None:
    line = dsl_lines(api)[0]
    status, body = await polled_quality(api, line)  # a period of the lab's polls written
    assert status == 200 and body["series"]["snr_margin_down_db"]["avg"]
    async with browsing(api) as browser:
        await sign_in(browser, api, "helpdesk")
        status, page = await browser.get("/console/lookup", params={"q": line, "lang": "en"})
    assert status == 200 and f'id="subscriber-{line}"' in page
    assert 'class="chart"' in page and "Line quality, last 24 hours: snr_margin_down_db" in page
    assert re.search(r"Last average [\d.]+ dB \(\d\d:\d\d\)", page)
