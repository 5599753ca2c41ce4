"""The LGSP simulator's HTTP front: routes, body limits, and the shared faults around each operation.

Endpoints: ``POST /lgsp/soap11``, ``POST /lgsp/soap12``, ``GET /lgsp?wsdl``; ``POST /token``,
``POST /{context}/{version}/Document/{SyncDocument|UpdateDocumentTraces|GetDocument}``; the
harness's control API (``/_control/faults``, ``/_control/records``, ``/_control/reset`` …) plus
``GET /_control/stats``. Faults are taken after a request passed every check (an invalid
request is refused, not faulted), selected by operation (``SyncDocument`` …) and message id.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web

from hub.simulators.faults import Fault
from hub.simulators.harness import Simulator, json_response
from hub.simulators.lgsp.contract import LgspContract, RestValidation
from hub.simulators.lgsp.faults import LgspFault, status_answer
from hub.simulators.lgsp.rest import OAuthClient, RestEndpoint, RestReject
from hub.simulators.lgsp.soap import Answer, SoapCredentials, SoapEndpoint, SoapFault, SoapVersion
from hub.simulators.lgsp.state import LgspState, SimulatorRecord
from schemas.errors import HubError


def _response(answer: Answer) -> web.Response:
    status, headers, body = answer
    headers = dict(headers)
    close = headers.pop("Connection", None) == "close"
    response = web.Response(status=status, headers=headers, body=body)
    if close:
        response.force_close()
    return response


class LgspSimulator(Simulator):
    """Run with ``start()``/``stop()`` or as a context manager; ``url`` is the base address."""

    protocol_faults: ClassVar[frozenset[str]] = frozenset(kind.value for kind in LgspFault)
    name: ClassVar[str] = "lgsp-simulator"

    def __init__(
        self,
        *,
        wsdl_path: Path | None = None,
        contract: LgspContract | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "hub",
        password: str = "hub-secret",  # noqa: S107  # simulator's own test credential
        client_id: str = "hub-client",
        client_secret: str = "hub-client-secret",  # noqa: S107  # simulator's own test credential
        token_lifetime_seconds: int = 3600,
        context: str = "motcua",
        version: str = "1.0.0",
        max_body_bytes: int = 2 * 1024 * 1024,
        require_digest: bool = False,
        created_tolerance_seconds: float = 300,
        rest_validation: RestValidation = "xsd",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host=host, port=port, max_body_bytes=max_body_bytes, clock=clock)
        if contract is None or (wsdl_path is not None and contract.wsdl_path != wsdl_path.resolve()):
            contract = LgspContract(wsdl_path)
        self.contract = contract
        self.username, self.password = username, password
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime_seconds = token_lifetime_seconds
        self.api_prefix = f"/{context.strip('/')}/{version.strip('/')}/"
        self.state = LgspState()
        self.soap = SoapEndpoint(
            contract,
            self.state,
            SoapCredentials(username, password, require_digest, timedelta(seconds=created_tolerance_seconds)),
            max_body_bytes,
        )
        self.rest = RestEndpoint(
            contract,
            self.state,
            OAuthClient(client_id, client_secret, token_lifetime_seconds),
            rest_validation,
            clock=clock,
        )

    # --- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def soap11_url(self) -> str:
        return f"{self.url}/lgsp/soap11"

    @property
    def soap12_url(self) -> str:
        return f"{self.url}/lgsp/soap12"

    @property
    def wsdl_path(self) -> Path:
        return self.contract.wsdl_path

    # --- inspection -------------------------------------------------------------------------

    @property
    def records(self) -> list[SimulatorRecord]:
        with self.state.lock:
            return list(self.state.records)

    @property
    def rejections(self) -> list[str]:
        with self.state.lock:
            return list(self.state.rejections)

    @property
    def token_count(self) -> int:
        return self.state.token_count

    @property
    def unauthorized_count(self) -> int:
        return self.state.unauthorized_count

    def expire_tokens(self) -> None:
        """Revoke every issued token (server-side expiry the client cannot predict)."""
        self.rest.expire_tokens()

    def reset(self) -> None:
        self.state.clear()
        super().reset()

    def stats(self) -> dict[str, Any]:
        with self.state.lock:
            counts = {
                "records": len(self.state.records),
                "rejections": len(self.state.rejections),
                "tokens": self.state.token_count,
                "unauthorized": self.state.unauthorized_count,
            }
        return {**counts, "pending_faults": len(self.faults.pending())}

    def records_json(self) -> dict[str, Any]:
        return {
            "records": [
                {
                    "flavour": r.flavour,
                    "operation": r.operation,
                    "message_id": r.message_id,
                    "username": r.username,
                    "received_at": r.received_at.isoformat(),
                }
                for r in self.records
            ],
            "rejections": self.rejections,
        }

    def status_answer(self, fault: Fault, operation: str) -> web.Response:
        return status_answer(fault)

    # --- routes -----------------------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_get("/_control/stats", self._control_stats)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/lgsp", self._wsdl)
        app.router.add_post("/lgsp/soap11", self._limited(self._soap11))
        app.router.add_post("/lgsp/soap12", self._limited(self._soap12))
        app.router.add_post("/token", self._limited(self._token))
        app.router.add_post(self.api_prefix + "Document/{operation}", self._limited(self._rest))
        app.router.add_route("*", "/{path:.*}", self._not_found)

    async def _control_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats())

    async def _not_found(self, request: web.Request) -> web.Response:
        return _response(
            (404, {"Content-Type": "application/json; charset=utf-8"}, b'{"error": "not found"}')
        )

    async def _wsdl(self, request: web.Request) -> web.Response:
        if request.query_string.lower() != "wsdl":
            return await self._not_found(request)
        return web.Response(
            body=self.contract.wsdl_path.read_bytes(), content_type="text/xml", charset="utf-8"
        )

    def _limited(
        self, handler: Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Content-Length required (411) and within ``max_body_bytes`` (413), then read the body."""

        async def run(request: web.Request) -> web.StreamResponse:
            length = request.content_length
            if length is None:
                plain = {"Content-Type": "text/plain", "Connection": "close"}
                return _response((411, plain, b"Content-Length required"))
            if length > self.max_body_bytes:
                self.state.reject(f"{request.path}: body of {length} bytes over the limit")
                plain = {"Content-Type": "text/plain", "Connection": "close"}
                return _response((413, plain, b"Payload Too Large"))
            return await handler(request, await request.read())

        return run

    async def _soap11(self, request: web.Request, body: bytes) -> web.StreamResponse:
        return await self._soap("1.1", request, body)

    async def _soap12(self, request: web.Request, body: bytes) -> web.StreamResponse:
        return await self._soap("1.2", request, body)

    async def _soap(self, version: SoapVersion, request: web.Request, body: bytes) -> web.StreamResponse:
        try:
            call = self.soap.check(version, request.headers, body)
        except (SoapFault, HubError) as exc:  # refused: a SOAP fault, or 413 over the size limit
            return _response(self.soap.refuse(version, exc))
        fault = self.faults.take(call.operation, call.message_id)
        early = await self.transport_fault(request, fault, call.operation)
        if early is not None:
            return early
        return self.finish(request, _response(self.soap.answer(call, fault)), fault)

    async def _token(self, request: web.Request, body: bytes) -> web.StreamResponse:
        return _response(self.rest.token(request.headers, body))

    async def _rest(self, request: web.Request, body: bytes) -> web.StreamResponse:
        operation = request.match_info["operation"]
        try:
            call = self.rest.check(operation, request.headers, body)
        except RestReject as exc:
            return _response(self.rest.refuse(operation, exc))
        fault = self.faults.take(operation, call.message_id or None)
        early = await self.transport_fault(request, fault, operation)
        if early is not None:
            return early
        return self.finish(request, _response(self.rest.answer(call, fault)), fault)


def describe(sim: LgspSimulator) -> dict[str, Any]:
    """Addresses of a running simulator (printed by the CLI)."""
    return {
        "soap11": sim.soap11_url,
        "soap12": sim.soap12_url,
        "wsdl": f"{sim.url}/lgsp?wsdl",
        "token": f"{sim.url}/token",
        "rest_base": sim.url + sim.api_prefix.rstrip("/"),
        "username": sim.username,
        "client_id": sim.client_id,
    }
