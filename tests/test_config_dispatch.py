"""Field dispatch in the config (issue 12 item 6): sites and addresses in the inventory, the
`notifiers.tickets.dispatch` section, and bad input refused at its file:line (lat 200, an
address of 10 kB, a latitude without its longitude, a dispatch without its queue)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.rtsync import stage_sync_for
from monitord.store import Store
from tests.test_config import BASE, CSV, ENV, EXAMPLE, EXAMPLE_ENV, line_of, problems_of, write

SITE = """              cabinet: k12
              location: Halaskargazi Cad. 120 önü, Şişli
              lat: 41.0602
              lon: 28.9877
"""
DISPATCH = """    token: {env: RT_TOKEN}
    dispatch:
      queue: Saha Ekibi
      delay: 15m
"""
LOCATED_CSV = CSV.replace(
    "id,name,phone,email,language,device,port,mac,modem", "id,name,phone,email,language,device,port,mac,modem,address,lat,lon"
)
LOCATED_CSV = LOCATED_CSV.replace("dslam-1,1,,", 'dslam-1,1,,,"Ergenekon Cad. 5, Şişli",41.0611,28.9866').replace(
    ",,\n", ",,,,,\n"
)
LOCATED_CSV = LOCATED_CSV.replace("127.0.11.1\n", "127.0.11.1,,,\n")


def _with(config: str = BASE, site: str = SITE, dispatch: str = DISPATCH) -> str:
    return config.replace("              cabinet: k12\n", site).replace("    token: {env: RT_TOKEN}\n", dispatch)


def test_sites_addresses_and_the_dispatch_section_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, _with(), LOCATED_CSV), ENV)
    dslam = config.topology.devices["dslam-1"]
    assert (dslam.location, dslam.lat, dslam.lon) == ("Halaskargazi Cad. 120 önü, Şişli", 41.0602, 28.9877)
    line = config.topology.lines["100001"]
    assert (line.address, line.lat, line.lon) == ("Ergenekon Cad. 5, Şişli", 41.0611, 28.9866)
    assert config.topology.lines["100002"].address is None
    tickets = config.notifiers.tickets
    assert tickets is not None and tickets.dispatch is not None
    assert (tickets.dispatch.queue, tickets.dispatch.delay, tickets.dispatch.stage) == ("Saha Ekibi", 900.0, "field_team")
    assert config.notifiers.routed_queues == ("Saha Ekibi",), "the stage sync and the notifier read the field queue too"


def test_the_example_sends_trucks_to_its_field_queue() -> None:
    config = load_config(EXAMPLE, EXAMPLE_ENV)
    assert config.notifiers.tickets is not None and config.notifiers.tickets.dispatch is not None
    assert config.notifiers.tickets.dispatch.queue == "Saha Ekibi"
    assert config.topology.lines["100001"].lat == 41.0611


@pytest.mark.parametrize(
    ("site", "key", "message"),
    [
        (SITE.replace("lat: 41.0602", "lat: 200"), "lat", "latitude 200 is not between -90 and 90"),
        (SITE.replace("lon: 28.9877", "lon: -180.5"), "lon", "longitude -180.5 is not between -180 and 180"),
        (SITE.replace("lat: 41.0602", "lat: north"), "lat", "'north' is not a latitude"),
        (SITE.replace("lat: 41.0602", "lat: .nan"), "lat", "expected a finite number"),
        (SITE.replace("              lon: 28.9877\n", ""), "lon", "lat is given without lon"),
        (SITE.replace("Halaskargazi Cad. 120 önü, Şişli", "x" * 10_240), "location", "is 10240 characters long"),
    ],
)
def test_a_bad_site_is_refused_at_its_line(tmp_path: Path, site: str, key: str, message: str) -> None:
    text = _with(site=site)
    [problem] = problems_of(write(tmp_path, text))
    assert problem.file.endswith("config.yaml") and message in problem.message, problem
    assert problem.key.endswith(f"devices[0].{key}")
    if f"{key}:" in site:
        assert problem.line == line_of(text, f"              {key}:"), "the line of the value at fault"
    else:
        assert line_of(text, "- id: dslam-1") <= (problem.line or 0) < line_of(text, "- id: olt-1"), "the device's lines"


def test_a_management_address_of_10_kb_is_refused_at_its_line_and_not_echoed_whole(tmp_path: Path) -> None:
    text = _with().replace("address: 127.0.10.1", "address: " + "a" * 10_240)
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.key, problem.line) == ("topology.regions[0].exchanges[0].devices[0].address", line_of(text, "address: aaa"))
    assert len(str(problem)) < 400, "the message quotes a bounded part of it"


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        (',"Ergenekon Cad. 5",200,28.9', "lat", "latitude 200 is not between -90 and 90"),
        (',"Ergenekon Cad. 5",41.0,', "lon", "lat is given without lon"),
        (",,,28.9", "lat", "lon is given without lat"),
        (',"' + "y" * 10_240 + '",,', "address", "is 10240 characters long"),
        (",,1e400,2", "lat", "expected a finite number"),
    ],
)
def test_a_bad_subscriber_place_is_refused_at_its_csv_line(tmp_path: Path, cells: str, column: str, message: str) -> None:
    rows = "id,name,phone,email,language,device,port,mac,modem,address,lat,lon\n"
    rows += "100001,Ayşe Yılmaz,,,tr,dslam-1,1,,,,,\n"
    rows += "100002,Ali Çelik,,,tr,dslam-1,2,," + cells.replace(",", ",", 1) + "\n"
    problems = problems_of(write(tmp_path, BASE, rows))
    assert [(Path(p.file).name, p.line, p.key) for p in problems] == [("subs.csv", 3, column)]
    assert message in problems[0].message


@pytest.mark.parametrize(
    ("dispatch", "key", "message"),
    [
        (
            "    token: {env: RT_TOKEN}\n    dispatch:\n      delay: 10m\n",
            "notifiers.tickets.dispatch.queue",
            "missing required key",
        ),
        (DISPATCH.replace("delay: 15m", "delay: forever"), "notifiers.tickets.dispatch.delay", ""),
        (DISPATCH + "      stage: on_the_moon\n", "notifiers.tickets.dispatch.stage", "no stage 'on_the_moon'"),
        (DISPATCH + "      trucks: 3\n", "notifiers.tickets.dispatch.trucks", "unknown key"),
    ],
)
def test_a_bad_dispatch_section_is_refused_at_its_line(tmp_path: Path, dispatch: str, key: str, message: str) -> None:
    text = _with(dispatch=dispatch)
    [problem] = problems_of(write(tmp_path, text))
    assert problem.key == key and message in problem.message, problem
    assert problem.line is not None and problem.line >= line_of(text, "    dispatch:")


def test_a_webhook_helpdesk_takes_dispatch_tickets_without_a_queue(tmp_path: Path) -> None:
    webhook = BASE.replace("    kind: rt\n", "    kind: webhook\n").replace("    queue: Network Outages\n", "")
    config = load_config(write(tmp_path, _with(webhook, dispatch=DISPATCH.replace("      queue: Saha Ekibi\n", ""))), ENV)
    assert config.notifiers.tickets is not None and config.notifiers.tickets.dispatch is not None
    assert config.notifiers.tickets.dispatch.queue is None and config.notifiers.routed_queues == ()
    [problem] = problems_of(write(tmp_path, _with(webhook)))
    assert (problem.key, problem.message) == ("notifiers.tickets.dispatch.queue", "queue is for kind rt")


def test_the_stage_sync_reads_the_field_queue_and_knows_the_dispatch_stage(tmp_path: Path) -> None:
    dispatch = DISPATCH + "    stage_sync: {every: 30s}\n"
    config = load_config(write(tmp_path, _with(dispatch=dispatch)), ENV)
    store = Store.open(tmp_path / "sync.db")
    try:
        sync = stage_sync_for(config, store, time.time)
        assert sync is not None
        assert sync.rt.queues == ("Network Outages", "Saha Ekibi") and sync.dispatch_stage == "field_team"
    finally:
        store.close()


def test_an_operator_s_dispatch_text_is_checked_like_every_text(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    mine = "dispatch.create:\n  subject: 'Saha {tracking}'\n  body: '{address} {coordinates} {phone}'\n"
    (tmp_path / "texts" / "tr.yaml").write_text(mine, encoding="utf-8")
    [problem] = problems_of(write(tmp_path, "templates_dir: texts\n" + _with()))
    assert (Path(problem.file).name, problem.line, problem.key) == ("tr.yaml", 3, "dispatch.create")
    assert "unknown placeholder {phone}" in problem.message, "a field team's ticket never gets a phone number unmasked"
