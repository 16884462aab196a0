"""What a fleet keeps in NATS: the job stream and its consumer, the registry of who runs
which call (a key per call with a TTL its owner refreshes) and the journal of each call
(accepted or not, tool calls in flight, a session's history).

Ownership is exclusive: a worker creates the registry key of a call before it runs it
(``create`` fails while another worker's key lives), refreshes it with compare-and-set
(a worker that stalled past the TTL and lost the key finds out at once), and deletes it
when the call ends. The journal is written only by the owner, with compare-and-set too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from nats.js import JetStreamContext, api
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from .._runtime.journal import EntryState, JournalEntry
from .._session import ToolCall
from ._names import FleetNames

__all__ = [
    "CallRecord",
    "Claim",
    "FleetHandles",
    "FleetSettings",
    "NatsJournal",
    "OwnershipLost",
    "nats_error",
    "open_fleet",
    "owner_of",
]

logger = logging.getLogger("rtagent.worker")


class OwnershipLost(Exception):
    """Another worker owns the call now (this one stalled past the registry's TTL)."""


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The timings of a fleet; they decide how fast a dead worker's calls move on.

    Attributes:
        ack_wait: seconds without a progress acknowledgement after which a job is
            delivered again (to another worker); the owner acknowledges progress three
            times as often.
        claim_ttl: seconds a worker's claim on a call lives without a refresh; the owner
            refreshes three times as often. Shorter than ``ack_wait``, so that when a dead
            worker's job is delivered again its claim has expired already.
        max_deliver: deliveries of one job before the fleet gives up on it.
        duplicate_window: seconds within which a job submitted again (the same id) is
            recognised as a duplicate and queued once.
        journal_ttl: seconds a call's journal outlives its last write (a crash leaves it).
    """

    ack_wait: float = 10.0
    claim_ttl: float = 8.0
    max_deliver: int = 20
    duplicate_window: float = 600.0
    journal_ttl: float = 24 * 3600.0


@dataclass(slots=True)
class FleetHandles:
    """A fleet's JetStream context, names, settings and buckets."""

    js: JetStreamContext
    names: FleetNames
    settings: FleetSettings
    registry: KeyValue
    journal: KeyValue


async def nats_error(exc: Exception) -> None:
    """nats-py's error callback: one line per error (it would log a traceback each time)."""
    logger.warning("NATS: %s", exc or type(exc).__name__)


async def open_fleet(
    js: JetStreamContext, names: FleetNames, settings: FleetSettings
) -> FleetHandles:
    """The stream, consumer and buckets of a fleet, created when missing (an existing
    one is used as it is: its settings are the ones it was created with)."""
    try:
        await js.stream_info(names.stream)
    except NotFoundError:
        await js.add_stream(api.StreamConfig(
            name=names.stream,
            subjects=[names.jobs],
            retention=api.RetentionPolicy.WORK_QUEUE,
            duplicate_window=settings.duplicate_window,
        ))
    try:
        await js.consumer_info(names.stream, names.consumer)
    except NotFoundError:
        await js.add_consumer(names.stream, api.ConsumerConfig(
            durable_name=names.consumer,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=settings.ack_wait,
            max_deliver=settings.max_deliver,
            max_ack_pending=-1,
        ))
    registry = await _bucket(js, names.registry, settings.claim_ttl)
    journal = await _bucket(js, names.journal, settings.journal_ttl)
    return FleetHandles(js, names, settings, registry, journal)


async def _bucket(js: JetStreamContext, name: str, ttl: float) -> KeyValue:
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=name, ttl=ttl, history=1)


async def _get(kv: KeyValue, key: str) -> tuple[dict[str, Any], int] | None:
    """A key's JSON value and revision; None when it does not exist (or was deleted)."""
    try:
        entry = await kv.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    try:
        value = json.loads(entry.value or b"{}")
    except ValueError:
        logger.warning("ignoring an unreadable value under %s", key)
        value = {}
    return (value if isinstance(value, dict) else {}), entry.revision or 0


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Claim:
    """This worker's claim on one call in the registry."""

    def __init__(self, kv: KeyValue, call_id: str, worker: str, revision: int) -> None:
        self._kv = kv
        self.call_id = call_id
        self.worker = worker
        self._revision = revision
        self._value = _encode({"worker": worker, "since": time.time()})

    @classmethod
    async def take(cls, kv: KeyValue, call_id: str, worker: str) -> Claim | str:
        """The claim, or the id of the live worker that holds it."""
        claim = cls(kv, call_id, worker, 0)
        try:
            claim._revision = await kv.create(call_id, claim._value)
            return claim
        except KeyWrongLastSequenceError:
            pass
        held = await _get(kv, call_id)
        if held is None:  # expired in between: try once more
            try:
                claim._revision = await kv.create(call_id, claim._value)
                return claim
            except KeyWrongLastSequenceError:
                held = await _get(kv, call_id)
        owner = str(held[0].get("worker", "?")) if held else "?"
        if held is not None and owner == worker:
            claim._revision = held[1]  # ours from an earlier delivery to this worker
            return claim
        return owner

    async def refresh(self) -> None:
        """Keep the claim alive. Raises OwnershipLost if another worker took it; a claim
        that merely expired (NATS was away for a while), or whose last refresh was cut
        short after it landed (the revision moved on), is taken again."""
        try:
            self._revision = await self._kv.update(self.call_id, self._value, last=self._revision)
            return
        except KeyWrongLastSequenceError:
            pass
        again = await Claim.take(self._kv, self.call_id, self.worker)
        if isinstance(again, str):
            raise OwnershipLost(f"call {self.call_id} is owned by worker {again} now")
        self._revision = again._revision

    async def release(self) -> None:
        with suppress(APIError):  # someone else's now (the revision moved on): leave it
            await self._kv.delete(self.call_id, last=self._revision)


