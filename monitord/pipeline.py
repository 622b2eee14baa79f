"""The per-step pipeline: each engine step written to the store, with the notices it decided.

One writer per piece of state: only `Pipeline` steps the rules engine (in the rules' thread,
monitord/rules_thread.py) and writes what each step decided to the store and the outbox (from
the store's writer thread, monitord/stepwriter.py, while the loop polls on), one step at a
time, so the engine, the store and the outbox never race. `Daemon` (monitord/daemon.py) builds
it and hands it the config on reload.

A step the store cannot take (a full disk, an I/O error) is not lost and does not stop
monitoring: the engine has moved on, so what the step decided (incidents, notices) is kept in
memory, in order, as `Unwritten`, and written before anything newer in one transaction, with
the engine's rows changed since the last commit that succeeded (the engine keeps them marked
until `written()`), at the first commit that succeeds (tried after WRITE_RETRY seconds, then less
often up to WRITE_RETRY_MAX). The store is then exactly where it would have been had every step
been written; until then /health and /ready say why, and so do the metrics.

A step refused because another process took over the correlator's lead (NotLeader,
monitord/leader.py) is not kept: this process's engine is no longer the one that decides, so
the pipeline writes nothing more and sets `deposed` for the process to stand down.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from monitord.arrivals import Arrivals
from monitord.config import Config
from monitord.database import START_AFRESH, StoreError
from monitord.incident_actions import Refusal, refusal
from monitord.line_history import LineHistory
from monitord.model import Incident, IncidentEvent, IncidentKind, LineState, MaintenanceWindow, NodeRef, Sample, Silence
from monitord.outbox import Outbox
from monitord.rules_thread import RulesThread
from monitord.settings import alert_settings, configured_channels, dispatcher, plan_settings
from monitord.silencing import Silencing
from monitord.sms_inbound import lines_by_phone
from monitord.store import NotLeader, Store
from notices.alerts import due_refreshes, plan_alerts
from notices.confirm import questions, unrecovered
from notices.maintenance import due_maintenance_notices
from notices.plan import Planned, due_cpe_notices, due_updates, looked_up, place, plan_step
from notices.throttle import CommentThrottle
from rules.engine import Closure, Engine, Step
from rules.nodes import Reshape

log = logging.getLogger("monitord")

LOGGED_LINES = 20  # line state changes logged one by one per step; the rest as one summary
NOTICES = 30.0  # how often update and maintenance notices are looked for
REFRESHES = 5.0  # how often open incidents are looked at for their Alertmanager re-push (each lasts 4 x resend)
WRITE_RETRY = 5.0  # while the store refuses writes, the first wait before a step tries again,
WRITE_RETRY_MAX = 60.0  # doubled per failure up to this: each try writes all that waited
# polls waiting for a step are taken together up to this many samples (see `ingest`); at a regional
# fault's onset, when every sample changes its line, steps of 2,000 held the loop for up to 171 ms
# (docs/benchmarks.md, "Ninth pass")
MERGED_SAMPLES = 1000


def _log_states(states: Iterable[LineState]) -> None:
    """Each device's new state, the first LOGGED_LINES lines' one by one, the rest counted in
    one summary: a regional outage changes tens of thousands of lines in one step, and a journal
    flooded with them would rate-limit away the lines that matter."""
    skipped: Counter[str] = Counter()
    lines = 0
    for state in states:
        if state.node.level == "line":
            lines += 1
            if lines > LOGGED_LINES:
                skipped[state.status.value] += 1
                continue
        reasons = f" ({'; '.join(state.reasons)})" if state.reasons else ""
        log.info("%s is %s%s", state.node, state.status.value, reasons)
    if skipped:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(skipped.items()))
        log.info("and %d more lines changed state: %s", sum(skipped.values()), counts)


@dataclass(slots=True)
class Unwritten:
    """What steps decided while the store refused to write, merged in order: the latest state of
    each incident, and every notice once (by key), in the order they were planned."""

    error: str
    since: float
    failures: int = 1
    incidents: dict[str, Incident] = field(default_factory=dict)
    planned: dict[str, Planned] = field(default_factory=dict)

    def add(self, incidents: Iterable[Incident], planned: Iterable[Planned]) -> None:
        self.incidents.update((i.tracking, i) for i in incidents)
        for item in planned:
            self.planned.setdefault(item[0].key, item)


@contextmanager
def building_in_a_thread() -> Iterator[None]:
    """Around work in a worker thread that builds state the size of the inventory: no garbage
    collection meanwhile (a full pass over 100,000 half-built objects holds the GIL, and so the
    loop, for seconds), then what was built is frozen (as at `Daemon.run`), so that later passes
    skip it too."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _under_new_rules(engine: Engine, old: Config, config: Config, reshape: Reshape | None) -> tuple[Engine, Reshape]:
    """The engine rebuilt from its own snapshot under `config`'s rules, and what the new inventory
    changes for it (in a worker thread: the pipeline steps nothing meanwhile; seconds at 100,000 lines)."""
    with building_in_a_thread():
        snapshot = engine.snapshot()
        rebuilt = Engine.restore(old.topology, config.rules, config.tracking_prefix, snapshot, config.timezone)
        _let_go(snapshot)
        return rebuilt, rebuilt.reshape(config.topology) if reshape is None else rebuilt.rebased(reshape)


