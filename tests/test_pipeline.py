"""The pipeline stands alone: given its config, engine, store and outbox, it writes each step and
asks for the rechecks the step wants, with no daemon around it (monitord/pipeline.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from lab.isp import build_sample_isp
from monitord import pipeline as pipeline_module
from monitord.config import load_config
from monitord.model import NodeRef, Outcome, Sample
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store
from rules.engine import Step
from tests.rules_fixtures import canonical


def test_a_pipeline_built_from_its_parts_writes_steps_and_asks_for_rechecks(tmp_path: Path) -> None:
    config = load_config(build_sample_isp(tmp_path, base="127.6.40").config)
    dslam = min(d for d, device in config.topology.devices.items() if device.kind == "dslam")
    now = 1_780_000_000.0
    store = Store.open(config.state_file)
    asked: list[str] = []
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: now, recheck=asked.append)
        step = asyncio.run(pipeline.ingest([Sample(NodeRef("device", dslam), "icmp", now, Outcome.TIMEOUT)]))
        assert dslam in step.recheck and asked == list(step.recheck), "a suspected device is polled again at once"
        saved = store.load_engine()
        assert saved is not None and saved.rows, "the first commit saves the engine's rows"
        assert canonical(saved.snapshot) == canonical(pipeline.engine.snapshot())
    finally:
        store.close()


async def test_the_loop_runs_on_while_a_step_is_written_and_the_outbox_waits_its_turn(tmp_path: Path) -> None:
    """The step's transaction is the writer thread's (monitord/stepwriter.py): the loop's tasks
    run meanwhile, the loop's connection writes nothing, and a write on the loop that takes the
    store's turn comes after the step's COMMIT, never inside it."""
    config = load_config(build_sample_isp(tmp_path, base="127.6.41").config)
    now = 1_780_000_000.0
    store = Store.open(config.state_file)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: now, recheck=print)
        every_line = [Sample(NodeRef("line", line), "snmp:adsl", now, Outcome.OK) for line in config.topology.lines]
        turns_while_written, order = 0, []

        async def other_task() -> None:
            nonlocal turns_while_written
            while True:
                turns_while_written += store.turn.locked()
                await asyncio.sleep(0)

        async def outbox_write() -> None:
            async with store.turn:
                order.append(("loop write", store.load_engine() is not None))

        running = asyncio.create_task(other_task())
        await asyncio.sleep(0)
        loop_writes = store._db.connection.total_changes
        step = asyncio.create_task(pipeline.ingest(every_line))
        while not store.turn.locked():  # the step is decided (in the rules' thread) and handed to the writer thread
            await asyncio.sleep(0)
        waiting = asyncio.create_task(outbox_write())
        await step
        await waiting
        running.cancel()
        assert turns_while_written > 0, "the loop ran other tasks while the step was written"
        assert store._db.connection.total_changes == loop_writes, "the step was not written on the loop's connection"
        assert order == [("loop write", True)], "the loop's write waited for the step's commit"
    finally:
        store.close()


async def test_the_engine_steps_in_the_rules_thread_while_the_loop_runs_on_and_readers_wait(tmp_path: Path) -> None:
    """A poll's step is made in the rules' thread under the engine's lock: held there (the lock is
    taken here), the loop runs on, a reader waiting `between_steps` waits, and once the step ends it
    finds what the step decided. The step that qualifies a region takes 70-90 ms of CPU at
    100,000 lines (docs/benchmarks.md, "Tenth pass"): on the loop, every poll would wait for it."""
    config = load_config(build_sample_isp(tmp_path, base="127.6.43").config)
    dslam = NodeRef("device", min(d for d, device in config.topology.devices.items() if device.kind == "dslam"))
    now = 1_780_000_000.0
    store = Store.open(config.state_file)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: now, recheck=print)
        with pipeline.rules_thread.lock:
            step = asyncio.create_task(pipeline.ingest([Sample(dslam, "icmp", now, Outcome.TIMEOUT)]))
            await asyncio.sleep(0.1)  # the loop's turn: the step, held in the rules' thread, cannot end
            reader = asyncio.create_task(pipeline.rules_thread.between_steps())
            await asyncio.sleep(0.1)
            assert not step.done() and not reader.done()
        await asyncio.wait_for(reader, 5)
        assert pipeline.engine.node_state(dslam).reasons == ("icmp: timeout",), "read after the step"
        assert dslam.id in (await step).recheck
    finally:
        store.close()


@asynccontextmanager
async def a_step_being_written(tmp_path: Path) -> AsyncIterator[tuple[Pipeline, list[str], asyncio.Task[Step]]]:
    """A pipeline writing its first step, a poll of every line: the polls that end now wait."""
    config = load_config(build_sample_isp(tmp_path, base="127.6.42").config)
    now = 1_780_000_000.0
    store = Store.open(config.state_file)
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: now, recheck=print)
        lines = sorted(config.topology.lines)
        first = asyncio.create_task(
            pipeline.ingest([Sample(NodeRef("line", line), "snmp:adsl", now, Outcome.OK) for line in lines])
        )
        await asyncio.sleep(0)  # the first step is being written: the next polls wait
        yield pipeline, lines, first
    finally:
        store.close()


def poll(pipeline: Pipeline, line: str, outcome: Outcome) -> asyncio.Task[Step]:
    """One line's ICMP poll, handed to the pipeline."""
    return asyncio.create_task(pipeline.ingest([Sample(NodeRef("line", line), "icmp", pipeline.clock(), outcome)]))


async def test_polls_that_end_while_a_step_is_written_are_stepped_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One step and commit per poll cannot keep up with 100,000 lines: the polls that wait are
    taken together, in order, up to MERGED_SAMPLES samples, and each is told the step that took it."""
    monkeypatch.setattr(pipeline_module, "MERGED_SAMPLES", 2)
    async with a_step_being_written(tmp_path) as (pipeline, lines, first):
        later = [poll(pipeline, line, Outcome.TIMEOUT) for line in lines[:3]]  # modems silent
        steps = [await first] + [await task for task in later]
        assert steps[0] is not steps[1], "the poll being written is a step of its own"
        assert steps[1] is steps[2], "the two polls that waited and fit in MERGED_SAMPLES were one step"
        assert steps[3] is not steps[2], "the third did not fit: a step of its own"
        judged = [pipeline.engine.node_state(NodeRef("line", line)) for line in lines[:3]]
        assert [state.reasons for state in judged] == [("icmp: timeout",)] * 3, "every waiting poll's sample was observed"


async def test_every_poll_a_step_took_is_told_at_once(tmp_path: Path) -> None:
    """Polls that waited for one step end together as soon as it is written, not one per turn of
    the loop: at 100,000 lines, 1,500 polls and their samples waited seconds in such a line, and
    the GC's full passes over them held the loop (monitord/arrivals.py)."""
    async with a_step_being_written(tmp_path) as (pipeline, lines, first):
        later = [poll(pipeline, line, Outcome.OK) for line in lines]
        await first
        while not any(task.done() for task in later):
            await asyncio.sleep(0)
        assert all(task.done() for task in later), "every poll of the step ended in the same turn of the loop"
        assert len({id(task.result()) for task in later}) == 1, "and one step took them all"
