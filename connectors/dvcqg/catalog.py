"""Reference data of the DVCQG ("dịch vụ chia sẻ", docs/portal.md §3.2) with a TTL cache.

``LayThuTuc`` (one procedure), ``LayDanhSachTTHC`` (procedure list), ``LayDanhMucCoQuan``
(agencies) and ``LayDanhMucLinhVuc`` (fields). Results are our pydantic models. The mapping of a
department's local procedure code to the national ``MaTTHC`` (§5.3) first consults the
configured table (OpenCPS ``ServiceInfoMapping``, Thanh Hóa ``ketnoi.json``) and otherwise takes
the national part of the code (``1.003901.H42`` → ``1.003901``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from connectors.dvcqg.client import DvcqgClient
from schemas.codes import national_procedure_code, validate_procedure_code
from schemas.errors import ConfigurationError, InvalidInputError

SERVICE_PROCEDURE = "LayThuTuc"
SERVICE_PROCEDURES = "LayDanhSachTTHC"
SERVICE_AGENCIES = "LayDanhMucCoQuan"
SERVICE_FIELDS = "LayDanhMucLinhVuc"

T = TypeVar("T")


class CodeName(BaseModel):
    code: str
    name: str


class ProcedureInfo(BaseModel):
    """``LayThuTuc`` ``result[0]`` (keys ``TENTTHC``, ``LINHVUCTHUCHIEN``, ``COQUANTHUCHIEN``…)."""

    code: str
    name: str
    fields: list[CodeName] = Field(default_factory=list)
    agencies: list[CodeName] = Field(default_factory=list)
    results: list[CodeName] = Field(default_factory=list)
    requirements: str = ""

    @property
    def main_field(self) -> CodeName | None:
        return self.fields[0] if self.fields else None


def _text(row: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


def _pairs(rows: Any, code_key: str, name_key: str) -> list[CodeName]:
    if not isinstance(rows, list):
        return []
    return [
        CodeName(code=_text(r, code_key), name=_text(r, name_key))
        for r in rows
        if isinstance(r, dict) and _text(r, code_key)
    ]


def parse_procedure(code: str, row: dict[str, Any]) -> ProcedureInfo:
    return ProcedureInfo(
        code=_text(row, "MATTHC", "MaTTHC") or code,
        name=_text(row, "TENTTHC", "TenTTHC"),
        fields=_pairs(row.get("LINHVUCTHUCHIEN"), "MALINHVUC", "TENLINHVUC"),
        agencies=_pairs(row.get("COQUANTHUCHIEN"), "MADONVI", "TENDONVI"),
        results=_pairs(row.get("KETQUATHUCHIEN"), "MAKETQUA", "TENKETQUA"),
        requirements=_text(row, "YEUCAU"),
    )


class _TtlCache:
    """Per-key TTL cache; concurrent misses of one key share a single fetch."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        hit = self._values.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]  # type: ignore[no-any-return]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit[1]  # type: ignore[no-any-return]
            value = await fetch()
            self._values[key] = (self._clock() + self._ttl, value)
            return value

    def clear(self) -> None:
        self._values.clear()


def _checked_map(table: dict[str, str]) -> dict[str, str]:
    try:
        return {validate_procedure_code(k): validate_procedure_code(v) for k, v in table.items()}
    except InvalidInputError as exc:
        raise ConfigurationError(
            f"options.procedure_map: {exc.message}", message_vi=f"options.procedure_map: {exc.message_vi}"
        ) from None


class ProcedureCatalog:
    """Cached national reference data plus the local → national procedure-code mapping."""

    def __init__(
        self,
        client: DvcqgClient,
        *,
        procedure_map: dict[str, str] | None = None,
        ttl_seconds: float = 6 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._map = _checked_map(procedure_map or {})
        self._cache = _TtlCache(ttl_seconds, clock)
        #: Portal calls made (a cache test counts them).
        self.fetch_count = 0

    def national_code(self, local_code: str) -> str:
        """``MaTTHC`` to send for a department's procedure code (§5.3, §5.4)."""
        code = validate_procedure_code(local_code)
        return self._map.get(code) or national_procedure_code(code)

    async def _rows(self, service: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.fetch_count += 1
        return await self._client.query(service, params)

    async def procedure(self, national_code: str) -> ProcedureInfo | None:
        """``LayThuTuc`` for one national code; ``None`` when the portal does not know it."""

        async def fetch() -> ProcedureInfo | None:
            rows = await self._rows(SERVICE_PROCEDURE, {"maTTHC": national_code})
            return parse_procedure(national_code, rows[0]) if rows else None

        return await self._cache.get(f"{SERVICE_PROCEDURE}:{national_code}", fetch)

    async def procedures(self) -> list[CodeName]:
        async def fetch() -> list[CodeName]:
            return _pairs(await self._rows(SERVICE_PROCEDURES), "MATTHC", "TENTTHC")

        return await self._cache.get(SERVICE_PROCEDURES, fetch)

    async def agencies(self) -> list[CodeName]:
        async def fetch() -> list[CodeName]:
            return _pairs(await self._rows(SERVICE_AGENCIES), "MADONVI", "TENDONVI")

        return await self._cache.get(SERVICE_AGENCIES, fetch)

    async def fields(self) -> list[CodeName]:
        async def fetch() -> list[CodeName]:
            return _pairs(await self._rows(SERVICE_FIELDS), "MALINHVUC", "TENLINHVUC")

        return await self._cache.get(SERVICE_FIELDS, fetch)

    def invalidate(self) -> None:
        self._cache.clear()
