"""Settings for the whole suite."""

from hypothesis import settings

from tests.depth import examples
from tests.pg_fixtures import pg, pg_crashable, pg_database  # noqa: F401  (fixtures for every test module)

# Speed is measured in bench/, not by timing examples on a shared 2-core machine: a deadline there
# fails the property tests whenever the machine is busy, and tells nothing about the code.
# The default budget of 100 examples is scaled like the explicit ones (tests/depth.py).
settings.register_profile("monitord", deadline=None, max_examples=examples(100))
settings.load_profile("monitord")
