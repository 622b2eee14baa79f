"""The line profiles, default rules and message texts shipped inside the package, so an
installed wheel finds them without a checkout. The operator's own profiles go in `profiles_dir`,
rule overrides in `rules:`, texts in `templates_dir`."""

from pathlib import Path

BUILTIN = Path(__file__).resolve().parent
PROFILES_DIR = BUILTIN / "profiles"
DEFAULT_RULES = BUILTIN / "rules" / "default.yaml"
TEMPLATES_DIR = BUILTIN / "templates"
