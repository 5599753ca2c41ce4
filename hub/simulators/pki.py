"""The test PKI's HTTP services on the shared harness: OCSP, CRLs, certificates and the TSA.

The answers come from :class:`signing.testpki.PkiResponder`; this module serves them on loopback
(``GET /crl/{root,issuing,untrusted}.crl``, ``GET /certs/{root,issuing}.crt``,
``GET /ocsp/{base64}``, ``POST /ocsp``, ``POST /tsa``) with the shared fault model, operations
``ocsp``, ``crl``, ``certs`` and ``tsa``: TSA latency (the Government TSA answers in 2 s – 2 min,
docs/signing.md §6.3), HTTP 503 outages of the revocation services (the "warn"/"refuse" policy of
Circular 15/2025 Annex II) or of the TSA, "fail the next N" for client retries.
:class:`RunningPki` keeps the knobs the signing tests read best (``set_tsa_delay`` …), each one
a fault in that model.
"""

from __future__ import annotations

import base64
import contextlib
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from aiohttp import web

from hub.simulators.faults import Fault, FaultKind
from hub.simulators.harness import Handler, Simulator
from signing.testpki import PkiResponder, TestPki, build_test_pki

__all__ = ["PkiSimulator", "RunningPki", "existing_test_pki", "serve_test_pki"]

#: Largest request body the services read (OCSP and TSA requests are a few hundred bytes).
MAX_REQUEST_BYTES = 1_000_000


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, body=text.encode(), content_type="text/plain")


class PkiSimulator(Simulator):
    """The PKI services; answers 503 until :meth:`load` gives it the PKI built for its address."""

    name: ClassVar[str] = "test-pki-http"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port, max_body_bytes=MAX_REQUEST_BYTES)
        self.responder: PkiResponder | None = None

    def load(self, pki: TestPki) -> None:
        self.responder = PkiResponder(pki)

    def records_json(self) -> dict[str, int]:
        return self.faults.calls()

    def status_answer(self, fault: Fault, operation: str) -> web.Response:
        text = "TSA down" if operation == "tsa" else "revocation service down"
        return _plain(fault.status, text)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/crl/{name}.crl", self.faulted("crl", self._crl))
        app.router.add_get("/certs/{name}.crt", self.faulted("certs", self._cert))
        app.router.add_get("/ocsp/{request:.+}", self.faulted("ocsp", self._ocsp_get))
        app.router.add_post("/ocsp", self._limited(self.faulted("ocsp", self._ocsp_post)))
        app.router.add_post("/tsa", self._limited(self.faulted("tsa", self._tsa)))

    def _limited(self, handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            if (request.content_length or 0) > MAX_REQUEST_BYTES:
                return _plain(413, "too large")
            return await handler(request)

        return run

    def _loaded(self) -> PkiResponder:
        if self.responder is None:
            raise web.HTTPServiceUnavailable(text="PKI not built yet")
        return self.responder

    async def _crl(self, request: web.Request) -> web.Response:
        der = self._loaded().crl(request.match_info["name"])
        if der is None:
            return _plain(404, "no such CRL")
        return web.Response(body=der, content_type="application/pkix-crl")

    async def _cert(self, request: web.Request) -> web.Response:
        der = self._loaded().cert_der(request.match_info["name"])
        if der is None:
            return _plain(404, "no such certificate")
        return web.Response(body=der, content_type="application/pkix-cert")

    async def _ocsp_get(self, request: web.Request) -> web.Response:
        raw = base64.b64decode(urllib.parse.unquote(request.match_info["request"]))
        return web.Response(body=self._loaded().ocsp_response(raw), content_type="application/ocsp-response")

    async def _ocsp_post(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=self._loaded().ocsp_response(body), content_type="application/ocsp-response")

    async def _tsa(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            answer = self._loaded().tsa_response(body)
        except (ValueError, KeyError, TypeError):
            return _plain(400, "bad time-stamp request")
        return web.Response(body=answer, content_type="application/timestamp-reply")


@dataclass
class RunningPki:
    """A test PKI whose OCSP, CRL, TSA and certificate services answer on loopback."""

    pki: TestPki
    simulator: PkiSimulator
    _knobs: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    @property
    def ocsp_url(self) -> str:
        return self.pki.ocsp_url

    @property
    def crl_url(self) -> str:
        return self.pki.crl_url

    @property
    def tsa_url(self) -> str:
        return self.pki.tsa_url

    def _knob(self, name: str, *faults: Fault) -> None:
        """Replace the faults set by knob ``name`` with ``faults``."""
        for fault_id in self._knobs.pop(name, []):
            self.simulator.faults.remove(fault_id)
        self._knobs[name] = [self.simulator.faults.add(fault) for fault in faults]

    def set_tsa_delay(self, seconds: float) -> None:
        """Make every TSA answer wait ``seconds`` (simulates the slow Government TSA)."""
        delay = Fault(kind=FaultKind.LATENCY, operation="tsa", delay_seconds=seconds, times=None)
        self._knob("tsa_delay", *([delay] if seconds > 0 else []))

    def fail_next_tsa_requests(self, count: int) -> None:
        """The next ``count`` TSA requests get HTTP 503, later ones succeed."""
        failing = Fault(kind=FaultKind.STATUS, operation="tsa", status=503, times=max(count, 1))
        self._knob("tsa_fail_next", *([failing] if count > 0 else []))

    def set_tsa_available(self, available: bool) -> None:
        down = Fault(kind=FaultKind.STATUS, operation="tsa", status=503, times=None)
        self._knob("tsa_down", *([] if available else [down]))

    def set_ocsp_available(self, available: bool) -> None:
        """Take only the OCSP responder down (CRLs still served)."""
        down = Fault(kind=FaultKind.STATUS, operation="ocsp", status=503, times=None)
        self._knob("ocsp_down", *([] if available else [down]))

    def set_revocation_available(self, available: bool) -> None:
        """Take OCSP and CRL endpoints down (HTTP 503) or bring them back."""
        down = [
            Fault(kind=FaultKind.STATUS, operation=operation, status=503, times=None)
            for operation in ("ocsp", "crl")
        ]
        self._knob("revocation_down", *([] if available else down))

    @property
    def counters(self) -> dict[str, int]:
        """Requests seen per service (``ocsp``, ``crl``, ``tsa``, ``certs``)."""
        return {"ocsp": 0, "crl": 0, "tsa": 0, "certs": 0, **self.simulator.faults.calls()}


def existing_test_pki(directory: Path) -> TestPki | None:
    """The PKI an earlier ``build_test_pki`` left in ``directory``, if any."""
    try:
        return TestPki.load(directory)
    except (OSError, ValueError, KeyError):
        return None


@contextlib.contextmanager
def serve_test_pki(
    directory: Path, *, host: str = "127.0.0.1", port: int = 0, rebuild: bool = True
) -> Iterator[RunningPki]:
    """Start the loopback PKI services, build the PKI bound to their URL, and yield it.

    The server listens on ``port`` (default 0: a free port) in a daemon thread and is shut
    down on exit. The PKI in ``directory`` is (re)generated for that URL, unless ``rebuild``
    is false and the PKI already there was built for the same URL: then it is kept, so
    signatures made with it earlier still verify.
    """
    with PkiSimulator(host=host, port=port) as simulator:
        kept = None if rebuild else existing_test_pki(directory)
        if kept is not None and kept.base_url == simulator.base_url:
            pki = kept
        else:
            pki = build_test_pki(directory, base_url=simulator.base_url)
        simulator.load(pki)
        yield RunningPki(pki=pki, simulator=simulator)
