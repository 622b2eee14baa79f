#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine with Python 3.11, run as root:
#   ./dev.sh demo   - install what is missing, then run the demo against a simulated ISP on loopback
#                     (`./dev.sh demo --cluster`: a small cluster on a throw-away PostgreSQL instead of one process)
#   ./dev.sh test   - install what is missing (Request Tracker and PostgreSQL too), then lint and format-check (ruff), type-check (mypy)
#                     and run the whole test suite
# Installing is idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")"

# gcc, libc6-dev and python3-dev compile probes/_ber.c and probes/_icmp.c, the C parts of the SNMP decoder and the ICMP
# prober, as pip installs the package
DEBIAN_PACKAGES=(snmpd snmp fping nftables iproute2 iputils-ping prometheus libpcap0.8 systemd util-linux gcc libc6-dev python3-dev)
# The tests also run the store against throw-away PostgreSQL 15 clusters (lab/postgres.py), as `demo --cluster` does;
# the single-box demo needs no server
CLUSTER_PACKAGES=(postgresql)
# chromium and chromium-driver: the customers' tracking page is checked in a real headless browser (tests/test_track_browser.py)
# prometheus-alertmanager: incidents are pushed to a real Alertmanager whose webhook posts to a local sink (tests/test_alertmanager.py)
TEST_PACKAGES=("${CLUSTER_PACKAGES[@]}" chromium chromium-driver prometheus-alertmanager)

apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
    local py
    py=$(command -v python3.11 || command -v python3)
    if [ ! -x .venv/bin/python ]; then
        "$py" -m venv .venv 2>/dev/null || { rm -rf .venv; apt_install python3-venv; "$py" -m venv .venv; }
    fi
    if ! .venv/bin/python -c 'import monitord, probes._ber, probes._icmp, psycopg, pynetbox, pytest, snmpsim, xdist' 2>/dev/null \
        || [ pyproject.toml -nt .venv/.installed ] || [ probes/_ber.c -nt .venv/.installed ] \
        || [ probes/_icmp.c -nt .venv/.installed ] || [ setup.py -nt .venv/.installed ]; then
        echo "dev.sh: installing Python packages into .venv"
        .venv/bin/pip install -q --disable-pip-version-check -U pip
        .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
        touch .venv/.installed
    fi
}

case "${1:-}" in
    demo)
        if [[ " $* " == *" --cluster "* ]]; then apt_install "${DEBIAN_PACKAGES[@]}" "${CLUSTER_PACKAGES[@]}"; else apt_install "${DEBIAN_PACKAGES[@]}"; fi
        python_env
        shift
        exec .venv/bin/monitord demo "$@"
        ;;
    test)
        apt_install "${DEBIAN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
        scripts/install-rt.sh
        python_env
        shift
        .venv/bin/ruff check .
        .venv/bin/ruff format --check .
        .venv/bin/mypy
        # On 4 pytest-xdist workers: the suite mostly waits on its peers and timers, so on 2 cores it takes less than half
        # the serial wall time; tests sharing an expensive peer stay on one worker (tests/conftest.py)
        exec .venv/bin/python -m pytest -q -n 4 --dist loadgroup "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo [--cluster] [--keep-running] | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
