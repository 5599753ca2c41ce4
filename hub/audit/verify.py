"""``hub audit verify``: walk the audit hash chain and report the first broken link.

Rows are read in id order (appends are serialised, so id order is chain order). A chained row
must link to the previous chained row's hash (``prev_hash``) and hash to its own ``hash``; an
unchained row must be an intake event (:data:`hub.audit.log.UNCHAINED_PREFIX`); the last link
must be the one ``audit_chain_head`` holds, so a deleted tail shows too. An attacker who can
rewrite every row and the head can forge a consistent chain: keep copies of the head's hash
elsewhere (docs/security.md, "Audit log") to detect that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from hub.audit.chain import GENESIS, HASHED_FIELDS, link_hash
from hub.audit.log import HEAD_ID, UNCHAINED_PREFIX
from hub.db.models import AuditChainHead, AuditEntry
from hub.db.session import Database

#: Rows read per query.
PAGE = 2000


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of :func:`verify_chain`: ``broken_at`` (``None``: intact) and why."""

    checked: int
    last_hash: str
    broken_at: int | None = None
    reason: str = ""
    #: The last row whose link checked out (``None``: none did).
    last_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason


def verify_chain(db: Database, *, resume: ChainReport | None = None) -> ChainReport:
    """Check every link; the first broken one is reported (nothing after it is trusted).

    ``resume``: an intact report of an earlier walk; only the rows after its last one are
    walked, provided that row is still there and still hashes to the same (else everything is). Rows
    before it are trusted as that walk found them: :class:`ChainMonitor` bounds how long."""
    expected, checked, last_id, after = GENESIS, 0, None, 0
    columns = [getattr(AuditEntry, name) for name in ("id", *HASHED_FIELDS, "prev_hash", "hash")]
    with db.sessions() as session:
        if resume is not None and resume.ok and resume.last_id is not None:
            kept = session.execute(select(*columns).where(AuditEntry.id == resume.last_id)).one_or_none()
            intact = (
                kept is not None
                and kept.hash == resume.last_hash
                and kept.prev_hash is not None
                and link_hash(kept.prev_hash, kept._asdict()) == kept.hash
            )
            if intact:
                expected, checked, last_id, after = (
                    resume.last_hash,
                    resume.checked,
                    resume.last_id,
                    resume.last_id,
                )
        while True:
            rows = session.execute(
                select(*columns).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(PAGE)
            ).all()
            for row in rows:
                after = row.id
                if row.hash is None:
                    if row.action.startswith(UNCHAINED_PREFIX):
                        continue
                    return ChainReport(
                        checked, expected, row.id, "unchained row (inserted around the chain)", last_id
                    )
                if row.prev_hash != expected:
                    reason = (
                        "does not link to the previous row (a row before it was deleted, added or changed)"
                    )
                    return ChainReport(checked, expected, row.id, reason, last_id)
                if link_hash(row.prev_hash, row._asdict()) != row.hash:
                    return ChainReport(
                        checked, expected, row.id, "contents changed after it was written", last_id
                    )
                expected, last_id, checked = row.hash, row.id, checked + 1
            if len(rows) < PAGE:
                break
        head = session.execute(
            select(AuditChainHead.last_id, AuditChainHead.last_hash, AuditChainHead.length).where(
                AuditChainHead.id == HEAD_ID
            )
        ).one_or_none()
    if head is None:
        return ChainReport(checked, expected, None, "the chain head row is missing", last_id)
    if (head.last_hash, head.length) != (expected, checked):
        return ChainReport(
            checked,
            expected,
            head.last_id,
            f"the chain ends at row {last_id} ({checked} rows) but its head names row {head.last_id} "
            f"({head.length} rows): rows at the end were deleted or the head was changed",
            last_id,
        )
    return ChainReport(checked, expected, last_id=last_id)


class ChainMonitor:
    """The chain's status for a page shown often: the whole chain is walked at most every
    ``full_every`` seconds; in between, each call walks only the rows added since the last
    intact walk (and checks that its last row is unchanged). A broken chain is walked in full
    on every call. Thread-safe; one walk at a time."""

    def __init__(self, *, full_every: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.full_every = full_every
        self._clock = clock
        self._lock = threading.Lock()
        self._report: ChainReport | None = None
        self._full_at: float | None = None
        #: When the whole chain was last walked (wall clock), for the page.
        self.full_walk_at: datetime | None = None

    def status(self, db: Database) -> ChainReport:
        with self._lock:
            now = self._clock()
            stale = self._full_at is None or now - self._full_at >= self.full_every
            resume = None if stale or self._report is None or not self._report.ok else self._report
            report = verify_chain(db, resume=resume)
            if resume is None:
                self._full_at, self.full_walk_at = now, datetime.now(UTC)
            self._report = report
            return report