def _let_go(document: dict[str, Any]) -> None:
    """Free a snapshot's lists an item at a time. Dropped at once, 100,000 target records are
    freed in one C call that holds the GIL, and so the event loop, for about 0.1 s."""
    for value in document.values():
        if isinstance(value, list):
            while value:
                value.pop()


def resume(config: Config, store: Store) -> Engine:
    """The engine as last saved, or a fresh one; StoreError (naming only the error's kind, never
    the snapshot's content) when the saved state cannot be read."""
    try:
        saved = store.load_engine()
        if saved is None:
            return Engine(config.topology, config.rules, config.tracking_prefix, config.timezone)
        engine = Engine.restore(
            config.topology, config.rules, config.tracking_prefix, saved.snapshot, config.timezone, stored=saved.rows
        )
    except store.errors as error:
        raise StoreError.of(config.state, error) from None
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise StoreError(
            f"{config.state}: the saved engine state cannot be read ({type(error).__name__}); " f"{START_AFRESH}"
        ) from None
    log.info("resumed from %s: %d open incidents", config.state, len(engine.incidents()))
    return engine


class Pipeline:
    """The one writer of what the rules decide: engine steps -> store -> outbox.

    It alone writes the rules engine (steps it, and swaps it when a reload changes the rules),
    the store's incidents, the engine's saved rows, maintenance windows and queued notices (the outbox
    only marks their delivery), the steps the store refused (`unwritten`, `write_failures`), the
    helpdesk comment throttle and the plan settings. `recheck` asks for a device to be polled
    again now, when a step wants a second look.

    Its steps by polls and ticks are made in the rules' thread (`rules_thread`, whose lock the
    engine's readers on the loop take) and written by the store's writer thread
    (monitord/stepwriter.py) while the loop polls on; one step at a time (`_stepping`), so the
    engine never steps while its rows are being written. Each poll's samples and each step's
    line state changes also go to `lines`, line quality over time, kept on a thread of its own
    (monitord/line_history.py).
    """

    def __init__(
        self,
        config: Config,
        engine: Engine,
        store: Store,
        outbox: Outbox,
        *,
        clock: Callable[[], float],
        recheck: Callable[[str], None],
    ) -> None:
        self.config = config
        self.engine = engine
        self.store = store
        self._refused: tuple[type[Exception], ...] = (*store.errors, StoreError)  # a step the store did not take
        self.outbox = outbox
        self.clock = clock
        self.recheck = recheck
        self.settings = plan_settings(config, store.sms_opt_outs())
        self.dispatch = dispatcher(config, store)
        self.alerts = alert_settings(config)
        self.channels = configured_channels(config)
        self.comments = CommentThrottle(config.notifiers.tickets.comment_every if config.notifiers.tickets else 0.0)
        self.unwritten: Unwritten | None = None  # steps the store refused, until it takes them
        self.write_failures = 0
        self.deposed = asyncio.Event()  # set once a step was refused because another process leads
        self.deposed_by = ""
        self._saved_head: dict[str, Any] | None = None  # the engine's head as last written
        self._next_write = 0.0
        self._next_notices = 0.0
        self._updates_queued: set[str] = set()
        self._questions_seen = clock()  # repair questions due before this were looked at (or before the start)
        self._next_refresh = 0.0
        self._alerts_pushed: dict[str, int] = {}  # tracking -> the last refresh period queued (notices/alerts.py)
        self._stepping = asyncio.Lock()
        self.rules_thread = RulesThread()
        self._arrivals = Arrivals(self._step_arrived, self._stepping, MERGED_SAMPLES)  # polls' samples not yet stepped
        self.through: int | None = None  # a correlator's: the last pollers' batch the engine took
        self._written_through: int | None = None  # ... and the last one written with a step
        self._writer = store.writer()
        self.silencing = Silencing(store, outbox)  # the NOC's silences and what they hold
        self.lines = LineHistory(store, lambda: self.config, clock)  # line quality over time: fed each poll and step
        self._reserve_numbers()

    def follow(self, through: int) -> None:
        """A `--role correlator`'s: the engine's saved state includes the pollers' batches up to
        `through` (Store.batch_cursor); each step written from now on records how far it got."""
        self.through = self._written_through = through

    async def ingest(self, samples: list[Sample], through: int | None = None) -> Step:
        """Feed one poll's samples to the rules and persist what they decided; the step that
        took them is returned. `through`: a correlator's, the pollers' batch they end
        (monitord/feed.py), written as its cursor with the step that includes them.

        Polls that end while a step is being written wait, and are then taken together, up to
        MERGED_SAMPLES samples, in one step and one commit (monitord/arrivals.py). One step and
        commit per poll could not keep up at 100,000 lines (a round's polls queued behind the
        writer, and their samples, held for seconds, filled the GC's oldest generation, whose
        passes then held the loop for up to 300 ms: bench/stall_trace.py)."""
        self.lines.take(samples)
        return await self._arrivals.add(samples, through)

    async def _step_arrived(self, samples: list[Sample], through: int | None) -> Step:
        now = self.clock()
        step = await self.rules_thread.run(self.engine.observe, samples, now)
        if through is not None:
            self.through = max(self.through or 0, through)
        await self._commit(step, now)
        return step

    async def _commit(self, step: Step, now: float, extra: Iterable[Planned] = ()) -> None:
        """Write one engine step to the store, queue what it decided to say, and log the changes.

        The rows of the engine's state the step changed (its targets, incidents, and the small
        head) go in the same transaction as its incidents and notices, so the saved state is
        never older nor newer than the incidents and the outbox: a restart resumes exactly at
        the last step written. A step that changed nothing writes nothing.
        """
        if self.deposed.is_set():
            return
        await self.silencing.release_due(self.config.topology, now)  # before this step's items: they must not overtake them
        pending = self.unwritten
        planned: list[Planned] = []
        if step.incidents:  # a region's opening plans 12,500 notices: in the rules' thread, as its step was made
            lookup = self.store.incident if pending is None else self._last_incident
            before = {tracking: lookup(tracking) for tracking in looked_up(step.incidents)}
            planned = await self.rules_thread.run(plan_step, step.incidents, self.config.topology, self.settings, now, before.get)
        if self.settings.confirm_after is not None:  # "does it work?" after each restoration SMS
            planned += questions(planned, await lines_by_phone(self.config.topology), self.settings, now)
        if self.dispatch is not None:
            planned += self.dispatch.closures(step.incidents, self.config.topology, self.settings, now)
        if self.alerts is not None:
            planned += plan_alerts(step.incidents, self.config.topology, self.alerts)
        planned = self.comments.admit((p for p in (*planned, *extra) if p[0].channel in self.channels), now)
        planned = self.silencing.hold(planned, step.incidents, self.config.topology, now, self.engine.incident)
        incidents = [change.incident for change in step.incidents]
        if pending is not None:
            pending.add(incidents, planned)
            incidents, planned = list(pending.incidents.values()), list(pending.planned.values())
        if pending is None or now >= self._next_write:
            await self._write(incidents, planned, now)
        _log_states(step.states)
        self.lines.flaps.record(step.states)
        for change in step.incidents:
            inc = change.incident
            log.info(
                "incident %s %s: %s at %s, %d lines", inc.tracking, change.change, inc.kind.value, inc.root, len(inc.affected)
            )
        for device in step.recheck:
            self.recheck(device)

    async def _write(self, incidents: list[Incident], planned: list[Planned], now: float) -> None:
        """One transaction for the step (and all the unwritten ones before it), or keep it all for later.

        The engine's rows are read, and marked written, in the rules' thread: a region's step
        has 12,000 wake-up times and an incident of 12,000 members to spell out."""
        rows = await self.rules_thread.run(self.engine.changes)
        through = self.through
        changed = rows.targets or rows.incidents or incidents or planned or rows.head != self._saved_head
        if not changed and through == self._written_through:
            return
        try:
            queued, dead = await self._writer.commit_step(rows, incidents, planned, now, through)
        except NotLeader as error:
            log.error("step not written: %s; this process stops deciding", error)
            self.deposed_by = str(error)
            self.deposed.set()
            return
        except self._refused as error:
            self.write_failures += 1
            failures = 1 if self.unwritten is None else self.unwritten.failures + 1
            self._next_write = now + min(WRITE_RETRY_MAX, WRITE_RETRY * 2 ** (failures - 1))
            if self.unwritten is None:
                self.unwritten = Unwritten(str(error), now)
                self.unwritten.add(incidents, planned)
                log.error(
                    "cannot write the state to %s: %s; monitoring goes on, what it decides is kept "
                    "in memory and written once the store takes it",
                    self.config.state,
                    error,
                )
            else:
                self.unwritten.error, self.unwritten.failures = str(error), failures
            return
        if self.unwritten is not None:
            log.warning(
                "state file writable again after %.0f s: wrote %d incident changes and %d notices kept meanwhile",
                now - self.unwritten.since,
                len(self.unwritten.incidents),
                len(self.unwritten.planned),
            )
            self.unwritten = None
        await self.rules_thread.run(self.engine.written)
        self._saved_head = rows.head
        self._written_through = through
        for notification in dead:
            self.outbox.dead_on_arrival(notification)
        if queued:
            self.outbox.wake()

    def _last_incident(self, tracking: str) -> Incident | None:
        """An incident as last decided: unwritten steps first, then the store."""
        assert self.unwritten is not None
        return self.unwritten.incidents.get(tracking) or self.store.incident(tracking)

    def _reserve_numbers(self) -> None:
        for year, last in self.store.issued(self.config.tracking_prefix).items():
            self.engine.reserve(year, last)

    async def tick(self) -> None:
        """Time passes: durations and settle windows every TICK, customer notices every NOTICES,
        Alertmanager re-pushes looked for every REFRESHES (or a quarter of `resend`, if shorter)."""
        async with self._stepping:
            now = self.clock()
            step = await self.rules_thread.run(self.engine.tick, now)
            extra: list[Planned] = []
            if now >= self._next_notices:
                self._next_notices = now + NOTICES
                extra = self._due_notices(now) + await self._unrecovered(now)
            if self.alerts is not None and now >= self._next_refresh:
                self._next_refresh = now + min(REFRESHES, self.alerts.resend / 4)
                open_incidents = self.engine.incidents()
                self._alerts_pushed = {i.tracking: self._alerts_pushed.get(i.tracking, 0) for i in open_incidents}
                extra += due_refreshes(open_incidents, self.config.topology, self.alerts, now, self._alerts_pushed)
            await self._commit(step, now, extra)

    def _due_notices(self, now: float) -> list[Planned]:
        """ "Still ongoing" updates, modem notices kept from quiet hours, and planned-maintenance
        notices that have come due.

        Their keys make them idempotent in the store; `_updates_queued` only spares the store
        from seeing the same thousands of update notices of a large outage every minute.
        """
        open_incidents = self.engine.incidents()
        self._updates_queued &= {i.tracking for i in open_incidents}
        waiting = [i for i in open_incidents if i.tracking not in self._updates_queued]
        due = due_updates(waiting, self.config.topology, self.settings, now)
        due += due_cpe_notices(waiting, self.config.topology, self.settings, now)
        self._updates_queued.update(item.incident for item, _ in due if item.incident)
        if self.dispatch is not None:
            due += self.dispatch.due(open_incidents, self.config.topology, self.settings, now, self.engine.node_state)
        overrun = self.engine.overran() | {line for i in open_incidents if i.kind is IncidentKind.OVERRUN for line in i.affected}
        return due + due_maintenance_notices(self._windows(), self.config.topology, now, self.settings, overrun_lines=overrun)

    async def _unrecovered(self, now: float) -> list[Planned]:
        """Follow-up tickets for the lines of repair questions come due that the probes do not see recovered."""
        since, self._questions_seen = self._questions_seen, now
        if self.settings.confirm_after is None:
            return []
        phones, topology = await lines_by_phone(self.config.topology), self.config.topology
        due = [(i, phones.get(phone, [])) for t, phone in self.store.questions_due(since, now) if (i := self.store.incident(t))]
        return unrecovered(due, self.engine.line_state, lambda line: place(topology, NodeRef("line", line)).label, self.settings)

    def _windows(self) -> list[MaintenanceWindow]:
        return [w.window for w in self.store.maintenance()]

    async def _apply_maintenance(self, now: float) -> None:
        await self._commit(self.engine.set_maintenance(self._windows(), now), now)

    async def _replace_config_maintenance(self, windows: Iterable[MaintenanceWindow]) -> None:
        async with self.store.turn:
            self.store.replace_config_maintenance(windows)

    async def start(self) -> None:
        """The stored silences and the config's maintenance windows (with the API's) in force."""
        async with self._stepping:
            try:
                self.silencing.load(self.clock())  # before any step releases what they hold
                await self._replace_config_maintenance(self.config.maintenance)
                await self._apply_maintenance(self.clock())
            except self.store.errors as error:
                raise StoreError.of(self.config.state, error) from None
        self.lines.start()

    async def reload(self, config: Config, reshape: Reshape | None = None) -> None:
        """A new config: rules, notice settings, inventory and maintenance windows; incidents and
        line states are kept (the engine is rebuilt from its snapshot if the rules changed).
        `reshape`: what the new inventory changes, worked out off the loop (`Engine.reshape`)."""
        async with self._stepping:
            await self._reload(config, reshape)

    async def _reload(self, config: Config, reshape: Reshape | None) -> None:
        old, now = self.config, self.clock()
        if config.rules != old.rules or config.tracking_prefix != old.tracking_prefix:
            self.engine, reshape = await asyncio.to_thread(_under_new_rules, self.engine, old, config, reshape)
            self._reserve_numbers()
        self.config = config
        self.settings = plan_settings(config, self.settings.sms_opted_out)
        self.dispatch = dispatcher(config, self.store)
        self.alerts = alert_settings(config)
        self.channels = configured_channels(config)
        self.comments.every = config.notifiers.tickets.comment_every if config.notifiers.tickets else 0.0
        await self._replace_config_maintenance(config.maintenance)
        await self._commit(self.engine.set_topology(reshape or config.topology, now), now)
        await self._apply_maintenance(now)

    async def stop(self) -> None:
        """The last step before the store closes: the held helpdesk comments (they live in
        memory only) are written whatever their timers say, after every poll's samples."""
        await self._arrivals.drained()
        async with self._stepping:
            now = self.clock()
            self.comments.every = 0.0  # queue the held helpdesk comments
            await self._commit(self.engine.tick(now), now)
        await self.lines.stop()
        if self.unwritten is not None:
            log.error(
                "stopping with the state file still refusing writes (%s): %d incident changes and "
                "%d notices decided since %.0f s ago are lost",
                self.unwritten.error,
                len(self.unwritten.incidents),
                len(self.unwritten.planned),
                now - self.unwritten.since,
            )

    async def add_maintenance(self, window: MaintenanceWindow) -> None:
        """A window from the API: stored (it outlives restarts and reloads) and in force at once."""
        async with self._stepping:
            now = self.clock()
            async with self.store.turn:
                self.store.put_maintenance(window, "api")
            await self._apply_maintenance(now)

    async def cancel_maintenance(self, window_id: str) -> bool:
        """False if no such window is in force or planned."""
        async with self._stepping:
            now = self.clock()
            async with self.store.turn:
                cancelled = self.store.cancel_maintenance(window_id)
            if cancelled:
                await self._apply_maintenance(now)
            return cancelled

    async def close(self, event: IncidentEvent) -> Refusal | None:
        """The NOC closes an incident by hand (rules/lifecycle.py `Book.close`): checked against the
        store and the engine, recorded, and only then the engine's step made and written."""
        async with self._stepping:
            async with self.store.turn:
                refused = refusal(self.store.incident(event.tracking), self.store.incident_events(event.tracking), event)
                if refused is None and not self.engine.closable(event.tracking):
                    refused = Refusal(409, f"incident {event.tracking} is no longer open")
                if refused is None:
                    self.store.add_incident_event(event)
            if refused is None:
                now = self.clock()
                await self._commit(self.engine.close(event.tracking, Closure(event.actor, event.text), now) or Step(), now)
            return refused

    async def add_silence(self, silence: Silence) -> None:
        """A silence from the API: stored (it outlives restarts) and in force from the next step."""
        async with self._stepping:
            await self.silencing.add(silence, self.clock())

    async def expire_silence(self, silence_id: str, by: str) -> bool:
        """End a silence now; what it held and no other silence holds goes out at once. False if
        no such silence is active or planned."""
        async with self._stepping:
            return await self.silencing.expire(silence_id, by, self.config.topology, self.clock())
