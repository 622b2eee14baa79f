"""The pipeline stands alone: given its config, engine, store and outbox, it writes each step and
asks for the rechecks the step wants, with no daemon around it (monitord/pipeline.py)."""

from __future__ import annotations

from pathlib import Path

from lab.isp import build_sample_isp
from monitord.config import load_config
from monitord.model import NodeRef, Outcome, Sample
from monitord.outbox import Outbox
from monitord.pipeline import Pipeline, resume
from monitord.store import Store
from tests.rules_fixtures import canonical


def test_a_pipeline_built_from_its_parts_writes_steps_and_asks_for_rechecks(tmp_path: Path) -> None:
    config = load_config(build_sample_isp(tmp_path, base="127.6.40").config)
    dslam = min(d for d, device in config.topology.devices.items() if device.kind == "dslam")
    now = 1_780_000_000.0
    store = Store.open(config.state_file)
    asked: list[str] = []
    try:
        pipeline = Pipeline(config, resume(config, store), store, Outbox(store, {}, {}), clock=lambda: now, recheck=asked.append)
        step = pipeline.ingest([Sample(NodeRef("device", dslam), "icmp", now, Outcome.TIMEOUT)])
        assert dslam in step.recheck and asked == list(step.recheck), "a suspected device is polled again at once"
        saved = store.load_engine()
        assert saved is not None and saved.rows, "the first commit saves the engine's rows"
        assert canonical(saved.snapshot) == canonical(pipeline.engine.snapshot())
    finally:
        store.close()
