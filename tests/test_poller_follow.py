"""What the correlator may have missed, a poller writes again (monitord/poller_role.py
`_follow_correlator`): each line of a shard one of whose batches the correlator could not read,
and, when the correlator leader reloads, the lines the poller's own reloads changed before it
(every line if the rules changed), and nothing more: at millions of lines, every line written at
once would hold the correlator back for minutes."""

from __future__ import annotations

from pathlib import Path

from lab.isp import build_sample_isp, write_config
from monitord.config import load_config
from monitord.model import NodeRef, Outcome, Sample
from monitord.poller_role import Poller
from monitord.shardstore import Held


def echo(line: str) -> Sample:
    return Sample(NodeRef("line", line), "icmp", 1_000.0, Outcome.OK, {"loss": 0.0, "rtt_ms": 5.0})


def a_poller(tmp_path: Path) -> tuple[Poller, dict[str, list[str]]]:
    """A poller of the sample ISP (not running: its memory and its reactions only), with one
    echo of every line remembered; each shard's lines."""
    isp = build_sample_isp(tmp_path, base="127.6.49")
    write_config(tmp_path, state="postgresql://monitord@127.0.0.1:1/none", state_file=None)
    config = load_config(isp.config)
    assert config.state_server is not None
    poller = Poller(config, config.state_server)
    lines: dict[str, list[str]] = {}
    for line in config.topology.lines.values():
        lines.setdefault(poller.shard_of[line.device], []).append(line.id)
    for shard, ids in lines.items():
        assert all(poller.unchanged.new(shard, echo(i)) for i in ids)
    return poller, lines


def written(poller: Poller, lines: dict[str, list[str]]) -> dict[str, int]:
    """Per shard, how many of its lines' next echo would be written (and is remembered now)."""
    return {shard: sum(poller.unchanged.new(shard, echo(i)) for i in ids) for shard, ids in lines.items()}


def held(reloads: int, passed_over: dict[str, int]) -> Held:
    return Held({shard: 1 for shard in passed_over}, (), (), 1, reloads, passed_over)


def test_a_shard_whose_batch_the_correlator_passed_over_is_written_again(tmp_path: Path) -> None:
    poller, lines = a_poller(tmp_path)
    first, *others = sorted(lines)
    poller._follow_correlator(held(0, dict.fromkeys(lines, 0)))  # the first round: nothing is new
    assert set(written(poller, lines).values()) == {0}
    poller._follow_correlator(held(0, {**dict.fromkeys(lines, 0), first: 1}))
    assert written(poller, lines) == {first: len(lines[first]), **dict.fromkeys(others, 0)}


def test_a_reload_of_the_leader_writes_again_what_the_pollers_reloads_changed(tmp_path: Path) -> None:
    poller, lines = a_poller(tmp_path)
    counts = dict.fromkeys(lines, 0)
    poller._follow_correlator(held(7, counts))
    shard = sorted(lines)[0]
    poller.unseen_lines = {lines[shard][0]}  # as a reload of this poller's that added that line leaves it
    poller._follow_correlator(held(8, counts))
    assert sum(written(poller, lines).values()) == 1 and not poller.unseen_lines
    poller._follow_correlator(held(9, counts))  # nothing changed meanwhile: nothing written
    assert sum(written(poller, lines).values()) == 0
    poller.unseen_rules = True
    poller._follow_correlator(held(10, counts))
    assert sum(written(poller, lines).values()) == sum(map(len, lines.values()))
