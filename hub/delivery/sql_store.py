"""The outbox in SQLite or PostgreSQL: :class:`SqlOutboxStore` (docs/delivery.md §4, §6, §9).

Every method is one short transaction and never spans a network call (§9.2, §11.7):
synchronous SQLAlchemy Core, run in a thread so the worker's event loop never blocks.

Claiming (§4, §6): only the head of each (endpoint, ordering_key) is claimable
(:func:`hub.outbox.queue.claimable_condition`). PostgreSQL locks candidates with
``FOR UPDATE SKIP LOCKED``; SQLite runs one atomic ``UPDATE … WHERE seq IN (SELECT … LIMIT n)
RETURNING`` under ``BEGIN IMMEDIATE``.

Wake-ups (:meth:`SqlOutboxStore.listen`): PostgreSQL ``LISTEN hub_outbox`` on a dedicated
connection (``enqueue`` notifies in its transaction), and, in-process, commits of outbox rows
through the same :class:`~hub.db.session.Database` (``hub serve`` on SQLite has no NOTIFY).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, event, insert, literal_column, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db.availability import OutageReporter
from hub.db.base import utcnow
from hub.db.models import DeliveryAttempt, EndpointHealth, OutboxMessage
from hub.db.session import PG_CONNECT_TIMEOUT_SECONDS, SQLITE_BEGIN_OPTION, Database
from hub.delivery.store import ClaimedMessage, Completion
from hub.outbox import transitions
from hub.outbox.enqueue import NOTIFY_CHANNEL
from hub.outbox.queue import claimable_condition
from hub.outbox.transitions import AttemptOutcome, AttemptRecord, Changes, Increment

log = logging.getLogger("hub.delivery")

_T = TypeVar("_T")
#: Rows per ``IN (…)`` list.
_CHUNK = 500
#: Seconds to wait before reconnecting the LISTEN connection after an error.
LISTEN_RECONNECT_SECONDS = 2.0


def _values(changes: Changes) -> dict[str, Any]:
    """A transition's column table as ``UPDATE … SET`` values (increments stay in SQL)."""
    return {
        column: getattr(OutboxMessage, column) + value.by if isinstance(value, Increment) else value
        for column, value in changes.items()
    }


def _attempt_row(record: AttemptRecord) -> dict[str, Any]:
    return {**asdict(record), "outcome": record.outcome.value}


_LEASED = transitions.LEASED_STATE.value
_CLAIMABLE = transitions.CLAIMABLE_STATE.value


