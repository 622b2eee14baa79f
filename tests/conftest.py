"""Settings for the whole suite."""

from hypothesis import settings

# Speed is measured in bench/, not by timing examples on a shared 2-core machine: a deadline there
# fails the property tests whenever the machine is busy, and tells nothing about the code.
settings.register_profile("monitord", deadline=None)
settings.load_profile("monitord")
