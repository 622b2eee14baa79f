"""How deep the property tests search.

The everyday suite runs a share of each property test's full example budget so that it stays a
few minutes long; `MONITORD_PROPERTY_DEPTH=1 ./dev.sh test` runs every test at its full budget
(before a release, or after touching the BER codec or the rules engine).
"""

import os

DEPTH = float(os.environ.get("MONITORD_PROPERTY_DEPTH", "0.3"))


def examples(full: int) -> int:
    """The number of examples to run for a test whose full budget is `full`."""
    return max(20, round(full * DEPTH))
