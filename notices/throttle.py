"""At most one helpdesk comment per incident per `every`: pure, fed the planned items of each step.

A flapping line or an incident that keeps changing would otherwise write a comment on every poll.
The first comment of an incident goes at once; those that follow within `every` are held and go
out as one comment (their texts in order) once `every` has passed since the last one, or at once
before the incident's next create, reopen or resolve, so the ticket never closes on an untold
change. Only comments wait: creating, reopening and resolving a ticket are never delayed.

What is held lives in memory: a stop queues it (the daemon sets `every` to 0 for its last
step), a crash forgets it (the next comment or the resolution still tells the ticket where the
incident stands).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from monitord.model import Notification
from notices.plan import Planned


@dataclass(slots=True)
class CommentThrottle:
    every: float  # seconds; 0: no limit
    last: dict[str, float] = field(default_factory=dict)  # incident -> when its last comment was queued
    held: dict[str, list[Notification]] = field(default_factory=dict)  # incident -> comments waiting, in order

    def admit(self, planned: Iterable[Planned], now: float) -> list[Planned]:
        """The items to queue now: `planned` less the comments held back, plus held comments now due."""
        out = [self._release(incident, now) for incident in sorted(self.held) if now - self.last[incident] >= self.every]
        for item, not_before in planned:
            incident = item.incident
            if item.channel != "ticket" or incident is None or self.every <= 0 or item.error is not None:
                out.append((item, not_before))
            elif item.action != "comment":
                if incident in self.held:
                    out.append(self._release(incident, now))
                out.append((item, not_before))
            elif incident in self.held or now - self.last.get(incident, float("-inf")) < self.every:
                self.held.setdefault(incident, []).append(item)
            else:
                self.last[incident] = now
                out.append((item, not_before))
        return out

    def _release(self, incident: str, now: float) -> Planned:
        """The held comments of `incident` as one."""
        items = self.held.pop(incident)
        self.last[incident] = now
        if len(items) == 1:
            return items[0], None
        body = "\n".join(item.body.rstrip("\n") + "\n" for item in items)
        return replace(items[-1], key=f"{items[0].key}/+{len(items) - 1}", body=body), None
