"""The daemon's durable state: the rules engine's state, incidents, maintenance windows and the
transactional outbox, in one SQLite file (`state_file`, the default: one box, no server) or in a
PostgreSQL database (`state: postgresql://...`).

The engine's state is kept in rows (rules/snapshot.py `Rows`): one per line or device, one per
incident it remembers and one per member of it, and a small head; each step writes the rows it changed in the same
transaction as its incidents and notices, so a step costs what it changed, not the inventory.

A step is written as it is decided, from a thread of its own (`writer()`,
monitord/stepwriter.py) so that a big one never holds the event loop; the other writes (the
outbox's marks, pruning, maintenance windows) are small and made on the loop, taking the same
`turn`. No commit waits on the disk. SQLite: each connection runs `synchronous = OFF` without
automatic checkpoints, and `WalSync` (monitord/walsync.py, which says why that is safe) fsyncs
the WAL and checkpoints it in a thread of its own; WAL lets read-only tools (sqlite3 CLI,
backups) look in while the daemon writes. PostgreSQL: each session runs `synchronous_commit =
off`, and `PgSync` (monitord/pgsync.py) makes its commits durable from a thread of its own; a
session that broke (the server restarted) is replaced at its next use (monitord/pgstore.py,
which alone imports psycopg). Either way,
what leaves the process waits for `await store.durable()` first (the outbox, before each send),
so a crash or power loss can only lose commits nothing outside has seen.

One `Store` and one text per statement for both engines: a statement is written in SQLite's
words with `?` placeholders, `greatest(a, b)` for the larger of two values and `INDEXED BY`
where SQLite's planner needs it, and `_Sqlite` or pgstore's `Postgres` translates it once: `max(a, b)`;
`$1, $2, ...` and no `INDEXED BY` (PostgreSQL's planner picks the partial indexes itself, but
for one statement given to it in other words, `_POSTGRES_TEXTS`). PostgreSQL takes the rows of
an INSERT in one statement, not one at a time (`Postgres.executemany` says why). What differs
beyond that is the schema's: each engine has its own migrations, PostgreSQL's starting from the
schema SQLite had reached (version 9) since no older PostgreSQL database exists. A schema change
appends a migration to both MIGRATIONS and PG_MIGRATIONS (but for what only PostgreSQL needs: the
leases, claims and shared rate buckets of several outbox workers, `claim_due`, the correlator
leader's epoch, `lead`, and where its API is reached, monitord/forward.py, and the pollers'
shards and batches, monitord/shardstore.py), and a database written by a newer monitord is
refused by either.

Longer than the other modules on purpose: every SQL statement against the state is here (but
the pollers' leases and batches, monitord/shardstore.py, and the line quality roll-ups,
monitord/line_history.py, each run from a thread and connection of their own),
beside both engines' migrations and the partial indexes the statements rely on, so a schema
change and the queries it touches are read and reviewed together.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from monitord.database import SQLITE_FAULTS, Cursor, Database, StoreError, refuse_newer
from monitord.model import (
    SILENCED,
    AuditEntry,
    Incident,
    IncidentEvent,
    IncidentKind,
    MaintenanceWindow,
    NodeRef,
    Notification,
    Phase,
    Silence,
    StateServer,
)
from monitord.pacing import grant
from monitord.stages import ENGINE_STAGES, PartChange, StageChange
from monitord.stepwriter import StepWriter
from monitord.walsync import CHECKPOINT_EVERY, GroupSync, WalSync
from rules.snapshot import Rows, assemble

if TYPE_CHECKING:
    from typing import TypeAlias

    from monitord.pgstore import PgRow

    Row: TypeAlias = sqlite3.Row | PgRow

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot TEXT NOT NULL, saved_at REAL NOT NULL);
    CREATE TABLE line_states (node TEXT PRIMARY KEY, status TEXT NOT NULL, since REAL NOT NULL, reasons TEXT NOT NULL);
    CREATE TABLE incidents (
        tracking TEXT PRIMARY KEY, kind TEXT NOT NULL, root TEXT NOT NULL, phase TEXT NOT NULL,
        opened_at REAL NOT NULL, updated_at REAL NOT NULL, resolved_at REAL,
        affected TEXT NOT NULL, evidence TEXT NOT NULL);
    CREATE INDEX incidents_open ON incidents (phase) WHERE phase != 'resolved';
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
        recipient TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
        incident TEXT, created_at REAL NOT NULL, not_before REAL, next_attempt_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
        last_error TEXT, peer_ref TEXT, sent_at REAL);
    CREATE INDEX outbox_due ON outbox (channel, status, next_attempt_at);
    CREATE TABLE maintenance (
        id TEXT PRIMARY KEY, scope TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
        reason TEXT NOT NULL, grace REAL NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('config', 'api')), cancelled INTEGER NOT NULL DEFAULT 0);
    """,
    # When an item first went out to the network: the lower bound for asking the peer whether
    # an attempt whose answer was lost did arrive, and the index to match peer references.
    """
    ALTER TABLE outbox ADD COLUMN first_attempt_at REAL;
    CREATE INDEX outbox_peer_ref ON outbox (channel, peer_ref) WHERE peer_ref IS NOT NULL;
    """,
    # Per-incident order on ordered channels: finding an older undelivered item of the same
    # incident is one look-up in an index that holds only undelivered items.
    """
    CREATE INDEX outbox_undelivered ON outbox (channel, incident, id) WHERE status IN ('pending', 'sending');
    """,
    # Superseding: the waiting notices of one incident to one recipient, in one look-up.
    """
    CREATE INDEX outbox_waiting ON outbox (incident, recipient, channel) WHERE status = 'pending';
    """,
    # The highest tracking number issued per prefix and year, written with the incident that
    # took it: a snapshot lost or older than the incidents, or resolved incidents pruned, never
    # let a number be issued twice. Seeded from the incidents already there.
    """
    CREATE TABLE tracking_numbers (
        prefix TEXT NOT NULL, year INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (prefix, year));
    INSERT INTO tracking_numbers
        SELECT substr(tracking, 1, length(tracking) - 12), CAST(substr(tracking, -11, 4) AS INTEGER),
               max(CAST(substr(tracking, -6) AS INTEGER))
        FROM incidents WHERE tracking GLOB '*?-[0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9]' GROUP BY 1, 2;
    """,
    # Retention: finished items and resolved incidents are found by age without a scan, and the
    # outbox figures for /metrics read only undelivered items.
    """
    CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE status = 'sent';
    CREATE INDEX outbox_dead_at ON outbox (created_at) WHERE status = 'dead';
    CREATE INDEX outbox_backlog ON outbox (channel, created_at, not_before) WHERE status IN ('pending', 'sending');
    CREATE INDEX incidents_resolved_at ON incidents (resolved_at) WHERE phase = 'resolved';
    """,
    # Line states live in the engine (and its snapshot); the table that copied them on every
    # step had no reader.
    """
    DROP TABLE line_states;
    """,
    # The engine's state in rows, written per step. A whole-engine document an older monitord
    # left in engine_state is restored once; the first commit writes the rows and deletes it.
    """
    CREATE TABLE engine_head (id INTEGER PRIMARY KEY CHECK (id = 1), head TEXT NOT NULL, saved_at REAL NOT NULL);
    CREATE TABLE engine_targets (key TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE engine_incidents (tracking TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
    """,
    # An incident's members in rows of their own (rules/snapshot.py `MemberRows`), so a step that
    # grows a 12,528-line incident writes the lines that joined, not the whole list again. The
    # records written before move their members here.
    """
    CREATE TABLE engine_members (
        tracking TEXT NOT NULL, key TEXT NOT NULL, bits INTEGER NOT NULL, PRIMARY KEY (tracking, key)) WITHOUT ROWID;
    INSERT INTO engine_members SELECT tracking, value, 1 FROM engine_incidents, json_each(record, '$.members');
    INSERT INTO engine_members SELECT tracking, value, 2 FROM engine_incidents, json_each(record, '$.failing') WHERE 1
        ON CONFLICT (tracking, key) DO UPDATE SET bits = bits | 2;
    INSERT INTO engine_members SELECT tracking, value, 4 FROM engine_incidents, json_each(record, '$.waiting') WHERE 1
        ON CONFLICT (tracking, key) DO UPDATE SET bits = bits | 4;
    UPDATE engine_incidents SET record = json_remove(record, '$.members', '$.failing', '$.waiting');
    """,
    # Stages (issue 12, monitord/stages.py): who set which stage of an incident when, the rules
    # engine's and the helpdesk's, one row per change; and where the helpdesk sync
    # (monitord/rtsync.py) goes on reading from.
    """
    CREATE TABLE incident_stages (
        id INTEGER PRIMARY KEY, tracking TEXT NOT NULL, stage TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL,
        at REAL NOT NULL);
    CREATE INDEX incident_stages_tracking ON incident_stages (tracking, source, id);
    CREATE TABLE helpdesk_cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL);
    """,
    # Which lines each incident touched, for a subscriber's history (monitord/history.py): the
    # `affected` list of every incident is JSON, which no index reaches. Incidents by opening,
    # for the reports of a period.
    """
    CREATE TABLE incident_lines (line TEXT NOT NULL, tracking TEXT NOT NULL, PRIMARY KEY (line, tracking)) WITHOUT ROWID;
    CREATE INDEX incident_lines_tracking ON incident_lines (tracking);
    CREATE INDEX incidents_opened_at ON incidents (opened_at);
    INSERT INTO incident_lines SELECT value, tracking FROM incidents, json_each(affected) WHERE 1 ON CONFLICT DO NOTHING;
    """,
    # Where in its channel an item goes: a routed region's tickets to its own RT queue.
    """
    ALTER TABLE outbox ADD COLUMN route TEXT;
    """,
    # Silences (issue 13, notices/silences.py): the NOC's mutes, and the items they hold until
    # they expire, in the order they were held.
    """
    CREATE TABLE silences (
        id TEXT PRIMARY KEY, nodes TEXT NOT NULL, matchers TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
        author TEXT NOT NULL, comment TEXT NOT NULL, created_at REAL NOT NULL, expired_by TEXT);
    CREATE TABLE silenced_items (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, recipient TEXT NOT NULL,
        action TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, incident TEXT NOT NULL, held_at REAL NOT NULL,
        route TEXT);
    """,
    # The NOC's work on an incident (issue 13 item 1, monitord/incident_actions.py): who
    # acknowledged it, took it or wrote a note, and when; one row per action.
    """
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY, tracking TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, at REAL NOT NULL,
        text TEXT NOT NULL);
    CREATE INDEX incident_events_tracking ON incident_events (tracking, id);
    """,
    # Two-way SMS (issue 12, monitord/sms_inbound.py): each inbound message Twilio delivered, by
    # its MessageSid (a replay finds it and changes nothing), and the subscribers' SMS opt-outs
    # and opt-ins as they texted them (the last word counts).
    """
    CREATE TABLE sms_inbound (sid TEXT PRIMARY KEY, phone TEXT NOT NULL, command TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX sms_inbound_at ON sms_inbound (at);
    CREATE TABLE sms_consent (phone TEXT PRIMARY KEY, opted_out INTEGER NOT NULL, at REAL NOT NULL);
    """,
    # Confirmation after repair (issue 12 item 4, notices/confirm.py): the answer a phone gave to
    # an incident's question, once; and the questions by phone, to find the one a reply answers.
    """
    CREATE TABLE sms_answers (
        tracking TEXT NOT NULL, phone TEXT NOT NULL, works INTEGER NOT NULL, sid TEXT NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (tracking, phone));
    CREATE INDEX outbox_questions ON outbox (recipient, sent_at) WHERE action = 'confirm' AND status = 'sent';
    CREATE INDEX outbox_questions_due ON outbox (not_before) WHERE action = 'confirm';
    """,
    # Where each of the NOC's actions came from (monitord, or the helpdesk's ticket read back by
    # monitord/rtsync.py), and the owner each incident's RT ticket had when last read, so that
    # only a change made in RT is recorded (monitord's own, echoed back, is not).
    """
    ALTER TABLE incident_events ADD COLUMN source TEXT NOT NULL DEFAULT 'noc';
    CREATE TABLE helpdesk_owners (tracking TEXT PRIMARY KEY, owner TEXT NOT NULL) WITHOUT ROWID;
    """,
    # Satisfaction survey (issue 12 item 5, notices/inbound.py): the score a phone gave an
    # incident's repair, once; the answers to both questions counted per region (the metrics'
    # counters, read back at start, outliving the answers the pruning forgets); and the survey
    # questions by phone, to find the one a reply answers.
    """
    CREATE TABLE survey_scores (
        tracking TEXT NOT NULL, phone TEXT NOT NULL, score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5), sid TEXT NOT NULL,
        at REAL NOT NULL, PRIMARY KEY (tracking, phone));
    CREATE TABLE answer_tally (region TEXT NOT NULL, answer TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (region, answer));
    CREATE INDEX outbox_surveys ON outbox (recipient, sent_at) WHERE action = 'survey' AND status = 'sent';
    """,
    # Line quality over time (issue 13 item 4, monitord/line_history.py): one row per device and
    # period (5 minutes or an hour), its lines' min/avg/max packed in `data` (monitord/rollups.py).
    # Rows of kilobytes: a rowid table, not WITHOUT ROWID; by age for pruning and the latest hour.
    """
    CREATE TABLE line_quality (
        id INTEGER PRIMARY KEY, device TEXT NOT NULL, step INTEGER NOT NULL, start INTEGER NOT NULL,
        metrics TEXT NOT NULL, data BLOB NOT NULL);
    CREATE UNIQUE INDEX line_quality_device ON line_quality (device, step, start);
    CREATE INDEX line_quality_age ON line_quality (step, start);
    """,
    # Questions that may have reached the phone without the outbox knowing yet (the process died
    # while Twilio took them, or before the wave's `sent` marks were written): an answer to one
    # must count, not be read as text (`Store.open_question`).
    """
    CREATE INDEX outbox_questions_out ON outbox (recipient)
        WHERE action IN ('confirm', 'survey') AND status IN ('pending', 'sending') AND first_attempt_at IS NOT NULL;
    """,
    # The web console's audit log (issue 16, monitord/console.py): every change made there, and
    # every sign-in and sign-out, with who, their role and when.
    """
    CREATE TABLE console_audit (
        id INTEGER PRIMARY KEY, actor TEXT NOT NULL, role TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL, detail TEXT NOT NULL);
    CREATE INDEX console_audit_at ON console_audit (at);
    """,
    # The status each incident's ticket had when the helpdesk sync last read it (issue 13 item 1,
    # monitord/rtsync.py): a ticket the helpdesk resolves while its incident is open is recorded.
    """
    ALTER TABLE helpdesk_owners ADD COLUMN status TEXT NOT NULL DEFAULT '';
    """,
    # A subscriber's own stage within an incident (issue 12 item 1, monitord/stages.py
    # `of_subscriber`): the stages the helpdesk gave each follow-up ticket (notices/confirm.py),
    # by incident and line, one row per change as in incident_stages.
    """
    CREATE TABLE subscriber_stages (
        id INTEGER PRIMARY KEY, tracking TEXT NOT NULL, line TEXT NOT NULL, stage TEXT NOT NULL, source TEXT NOT NULL,
        actor TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX subscriber_stages_line ON subscriber_stages (tracking, line, id);
    CREATE INDEX subscriber_stages_by_line ON subscriber_stages (line);
    """,
)

