"""SMS segments per message, for every customer SMS template and language, before and after.

    .venv/bin/python bench/sms_segments.py [--before f736810] [--customers 200000]

Each template is rendered with the costliest values of the real inventories (lab/isp.py and
config/example.yaml: the longest area names by characters and by Turkish letters, the longest
tracking number of the ARZ prefix, the longest dates), as `monitord check` does, and counted
exactly (notices/segments.py). "before" renders the texts and name cutting of commit `--before`
(read with `git show`) as Twilio sent them; the columns after are what each channel bills now:
a gateway with the Turkish tables (`encoding: gsm7-turkish`), Twilio with `transliterate: true`,
and Twilio as it was (`transliterate: false`: GSM-7, else UCS-2). Ratios are against the best
column of the same run. Pure computation: no peer, no timing, the machine's load does not matter.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.isp import inventory_names
from monitord.config.templates import builtin_templates
from notices.segments import segments
from notices.sms_text import worst_cost, worst_values
from notices.templates import FIELDS

REPO = Path(__file__).resolve().parent.parent
IST = ZoneInfo("Europe/Istanbul")
COLUMNS = ("before", "gsm7-turkish", "twilio+translit", "twilio")


def old_templates(commit: str) -> types.ModuleType:
    """notices/templates.py as it was at `commit` (it imports only the standard library and monitord.model)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:notices/templates.py"], cwd=REPO, capture_output=True, text=True, check=True
    )
    module = types.ModuleType("old_templates")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source.stdout, f"{commit}:notices/templates.py", "exec"), module.__dict__)
    return module


def before(old: types.ModuleType, name: str, language: str, candidates: list[dict[str, Any]]) -> int:
    """Segments Twilio billed for the old text: the area cut by the old `short` (with its "…")."""
    return max(segments(old.render(name, language, {**v, "area": old.short(v["area"])}).body, "gsm7") for v in candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="f736810", help="the commit to compare with")
    parser.add_argument("--customers", type=int, default=200_000, help="customers told of one regional outage")
    args = parser.parse_args()
    old = old_templates(args.before)
    areas, names = inventory_names(REPO)
    texts = builtin_templates()
    totals = dict.fromkeys(COLUMNS, 0)  # over the templates `--before` had: the comparable sums
    everything = dict.fromkeys(COLUMNS[1:], 0)  # over every template now, new ones too
    print(f"{'template':24} {'lang':4} " + " ".join(f"{c:>15}" for c in COLUMNS) + "   longest text now (characters)")
    for language in ("tr", "en"):
        candidates = worst_values(areas, names, "ARZ", IST, language)
        for name in sorted(n for n in FIELDS if n.startswith("sms.")):
            row = {
                "gsm7-turkish": worst_cost(name, language, texts, candidates, "gsm7-turkish", False).cost.segments,
                "twilio+translit": worst_cost(name, language, texts, candidates, "gsm7", True).cost.segments,
                "twilio": worst_cost(name, language, texts, candidates, "gsm7", False).cost.segments,
            }
            longest = len(worst_cost(name, language, texts, candidates, "gsm7-turkish", False).text)
            for column, count in row.items():
                everything[column] += count
            if name in old.TEMPLATES:
                row["before"] = before(old, name, language, candidates)
                for column, count in row.items():
                    totals[column] += count
            print(f"{name:24} {language:4} " + " ".join(f"{row.get(c, 'new'):>15}" for c in COLUMNS) + f"   {longest}")
    best = min(totals.values())
    print(f"{'sum over templates before':29} " + " ".join(f"{totals[c]:>15}" for c in COLUMNS))
    print(f"{'ratio to best':29} " + " ".join(f"{totals[c] / best:>15.2f}" for c in COLUMNS))
    print(f"{'sum over all templates now':29} {'':>15} " + " ".join(f"{everything[c]:>15}" for c in COLUMNS[1:]))
    outage = {c: 0 for c in COLUMNS}
    candidates = worst_values(areas, names, "ARZ", IST, "tr")
    outage["before"] = before(old, "sms.outage", "tr", candidates)
    for column, (encoding, translit) in {
        "gsm7-turkish": ("gsm7-turkish", False),
        "twilio+translit": ("gsm7", True),
        "twilio": ("gsm7", False),
    }.items():
        outage[column] = worst_cost("sms.outage", "tr", texts, candidates, encoding, translit).cost.segments  # type: ignore[arg-type]
    print(
        f"{'outage SMS, ' + format(args.customers, ',') + ' tr':29} "
        + " ".join(f"{outage[c] * args.customers:>15,}" for c in COLUMNS)
    )


if __name__ == "__main__":
    main()
