"""A real hub API on loopback, started through the runtime (:mod:`hub.runtime`) as ``hub serve``
starts it, for API and lookup tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from hub import runtime
from hub.api.app import CORE_ROUTE_MODULES
from hub.auth.keys import ApiKeyService
from hub.config import Settings, load_settings
from hub.db.models import ApiRole, AuditEntry
from hub.db.session import Database
from schemas.dossier import Contact, Owner
from tests.sample_dossier import CODE, dossier_body

BOOTSTRAP = "bootstrap-secret-for-tests-0123456789"
#: One key per role of :class:`ApiRole` (a new role gets its key without editing this file).
ROLES = tuple(role.value for role in ApiRole)
#: Agencies the test source key may write dossiers of (a source key writes only its agencies).
SOURCE_AGENCIES = ("000.00.18.H42", "000.00.00.H42")


@dataclass
class LiveHub:
    base_url: str
    settings: Settings
    db: Database
    tokens: dict[str, str] = field(default_factory=dict)
    app: Any = None

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)

    def audit_trail(self, target: str) -> list[tuple[str, str]]:
        """``(action, actor)`` of every audit entry about ``target``, oldest first."""
        with self.db.sessions() as session:
            rows = session.execute(
                select(AuditEntry.action, AuditEntry.actor)
                .where(AuditEntry.target == target)
                .order_by(AuditEntry.id)
            ).all()
        return [(action, actor) for action, actor in rows]


def hub_settings(database_url: str, data_dir: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "api": {
            "host": "127.0.0.1",
            "port": port,
            "public_base_url": f"http://127.0.0.1:{port}",
            "max_body_bytes": 64 * 1024,
        },
        "endpoints": {
            "dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/dvcqg"},
            "lgsp": {"kind": "webhook", "url": "http://127.0.0.1:9/lgsp"},
        },
        "routing": [{"kinds": ["dossier.sync", "dossier.progress"], "endpoints": ["dvcqg", "lgsp"]}],
    }
    values["api"].update(overrides.pop("api", {}))
    values.update(overrides)
    return load_settings(**values)


def bind_loopback() -> socket.socket:
    return runtime.listen("127.0.0.1", 0)


@contextmanager
def live_hub(
    database_url: str,
    data_dir: Path,
    route_modules: tuple[str, ...] = CORE_ROUTE_MODULES,
    roles: tuple[str, ...] = ROLES,
    *,
    worker: bool = False,
    span_exporter: Any = None,
    **overrides: Any,
) -> Iterator[LiveHub]:
    """The hub's API (no worker unless ``worker``) with its own routes (other parts' routes are
    tested by their owners), one API key per role of ``roles`` (named ``test-<role>``);
    ``span_exporter``: see :func:`runtime.start`."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    settings = hub_settings(database_url, data_dir, port, **overrides)
    with runtime.run_in_thread(
        settings,
        api=True,
        worker=worker,
        sock=sock,
        span_exporter=span_exporter,
        bootstrap_token=BOOTSTRAP,
        route_modules=route_modules,
        access_log=False,
    ) as running:
        assert running.base_url is not None
        hub = LiveHub(base_url=running.base_url, settings=settings, db=running.db, app=running.app)
        keys = ApiKeyService(running.db)
        for role in roles:
            scope = SOURCE_AGENCIES if role == "source" else ()
            hub.tokens[role] = keys.create(f"test-{role}", role, actor="tests", agency_codes=scope).token
        yield hub


def dossier_json(code: str = CODE, **extra: Any) -> dict[str, Any]:
    """The sample dossier (:mod:`tests.sample_dossier`) as the API's JSON with the live-hub tests'
    procedure name, owner, contact and summary; ``extra`` replaces or adds fields unchecked (the
    hostile tests send invalid ones), as does ``code``."""
    body = dossier_body(
        procedure_name="Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm",
        owner=Owner(name="Nguyễn Văn An", id_number="001099012345"),
        contact=Contact(phone="0912345678"),
        summary="Đề nghị cấp giấy chứng nhận",
    )
    return {**body, "code": code, **extra}


def status_json(status: int, at: datetime, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "at": at.isoformat(), "handler": "Trần Thị Bình"}
    body.update(extra)
    return body


def free_port() -> int:
    """A currently free loopback port (for subprocesses that must be told their port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