# PostgreSQL's schema: SQLite's as of MIGRATIONS[:9], in PostgreSQL's types (REAL is a double,
# `cancelled` a boolean; keys compared byte by byte as SQLite does, COLLATE "C", so that rows
# come back in the same order), plus `wal_flushes`, the row monitord/pgsync.py writes to flush
# the WAL. `engine_state` stays empty here (SQLite keeps an older monitord's document in it):
# it lets one Store read both engines.
PG_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE engine_state (id integer PRIMARY KEY CHECK (id = 1), snapshot text NOT NULL, saved_at double precision NOT NULL);
    CREATE TABLE incidents (
        tracking text PRIMARY KEY, kind text NOT NULL, root text NOT NULL, phase text NOT NULL,
        opened_at double precision NOT NULL, updated_at double precision NOT NULL, resolved_at double precision,
        affected text NOT NULL, evidence text NOT NULL);
    CREATE INDEX incidents_open ON incidents (phase) WHERE phase != 'resolved';
    CREATE INDEX incidents_resolved_at ON incidents (resolved_at) WHERE phase = 'resolved';
    CREATE TABLE outbox (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, key text NOT NULL UNIQUE, channel text NOT NULL,
        recipient text NOT NULL, action text NOT NULL, subject text NOT NULL, body text NOT NULL,
        incident text, created_at double precision NOT NULL, not_before double precision,
        next_attempt_at double precision NOT NULL, attempts integer NOT NULL DEFAULT 0,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
        last_error text, peer_ref text, sent_at double precision, first_attempt_at double precision);
    CREATE INDEX outbox_due ON outbox (channel, status, next_attempt_at);
    CREATE INDEX outbox_peer_ref ON outbox (channel, peer_ref) WHERE peer_ref IS NOT NULL;
    CREATE INDEX outbox_undelivered ON outbox (channel, incident, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_waiting ON outbox (incident, recipient, channel) WHERE status = 'pending';
    CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE status = 'sent';
    CREATE INDEX outbox_dead_at ON outbox (created_at) WHERE status = 'dead';
    CREATE INDEX outbox_backlog ON outbox (channel, created_at, not_before) WHERE status IN ('pending', 'sending');
    CREATE TABLE maintenance (
        id text COLLATE "C" PRIMARY KEY, scope text NOT NULL, start double precision NOT NULL,
        "end" double precision NOT NULL, reason text NOT NULL, grace double precision NOT NULL,
        source text NOT NULL CHECK (source IN ('config', 'api')), cancelled boolean NOT NULL DEFAULT FALSE);
    CREATE TABLE tracking_numbers (
        prefix text NOT NULL, year integer NOT NULL, last integer NOT NULL, PRIMARY KEY (prefix, year));
    CREATE TABLE engine_head (id integer PRIMARY KEY CHECK (id = 1), head text NOT NULL, saved_at double precision NOT NULL);
    CREATE TABLE engine_targets (key text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE engine_incidents (tracking text COLLATE "C" PRIMARY KEY, record text NOT NULL);
    CREATE TABLE engine_members (
        tracking text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, bits integer NOT NULL, PRIMARY KEY (tracking, key));
    CREATE TABLE wal_flushes (id integer PRIMARY KEY CHECK (id = 1), flushes bigint NOT NULL);
    INSERT INTO wal_flushes VALUES (1, 0);
    """,
    # Several outbox workers on one database (`monitord run --role notifier`, issue 15): each
    # holds a lease it renews (times are the server's clock, the one clock all workers share),
    # a `sending` item names the worker that claimed it, and each channel's token bucket is a
    # row, so that the workers together keep the configured rate. SQLite runs one process and
    # needs none of it.
    """
    CREATE TABLE outbox_workers (id text PRIMARY KEY, expires_at double precision NOT NULL);
    ALTER TABLE outbox ADD COLUMN claimed_by text;
    CREATE INDEX outbox_claimed ON outbox (claimed_by) WHERE status = 'sending';
    CREATE TABLE channel_rates (channel text PRIMARY KEY, tokens double precision NOT NULL, at double precision NOT NULL);
    """,
    # One correlator leader among several `monitord run` processes (monitord/leader.py): each
    # takeover raises the epoch, and every step's transaction reads it FOR SHARE and aborts if it
    # moved on (`lead`), so a leader that lost its lock commits no step after a standby took over.
    """
    CREATE TABLE correlator_leader (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL, holder text, since double precision);
    INSERT INTO correlator_leader VALUES (1, 0, NULL, NULL);
    """,
    # Pollers sharded by lease, and the correlator fed by their batches (monitord/poller_role.py,
    # monitord/shards.py, monitord/feed.py): a poller's heartbeat, each shard's owner, epoch
    # (raised by every claim: a batch is written only under the epoch its poller claimed with)
    # and lease, the batches of samples in the order they were committed, and the last batch
    # whose samples the correlator's committed steps include (written in the same transaction).
    """
    CREATE TABLE pollers (name text PRIMARY KEY, heartbeat double precision NOT NULL);
    CREATE TABLE shards (
        shard text COLLATE "C" PRIMARY KEY, owner text, epoch bigint NOT NULL DEFAULT 0,
        expires_at double precision NOT NULL DEFAULT 0);
    CREATE TABLE sample_batches (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, shard text NOT NULL, epoch bigint NOT NULL,
        samples text NOT NULL, written_at double precision NOT NULL);
    CREATE TABLE correlator_cursor (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
    INSERT INTO correlator_cursor VALUES (1, 0);
    """,
    # SQLite's MIGRATIONS[9]: incident stages and the helpdesk sync's cursor.
    """
    CREATE TABLE incident_stages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tracking text COLLATE "C" NOT NULL, stage text NOT NULL,
        source text NOT NULL, actor text NOT NULL, at double precision NOT NULL);
    CREATE INDEX incident_stages_tracking ON incident_stages (tracking, source, id);
    CREATE TABLE helpdesk_cursors (source text PRIMARY KEY, cursor text NOT NULL);
    """,
    # SQLite's MIGRATIONS[10]: the lines each incident touched, and incidents by opening.
    """
    CREATE TABLE incident_lines (
        line text COLLATE "C" NOT NULL, tracking text COLLATE "C" NOT NULL, PRIMARY KEY (line, tracking));
    CREATE INDEX incident_lines_tracking ON incident_lines (tracking);
    CREATE INDEX incidents_opened_at ON incidents (opened_at);
    INSERT INTO incident_lines SELECT DISTINCT a.line, i.tracking FROM incidents AS i, json_array_elements_text(i.affected::json) AS a(line);
    """,
    # SQLite's MIGRATIONS[11]: an item's route within its channel.
    """
    ALTER TABLE outbox ADD COLUMN route text;
    """,
    # SQLite's MIGRATIONS[12]: silences and the items they hold.
    """
    CREATE TABLE silences (
        id text PRIMARY KEY, nodes text NOT NULL, matchers text NOT NULL, start double precision NOT NULL,
        "end" double precision NOT NULL, author text NOT NULL, comment text NOT NULL,
        created_at double precision NOT NULL, expired_by text);
    CREATE TABLE silenced_items (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text NOT NULL UNIQUE, channel text NOT NULL,
        recipient text NOT NULL, action text NOT NULL, subject text NOT NULL, body text NOT NULL,
        incident text NOT NULL, held_at double precision NOT NULL, route text);
    """,
    # SQLite's MIGRATIONS[13]: the NOC's actions on incidents.
    """
    CREATE TABLE incident_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tracking text COLLATE "C" NOT NULL, action text NOT NULL,
        actor text NOT NULL, at double precision NOT NULL, text text NOT NULL);
    CREATE INDEX incident_events_tracking ON incident_events (tracking, id);
    """,
    # SQLite's MIGRATIONS[14]: inbound SMS by MessageSid and the subscribers' SMS opt-outs.
    """
    CREATE TABLE sms_inbound (sid text PRIMARY KEY, phone text NOT NULL, command text NOT NULL, at double precision NOT NULL);
    CREATE INDEX sms_inbound_at ON sms_inbound (at);
    CREATE TABLE sms_consent (phone text PRIMARY KEY, opted_out integer NOT NULL, at double precision NOT NULL);
    """,
    # SQLite's MIGRATIONS[15]: confirmation answers, and the questions by phone.
    """
    CREATE TABLE sms_answers (
        tracking text NOT NULL, phone text NOT NULL, works integer NOT NULL, sid text NOT NULL, at double precision NOT NULL,
        PRIMARY KEY (tracking, phone));
    CREATE INDEX outbox_questions ON outbox (recipient, sent_at) WHERE action = 'confirm' AND status = 'sent';
    CREATE INDEX outbox_questions_due ON outbox (not_before) WHERE action = 'confirm';
    """,
    # SQLite's MIGRATIONS[16]: where each NOC action came from; the owner each RT ticket had.
    """
    ALTER TABLE incident_events ADD COLUMN source text NOT NULL DEFAULT 'noc';
    CREATE TABLE helpdesk_owners (tracking text COLLATE "C" PRIMARY KEY, owner text NOT NULL);
    """,
    # Where the correlator leader's API is reached (monitord/forward.py): every other node
    # forwards the NOC API there. Cleared by each takeover, written once the new leader listens.
    """
    ALTER TABLE correlator_leader ADD COLUMN advertise text;
    """,
    # SQLite's MIGRATIONS[17]: survey scores, the answers counted per region, the survey questions by phone.
    """
    CREATE TABLE survey_scores (
        tracking text NOT NULL, phone text NOT NULL, score integer NOT NULL CHECK (score BETWEEN 1 AND 5), sid text NOT NULL,
        at double precision NOT NULL, PRIMARY KEY (tracking, phone));
    CREATE TABLE answer_tally (region text NOT NULL, answer text NOT NULL, count bigint NOT NULL, PRIMARY KEY (region, answer));
    CREATE INDEX outbox_surveys ON outbox (recipient, sent_at) WHERE action = 'survey' AND status = 'sent';
    """,
    # SQLite's MIGRATIONS[18]: line quality over time (its unique index line_quality_device is the key here).
    """
    CREATE TABLE line_quality (
        device text COLLATE "C" NOT NULL, step integer NOT NULL, start bigint NOT NULL, metrics text NOT NULL,
        data bytea NOT NULL, PRIMARY KEY (device, step, start));
    CREATE INDEX line_quality_age ON line_quality (step, start);
    """,
    # SQLite's MIGRATIONS[19]: the questions that may have reached the phone, by phone.
    """
    CREATE INDEX outbox_questions_out ON outbox (recipient)
        WHERE action IN ('confirm', 'survey') AND status IN ('pending', 'sending') AND first_attempt_at IS NOT NULL;
    """,
    # SQLite's MIGRATIONS[20]: the web console's audit log.
    """
    CREATE TABLE console_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, actor text NOT NULL, role text NOT NULL,
        at double precision NOT NULL, action text NOT NULL, target text NOT NULL, detail text NOT NULL);
    CREATE INDEX console_audit_at ON console_audit (at);
    """,
    # SQLite's MIGRATIONS[21]: the status of each incident's ticket as last read.
    """
    ALTER TABLE helpdesk_owners ADD COLUMN status text NOT NULL DEFAULT '';
    """,
    # SQLite's MIGRATIONS[22]: the stages of each subscriber's follow-up ticket.
    """
    CREATE TABLE subscriber_stages (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tracking text COLLATE "C" NOT NULL,
        line text COLLATE "C" NOT NULL, stage text NOT NULL, source text NOT NULL, actor text NOT NULL,
        at double precision NOT NULL);
    CREATE INDEX subscriber_stages_line ON subscriber_stages (tracking, line, id);
    CREATE INDEX subscriber_stages_by_line ON subscriber_stages (line);
    """,
    # What the correlator leader may have missed of the pollers' samples, counted: its reloads
    # (lines and rules it did not know before) and, per shard, the batches it could not read. A
    # poller that sees a count move writes again what it had left out as unchanged
    # (rules/changes.py), at once rather than within `cluster.resend`.
    """
    ALTER TABLE correlator_leader ADD COLUMN reloads bigint NOT NULL DEFAULT 0;
    ALTER TABLE shards ADD COLUMN passed_over bigint NOT NULL DEFAULT 0;
    """,
)
# An item of an ordered channel waits while an older item of its incident is undelivered.
# Dead items are final and do not hold anything back.
_NOT_BLOCKED = """ AND NOT EXISTS (SELECT 1 FROM outbox AS older WHERE older.channel = outbox.channel
    AND older.incident = outbox.incident AND older.id < outbox.id AND older.status IN ('pending', 'sending'))"""

# An incident row is updated only by the incident that owns its number (same root and opening;
# its kind is its severity, which may change): another incident arriving with a taken number is
# an error, never a replacement.
_UPSERT_INCIDENT = """INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (tracking) DO UPDATE SET kind = excluded.kind, phase = excluded.phase, updated_at = excluded.updated_at,
        resolved_at = excluded.resolved_at, affected = excluded.affected, evidence = excluded.evidence
    WHERE incidents.root = excluded.root AND incidents.opened_at = excluded.opened_at"""

_INDEX_LINE = "INSERT INTO incident_lines VALUES (?, ?) ON CONFLICT DO NOTHING"

_ISSUED = """INSERT INTO tracking_numbers VALUES (?, ?, ?)
    ON CONFLICT (prefix, year) DO UPDATE SET last = greatest(tracking_numbers.last, excluded.last)"""

_LAST_STAGE = """SELECT stage FROM incident_stages WHERE tracking = ? AND source = ? ORDER BY id DESC LIMIT 1"""
_ADD_STAGE = f"""INSERT INTO incident_stages (tracking, stage, source, actor, at) SELECT ?, ?, ?, ?, ?
    WHERE coalesce(({_LAST_STAGE}), '') != ?"""
# A follow-up's stage counts only for a line its incident touched (a tag made up in the helpdesk is not).
_LAST_PART = """SELECT stage FROM subscriber_stages WHERE tracking = ? AND line = ? ORDER BY id DESC LIMIT 1"""
_ADD_PART = f"""INSERT INTO subscriber_stages (tracking, line, stage, source, actor, at) SELECT ?, ?, ?, ?, ?, ?
    WHERE coalesce(({_LAST_PART}), '') != ?
    AND EXISTS (SELECT 1 FROM incident_lines WHERE incident_lines.line = ? AND incident_lines.tracking = ?)"""

TRACKING = re.compile(r"(?P<prefix>.+)-(?P<year>\d{4})-(?P<seq>\d{6,})")

_HOLD = """INSERT INTO silenced_items (key, channel, recipient, action, subject, body, incident, held_at, route)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"""
_PUT_SILENCE = """INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"""

# A subscriber who texted an opt-out is sent no SMS but the replies to what they text: what a
# step queues for them is dead on arrival, and what waits for them dies with the opt-out.
_OPTED_OUT = """UPDATE outbox SET status = 'dead', last_error = 'the subscriber opted out of SMS by SMS'
    WHERE id > ? AND channel = 'sms' AND action != 'reply' AND status = 'pending'
        AND recipient IN (SELECT phone FROM sms_consent WHERE opted_out = 1)"""
_WAITING_FOR = """UPDATE outbox SET status = 'dead', last_error = 'the subscriber opted out of SMS by SMS'
    WHERE channel = 'sms' AND recipient = ? AND action != 'reply' AND status = 'pending'"""
_CONSENT = """INSERT INTO sms_consent VALUES (?, ?, ?)
    ON CONFLICT (phone) DO UPDATE SET opted_out = excluded.opted_out, at = excluded.at"""

_ANSWER = """INSERT INTO sms_answers VALUES (?, ?, ?, ?, ?) ON CONFLICT (tracking, phone) DO NOTHING"""
_SCORE = """INSERT INTO survey_scores VALUES (?, ?, ?, ?, ?) ON CONFLICT (tracking, phone) DO NOTHING"""
_TALLY = """INSERT INTO answer_tally VALUES (?, ?, 1) ON CONFLICT (region, answer) DO UPDATE SET count = answer_tally.count + 1"""
# The last question (repair or survey) sent to a phone and not answered: each kind by its own partial index; and one
# that may have reached it, tried but not known `sent` (a crash, or a wave's marks not written yet).
_OPEN_QUESTION = """SELECT incident, action, sent_at FROM outbox WHERE recipient = ? AND action = 'confirm' AND status = 'sent'
    AND NOT EXISTS (SELECT 1 FROM sms_answers WHERE sms_answers.tracking = outbox.incident AND sms_answers.phone = outbox.recipient)
    UNION ALL
    SELECT incident, action, sent_at FROM outbox WHERE recipient = ? AND action = 'survey' AND status = 'sent'
    AND NOT EXISTS (SELECT 1 FROM survey_scores WHERE survey_scores.tracking = outbox.incident AND survey_scores.phone = outbox.recipient)
    UNION ALL
    SELECT incident, action, first_attempt_at FROM outbox WHERE recipient = ?
    AND action IN ('confirm', 'survey') AND status IN ('pending', 'sending') AND first_attempt_at IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM sms_answers WHERE outbox.action = 'confirm'
        AND sms_answers.tracking = outbox.incident AND sms_answers.phone = outbox.recipient)
    AND NOT EXISTS (SELECT 1 FROM survey_scores WHERE outbox.action = 'survey'
        AND survey_scores.tracking = outbox.incident AND survey_scores.phone = outbox.recipient)
    ORDER BY sent_at DESC LIMIT 1"""


_ADD_EVENT = "INSERT INTO incident_events (tracking, action, actor, at, text, source) VALUES (?, ?, ?, ?, ?, ?)"
_PUT_HELPDESK_TICKET = (
    "INSERT INTO helpdesk_owners (tracking, owner, status) VALUES (?, ?, ?)"
    " ON CONFLICT (tracking) DO UPDATE SET owner = excluded.owner, status = excluded.status"
)
_QUEUE = """INSERT INTO outbox (key, channel, recipient, action, subject, body, incident, created_at,
    not_before, next_attempt_at, status, last_error, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO NOTHING"""


# What a customer hears about an incident (notices/plan.py phases). Only the latest news counts:
# a notice still waiting (held by quiet hours, or retrying) when a newer one about the same
# incident is queued for the same recipient is dropped, so "still ongoing" never follows
# "restored" at 08:00, and a "restored" held overnight never arrives after the fault came back.
# CROSS JOIN keeps SQLite from scanning every waiting item: it walks this step's new rows only.
CUSTOMER_ACTIONS = ("outage", "update", "restored", "degradation", "overrun", "stage")
_ACTIONS = ", ".join(f"'{a}'" for a in CUSTOMER_ACTIONS)
# ... and a "does it work?" or a survey question still waiting (notices/confirm.py, notices/inbound.py)
# is stale once any of them is newer (the fault came back), but is itself no news that makes a
# waiting notice stale.
_STALE = _ACTIONS + ", 'confirm', 'survey'"
_SUPERSEDE = f"""UPDATE outbox SET status = 'dead', last_error = 'superseded by a newer notice of its incident'
    WHERE action IN ({_STALE}) AND id IN (
        SELECT older.id FROM outbox AS newer CROSS JOIN outbox AS older INDEXED BY outbox_waiting
        WHERE newer.id > ? AND newer.status = 'pending' AND newer.action IN ({_ACTIONS})
            AND older.incident = newer.incident AND older.recipient = newer.recipient
            AND older.channel = newer.channel AND older.status = 'pending' AND older.id <= ?)"""
# PostgreSQL has no INDEXED BY. Its planner, before or after its statistics catch up with a
# growing outbox, walked every waiting item of the channel (outbox_backlog) once per new one: 44 ms
# a step of 50 notices over 3,000 waiting, 9 s a step of 1,000 over 30,000 (bench/pg_store.py). A
# LATERAL subquery behind OFFSET 0, which it does not flatten into a join it could reorder, looks
# each new row's older ones up by incident and recipient; the fence also keeps the channel out of
# that look-up, so that no index led by the channel (backlog, undelivered, due) can be chosen.
_SUPERSEDE_POSTGRES = f"""UPDATE outbox SET status = 'dead', last_error = 'superseded by a newer notice of its incident'
    WHERE id IN (
        SELECT older.id FROM outbox AS newer CROSS JOIN LATERAL (
            SELECT id, channel FROM outbox WHERE incident = newer.incident AND recipient = newer.recipient
                AND status = 'pending' AND action IN ({_STALE}) AND id <= ? OFFSET 0) AS older
        WHERE older.channel = newer.channel AND newer.id > ? AND newer.status = 'pending' AND newer.action IN ({_ACTIONS}))"""


# An area's outage notice is held a few seconds (notices/plan.py `merge_hold`) in case a wider
# incident absorbs the area's: when its incident is merged in this step while the notice still
# waits, never attempted, and the step planned the recipient another outage notice (the wider
# incident's number, which they keep), it is dropped: one outage SMS, not two within a second.
_WITHDRAW = """UPDATE outbox SET status = 'dead', last_error = ? WHERE id = ?"""
_HELD_OUTAGES = """SELECT id, channel, recipient FROM outbox INDEXED BY outbox_waiting
    WHERE incident = ? AND status = 'pending' AND action = 'outage' AND attempts = 0"""


# The server's clock, in the seconds the store's times are kept in: what leases and the channels'
# shared buckets are timed by (clock_timestamp(), not now(): it moves within a transaction).
_SERVER_NOW = "extract(epoch FROM clock_timestamp())::float8"

# A channel's shared bucket, made full on first use and locked for the claiming transaction; the
# clock is read in RETURNING, after the lock is held, so a worker that waited for it reads a time
# later than the one the worker before it wrote.
_TAKE_BUCKET = f"""INSERT INTO channel_rates VALUES (?, 0, 0) ON CONFLICT (channel) DO UPDATE SET at = channel_rates.at
    RETURNING tokens, at, {_SERVER_NOW}"""


# A window stored again is in force again (its `cancelled` cleared).
_PUT_WINDOW = """INSERT INTO maintenance VALUES (?, ?, ?, ?, ?, ?, ?, FALSE) ON CONFLICT (id) DO UPDATE SET
    scope = excluded.scope, start = excluded.start, "end" = excluded."end", reason = excluded.reason,
    grace = excluded.grace, source = excluded.source, cancelled = FALSE"""


def _queued(n: Notification, not_before: float | None, now: float) -> tuple[Any, ...]:
    """An outbox row; an item that could not be built (n.error) is dead on arrival."""
    return (
        n.key,
        n.channel,
        n.recipient,
        n.action,
        n.subject,
        n.body,
        n.incident,
        now,
        not_before,
        max(now, not_before or now),
        "pending" if n.error is None else "dead",
        n.error,
        n.route,
    )


OutboxStatus = Literal["pending", "sending", "sent", "dead"]
Source = Literal["config", "api"]


class LeaseLost(Exception):
    """This outbox worker's lease expired (a stall longer than its term, or the database was out
    of reach): another worker may have taken its `sending` items, so it must send nothing more
    under this lease. The outbox ends; starting it again enlists a new worker."""


class NotLeader(Exception):
    """A step refused: the correlator's epoch moved on since this process took the lead (another
    one took over, monitord/leader.py), so it must commit no step more; nothing of it was written."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    notification: Notification
    created_at: float
    not_before: float | None
    next_attempt_at: float
    attempts: int
    status: OutboxStatus
    last_error: str | None
    peer_ref: str | None
    sent_at: float | None
    first_attempt_at: float | None


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """An inbound SMS as kept: who sent it and what it was read as, not its text."""

    sid: str  # Twilio's MessageSid
    phone: str
    command: str  # notices/inbound.py `Command.name`
    at: float


