#!/bin/sh
# Install Request Tracker 5 (Debian 12 packages, SQLite backend) for the helpdesk tests.
# Only installs packages: lab/rt.py writes each test instance's own config and database.
# Idempotent and non-interactive; run as root. Takes about a minute on a fresh machine.
set -eu

if dpkg-query -W -f='${Status}\n' request-tracker5 rt5-db-sqlite 2>/dev/null \
        | grep -c '^install ok installed$' | grep -qx 2; then
    echo "request-tracker5 already installed"
    exit 0
fi

# Answer dbconfig-common's questions up front; skip the system-wide database, which the tests
# never use (each RtServer creates its own SQLite file).
debconf-set-selections <<'SEL'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/database-type select sqlite3
request-tracker5 request-tracker5/rtname string monitord-lab
request-tracker5 request-tracker5/organization string monitord.invalid
request-tracker5 request-tracker5/correspondaddress string rt@monitord.invalid
request-tracker5 request-tracker5/commentaddress string rt-comment@monitord.invalid
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
exim4-config exim4/dc_eximconfig_configtype select local delivery only; not on a network
SEL

# Keep exim4 (a dependency) and every other service from starting during the install.
own_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show request-tracker5 >/dev/null 2>&1; then
    apt-get update -q
fi
apt-get install -y -q --no-install-recommends request-tracker5 rt5-db-sqlite
