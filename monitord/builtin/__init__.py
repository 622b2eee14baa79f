"""The line profiles and default rules shipped inside the package, so an installed wheel finds
them without a checkout. The operator's own profiles go in `profiles_dir`, overrides in `rules:`."""

from pathlib import Path

BUILTIN = Path(__file__).resolve().parent
PROFILES_DIR = BUILTIN / "profiles"
DEFAULT_RULES = BUILTIN / "rules" / "default.yaml"
