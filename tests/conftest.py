"""Settings for the whole suite."""

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.depth import examples
from tests.pg_fixtures import pg, pg_crashable, pg_database  # noqa: F401  (fixtures for every test module)

# Speed is measured in bench/, not by timing examples on a shared 2-core machine: a deadline there
# fails the property tests whenever the machine is busy, and tells nothing about the code.
# The default budget of 100 examples is scaled like the explicit ones (tests/depth.py).
settings.register_profile("monitord", deadline=None, max_examples=examples(100))
settings.load_profile("monitord")

# Session or module fixtures that start an expensive peer (or build a wheel) -> the pytest-xdist group
# of the tests using them. `./dev.sh test` runs the suite with `--dist loadgroup`, which keeps a group
# on one worker: the peer then starts once for the suite instead of once on every worker that draws
# such a test.
SHARED_PEERS = {"rt_server": "rt", "snmpsim": "snmp", "snmpd": "snmp", "api": "api", "lab_isp": "lab", "installed": "package"}

# LAB_WORLDS: the tests that run the daemon against a whole simulated ISP (snmpsim agents, loopback
# modems, the notifiers' peers) for tens of seconds are split by hand into two groups of about equal
# length, `lab-world-1` and `lab-world-2`: at most two of them run at once, so the agents and the
# daemons keep answering within the lab's sub-second timeouts while the other workers are busy.


@pytest.fixture(scope="session", autouse=True)
def own_net_snmp_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each worker's net-snmp tools (snmptrap, snmpinform, snmpget) keep their engine ID and boots in
    a folder of their own. In the shared /var/lib/snmp/snmpapp.conf, one tool read the file while
    another rewrote it on exit ("buffer too small to read octet string") and a v3 inform timed out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNMP_PERSISTENT_DIR", str(tmp_path_factory.mktemp("net-snmp")))
        yield


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers the marker too; here for runs without it (`-p no:xdist`)
    config.addinivalue_line("markers", "xdist_group(name): run on the same pytest-xdist worker as the group's other tests")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        groups = sorted({SHARED_PEERS[name] for name in getattr(item, "fixturenames", ()) if name in SHARED_PEERS})
        if groups:
            item.add_marker(pytest.mark.xdist_group("_".join(groups)))
