"""What the hub fetches on a certificate's word, and what it refuses to (docs/signing.md §12).

A certificate names URLs: OCSP responders and issuer certificates in Authority Information
Access (RFC 5280 §4.2.2.1, RFC 6960), CRLs in CRL Distribution Points (RFC 5280 §4.2.1.13).
Verifying an uploaded PDF or preparing an external signature hands the hub certificates chosen
by whoever sent them, so following those URLs blindly lets a sender make the hub call internal
addresses and time the answers (server-side request forgery, OWASP SSRF Prevention Cheat Sheet).

:class:`PolicyFetcherBackend` is the only fetcher backend the hub gives pyhanko-certvalidator.
Before any network access it requires

1. that the certificate concerned chains, signature by signature, to a configured trust anchor
   through certificates the hub already holds (anchors, configured intermediates, certificates
   carried by the document or the request): AIA chasing for an unknown issuer is refused too;
2. that the URL is ``http``/``https`` to a host on the allowlist
   (:class:`signing.settings.RevocationFetchSettings`); redirects are not followed;

and bounds every request by a total deadline and a maximum answer size. Refusals and failures
are recorded so the verification report can say why revocation was not checked
(:meth:`PolicyFetcherBackend.not_checked_reason`).

pyhanko-certvalidator internals relied on (``pyhanko-certvalidator>=0.33,<0.34``): the
``requests`` fetchers route every request through ``RequestsFetcherMixin._get`` / ``._post``
(awaited, expecting an object with ``.content`` and ``.headers``, errors as
``requests.RequestException``); the subclasses below override those two methods.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
from asn1crypto import cms, crl, x509
from cryptography import x509 as pyca_x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pyhanko_certvalidator import errors as cv_errors
from pyhanko_certvalidator.authority import Authority, AuthorityWithCert
from pyhanko_certvalidator.fetchers.api import FetcherBackend, Fetchers, FetchLimits
from pyhanko_certvalidator.fetchers.common_utils import FetchBudget
from pyhanko_certvalidator.fetchers.requests_fetchers.cert_fetch_client import RequestsCertificateFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.crl_client import RequestsCRLFetcher
from pyhanko_certvalidator.fetchers.requests_fetchers.ocsp_client import RequestsOCSPFetcher

from signing.settings import RevocationFetchSettings

__all__ = ["AnchorGate", "NotChecked", "PolicyFetcherBackend", "declared_urls", "url_refusal"]

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Longest certification path walked when checking that a certificate chains to an anchor.
_MAX_PATH = 8
_USER_AGENT = "motcua-hub revocation fetcher"


class NotChecked(enum.StrEnum):
    """Why the revocation status of a certificate was not obtained online (report codes)."""

    UNTRUSTED_CHAIN = "untrusted_chain"  # no chain to an anchor: nothing fetched
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"  # not http(s)
    HOST_NOT_ALLOWED = "host_not_allowed"  # host (or port) not on the allowlist
    RESPONSE_TOO_LARGE = "response_too_large"
    TIMEOUT = "timeout"
    FETCH_FAILED = "fetch_failed"  # connection refused, non-200 answer, redirect, ...
    NO_REVOCATION_URLS = "no_revocation_urls"  # the certificate declares no OCSP/CRL
    OFFLINE = "offline"  # online fetching disabled by policy
    NOT_ATTEMPTED = "not_attempted"  # allowed, but the validation never asked


def url_refusal(url: str, settings: RevocationFetchSettings) -> NotChecked | None:
    """``None`` when ``url`` may be fetched, else why not.

    Allowlist entries are ``host`` (the scheme's default port only), ``host:port``, or
    ``.suffix`` (any subdomain, default port). Hosts are compared lower-case; user info,
    non-ASCII hosts and unparsable ports are refused.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return NotChecked.HOST_NOT_ALLOWED
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return NotChecked.SCHEME_NOT_ALLOWED
    host = (parts.hostname or "").lower()
    if not host or not host.isascii() or parts.username is not None or parts.password is not None:
        return NotChecked.HOST_NOT_ALLOWED
    default = _DEFAULT_PORTS[scheme]
    effective = port if port is not None else default
    for entry in settings.allowed_hosts:
        entry = entry.lower()
        name, _, entry_port = entry.partition(":")
        allowed_port = int(entry_port) if entry_port else default
        if effective != allowed_port:
            continue
        if name == host or (name.startswith(".") and host.endswith(name)):
            return None
    return NotChecked.HOST_NOT_ALLOWED


def declared_urls(cert: x509.Certificate) -> list[str]:
    """OCSP and CRL URLs the certificate declares (RFC 5280 §4.2.2.1, §4.2.1.13, §5.2.6)."""
    urls = list(cert.ocsp_urls)
    for dp in [*cert.crl_distribution_points, *cert.delta_crl_distribution_points]:
        url = dp.url
        if url:
            urls.append(url)
    return urls


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key signed ``cert`` and the names match (cryptography does both checks)."""
    try:
        pyca_x509.load_der_x509_certificate(cert.dump()).verify_directly_issued_by(
            pyca_x509.load_der_x509_certificate(issuer.dump())
        )
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):  # name, key, signature
        return False
    return True


class AnchorGate:
    """Does a certificate chain to a trust anchor through certificates already held?

    Each link is a verified signature, so certificates offered by a document or a request can
    extend the pool safely: they only help if a trusted CA really issued them.
    """

    def __init__(self, anchors: Iterable[x509.Certificate], known: Iterable[x509.Certificate] = ()) -> None:
        self._anchors = {_sha256(a): a for a in anchors}
        self._pool: dict[str, x509.Certificate] = dict(self._anchors)
        self._anchored: set[str] = set(self._anchors)
        self.offer(known)

    def offer(self, certs: Iterable[x509.Certificate]) -> None:
        for cert in certs:
            self._pool.setdefault(_sha256(cert), cert)

    def anchored(self, cert: x509.Certificate, extra: Iterable[x509.Certificate] = ()) -> bool:
        extra = list(extra)
        return self._walk(cert, extra, depth=0, seen=set())

    def _walk(
        self, cert: x509.Certificate, extra: list[x509.Certificate], depth: int, seen: set[str]
    ) -> bool:
        fp = _sha256(cert)
        if fp in self._anchored:
            return True
        if depth >= _MAX_PATH or fp in seen:
            return False
        seen.add(fp)
        for issuer in [*extra, *self._pool.values()]:
            if issuer.subject != cert.issuer or not _issued_by(cert, issuer):
                continue
            if self._walk(issuer, extra, depth + 1, seen):
                self._anchored.add(fp)
                return True
        return False


@dataclass(frozen=True)
class FetchEvent:
    """One fetch decision: a URL refused, fetched or failed, or a certificate refused."""

    outcome: NotChecked | None  # None: fetched
    url: str | None = None
    cert_sha256: str | None = None


@dataclass(frozen=True)
class _Fetched:
    """What the certvalidator fetchers read from an answer (``.content``, ``.headers``)."""

    content: bytes
    headers: Mapping[str, str]


class PolicyFetcherBackend(FetcherBackend):
    """pyhanko-certvalidator fetchers that obey :class:`RevocationFetchSettings` (module doc).

    One instance per verified document / validation context: it remembers what it refused, so
    the report can name the reason, and the certificates offered for chain checks.
    """

    def __init__(
        self,
        settings: RevocationFetchSettings,
        anchors: Iterable[x509.Certificate],
        known: Iterable[x509.Certificate] = (),
        *,
        limits: FetchLimits = FetchLimits(max_requests=50, max_cert_requests=10, max_aia_urls_per_object=2),  # noqa: B008
    ) -> None:
        self.settings = settings
        self.gate = AnchorGate(anchors, known)
        self.limits = limits
        self.events: list[FetchEvent] = []
        self._fetched_crls: set[bytes] = set()

    # -- FetcherBackend ------------------------------------------------------------------------

    def get_fetchers(self) -> Fetchers:
        budget = FetchBudget(self.limits)
        return Fetchers(
            ocsp_fetcher=_OCSPFetcher(self, budget),
            crl_fetcher=_CRLFetcher(self, budget),
            cert_fetcher=_CertFetcher(self, budget),
        )

    async def close(self) -> None:
        return None

    # -- gate ----------------------------------------------------------------------------------

    def offer(self, certs: Iterable[x509.Certificate]) -> None:
        """Certificates that may serve as links when checking chains (still signature-checked)."""
        self.gate.offer(certs)

    def admit(self, cert: Any, extra: Iterable[x509.Certificate] = ()) -> bool:
        """May the hub fetch anything on ``cert``'s word? Records a refusal when not."""
        if isinstance(cert, x509.Certificate) and self.gate.anchored(cert, extra):
            return True
        fp = _sha256(cert) if isinstance(cert, x509.Certificate) else None
        self.record(FetchEvent(NotChecked.UNTRUSTED_CHAIN, cert_sha256=fp))
        log.info("not fetching for a certificate that does not chain to a trust anchor")
        return False

    def crl_was_fetched(self, certificate_list: crl.CertificateList) -> bool:
        return hashlib.sha256(certificate_list.dump()).digest() in self._fetched_crls

    def note_crls(self, crls: Iterable[crl.CertificateList]) -> None:
        self._fetched_crls.update(hashlib.sha256(c.dump()).digest() for c in crls)

    def record(self, event: FetchEvent) -> None:
        self.events.append(event)

    # -- reporting -----------------------------------------------------------------------------

    def not_checked_reason(self, cert: x509.Certificate) -> NotChecked:
        """Why no revocation data about ``cert`` was obtained online (the caller knows none was)."""
        if not self.gate.anchored(cert):
            return NotChecked.UNTRUSTED_CHAIN
        urls = set(declared_urls(cert))
        if not urls:
            return NotChecked.NO_REVOCATION_URLS
        outcomes = [e.outcome for e in self.events if e.url in urls and e.outcome is not None]
        if not outcomes:
            # pyhanko-certvalidator skips non-http URLs (ldap, file) before asking us
            static = [url_refusal(u, self.settings) for u in sorted(urls)]
            if all(r is not None for r in static):
                return static[0] or NotChecked.HOST_NOT_ALLOWED
            # every URL refused before a request is recorded per URL; nothing here means the
            # validation did not ask, or what was fetched did not settle the status
            return NotChecked.NOT_ATTEMPTED
        return outcomes[-1]

    # -- HTTP ----------------------------------------------------------------------------------

    async def request(
        self, method: str, url: str, *, headers: dict[str, str], content: bytes | None = None
    ) -> _Fetched:
        """One bounded request (allowlist, no redirects, total deadline, size cap)."""
        refusal = url_refusal(url, self.settings)
        if refusal is not None:
            self.record(FetchEvent(refusal, url=url))
            log.info("not fetching %s: %s", url, refusal.value)
            raise requests.RequestException(f"not fetched ({refusal.value}): {url}")
        limit = self.settings.max_response_bytes
        timeout = self.settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                body = await self._send(method, url, headers, content)
        except (TimeoutError, httpx.TimeoutException):
            raise self._failed(NotChecked.TIMEOUT, url, f"no complete answer within {timeout} s") from None
        except _TooLarge:
            raise self._failed(NotChecked.RESPONSE_TOO_LARGE, url, f"answer above {limit} bytes") from None
        except (httpx.HTTPError, _BadAnswer) as exc:
            raise self._failed(NotChecked.FETCH_FAILED, url, str(exc) or type(exc).__name__) from None
        self.record(FetchEvent(None, url=url))
        return body

    async def _send(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> _Fetched:
        limit = self.settings.max_response_bytes
        # A client per request: the backend is used from several event loops (asyncio.run per
        # document / per signing call) and an httpx client is bound to the loop it first ran on.
        async with (
            httpx.AsyncClient(follow_redirects=False, timeout=self.settings.timeout_seconds) as client,
            client.stream(method, url, headers={**headers, "User-Agent": _USER_AGENT}, content=content) as r,
        ):
            if r.status_code != 200:
                raise _BadAnswer(f"status {r.status_code}")
            declared = r.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_raw():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
            return _Fetched(b"".join(chunks), dict(r.headers))

    def _failed(self, outcome: NotChecked, url: str, detail: str) -> requests.RequestException:
        self.record(FetchEvent(outcome, url=url))
        log.info("fetching %s failed: %s", url, detail)
        # the certvalidator fetchers turn RequestException into their own fetch errors
        return requests.RequestException(f"{outcome.value}: {url}: {detail}")


class _TooLarge(Exception):
    pass


class _BadAnswer(Exception):
    pass


class _PolicyHttp:
    """Replaces ``RequestsFetcherMixin._get`` / ``._post`` (pyhanko-certvalidator internals)."""

    _backend: PolicyFetcherBackend

    def _get(self, url: str, *, acceptable_content_types: Iterable[str]) -> Any:
        return self._backend.request("GET", url, headers={"Accept": ",".join(acceptable_content_types)})

    def _post(
        self, url: str, data: bytes, *, content_type: str, acceptable_content_types: Iterable[str]
    ) -> Any:
        headers = {"Accept": ",".join(acceptable_content_types), "Content-Type": content_type}
        return self._backend.request("POST", url, headers=headers, content=data)


class _OCSPFetcher(_PolicyHttp, RequestsOCSPFetcher):
    def __init__(self, backend: PolicyFetcherBackend, budget: FetchBudget) -> None:
        super().__init__(budget=budget)
        self._backend = backend

    async def fetch(self, cert: x509.Certificate | cms.AttributeCertificateV2, authority: Authority) -> Any:
        issuer = [authority.certificate] if isinstance(authority, AuthorityWithCert) else []
        if not self._backend.admit(cert, issuer):
            raise cv_errors.OCSPFetchError("not fetched: the certificate does not chain to a trust anchor")
        return await super().fetch(cert, authority)


class _CRLFetcher(_PolicyHttp, RequestsCRLFetcher):
    def __init__(self, backend: PolicyFetcherBackend, budget: FetchBudget) -> None:
        super().__init__(budget=budget)  # type: ignore[no-untyped-call]
        self._backend = backend

    async def fetch(
        self, cert: x509.Certificate | cms.AttributeCertificateV2, *, use_deltas: Any = True
    ) -> Any:
        if not self._backend.admit(cert):
            raise cv_errors.CRLFetchError("not fetched: the certificate does not chain to a trust anchor")
        result = await super().fetch(cert, use_deltas=use_deltas)
        self._backend.note_crls(result)
        return result


class _CertFetcher(_PolicyHttp, RequestsCertificateFetcher):
    def __init__(self, backend: PolicyFetcherBackend, budget: FetchBudget) -> None:
        super().__init__(budget=budget)
        self._backend = backend

    def fetch_cert_issuers(self, cert: x509.Certificate | cms.AttributeCertificateV2) -> Any:
        # RFC 5280 §4.2.2.1 caIssuers: chasing the issuer of a certificate that does not already
        # chain to an anchor is exactly the fetch an attacker wants, so it is refused.
        if not self._backend.admit(cert):
            return _nothing()
        return super().fetch_cert_issuers(cert)

    def fetch_crl_issuers(self, certificate_list: crl.CertificateList) -> Any:
        if not self._backend.crl_was_fetched(certificate_list):
            self._backend.record(FetchEvent(NotChecked.UNTRUSTED_CHAIN))
            return _nothing()
        return super().fetch_crl_issuers(certificate_list)  # type: ignore[no-untyped-call]


async def _nothing() -> AsyncGenerator[x509.Certificate, None]:
    return
    yield  # an empty async generator