class SqlOutboxStore:
    """:class:`~hub.delivery.store.OutboxStore` on the hub's database."""

    def __init__(self, db: Database, *, outage: OutageReporter | None = None) -> None:
        self.db = db
        #: Where the LISTEN loop reports its failures (the worker's shared reporter).
        self.outage = outage or OutageReporter()
        self._sqlite = db.engine.dialect.name == "sqlite"
        self._reader = db.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})

    # --- the protocol (async: each call runs its transaction in a thread) --------------------

    async def claim(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        return await asyncio.to_thread(self.claim_sync, wants, lease_token, lease_seconds)

    async def heartbeat(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        return await asyncio.to_thread(self.heartbeat_sync, leases, lease_seconds)

    async def release(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        return await asyncio.to_thread(self.release_sync, list(leases), not_before=not_before)

    async def complete(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        return await asyncio.to_thread(self.complete_sync, completions, worker_id)

    async def rescue_expired(
        self, max_attempts: Mapping[str, int], rescuer_id: str, *, limit: int = 500
    ) -> list[int]:
        return await asyncio.to_thread(self.rescue_expired_sync, max_attempts, rescuer_id, limit=limit)

    async def make_due(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        return await asyncio.to_thread(self.make_due_sync, endpoint, since=since, limit=limit)

    async def publish_health(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        await asyncio.to_thread(
            self.publish_health_sync, endpoint, state, consecutive_failures, success=success, error=error
        )

    @asynccontextmanager
    async def listen(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        local = _LocalWake(self.db, wake)
        local.install()
        listener = (
            asyncio.create_task(self._listen_loop(wake), name="listen") if self.db.is_postgres else None
        )
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            local.remove()

    async def _listen_loop(self, wake: Callable[[], None]) -> None:
        import psycopg

        conninfo = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.outage.succeeded("listen")
                    wake()
                    async for _notify in conn.notifies():
                        wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # reported once per change of state (OutageReporter)
                # Polling covers the gap; the reporter logs the outage once and paces reconnects.
                await self.outage.pause(max(LISTEN_RECONNECT_SECONDS, self.outage.failed("listen", exc)))

    # --- blocking implementations (also handy for synchronous tools and tests) ---------------

    def _any(self, condition: Any) -> bool:
        """SQLite: a read (no write lock) telling whether a write transaction is worth taking.

        An idle worker then polls without queueing on SQLite's single writer lock.
        """
        with self._reader.connect() as conn:
            found = conn.execute(select(OutboxMessage.seq).where(condition).limit(1)).first()
            conn.rollback()
        return found is not None

    def claim_sync(
        self, wants: Mapping[str, int], lease_token: str, lease_seconds: float
    ) -> list[ClaimedMessage]:
        wants = {endpoint: n for endpoint, n in wants.items() if n > 0}
        if not wants:
            return []
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        claimed: list[ClaimedMessage] = []
        if self._sqlite and not self._any(
            and_(OutboxMessage.endpoint.in_(sorted(wants)), claimable_condition(OutboxMessage, now))
        ):
            return claimed
        with self.db.engine.begin() as conn:
            for endpoint, limit in sorted(wants.items()):
                claimed.extend(self._claim_endpoint(conn, endpoint, limit, lease_token, now, expires))
        claimed.sort(key=lambda message: message.seq)
        return claimed

    def _claim_endpoint(
        self, conn: Connection, endpoint: str, limit: int, token: str, now: datetime, expires: datetime
    ) -> list[ClaimedMessage]:
        candidates = (
            select(OutboxMessage.seq)
            .where(OutboxMessage.endpoint == endpoint, claimable_condition(OutboxMessage, now))
            .order_by(OutboxMessage.seq)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.seq.in_(candidates.scalar_subquery()))
            .values(_values(transitions.claim(lease_owner=token, lease_expires_at=expires, now=now)))
            .returning(
                OutboxMessage.seq,
                OutboxMessage.message_id,
                OutboxMessage.endpoint,
                OutboxMessage.kind,
                OutboxMessage.ordering_key,
                OutboxMessage.dossier_code,
                OutboxMessage.payload,
                OutboxMessage.attempts,
                OutboxMessage.manual_retry,
            )
        )
        return [ClaimedMessage.from_row(row, token) for row in conn.execute(statement)]

    def _leased(self, pairs: Sequence[tuple[int, str]]) -> Any:
        """The rows of ``(seq, token)`` pairs still held under that token."""
        return and_(
            OutboxMessage.state == _LEASED,
            tuple_(OutboxMessage.seq, OutboxMessage.lease_owner).in_(pairs),
        )

    def heartbeat_sync(self, leases: Mapping[str, Sequence[int]], lease_seconds: float) -> set[int]:
        pairs = [(seq, token) for token, seqs in leases.items() for seq in seqs]
        if not pairs:
            return set()
        now = utcnow()
        changes = transitions.extend_lease(lease_expires_at=now + timedelta(seconds=lease_seconds))
        return set(self._change_leased(pairs, changes))

    def release_sync(self, leases: Iterable[tuple[int, str]], *, not_before: datetime | None = None) -> int:
        pairs = list(leases)
        if not pairs:
            return 0
        changes = transitions.release(not_before=not_before, now=utcnow())
        return len(self._change_leased(pairs, changes))

    def _change_leased(self, pairs: Sequence[tuple[int, str]], changes: transitions.Changes) -> list[int]:
        """Apply ``changes`` to the rows still held under their ``(seq, token)``; their seqs."""
        changed: list[int] = []
        with self.db.engine.begin() as conn:
            for chunk in _chunks(pairs, _CHUNK):
                result = conn.execute(
                    update(OutboxMessage)
                    .where(self._leased(chunk))
                    .values(_values(changes))
                    .returning(OutboxMessage.seq)
                )
                changed.extend(result.scalars())
        return changed

    def complete_sync(self, completions: Sequence[Completion], worker_id: str) -> set[int]:
        if not completions:
            return set()
        now = utcnow()
        # (seq, token) of the completions that held their lease: only those are recorded. A
        # batch may hold two results for one message (a stalled claim, rescued, then claimed
        # again by the same worker); those go one by one so each is matched to its own lease.
        finalised: set[tuple[int, str]] = set()
        repeated = {seq for seq, n in Counter(c.seq for c in completions).items() if n > 1}
        batched = [c for c in completions if c.outcome is AttemptOutcome.DELIVERED and c.seq not in repeated]
        in_batches = {id(c) for c in batched}
        one_by_one = [c for c in completions if id(c) not in in_batches]
        with self.db.engine.begin() as conn:
            for chunk in _chunks(batched, _CHUNK):
                tokens = {c.seq: c.lease_token for c in chunk}
                result = conn.execute(
                    update(OutboxMessage)
                    .where(self._leased(list(tokens.items())))
                    .values(_values(transitions.deliver(now=now)))
                    .returning(OutboxMessage.seq)
                )
                finalised.update((seq, tokens[seq]) for seq in result.scalars())
            for completion in one_by_one:
                changes = transitions.finish(
                    completion.outcome,
                    now=now,
                    next_attempt_at=completion.next_attempt_at,
                    error=completion.error,
                    error_class=completion.error_class,
                )
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.seq == completion.seq,
                        OutboxMessage.lease_owner == completion.lease_token,
                        OutboxMessage.state == _LEASED,
                    )
                    .values(_values(changes))
                )
                if result.rowcount:
                    finalised.add((completion.seq, completion.lease_token))
            rows = [
                _attempt_row(c.attempt(worker_id)) for c in completions if (c.seq, c.lease_token) in finalised
            ]
            if rows:
                conn.execute(insert(DeliveryAttempt), rows)
        return {seq for seq, _token in finalised}

    def rescue_expired_sync(
        self, max_attempts: Mapping[str, int], rescuer_id: str, *, limit: int = 500
    ) -> list[int]:
        """The update is guarded by the same (token, state, expiry) it read, so it cannot race a
        completion that landed meanwhile."""
        now = utcnow()
        rescued: list[int] = []
        expired = and_(
            OutboxMessage.state == literal_column(f"'{_LEASED}'"), OutboxMessage.lease_expires_at < now
        )
        if self._sqlite and not self._any(expired):
            return rescued
        with self.db.engine.begin() as conn:
            query = (
                select(
                    OutboxMessage.seq,
                    OutboxMessage.endpoint,
                    OutboxMessage.lease_owner,
                    OutboxMessage.attempts,
                    OutboxMessage.updated_at,
                    OutboxMessage.manual_retry,
                )
                .where(expired)
                .order_by(OutboxMessage.seq)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            attempts: list[dict[str, Any]] = []
            for row in conn.execute(query).all():
                dead = transitions.out_of_attempts(row.attempts, max_attempts.get(row.endpoint, 1 << 30))
                error = transitions.lease_lost_error(row.lease_owner, row.attempts)
                result = conn.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.seq == row.seq,
                        OutboxMessage.lease_owner == row.lease_owner,
                        OutboxMessage.state == _LEASED,
                        OutboxMessage.lease_expires_at < now,
                    )
                    .values(_values(transitions.rescue(dead=dead, error=error, now=now)))
                )
                if not result.rowcount:
                    continue
                rescued.append(row.seq)
                attempts.append(
                    _attempt_row(transitions.lease_lost_attempt(row, rescuer_id=rescuer_id, now=now))
                )
            if attempts:
                conn.execute(insert(DeliveryAttempt), attempts)
        return rescued

    def make_due_sync(self, endpoint: str, *, since: datetime, limit: int | None = None) -> int:
        now = utcnow()
        held = and_(
            OutboxMessage.endpoint == endpoint,
            OutboxMessage.state == _CLAIMABLE,
            OutboxMessage.next_attempt_at > now,
            OutboxMessage.updated_at >= since,
        )
        if limit is not None:
            soonest = (
                select(OutboxMessage.seq)
                .where(held)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.seq)
                .limit(limit)
            )
            held = OutboxMessage.seq.in_(soonest.scalar_subquery())
        with self.db.engine.begin() as conn:
            result = conn.execute(
                update(OutboxMessage).where(held).values(_values(transitions.make_due(now=now)))
            )
            return int(result.rowcount)

    def publish_health_sync(
        self, endpoint: str, state: str, consecutive_failures: int, *, success: bool, error: str | None
    ) -> None:
        """Upsert ``endpoint_health`` (what ``hub dlq health`` and the API show)."""
        now = utcnow()
        values: dict[str, Any] = {
            "endpoint": endpoint,
            "state": state,
            "consecutive_failures": consecutive_failures,
            "updated_at": now,
        }
        if state == "open":
            values["opened_at"] = now
        if success:
            values["last_success_at"] = now
        elif error is not None:
            values["last_failure_at"] = now
            values["last_error"] = error
        with self.db.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(EndpointHealth).values(**values)
            update_values = {key: value for key, value in values.items() if key != "endpoint"}
            conn.execute(statement.on_conflict_do_update(index_elements=["endpoint"], set_=update_values))


class _LocalWake:
    """Wake the worker when a session of the same :class:`Database` commits outbox rows.

    In ``hub serve`` the API and the worker share one process: on SQLite (no NOTIFY) this
    avoids waiting for the poll. Only ORM sessions are watched (``enqueue``, DLQ actions);
    the store itself writes through Core, so the worker never wakes itself.
    """

    _FLAG = "hub_outbox_touched"

    def __init__(self, db: Database, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._targets = (db.sessions, db.write_sessions)

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(isinstance(obj, OutboxMessage) for obj in (*session.new, *session.dirty)):
            session.info[self._FLAG] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self._FLAG, False):
            self._wake()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._FLAG, None)

    def _hooks(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        )

    def install(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.listen(target, name, hook)

    def remove(self) -> None:
        for target in self._targets:
            for name, hook in self._hooks():
                event.remove(target, name, hook)


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
