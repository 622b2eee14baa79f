"""Which samples can change what a line's rules see, so that a poller writes only those.

A sample's *signature* is what the rules take from it: its verdict and, for each check its
technology feeds, the side of the check's levels its value falls on (a threshold: bad, between
its level and its clear level, or cleared; a flap rule: up or down). A check fed a value with the
same signature as the value before it keeps its state, but for what time alone changes (a `for`
hold running out, a flap score decaying), which the correlator's engine does by its own clock
(`elapse`). So a poller writes a line's sample only when its signature differs from that of the
line's sample before it, and the correlator's engine ends where every sample would have left it.

Always written: device samples (a device counts its down samples: rules/judge.py
`count_downs`) and samples of a technology with a drift rule (its baseline moves with every
value). The line quality roll-ups, which want every value, are kept by the pollers themselves
(monitord/line_history.py).

Two differences remain, both in the small. A threshold whose `for` hold has run out fires with
the value of the sample that finds it so, or, when the engine's timer comes first, with the first
bad value; a left-out sample finds nothing, so a reason may name the first bad value where every
sample would have named a later one. And signatures follow the order samples arrive in, while
the engine takes the latest by time among those of one step: two polls of one line ending out
of order (a recheck overtaking a poll) can leave the correlator on the earlier one's verdict
until the line's next sample.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping

from monitord.model import Sample
from rules.checks import Drift, Flap, RuleSet, Threshold
from rules.config import RulesConfig
from rules.verdict import feed_values, technology, verdict

Signature = tuple[Hashable, ...]
# Distinct signatures shared at most: a technology's verdicts times its checks' sides are few.
_SHARED_SIGNATURES = 4096


class Signer:
    """The signature of a line's sample under `rules`, or None when it must always be written."""

    def __init__(self, rules: RulesConfig) -> None:
        self._rules = rules
        self._probes: dict[str, tuple[RuleSet, tuple[Threshold | Flap, ...]] | None] = {}
        self._shared: dict[Signature, Signature] = {}

    def signature(self, sample: Sample) -> Signature | None:
        if sample.target.level != "line":
            return None
        found = self._probe(sample.probe)
        if found is None:
            return None
        ruleset, checks = found
        judged = verdict(sample, ruleset)
        values = feed_values(sample, judged)
        signature = (judged, *(_side(check, values.get(check.metric)) for check in checks))
        shared = self._shared.get(signature)
        if shared is None and len(self._shared) < _SHARED_SIGNATURES:
            shared = self._shared[signature] = signature
        return signature if shared is None else shared

    def _probe(self, probe: str) -> tuple[RuleSet, tuple[Threshold | Flap, ...]] | None:
        """A probe's rule set and checks, or None when one of them is a drift rule (kept per probe)."""
        if probe not in self._probes:
            ruleset = self._rules.ruleset(technology(probe))
            signed = tuple(check for check in ruleset.checks if not isinstance(check, Drift))
            self._probes[probe] = (ruleset, signed) if len(signed) == len(ruleset.checks) else None
        return self._probes[probe]


def _side(check: Threshold | Flap, value: float | None) -> float | None:
    """Where a value falls for a check: what its state can change on (a flap rule's is up or down)."""
    if value is None or isinstance(check, Flap):
        return value
    return check.side(value)


class Unchanged:
    """Per shard, each line's last written signature per probe: `new` says whether a sample is
    worth writing. A shard's memory is dropped when its samples may not all have reached the
    correlator (`forget`: the shard lost, its waiting samples let go), a line's when the
    correlator's engine may not have taken it (`forget_lines`: a line it did not know yet), and
    every `resend` seconds in any case (`expire`, each shard at its own phase), the last resort."""

    def __init__(self, signer: Signer, resend: float) -> None:
        self.signer = signer
        self.resend = resend
        self._last: dict[str, dict[tuple[str, str], Signature]] = {}
        self._since: dict[str, float] = {}
        self._probes: set[str] = set()  # the probes remembered, for `forget_lines`

    def new(self, shard: str, sample: Sample) -> bool:
        signature = self.signer.signature(sample)
        if signature is None:
            return True
        last = self._last.setdefault(shard, {})
        key = (sample.target.id, sample.probe)
        if last.get(key) == signature:
            return False
        last[key] = signature
        self._probes.add(sample.probe)
        return True

    def forget(self, shard: str | None = None) -> None:
        """One shard's memory, or every shard's."""
        if shard is None:
            self._last.clear()
        else:
            self._last.pop(shard, None)

    def forget_lines(self, shard_of: Mapping[str, str]) -> None:
        """These lines' memory (line -> its shard), whatever their probes."""
        for line, shard in shard_of.items():
            last = self._last.get(shard)
            if last:
                for probe in self._probes:
                    last.pop((line, probe), None)

    def expire(self, now: float) -> None:
        """Forget the shards whose memory is `resend` old; a shard's first memory is younger by a
        fixed share of `resend` of its own, so that the shards taken at start do not all expire
        (and have all their lines written) at once."""
        for shard in list(self._last):
            since = self._since.setdefault(shard, now - self.resend * (zlib.crc32(shard.encode()) / 2**32))
            if now - since >= self.resend:
                del self._last[shard]
                self._since[shard] = now
