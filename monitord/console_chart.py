"""A subscriber line's quality over the last day as a small inline SVG for the console's lookup
(pure: monitord/console.py reads the roll-ups, as GET /api/subscribers/{id}/quality does).

One level per chart, the one that says most about the line's kind (the DSL downstream SNR
margin, the cable modem's power at the CMTS, the ONU's optical power), else the first the line
has. The 5-minute averages are a solid line between the minimum and maximum, dashed; a period
without a reading breaks the lines rather than joining across the gap. No script and no
library: the chart is drawn once on the server, and its `<title>` and the sentence under it
(range and last value) say in words what it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from monitord.model import Language
from monitord.rollups import Point

PREFERRED = ("snr_margin_down_db", "us_rx_power_dbmv", "ds_power_dbmv", "onu_rx_power_dbm")
UNITS = (("_dbmv", "dBmV"), ("_dbm", "dBm"), ("_db", "dB"), ("_bps", "bit/s"))
WIDTH, HEIGHT = 480, 160
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 24  # room for the axes' labels

_WORDS = {
    "tr": {
        "title": "Hat kalitesi, son 24 saat: {metric}",
        "none": "Henüz kalite geçmişi yok.",
        "range": "En düşük {lo}, en yüksek {hi} {unit}.",
        "last": "Son ortalama {value} {unit} ({at}).",
        "legend": "düz çizgi: 5 dakikalık ortalama; kesikli: en düşük ve en yüksek",
    },
    "en": {
        "title": "Line quality, last 24 hours: {metric}",
        "none": "No quality history yet.",
        "range": "Lowest {lo}, highest {hi} {unit}.",
        "last": "Last average {value} {unit} ({at}).",
        "legend": "solid line: 5-minute average; dashed: lowest and highest",
    },
}


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    at: tuple[int, ...]  # period starts, epoch seconds, ascending
    low: tuple[float | None, ...]
    avg: tuple[float | None, ...]
    high: tuple[float | None, ...]


def pick(points: Sequence[tuple[int, Point]]) -> Series | None:
    """The chart's level from the roll-ups: a preferred one the line has, else its first."""
    metrics = list(dict.fromkeys(metric for _, point in points for metric in point))
    metric = next((m for m in PREFERRED if m in metrics), metrics[0] if metrics else None)
    if metric is None:
        return None
    values = [point.get(metric, (None, None, None)) for _, point in points]
    return Series(
        metric,
        tuple(at for at, _ in points),
        tuple(v[0] for v in values),
        tuple(v[1] for v in values),
        tuple(v[2] for v in values),
    )


def unit(metric: str) -> str:
    return next((u for suffix, u in UNITS if metric.endswith(suffix)), "")


def _segments(xs: Sequence[float], values: Sequence[float | None], y: Callable[[float], float]) -> list[str]:
    """Polyline point lists, one per run of periods with a reading."""
    runs: list[list[str]] = [[]]
    for x, v in zip(xs, values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{x:.1f},{y(v):.1f}")
    return [" ".join(run) for run in runs if run]


def chart(series: Series | None, zone: str, language: Language, id: str) -> str:
    """The chart and its sentence, or a line saying there is no history yet."""
    w = _WORDS[language]
    known = [v for column in (series.low, series.avg, series.high) for v in column if v is not None] if series else []
    if series is None or not known:
        return f'<p class="no-history">{escape(w["none"])}</p>'
    lo, hi = min(known), max(known)
    floor, ceiling = (lo - 1, hi + 1) if hi - lo < 1e-9 else (lo, hi)
    first, last = series.at[0], series.at[-1]
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = [LEFT + (width / 2 if last == first else (at - first) / (last - first) * width) for at in series.at]

    def y(value: float) -> float:
        return TOP + (ceiling - value) / (ceiling - floor) * height

    tz = ZoneInfo(zone)
    clock = lambda at: datetime.fromtimestamp(at, tz).strftime("%H:%M")  # noqa: E731
    u = unit(series.metric)
    title = w["title"].format(metric=series.metric)
    summary = w["range"].format(lo=f"{lo:g}", hi=f"{hi:g}", unit=u)
    latest = next(((at, v) for at, v in zip(reversed(series.at), reversed(series.avg)) if v is not None), None)
    if latest is not None:
        summary += " " + w["last"].format(value=f"{latest[1]:g}", unit=u, at=clock(latest[0]))
    lines = [
        f'<polyline points="{p}" fill="none" stroke="#57606a" stroke-width="1" stroke-dasharray="4 3"/>'
        for values in (series.low, series.high)
        for p in _segments(xs, values, y)
    ]
    lines += [f'<polyline points="{p}" fill="none" stroke="#0b57d0" stroke-width="2"/>' for p in _segments(xs, series.avg, y)]
    axes = (
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + height}" stroke="#1b1f24"/>'
        f'<line x1="{LEFT}" y1="{TOP + height}" x2="{LEFT + width}" y2="{TOP + height}" stroke="#1b1f24"/>'
        f'<text x="{LEFT - 4}" y="{y(ceiling) + 4:.1f}" text-anchor="end">{ceiling:g}</text>'
        f'<text x="{LEFT - 4}" y="{y(floor):.1f}" text-anchor="end">{floor:g}</text>'
        f'<text x="{LEFT - 4}" y="{TOP + height / 2 + 4:.1f}" text-anchor="end">{escape(u)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{clock(first)}</text>'
        f'<text x="{LEFT + width}" y="{HEIGHT - 6}" text-anchor="end">{clock(last)}</text>'
    )
    ids = f"chart-{escape(id)}"
    return (
        f'<figure class="chart" style="margin:0"><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ids}-title {ids}-desc" font-size="11" fill="#1b1f24" '
        f'style="width:100%;max-width:{WIDTH}px;height:auto;background:#fff">'
        f'<title id="{ids}-title">{escape(title)}</title><desc id="{ids}-desc">{escape(summary)}</desc>'
        f"{axes}{''.join(lines)}</svg>"
        f"<figcaption>{escape(title)}. {escape(summary)} <small>({escape(w['legend'])})</small></figcaption></figure>"
    )