async def owner_of(kv: KeyValue, call_id: str) -> str | None:
    held = await _get(kv, call_id)
    return str(held[0].get("worker")) if held is not None else None


@dataclass(slots=True)
class CallRecord:
    """A call's record in the journal bucket, written only by its owner.

    Attributes:
        accepted: the call was accepted (a worker taking it over must not accept again).
        calls: tool calls in flight, by tool ``call_id`` (see :class:`NatsJournal`).
        history: a WebSocket session's conversation, to continue it elsewhere.
    """

    kv: KeyValue
    key: str
    revision: int = 0
    accepted: bool = False
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    @classmethod
    async def load(cls, kv: KeyValue, key: str) -> CallRecord:
        record = cls(kv, key)
        held = await _get(kv, key)
        if held is not None:
            value, record.revision = held
            record.accepted = bool(value.get("accepted"))
            calls = value.get("calls")
            record.calls = calls if isinstance(calls, dict) else {}
            history = value.get("history")
            record.history = history if isinstance(history, list) else []
        return record

    async def save(self) -> None:
        """Write the record. Raises OwnershipLost if another worker wrote it meanwhile."""
        async with self._lock:
            value = _encode({"accepted": self.accepted, "calls": self.calls, "history": self.history})
            try:
                if self.revision:
                    self.revision = await self.kv.update(self.key, value, last=self.revision)
                else:
                    self.revision = await self.kv.create(self.key, value)
            except KeyWrongLastSequenceError:
                raise OwnershipLost(f"the journal of {self.key} was written by another worker") from None

    async def delete(self) -> None:
        async with self._lock:
            with suppress(APIError):  # written by another worker since: theirs to delete
                await self.kv.delete(self.key, last=self.revision or None)


def _call_to_wire(call: ToolCall) -> dict[str, Any]:
    return {
        "call_id": call.call_id, "name": call.name, "arguments": call.arguments,
        "item_id": call.item_id, "response_id": call.response_id,
        "interim_posted": call.interim_posted,
    }


def _call_from_wire(raw: dict[str, Any]) -> ToolCall:
    return ToolCall(
        str(raw["call_id"]), str(raw["name"]), str(raw.get("arguments", "")),
        raw.get("item_id"), raw.get("response_id"),
        interim_posted=bool(raw.get("interim_posted")),
    )


class NatsJournal:
    """A call's tool journal in its :class:`CallRecord` (see :mod:`rtagent._runtime.journal`)."""

    def __init__(self, record: CallRecord) -> None:
        self._record = record
        self._left = dict(record.calls)

    async def recover(self) -> Sequence[JournalEntry]:
        entries: list[JournalEntry] = []
        for raw in self._left.values():
            try:
                state: EntryState = raw["state"]
                entries.append(JournalEntry(_call_from_wire(raw["call"]), state, raw.get("output")))
            except (KeyError, TypeError):
                logger.warning("ignoring an unreadable journal entry of %s: %r", self._record.key, raw)
        self._left = {}
        return entries

    async def started(self, call: ToolCall) -> None:
        await self._write(call.call_id, {"state": "started", "call": _call_to_wire(call)})

    async def finished(self, call: ToolCall, output: str, *, interim: bool) -> None:
        if interim:
            wire = _call_to_wire(call) | {"interim_posted": True}
            await self._write(call.call_id, {"state": "background", "call": wire})
        else:
            await self._write(
                call.call_id, {"state": "finished", "call": _call_to_wire(call), "output": output}
            )

    async def delivered(self, call_id: str) -> None:
        if self._record.calls.pop(call_id, None) is not None:
            await self._record.save()

    async def _write(self, call_id: str, entry: dict[str, Any]) -> None:
        self._record.calls[call_id] = entry
        await self._record.save()
