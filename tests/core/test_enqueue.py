"""Writing outbound messages (:func:`hub.outbox.enqueue.write_messages`): queue order, columns."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from hub.db.models import OutboxMessage
from hub.db.session import Database
from hub.outbox.enqueue import new_messages, write_messages


def test_a_batch_of_messages_is_queued_in_list_order_with_its_columns(db: Database) -> None:
    """Hundreds of rows in one statement (on PostgreSQL one array per column): ``seq`` follows
    the list, and every column comes back as written."""
    messages = []
    for n in range(150):
        payload = {"dossier": {"code": f"K{n}", "owner": "Nguyễn Văn An"}, "revision": n + 1, "none": None}
        for endpoint in ("dvcqg", "lgsp"):
            messages += new_messages([endpoint], kind="dossier.sync", ordering_key=f"K{n}", payload=payload)
    messages[0]["correlation_id"] = "req-1"
    with db.transaction() as session:
        written = write_messages(session, messages)
    assert [w.message_id for w in written] == [m["message_id"] for m in messages]
    assert [w.endpoint for w in written] == [m["endpoint"] for m in messages]
    assert written == sorted(written, key=lambda w: w.seq)
    with db.sessions() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    assert [row.message_id for row in rows] == [m["message_id"] for m in messages]
    first = rows[0]
    assert (first.correlation_id, first.kind, first.ordering_key, first.dossier_code) == (
        "req-1",
        "dossier.sync",
        "K0",
        None,
    )
    assert first.payload == messages[0]["payload"]
    assert (first.state, first.attempts, first.manual_retry) == ("pending", 0, False)
    assert first.next_attempt_at == first.created_at == messages[0]["created_at"]
    assert rows[1].correlation_id is None


def test_a_naive_time_is_refused(db: Database) -> None:
    messages = new_messages(["dvcqg"], kind="dossier.sync", ordering_key="K", payload={})
    messages[0]["next_attempt_at"] = datetime(2030, 1, 1)  # the naive time refused
    with (
        pytest.raises((StatementError, ValueError), match="naive datetime refused"),
        db.transaction() as session,
    ):
        write_messages(session, messages)
