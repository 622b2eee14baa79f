"""The `cluster:` section: how `--role poller` processes divide the inventory among themselves
and hand their samples to the correlator (monitord/poller_role.py), and where the correlator
leader's API is reached by the nodes that forward to it (monitord/forward.py). Only read by the roles of a
cluster on a PostgreSQL state; a single box (`--role all`) ignores it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from monitord.config import values
from monitord.config.decoder import Decoder
from monitord.config.fields import Listen, Parsed, Positive, Section, choice_of, int_range, shared
from monitord.config.model import ClusterConfig


class Cluster(Section):
    """Pollers sharded by lease on PostgreSQL, and the batches of samples they write for the correlator"""

    shard_by: Annotated[Literal["exchange", "region"], choice_of("exchange", "region")] = Field(
        default=values.default_of(ClusterConfig, "shard_by"),
        description="What one shard is: the devices of one exchange (the default) or of one region",
    )
    lease: Positive = Field(
        default=values.default_of(ClusterConfig, "lease"),
        description="A poller's claim on its shards lasts this long unless renewed; a dead poller's shards "
        "are taken over within it (default 10s)",
    )
    batch_every: Positive = Field(
        default=values.default_of(ClusterConfig, "batch_every"),
        description="A poller writes each shard's samples at least this often (default 1s)",
    )
    batch_samples: Annotated[int, int_range(1, 1_000_000)] = Field(
        default=values.default_of(ClusterConfig, "batch_samples"),
        description="... or as soon as a shard has this many samples waiting (default 5000)",
    )
    resend: Positive = Field(
        default=values.default_of(ClusterConfig, "resend"),
        description="A poller writes only the samples that change what a line's rules see, and the others "
        "at least this often: a last resort, as what the correlator misses is written again at once (default 1h)",
    )
    advertise: Annotated[str | None, Parsed(shared("url"), values.url)] = Field(
        default=None,
        description="The URL the other nodes forward the NOC API to while this process leads the correlator, "
        "e.g. http://noc-1.example:9177 (default: http://<http.host>:<port>, or the machine's name when "
        "http.host is 0.0.0.0 or ::)",
    )
    notifier_listen: Listen | None = Field(
        default=None,
        description="host:port where a --role notifier worker answers /health, /ready, /metrics and the NOC API "
        "(forwarded to the correlator leader), e.g. 0.0.0.0:9179; none by default: a worker beside another "
        "role on one machine would need a port of its own",
    )


def read_cluster(d: Decoder, root: dict[Any, Any]) -> ClusterConfig | None:
    cluster = d.validated(Cluster, root.get("cluster"), ("cluster",))
    return None if cluster is None else ClusterConfig(**cluster.model_dump())