@dataclass(frozen=True, slots=True)
class SavedEngine:
    """The engine's state as saved: `snapshot` (rules/snapshot.py's document), assembled from
    its rows (`rows`), or the one document an older monitord saved, whose rows are all still to
    write."""

    snapshot: dict[str, Any]
    rows: bool


@dataclass(frozen=True, slots=True)
class StoredWindow:
    window: MaintenanceWindow
    source: Source
    cancelled: bool


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (DDL included)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, target: int = len(MIGRATIONS)) -> int:
    """Bring the schema up to `target`, one committed step at a time; return the old version."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    refuse_newer(version, len(MIGRATIONS))
    for step in range(version, target):
        with transaction(db):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {step + 1}")
    return version


@functools.cache
def _sqlite_sql(sql: str) -> str:
    return sql.replace("greatest(", "max(")


_POSTGRES_TEXTS = {_SUPERSEDE: _SUPERSEDE_POSTGRES}  # the statements PostgreSQL takes in other words (both ? the same value)


class _Sqlite:
    epoch = 0  # one file, never fenced off
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    def reopen(self) -> _Sqlite:
        """Another connection to the file, set up as the loop's, for another thread."""
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        for pragma in ("busy_timeout = 5000", "wal_autocheckpoint = 0", "synchronous = OFF"):
            connection.execute(f"PRAGMA {pragma}")
        return _Sqlite(connection, self.path)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.connection.execute(_sqlite_sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        return self.connection.executemany(_sqlite_sql(sql), rows).rowcount

    def transaction(self) -> AbstractContextManager[Any]:
        return transaction(self.connection)

    def close(self) -> None:
        try:
            self.connection.execute("PRAGMA synchronous = FULL")  # should SQLite checkpoint as it closes: synced
        finally:
            self.connection.close()


def _compact(record: dict[str, Any]) -> str:
    """An engine row as JSON: orjson, as a first start writes a row for every line three times
    in its first minute (a healthy line's record: 14-16 µs with the json module, 1 µs with orjson)."""
    return orjson.dumps(record).decode()


def _upserts(changed: Mapping[str, dict[str, Any] | None], gone: list[tuple[str]]) -> Iterator[tuple[str, str]]:
    """The rows to write, one at a time (each record is made as it is read, and let go once
    written: rules/snapshot.py `TargetRecords`); the keys of the rows to delete go to `gone`."""
    for k, record in changed.items():
        if record is None:
            gone.append((k,))
        else:
            yield k, _compact(record)


def _node(text: str) -> NodeRef:
    level, _, ident = text.partition(":")
    return NodeRef(level, ident)  # type: ignore[arg-type]


def _incident(row: Row) -> Incident:
    return Incident(
        tracking=row["tracking"],
        kind=IncidentKind(row["kind"]),
        root=_node(row["root"]),
        phase=Phase(row["phase"]),
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        affected=frozenset(json.loads(row["affected"])),
        evidence=tuple(json.loads(row["evidence"])),
        resolved_at=row["resolved_at"],
    )


def _item(row: Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        notification=Notification(
            key=row["key"],
            channel=row["channel"],
            recipient=row["recipient"],
            action=row["action"],
            subject=row["subject"],
            body=row["body"],
            incident=row["incident"],
            route=row["route"],
        ),
        created_at=row["created_at"],
        not_before=row["not_before"],
        next_attempt_at=row["next_attempt_at"],
        attempts=row["attempts"],
        status=row["status"],
        last_error=row["last_error"],
        peer_ref=row["peer_ref"],
        sent_at=row["sent_at"],
        first_attempt_at=row["first_attempt_at"],
    )


def _silence(row: Row) -> Silence:
    return Silence(
        id=row["id"],
        nodes=tuple(_node(n) for n in json.loads(row["nodes"])),
        matchers=tuple((label, value) for label, value in json.loads(row["matchers"])),
        start=row["start"],
        end=row["end"],
        author=row["author"],
        comment=row["comment"],
        created_at=row["created_at"],
        expired_by=row["expired_by"],
    )


def _window(row: Row) -> StoredWindow:
    window = MaintenanceWindow(
        id=row["id"],
        scope=tuple(_node(n) for n in json.loads(row["scope"])),
        start=row["start"],
        end=row["end"],
        reason=row["reason"],
        grace=row["grace"],
    )
    return StoredWindow(window, row["source"], bool(row["cancelled"]))


class Store:
    """All reads and writes of the state. Open with `Store.open(path or server)`."""

    def __init__(self, db: Database, sync: GroupSync) -> None:
        self._db = db
        self._sync = sync
        self.errors = db.errors  # what a refused read or write raises: catch these where one may be
        self.turn = asyncio.Lock()  # held by whoever writes while the loop runs: see monitord/stepwriter.py
        self._writer: StepWriter | None = None
        self._steps: Store | None = None  # the writer thread's store, once made
        self._epoch: int | None = None  # the correlator epoch this process leads under (PostgreSQL; None: no check)
        self._worker: str | None = None  # this outbox worker's lease (PostgreSQL; None: the only one)
        self._term = 0.0  # seconds a renewal extends the lease by
        self._lease_until = 0.0  # monotonic: before this the server cannot have let the lease expire
        self._lease_fences = 0  # the sync's fences when the lease was last renewed (a fence since: it may be lost)
        self._indexed: dict[str, frozenset[str]] = {}  # open incident -> its lines already in incident_lines

    @classmethod
    def open(cls, where: str | Path | StateServer, checkpoint_every: float = CHECKPOINT_EVERY) -> Store:
        """Open (or create) the state and bring its schema up to date; StoreError says in one
        line why it cannot be used. `where`: the SQLite file, or the PostgreSQL database
        (`checkpoint_every` is SQLite's)."""
        if isinstance(where, StateServer):
            from monitord.pgstore import open_postgres  # psycopg only where the state is in PostgreSQL

            return cls(*open_postgres(where, PG_MIGRATIONS, _POSTGRES_TEXTS))
        return cls._open_sqlite(Path(where), checkpoint_every)

    @classmethod
    def _open_sqlite(cls, path: Path, checkpoint_every: float) -> Store:
        """A quick_check reads every page once, so a damaged file is refused at start rather
        than failing in the middle of an outage.

        The start's own writes are synced by SQLite (`synchronous = FULL`, the WAL's directory
        entry included); only then does the connection stop syncing and `WalSync` take over."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = "it is not a folder" if path.parent.exists() else error.strerror
            raise StoreError(
                f"{path}: cannot create its folder {path.parent}: {why}; "
                "create it, writable by monitord (systemd: StateDirectory=)"
            ) from None
        if path.is_dir():
            raise StoreError(f"{path} is a folder; state_file names the SQLite file, e.g. {path / 'monitord.db'}")
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError.of(path, error) from None
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            if db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise StoreError(f"{path}: {SQLITE_FAULTS[11]}")
            try:
                migrate(db)
            except StoreError as error:
                raise StoreError(f"{path}: {error}") from None
            with transaction(db):  # a first write: a read-only file or a full disk shows now
                db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # durability rests on syncing the WAL
                raise StoreError(f"{path}: cannot keep a write-ahead log beside it; keep state_file on a local file system")
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute("PRAGMA synchronous = OFF")
            sync = WalSync(path, checkpoint_every)
        except sqlite3.DatabaseError as error:
            db.close()
            raise StoreError.of(path, error) from None
        except BaseException:
            db.close()
            raise
        return cls(_Sqlite(db, path), sync)

    def writer(self) -> StepWriter:
        """The thread that writes the engine's steps, on a connection of its own (made at the
        first call; closed with the store)."""
        if self._writer is None:
            twin = self._steps = Store(self._db.reopen(), self._sync)
            twin._epoch = self._epoch
            self._writer = StepWriter(twin.commit_step, twin.close_connection, self.turn)
        return self._writer

    def reader(self) -> Database:
        """A connection of its own, for long reads on a thread of their own (monitord/history.py):
        a year of incidents read holds neither the loop nor the steps' commits."""
        return self._db.reopen()

    def lead(self, epoch: int) -> None:
        """Commit steps only while the correlator's epoch is `epoch` (the one this process took the
        lead with, monitord/leader.py): each step's transaction reads it FOR SHARE, so a takeover
        (which raises it) waits for a step in flight, and any later step raises NotLeader."""
        if isinstance(self._db, _Sqlite):
            raise StoreError("a correlator leader among several processes needs the state in PostgreSQL")
        self._epoch = epoch
        if self._steps is not None:
            self._steps._epoch = epoch

    def _check_lead(self) -> None:
        """In the step's transaction: NotLeader (rolling it back) once the epoch moved on."""
        if self._epoch is None:
            return
        row = self._db.execute("SELECT epoch FROM correlator_leader FOR SHARE").fetchone()
        if row is None or row[0] != self._epoch:
            raise NotLeader(
                f"the correlator epoch is {row and row[0]}, not {self._epoch} as this leader took it: another process took over"
            )

    def batch_cursor(self) -> int:
        """The last pollers' batch the saved engine state includes (PostgreSQL only)."""
        row = self._db.execute("SELECT seq FROM correlator_cursor").fetchone()
        return int(row[0]) if row else 0

    def close_connection(self) -> None:
        """Close this store's connection only: a `writer()`'s store, whose durability is its origin's."""
        self._db.close()

    def close(self) -> None:
        """Make what is left durable, then close (waits on the disk: at shutdown only). SQLite
        leaves the file fully checkpointed."""
        if self._writer is not None:
            self._writer.close()
        self._sync.close()
        try:
            self._db.close()
        finally:
            self._sync.finish()

    async def durable(self) -> None:
        """Return once every commit made so far is on disk (the loop waits, never blocks)."""
        await self._sync.durable()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A transaction of this store's connection, handed to the sync worker once committed
        (with the epoch its session opened in: monitord/pgsync.py)."""
        with self._db.transaction():
            epoch = self._db.epoch
            yield
        self._sync.committed(epoch)

    # --- the rules engine's step -------------------------------------------------------------

    def commit_step(
        self,
        engine: Rows | None,
        incidents: Iterable[Incident],
        notifications: Iterable[tuple[Notification, float | None]],
        now: float,
        on_dead: Callable[[Notification], None] | None = None,
        through: int | None = None,
    ) -> int:
        """Save one engine step and queue what it decided to say, atomically.

        `through`: the last of the pollers' batches whose samples the engine has taken (a
        `--role correlator`, monitord/feed.py), recorded as the correlator's cursor in the same
        transaction, so that a new leader reads on from exactly what the saved state includes.

        `engine`: the rows of the engine's state the step changed (None: none). `incidents` are upserts (pass what changed); an
        incident row is only ever updated by its own incident (StoreError if
        another one arrives with its number), and each number is recorded as issued. A
        notification whose key is already queued is ignored (only a key conflict: any other
        bad row fails the step). `not_before` (quiet hours) delays the first attempt.
        A notification with an `error` is filed dead at once, the error as its last_error, and
        `on_dead` is called with it after the commit (once: not when its key was already
        there). A newly queued customer notice supersedes those of its incident queued by earlier
        steps and still waiting for the same recipient (see CUSTOMER_ACTIONS): they are filed
        dead, never sent; so is a waiting outage notice of an incident merged in this step when
        the step planned its recipient another outage notice (see _WITHDRAW). Returns
        how many sendable items were newly queued.
        """
        with self._writing():
            self._check_lead()
            if through is not None:
                self._db.execute("UPDATE correlator_cursor SET seq = ? WHERE seq < ?", (through, through))
            if engine is not None:
                self._save_engine(engine, now)
            written = list(incidents)
            for i in written:
                row = (
                    i.tracking,
                    i.kind.value,
                    str(i.root),
                    i.phase.value,
                    i.opened_at,
                    i.updated_at,
                    i.resolved_at,
                    json.dumps(sorted(i.affected)),
                    json.dumps(i.evidence),
                )
                if self._db.execute(_UPSERT_INCIDENT, row).rowcount != 1:
                    raise StoreError(f"tracking number {i.tracking} already belongs to another incident")
                self._issue(i.tracking)
                if joined := i.affected - self._indexed.get(i.tracking, frozenset()):
                    self._db.executemany(
                        _INDEX_LINE, ((line, i.tracking) for line in sorted(joined))
                    )  # in key order: fewer pages
                stage = ENGINE_STAGES[i.phase]
                self._db.execute(_ADD_STAGE, (i.tracking, stage, "engine", "monitord", now, i.tracking, "engine", stage))
            planned = list(notifications)
            queued = self._queue(planned, now)
            self._withdraw_held_outages(written, planned)
            dead = [n for n, nb in planned if n.error is not None and self._db.execute(_QUEUE, _queued(n, nb, now)).rowcount]
        for i in written:  # only once committed: a step rolled back indexed nothing
            if i.phase is Phase.RESOLVED:
                self._indexed.pop(i.tracking, None)
            else:
                self._indexed[i.tracking] = i.affected
        if on_dead is not None:
            for n in dead:
                on_dead(n)
        return queued

    def _queue(self, planned: Sequence[tuple[Notification, float | None]], now: float) -> int:
        """Queue the sendable items whose keys are new, superseding what they make stale; how many
        were new. Those a silence holds (`not_before` SILENCED) are kept apart until released."""
        held = [n for n, nb in planned if nb == SILENCED and n.error is None]
        if held:
            self._db.executemany(
                _HOLD, ((n.key, n.channel, n.recipient, n.action, n.subject, n.body, n.incident, now, n.route) for n in held)
            )
        last_id = self._db.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0]
        sendable = (_queued(n, nb, now) for n, nb in planned if n.error is None and nb != SILENCED)
        queued = self._db.executemany(_QUEUE, sendable)
        if queued:
            self._db.execute(_SUPERSEDE, (last_id, last_id))
            self._db.execute(_OPTED_OUT, (last_id,))
        return queued

    def _queue_with_dead(self, planned: Sequence[tuple[Notification, float | None]], now: float) -> None:
        """`_queue`, and the items whose text could not be built filed dead (never sent)."""
        self._queue(planned, now)
        for n, nb in planned:
            if n.error is not None:
                self._db.execute(_QUEUE, _queued(n, nb, now))

    def _withdraw_held_outages(self, incidents: Sequence[Incident], planned: Sequence[tuple[Notification, float | None]]) -> None:
        """Drop the waiting outage notices of incidents merged in this step to recipients this
        step planned another outage notice (see _WITHDRAW)."""
        told = {(n.channel, n.recipient) for n, _ in planned if n.action == "outage" and n.error is None}
        merged = (i for i in incidents if i.phase is Phase.RESOLVED and i.evidence and i.evidence[-1].startswith("merged into "))
        for ended in merged:
            reason = (
                f"withdrawn before it went out: {ended.tracking} {ended.evidence[-1]}, whose outage notice was queued instead"
            )
            held = self._db.execute(_HELD_OUTAGES, (ended.tracking,)).fetchall()
            self._db.executemany(_WITHDRAW, ((reason, r["id"]) for r in held if (r["channel"], r["recipient"]) in told))

    def _save_engine(self, rows: Rows, now: float) -> None:
        db = self._db
        db.execute(
            "INSERT INTO engine_head VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET head = excluded.head, saved_at = excluded.saved_at",
            (_compact(rows.head), now),
        )
        db.execute("DELETE FROM engine_state")  # an older monitord's document: the rows now stand for it
        for table, key, changed in (("engine_targets", "key", rows.targets), ("engine_incidents", "tracking", rows.incidents)):
            gone: list[tuple[str]] = []
            db.executemany(
                f"INSERT INTO {table} VALUES (?, ?) ON CONFLICT ({key}) DO UPDATE SET record = excluded.record",
                _upserts(changed, gone),
            )
            db.executemany(f"DELETE FROM {table} WHERE {key} = ?", gone)
        db.executemany("DELETE FROM engine_members WHERE tracking = ?", ((t,) for t, r in rows.incidents.items() if r is None))
        for tracking, members in rows.members.items():
            if members.whole:
                db.execute("DELETE FROM engine_members WHERE tracking = ?", (tracking,))
            db.executemany(
                "INSERT INTO engine_members VALUES (?, ?, ?) ON CONFLICT (tracking, key) DO UPDATE SET bits = excluded.bits",
                ((tracking, key, bits) for key, bits in members.changed.items() if bits),
            )
            db.executemany(
                "DELETE FROM engine_members WHERE tracking = ? AND key = ?",
                ((tracking, key) for key, bits in members.changed.items() if not bits),
            )

    def _issue(self, tracking: str) -> None:
        found = TRACKING.fullmatch(tracking)
        if found:
            self._db.execute(_ISSUED, (found["prefix"], int(found["year"]), int(found["seq"])))

    def issued(self, prefix: str) -> dict[int, int]:
        """year -> the highest sequence number issued under `prefix`."""
        rows = self._db.execute("SELECT year, last FROM tracking_numbers WHERE prefix = ?", (prefix,))
        return {r[0]: r[1] for r in rows}

    def reserve_tracking(self, tracking: str) -> None:
        """Numbers up to `tracking` are taken (e.g. known to the helpdesk after the state file was lost)."""
        if not TRACKING.fullmatch(tracking):
            raise ValueError(f"{tracking!r} is not a tracking number like ARZ-2026-000123")
        with self._writing():
            self._issue(tracking)

    def load_engine(self) -> SavedEngine | None:
        """The engine's state as last written, or None when there is none."""
        head = self._db.execute("SELECT head FROM engine_head").fetchone()
        if head is not None:
            targets = (orjson.loads(r[0]) for r in self._db.execute("SELECT record FROM engine_targets ORDER BY key"))
            incidents = [orjson.loads(r[0]) for r in self._db.execute("SELECT record FROM engine_incidents ORDER BY tracking")]
            members: dict[str, list[tuple[str, int]]] = {}
            for tracking, key, bits in self._db.execute("SELECT tracking, key, bits FROM engine_members ORDER BY tracking, key"):
                members.setdefault(tracking, []).append((key, bits))
            return SavedEngine(assemble(orjson.loads(head[0]), targets, incidents, members), rows=True)
        row = self._db.execute("SELECT snapshot FROM engine_state").fetchone()
        return None if row is None else SavedEngine(json.loads(row["snapshot"]), rows=False)

    def incidents(self, open_only: bool = True) -> list[Incident]:
        where = "WHERE phase != 'resolved'" if open_only else ""
        return [_incident(r) for r in self._db.execute(f"SELECT * FROM incidents {where} ORDER BY opened_at")]

    def incident(self, tracking: str) -> Incident | None:
        row = self._db.execute("SELECT * FROM incidents WHERE tracking = ?", (tracking,)).fetchone()
        return None if row is None else _incident(row)

    # --- stages ------------------------------------------------------------------------------

    def set_stage(self, change: StageChange, notices: Sequence[tuple[Notification, float | None]] = (), now: float = 0.0) -> bool:
        """Record `change` unless its source's last stage of the incident is the same, and then
        queue `notices` (the stage's customer notices) in the same transaction; True when recorded.
        A notice whose text could not be built is filed dead."""
        c = change
        with self._writing():
            added = self._db.execute(_ADD_STAGE, (c.tracking, c.stage, c.source, c.actor, c.at, c.tracking, c.source, c.stage))
            if not added.rowcount:
                return False
            self._queue_with_dead(notices, now)
            return True

    def stage_history(self, tracking: str) -> list[StageChange]:
        rows = self._db.execute(
            "SELECT tracking, stage, source, actor, at FROM incident_stages WHERE tracking = ? ORDER BY id", (tracking,)
        )
        return [StageChange(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def helpdesk_stage(self, tracking: str) -> str | None:
        """The stage the helpdesk last set for the incident, or None."""
        row = self._db.execute(_LAST_STAGE, (tracking, "helpdesk")).fetchone()
        return None if row is None else str(row[0])

    def set_subscriber_stage(
        self, change: PartChange, notices: Sequence[tuple[Notification, float | None]] = (), now: float = 0.0
    ) -> bool:
        """Record a follow-up ticket's stage unless it is the last one recorded for that incident and
        line, or the incident never touched the line; then queue `notices` in the same transaction."""
        c = change
        with self._writing():
            added = self._db.execute(
                _ADD_PART, (c.tracking, c.line, c.stage, c.source, c.actor, c.at, c.tracking, c.line, c.stage, c.line, c.tracking)
            )
            if not added.rowcount:
                return False
            self._queue_with_dead(notices, now)
            return True

    def subscriber_stage_history(self, tracking: str, line: str) -> list[PartChange]:
        rows = self._db.execute(
            "SELECT tracking, line, stage, source, actor, at FROM subscriber_stages WHERE tracking = ? AND line = ? ORDER BY id",
            (tracking, line),
        )
        return [PartChange(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def touched(self, tracking: str, line: str) -> bool:
        """Whether the incident ever counted the line among its affected ones."""
        found = self._db.execute("SELECT 1 FROM incident_lines WHERE line = ? AND tracking = ?", (line, tracking))
        return found.fetchone() is not None

    def followups_of(self, lines: Sequence[str]) -> list[tuple[str, str]]:
        """(incident, line) of every follow-up ticket `lines` have, newest incident first (by number)."""
        if not lines:
            return []
        marks = ", ".join("?" * len(lines))
        rows = self._db.execute(
            f"SELECT DISTINCT tracking, line FROM subscriber_stages WHERE line IN ({marks}) ORDER BY tracking DESC, line",
            tuple(lines),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def followup_stage(self, tracking: str, line: str) -> str | None:
        """The stage the helpdesk last gave the line's follow-up ticket in the incident, or None."""
        row = self._db.execute(_LAST_PART, (tracking, line)).fetchone()
        return None if row is None else str(row[0])

    def cursor(self, source: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM helpdesk_cursors WHERE source = ?", (source,)).fetchone()
        return None if row is None else str(row[0])

    def put_cursor(self, source: str, cursor: str) -> None:
        with self._writing():
            self._db.execute(
                "INSERT INTO helpdesk_cursors VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor",
                (source, cursor),
            )

    # --- inbound SMS -------------------------------------------------------------------------

    def record_inbound(
        self,
        message: InboundRecord,
        opted_out: bool | None,
        replies: Sequence[tuple[Notification, float | None]],
        now: float,
        works: tuple[str, bool] | None = None,
        score: tuple[str, int] | None = None,
        region: str = "",
    ) -> bool:
        """Record an inbound SMS once by its MessageSid, with what it changes (the sender's
        opt-out or opt-in, their answer `works` to an incident's question or their `score` of
        its repair, counted in `region`) and the replies it gets, in one transaction; False for
        a replay, which changes nothing. A second answer to a question is kept as a message only."""
        m = message
        with self._writing():
            new = self._db.execute(
                "INSERT INTO sms_inbound VALUES (?, ?, ?, ?) ON CONFLICT (sid) DO NOTHING", (m.sid, m.phone, m.command, m.at)
            )
            if not new.rowcount:
                return False
            if works is not None:
                if not self._db.execute(_ANSWER, (works[0], m.phone, int(works[1]), m.sid, m.at)).rowcount:
                    return True  # answered already (a second reply raced this one): the message is kept, nothing else
                self._db.execute(_TALLY, (region, "works" if works[1] else "not_fixed"))
            if score is not None:
                if not self._db.execute(_SCORE, (score[0], m.phone, score[1], m.sid, m.at)).rowcount:
                    return True
                self._db.execute(_TALLY, (region, str(score[1])))
            if opted_out is not None:
                self._db.execute(_CONSENT, (m.phone, int(opted_out), m.at))
                if opted_out:
                    self._db.execute(_WAITING_FOR, (m.phone,))
            self._queue(replies, now)
            for n, nb in replies:
                if n.error is not None:
                    self._db.execute(_QUEUE, _queued(n, nb, now))
            return True

    def open_question(self, phone: str) -> tuple[str, str] | None:
        """The incident and action ("confirm" or "survey") of the last question sent to `phone`
        that it has not answered, or None. A question tried but not known `sent` counts: Twilio may
        have taken it before a crash, and the customer's answer must not wait for the outbox to
        find that out (its re-attempt waits `settle` seconds and then asks Twilio first)."""
        row = self._db.execute(_OPEN_QUESTION, (phone, phone, phone)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def questions_due(self, after: float, until: float) -> list[tuple[str, str]]:
        """(incident, phone) of the questions due in (after, until], sent or not."""
        rows = self._db.execute(
            "SELECT incident, recipient FROM outbox WHERE action = 'confirm' AND not_before > ? AND not_before <= ? ORDER BY id",
            (after, until),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def answer(self, tracking: str, phone: str) -> bool | None:
        """Whether `phone` said service works after `tracking`, or None: no answer."""
        row = self._db.execute("SELECT works FROM sms_answers WHERE tracking = ? AND phone = ?", (tracking, phone)).fetchone()
        return None if row is None else bool(row[0])

    def score(self, tracking: str, phone: str) -> int | None:
        """The score `phone` gave the repair of `tracking`, or None: no answer."""
        row = self._db.execute("SELECT score FROM survey_scores WHERE tracking = ? AND phone = ?", (tracking, phone)).fetchone()
        return None if row is None else int(row[0])

    def answer_tally(self) -> dict[tuple[str, str], int]:
        """(region, answer) -> answers ever taken: "works", "not_fixed" and the scores "1" to "5"."""
        return {(str(r[0]), str(r[1])): int(r[2]) for r in self._db.execute("SELECT region, answer, count FROM answer_tally")}

    def sms_opt_outs(self) -> frozenset[str]:
        """The phones whose last word was an opt-out."""
        return frozenset(r[0] for r in self._db.execute("SELECT phone FROM sms_consent WHERE opted_out = 1"))

    def inbound(self, sid: str) -> InboundRecord | None:
        row = self._db.execute("SELECT sid, phone, command, at FROM sms_inbound WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else InboundRecord(row[0], row[1], row[2], row[3])

    # --- outbox ------------------------------------------------------------------------------

    def item(self, item_id: int) -> OutboxItem | None:
        row = self._db.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else _item(row)

    def items(self, channel: str | None = None, status: OutboxStatus | None = None) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE coalesce(channel = ?, TRUE) AND coalesce(status = ?, TRUE) ORDER BY id",
            (channel, status),
        )
        return [_item(r) for r in rows]

    def due(self, channel: str, now: float, limit: int, ordered: bool = False) -> list[OutboxItem]:
        """Pending items whose next attempt (and quiet hours) have come, oldest first.

        `ordered`: one incident's items go out in the order they were queued, so an item is not
        due while an older one of its incident is pending or sending.
        """
        rows = self._db.execute(
            f"""SELECT * FROM outbox WHERE channel = ? AND status = 'pending' AND next_attempt_at <= ?
                {_NOT_BLOCKED if ordered else ""} ORDER BY next_attempt_at, id LIMIT ?""",
            (channel, now, limit),
        )
        return [_item(r) for r in rows]

    def next_due(self, channel: str, ordered: bool = False) -> float | None:
        """When `due` will next return something, unless an item is queued or finishes first."""
        row = self._db.execute(
            f"""SELECT min(next_attempt_at) FROM outbox WHERE channel = ? AND status = 'pending'
                {_NOT_BLOCKED if ordered else ""}""",
            (channel,),
        ).fetchone()
        return row[0]

    def claim(self, item_id: int, now: float) -> bool:
        """Mark a pending item `sending` (committed before any byte goes out)."""
        return item_id in self.claim_wave([item_id], now)

    def mark_sent(self, item_id: int, peer_ref: str, now: float) -> None:
        self.mark_sent_wave([(item_id, peer_ref, now)])

    def claim_wave(self, item_ids: Sequence[int], now: float, answered: Sequence[tuple[int, str, float]] = ()) -> set[int]:
        """Mark pending items `sending` in one transaction (one fsync a wave); returns those claimed.

        `answered`: `mark_sent_wave` for the earlier wave's answers, in the same transaction."""
        claimed = set()
        with self._writing():
            self._mark_sent(answered)
            for item_id in item_ids:
                cursor = self._db.execute(
                    """UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                       first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ? AND status = 'pending'""",
                    (now, item_id),
                )
                if cursor.rowcount == 1:
                    claimed.add(item_id)
        return claimed

    def mark_sent_wave(self, sent: Sequence[tuple[int, str, float]]) -> None:
        """Mark (item id, peer reference, when) of several items `sent` in one transaction."""
        with self._writing():
            self._mark_sent(sent)

    def _mark_sent(self, sent: Sequence[tuple[int, str, float]]) -> None:
        if self._worker is not None:  # only while still this worker's: one whose lease expired marks nothing
            self._db.executemany(
                "UPDATE outbox SET status = 'sent', peer_ref = ?, sent_at = ?, last_error = NULL WHERE id = ? AND claimed_by = ?",
                [(ref, at, item_id, self._worker) for item_id, ref, at in sent],
            )
            return
        self._db.executemany(
            "UPDATE outbox SET status = 'sent', peer_ref = ?, sent_at = ?, last_error = NULL WHERE id = ?",
            [(ref, at, item_id) for item_id, ref, at in sent],
        )

    def adopt(self, item_id: int, candidates: Sequence[str], now: float) -> str | None:
        """Mark the item sent with the first candidate peer reference no other item holds yet.

        Used when the peer already has messages that match an item whose earlier attempt's
        answer was lost: each such message is credited to one item only.
        """
        channel = self._db.execute("SELECT channel FROM outbox WHERE id = ?", (item_id,)).fetchone()[0]
        for ref in candidates:
            taken = self._db.execute("SELECT 1 FROM outbox WHERE channel = ? AND peer_ref = ?", (channel, ref)).fetchone()
            if taken is None:
                self.mark_sent(item_id, ref, now)
                return ref
        return None

    def mark_retry(self, item_id: int, error: str, next_at: float) -> None:
        with self._writing():
            if self._worker is not None:
                self._db.execute(
                    """UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, claimed_by = NULL
                       WHERE id = ? AND claimed_by = ?""",
                    (error, next_at, item_id, self._worker),
                )
                return
            self._db.execute(
                "UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error, next_at, item_id),
            )

    def retry_by(self, channel: str, at: float) -> int:
        """The channel works again: its items waiting for a later retry are due at `at`.
        Quiet hours (`not_before`) stay. Returns how many items moved."""
        with self._writing():
            cursor = self._db.execute(
                """UPDATE outbox SET next_attempt_at = greatest(?, coalesce(not_before, ?))
                   WHERE channel = ? AND status = 'pending' AND attempts > 0 AND next_attempt_at > ?""",
                (at, at, channel, at),
            )
        return cursor.rowcount

    def mark_dead(self, item_id: int, reason: str) -> None:
        with self._writing():
            if self._worker is not None:
                self._db.execute(
                    "UPDATE outbox SET status = 'dead', last_error = ? WHERE id = ? AND claimed_by = ?",
                    (reason, item_id, self._worker),
                )
                return
            self._db.execute("UPDATE outbox SET status = 'dead', last_error = ? WHERE id = ?", (reason, item_id))

    def requeue_sending(self, channel: str, next_at: float) -> int:
        """After a restart: items left `sending` may or may not have reached the peer.

        They go back to pending no earlier than `next_at`; their `first_attempt_at` tells the
        worker to ask the peer before sending again.
        """
        with self._writing():
            cursor = self._db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = greatest(next_attempt_at, ?), "
                "last_error = 'interrupted: outcome unknown' WHERE channel = ? AND status = 'sending'",
                (next_at, channel),
            )
        return cursor.rowcount

    # --- several outbox workers on one PostgreSQL database ---------------------------------------
    #
    # A worker's lease and the channels' buckets are timed by the server's clock
    # (`clock_timestamp()`): the one clock every worker reads alike, so that neither a worker's
    # skewed clock nor its stall can stretch a lease or refill a bucket early.

    @property
    def worker(self) -> str | None:
        """This outbox worker's id while it holds a lease, else None."""
        return self._worker

    def enlist(self, term: float) -> str:
        """Become an outbox worker holding a lease of `term` seconds, renewed by each claim and
        `reclaim`; returns its id, new at each call (a worker that lost its lease is not it again).
        PostgreSQL only: SQLite's outbox is one process."""
        if isinstance(self._db, _Sqlite):
            raise StoreError("several outbox workers need the state in PostgreSQL (state: postgresql://...)")
        worker = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        started, fences = time.monotonic(), self._sync.fences
        with self._writing():
            self._db.execute(f"INSERT INTO outbox_workers VALUES (?, {_SERVER_NOW} + ?)", (worker, term))
        self._worker, self._term, self._lease_until, self._lease_fences = worker, term, started + term, fences
        return worker

    def lease_holds(self) -> bool:
        """Whether this process may still send under its lease: True but for a worker whose last
        renewal is `term` seconds old by this machine's monotonic clock (read before the renewal
        was asked: never later than the server's expiry), or was followed by a fence (the
        server may have restarted without it: monitord/pgsync.py). The session broke meanwhile
        or not, the lease is the server's row: the next renewal, on whatever session, finds it
        still held or raises LeaseLost."""
        return self._worker is None or (time.monotonic() < self._lease_until and self._sync.fences == self._lease_fences)

    def _renew(self) -> tuple[float, int]:
        """In the caller's transaction: extend the lease, or LeaseLost (rolling the transaction
        back). Returns what `_lease_until` and `_lease_fences` become once it commits."""
        asked, fences = time.monotonic(), self._sync.fences
        renewed = self._db.execute(
            f"UPDATE outbox_workers SET expires_at = {_SERVER_NOW} + ? WHERE id = ? AND expires_at >= {_SERVER_NOW}",
            (self._term, self._worker),
        ).rowcount
        if renewed != 1:
            self._lease_until = 0.0
            raise LeaseLost(f"outbox worker {self._worker}: its lease expired; its sending items go to another worker")
        return asked + self._term, fences

    def reclaim(self, next_at: float) -> int:
        """Renew this worker's lease, and put back the `sending` items of workers whose lease
        expired (dead, or stalled past it), and those claimed before there were leases: pending
        no earlier than `next_at`, to be reconciled with the peer before any re-send, as after a
        crash (`requeue_sending`). Their leases go in the same transaction, so a late renewal
        fails and their marks match nothing (`claimed_by` no longer names them). Returns how many."""
        with self._writing():
            until = self._renew()
            gone = [r[0] for r in self._db.execute(f"DELETE FROM outbox_workers WHERE expires_at < {_SERVER_NOW} RETURNING id")]
            cursor = self._db.execute(
                """UPDATE outbox SET status = 'pending', claimed_by = NULL, next_attempt_at = greatest(next_attempt_at, ?),
                   last_error = 'interrupted: outcome unknown'
                   WHERE status = 'sending' AND (claimed_by = ANY(?::text[]) OR claimed_by IS NULL)""",
                (next_at, gone),
            )
        self._lease_until, self._lease_fences = until
        return cursor.rowcount

    def leave(self, next_at: float) -> None:
        """A worker that stops: the items it leaves `sending` (sends cancelled, or marks kept
        back) go back for reconciliation no earlier than `next_at`, and its lease goes. A worker
        that died leaves them to `reclaim` once its lease expires."""
        if self._worker is None:
            return
        with self._writing():
            self._db.execute(
                """UPDATE outbox SET status = 'pending', claimed_by = NULL, next_attempt_at = greatest(next_attempt_at, ?),
                   last_error = 'interrupted: outcome unknown' WHERE status = 'sending' AND claimed_by = ?""",
                (next_at, self._worker),
            )
            self._db.execute("DELETE FROM outbox_workers WHERE id = ?", (self._worker,))
        self._worker = None

    def claim_due(
        self,
        channel: str,
        now: float,
        want: int,
        rate: float,
        burst: float,
        ordered: bool = False,
        answered: Sequence[tuple[int, str, float]] = (),
    ) -> tuple[list[OutboxItem], float]:
        """`due` and `claim_wave` for one of several workers, in one transaction that also renews
        its lease (LeaseLost if it had expired: nothing is claimed) and writes `answered`.

        Due rows are locked with FOR UPDATE SKIP LOCKED, so two workers never wait on or claim
        the same item. The channel's shared bucket is taken in the same transaction (`rate` per
        second, up to `burst`): its row lock makes the workers take turns, and its clock is the
        server's, so all of them together start at most `burst + rate * T` sends in any T
        seconds. Returns the items claimed, as they were before the claim, oldest first, and,
        when the bucket gave fewer than were due, the seconds until it holds a token again."""
        claimed: list[Row] = []
        wait = 0.0
        with self._writing():
            until = self._renew()
            self._mark_sent(answered)
            rows = self._db.execute(
                f"""SELECT * FROM outbox WHERE channel = ? AND status = 'pending' AND next_attempt_at <= ?
                    {_NOT_BLOCKED if ordered else ""} ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED""",
                (channel, now, want),
            ).fetchall()
            if rows:
                tokens, at, server_now = self._db.execute(_TAKE_BUCKET, (channel,)).fetchone()
                given = grant(tokens, at, server_now, len(rows), rate, burst)
                self._db.execute(
                    "UPDATE channel_rates SET tokens = ?, at = greatest(at, ?) WHERE channel = ?",
                    (given.tokens, server_now, channel),
                )
                claimed, wait = rows[: given.granted], given.wait
                self._db.execute(
                    """UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                       first_attempt_at = coalesce(first_attempt_at, ?), claimed_by = ? WHERE id = ANY(?::bigint[])""",
                    (now, self._worker, [r["id"] for r in claimed]),
                )
        self._lease_until, self._lease_fences = until
        return [_item(r) for r in claimed], wait

    def depth(self, channel: str | None = None) -> int:
        """Items still to deliver (pending or sending); reads the backlog index only."""
        return sum(depth for c, (depth, _) in self.backlog().items() if channel in (None, c))

    def oldest_age(self, now: float, channel: str | None = None) -> float:
        """Seconds the oldest undelivered item has waited since it could be sent (0 when none).

        Counted from the end of its quiet hours, so notices held back overnight are no backlog.
        """
        ready = [since for c, (_, since) in self.backlog().items() if channel in (None, c)]
        return max(0.0, now - min(ready)) if ready else 0.0

    def backlog(self) -> dict[str, tuple[int, float]]:
        """channel -> (undelivered items, when the oldest of them could first be sent).

        Costs one pass over the undelivered items in the `outbox_backlog` index, however many
        delivered and dead ones the history holds.
        """
        rows = self._db.execute(
            """SELECT channel, count(*), min(greatest(created_at, coalesce(not_before, created_at)))
               FROM outbox INDEXED BY outbox_backlog WHERE status IN ('pending', 'sending') GROUP BY channel"""
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def prune(self, sent_before: float, dead_before: float, resolved_before: float, batch: int = 500) -> int:
        """Delete at most `batch` finished rows older than the cut-offs, in one short transaction.

        Sent items by when they were sent, dead ones by when they were queued, resolved
        incidents (and silences) by when they were resolved (ended). An item of an incident that is open, or resolved
        after its cut-off, stays: its key is what keeps the incident's notices from going out
        twice. Pending and sending items are never touched. Returns how many rows went; call
        again until it returns less than `batch`.
        """
        kept = """NOT EXISTS (SELECT 1 FROM incidents WHERE incidents.tracking = outbox.incident
                  AND (incidents.phase != 'resolved' OR incidents.resolved_at >= ?))"""
        with self._writing():
            removed = 0
            for where, cutoff in (
                ("status = 'sent' AND sent_at < ?", sent_before),
                ("status = 'dead' AND created_at < ?", dead_before),
            ):
                removed += self._db.execute(
                    f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {where} AND {kept} LIMIT ?)",
                    (cutoff, cutoff, batch - removed),
                ).rowcount
            gone = [
                r[0]
                for r in self._db.execute(
                    "SELECT tracking FROM incidents WHERE phase = 'resolved' AND resolved_at < ? LIMIT ?",
                    (resolved_before, batch - removed),
                )
            ]
            removed += self._db.execute(
                "DELETE FROM sms_inbound WHERE sid IN (SELECT sid FROM sms_inbound WHERE at < ? LIMIT ?)",
                (sent_before, batch - removed),
            ).rowcount
            self._db.executemany("DELETE FROM incident_stages WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM subscriber_stages WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM incident_lines WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM incident_events WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM sms_answers WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM survey_scores WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM helpdesk_owners WHERE tracking = ?", ((t,) for t in gone))
            self._db.executemany("DELETE FROM incidents WHERE tracking = ?", ((t,) for t in gone))
            removed += len(gone)
            self._db.execute('DELETE FROM silences WHERE "end" < ?', (resolved_before,))  # a few rows: not counted
        return removed

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of items by (channel, status)."""
        rows = self._db.execute("SELECT channel, status, count(*) FROM outbox GROUP BY channel, status")
        return {(r[0], r[1]): r[2] for r in rows}

    # --- the NOC's actions on incidents (monitord/incident_actions.py) -----------------------------

    def add_incident_event(
        self, event: IncidentEvent, planned: Sequence[tuple[Notification, float | None]] = (), now: float = 0.0
    ) -> None:
        """Record `event` and queue `planned` (its ticket item, notices/plan.py `workflow_ticket`)
        in the same transaction."""
        with self._writing():
            self._db.execute(_ADD_EVENT, (event.tracking, event.action, event.actor, event.at, event.text, event.source))
            self._queue_with_dead(planned, now)

    def incident_events(self, tracking: str) -> list[IncidentEvent]:
        """Oldest first."""
        rows = self._db.execute("SELECT * FROM incident_events WHERE tracking = ? ORDER BY id", (tracking,))
        return [IncidentEvent(r["tracking"], r["action"], r["actor"], r["at"], r["text"], r["source"]) for r in rows]

    def helpdesk_ticket(self, tracking: str) -> tuple[str, str] | None:
        """The owner and status the incident's ticket had when the helpdesk sync last read it."""
        row = self._db.execute("SELECT owner, status FROM helpdesk_owners WHERE tracking = ?", (tracking,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def put_helpdesk_ticket(self, tracking: str, owner: str, status: str, events: Sequence[IncidentEvent] = ()) -> None:
        """Keep the owner and status the ticket has now, and record `events` (changes made in the
        helpdesk) in the same transaction."""
        with self._writing():
            self._db.execute(_PUT_HELPDESK_TICKET, (tracking, owner, status))
            for e in events:
                self._db.execute(_ADD_EVENT, (e.tracking, e.action, e.actor, e.at, e.text, e.source))

    def ticket_in_flight(self, tracking: str) -> bool:
        """Whether a ticket item of the incident waits in the outbox: monitord's own change, not yet in RT."""
        found = self._db.execute(
            "SELECT 1 FROM outbox WHERE channel = 'ticket' AND incident = ? AND status IN ('pending', 'sending') LIMIT 1",
            (tracking,),
        ).fetchone()
        return found is not None

    # --- the web console's audit log (monitord/console.py) ------------------------------------

    def add_audit(self, entry: AuditEntry) -> None:
        with self._writing():
            self._db.execute(
                "INSERT INTO console_audit (actor, role, at, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.actor, entry.role, entry.at, entry.action, entry.target, entry.detail),
            )

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The latest `limit` entries, latest first."""
        rows = self._db.execute("SELECT * FROM console_audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry(r["actor"], r["role"], r["at"], r["action"], r["target"], r["detail"]) for r in rows]

    # --- silences (notices/silences.py) -------------------------------------------------------

    def put_silence(self, silence: Silence) -> None:
        nodes = json.dumps([str(n) for n in silence.nodes])
        matchers = json.dumps([list(m) for m in silence.matchers])
        row = (silence.id, nodes, matchers, silence.start, silence.end, silence.author, silence.comment, silence.created_at)
        with self._writing():
            self._db.execute(_PUT_SILENCE, row)

    def silences(self, ended_after: float | None = None) -> list[Silence]:
        """The silences that end after `ended_after` (None: all of them), by start."""
        if ended_after is None:
            return [_silence(r) for r in self._db.execute("SELECT * FROM silences ORDER BY start, id")]
        rows = self._db.execute('SELECT * FROM silences WHERE "end" > ? ORDER BY start, id', (ended_after,))
        return [_silence(r) for r in rows]

    def expire_silence(self, silence_id: str, by: str, now: float) -> bool:
        """End a silence now (a planned one never starts); False if there is no such silence still to end."""
        with self._writing():
            cursor = self._db.execute(
                'UPDATE silences SET start = CASE WHEN start > ? THEN ? ELSE start END, "end" = ?, expired_by = ? '
                'WHERE id = ? AND "end" > ?',
                (now, now, now, by, silence_id, now),
            )
        return cursor.rowcount == 1

    def held_items(self) -> list[Notification]:
        """The items silences hold, oldest first."""
        rows = self._db.execute("SELECT * FROM silenced_items ORDER BY id")
        return [
            Notification(
                r["key"], r["channel"], r["recipient"], r["action"], r["subject"], r["body"], r["incident"], route=r["route"]
            )
            for r in rows
        ]

    def was_queued(self, key: str) -> bool:
        """Whether an item with `key` went to the outbox (and was not dropped as dead)."""
        return self._db.execute("SELECT 1 FROM outbox WHERE key = ? AND status != 'dead'", (key,)).fetchone() is not None

    def release_held(self, send: Sequence[Notification], drop: Sequence[Notification], now: float) -> int:
        """Queue `send` (in order) and forget `drop`, both held by silences until now; how many were queued."""
        with self._writing():
            queued = self._queue([(n, None) for n in send], now)
            self._db.executemany("DELETE FROM silenced_items WHERE key = ?", ((n.key,) for n in (*send, *drop)))
        return queued

    # --- maintenance windows -----------------------------------------------------------------

    def put_maintenance(self, window: MaintenanceWindow, source: Source) -> None:
        """Insert or replace a window (re-enabling it if it had been cancelled)."""
        with self._writing():
            self._db.execute(
                _PUT_WINDOW,
                (
                    window.id,
                    json.dumps([str(n) for n in window.scope]),
                    window.start,
                    window.end,
                    window.reason,
                    window.grace,
                    source,
                ),
            )

    def replace_config_maintenance(self, windows: Iterable[MaintenanceWindow]) -> None:
        """Make the config-sourced windows exactly `windows` (on start and reload); API ones stay."""
        windows = list(windows)
        with self._writing():
            self._db.execute("DELETE FROM maintenance WHERE source = 'config'")
            self._db.executemany(
                _PUT_WINDOW,
                ((w.id, json.dumps([str(n) for n in w.scope]), w.start, w.end, w.reason, w.grace, "config") for w in windows),
            )

    def maintenance(self, include_cancelled: bool = False) -> list[StoredWindow]:
        where = "" if include_cancelled else "WHERE NOT cancelled"
        return [_window(r) for r in self._db.execute(f"SELECT * FROM maintenance {where} ORDER BY start, id")]

    def cancel_maintenance(self, window_id: str) -> bool:
        with self._writing():
            cursor = self._db.execute("UPDATE maintenance SET cancelled = TRUE WHERE id = ? AND NOT cancelled", (window_id,))
        return cursor.rowcount == 1
