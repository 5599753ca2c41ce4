"""Sign-in through the province's identity provider: OpenID Connect, Authorization Code + PKCE.

Optional (``[console.oidc]``), beside the local accounts, which stay the default (issue 11).
The flow (OpenID Connect Core 1.0 §3.1; RFC 7636 PKCE; docs/security.md §10.1):

1. :meth:`OidcSignIn.begin` draws 256 random bits for the browser's short-lived flow cookie;
   ``state``, ``nonce`` and the PKCE ``code_verifier`` are HMACs of it, so the hub stores
   nothing per pending sign-in (any API process can finish it) and the answer is bound to the
   browser that asked (login CSRF: another browser's ``state`` never matches).
2. :meth:`OidcSignIn.finish` checks ``state``, exchanges the code at the token endpoint (with
   the verifier; the provider refuses a used code), and validates the ID token with joserfc:
   the ``alg`` in the allow-list (never ``none``, never HMAC), the signature against the
   provider's JWKS (fetched again once when the ``kid`` is unknown: key rotation), ``iss`` ==
   the configured issuer, ``aud`` holding the client id (``azp`` too with several audiences),
   ``exp`` / ``iat`` / ``nbf`` with ``leeway_seconds``, ``nonce``, ``sub``.
3. The identity maps to a local account (:meth:`OidcSignIn.account_for`): the account linked to
   ``iss`` + ``sub``, or at the first sign-in the account whose username is the ``match_claim``
   value, then linked. Never created; a disabled or locked account is refused.

Every refusal raises :class:`OidcRefusedError` with a stable ``reason`` and writes an
``account.oidc_refused`` audit row (reason only: no code, token or claim set is logged); a
success writes ``account.oidc_login``. Refusals count against the client address like wrong
passwords (:class:`hub.auth.throttle.FailedAuthThrottle`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from cachetools import TTLCache
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from hub.accounts.service import Account, AccountService, account_of, audit, roles_of
from hub.config import OidcSettings
from hub.db.account_tables import UserAccount
from hub.db.session import Database
from schemas.errors import AuthenticationError, TransportError

CALLBACK_PATH = "/console/oidc/callback"
#: How long a browser may take at the provider (the flow cookie's lifetime).
FLOW_SECONDS = 600
#: The JWKS is fetched again for an unknown ``kid`` at most this often (no fetch per bad token).
JWKS_REFETCH_SECONDS = 60.0
_MAX_BODY = 512 * 1024


class OidcRefusedError(AuthenticationError):
    """The sign-in is refused; ``reason`` is the stable code of the audit row and the page."""

    code = "oidc_refused"

    def __init__(self, reason: str, message: str, message_vi: str, *, target: str | None = None) -> None:
        super().__init__(message, message_vi=message_vi, details={"reason": reason})
        self.reason = reason
        #: The local account concerned, when the identity was mapped to one (the audit target).
        self.target = target


class OidcUnavailableError(TransportError):
    """The provider (discovery, JWKS or token endpoint) could not be reached or answered badly."""

    code = "oidc_unavailable"


def _refused(reason: str, target: str | None = None) -> OidcRefusedError:
    english, vietnamese = REASONS[reason]
    return OidcRefusedError(reason, english, vietnamese, target=target)


#: reason → (English, Vietnamese) text of the refusal page.
REASONS: dict[str, tuple[str, str]] = {
    "state": (
        "This sign-in was not started here or has expired; start again.",
        "Phiên đăng nhập không khớp hoặc đã hết hạn; hãy đăng nhập lại.",
    ),
    "provider_error": (
        "The identity provider did not sign you in.",
        "Hệ thống xác thực không chấp nhận đăng nhập.",
    ),
    "token_endpoint": (
        "The identity provider refused the sign-in code (used already or expired).",
        "Hệ thống xác thực từ chối mã đăng nhập (đã dùng hoặc hết hạn).",
    ),
    "alg": (
        "The identity token uses a signature algorithm that is not allowed.",
        "Mã định danh dùng thuật toán ký không được chấp nhận.",
    ),
    "signature": (
        "The identity token's signature is not valid.",
        "Chữ ký của mã định danh không hợp lệ.",
    ),
    "claims": (
        "The identity token is not valid (issue time or subject).",
        "Mã định danh không hợp lệ (thời điểm phát hành hoặc chủ thể).",
    ),
    "issuer": (
        "The identity token was not issued by the configured provider.",
        "Mã định danh không do hệ thống xác thực đã cấu hình phát hành.",
    ),
    "audience": (
        "The identity token was issued for another application.",
        "Mã định danh được cấp cho một ứng dụng khác.",
    ),
    "expired": ("The identity token has expired.", "Mã định danh đã hết hạn."),
    "nonce": (
        "The identity token does not belong to this sign-in (nonce).",
        "Mã định danh không thuộc phiên đăng nhập này (nonce).",
    ),
    "unknown_identity": (
        "No console account is linked to this identity; ask the administrator.",
        "Chưa có tài khoản nào gắn với danh tính này; hãy liên hệ quản trị viên.",
    ),
    "linked_elsewhere": (
        "The console account is linked to another identity; ask the administrator.",
        "Tài khoản đã gắn với một danh tính khác; hãy liên hệ quản trị viên.",
    ),
    "email_domain": (
        "Your e-mail domain is not allowed to sign in here.",
        "Tên miền thư điện tử của bạn không được phép đăng nhập.",
    ),
    "group": (
        "Your identity is not in a group allowed to sign in here.",
        "Danh tính của bạn không thuộc nhóm được phép đăng nhập.",
    ),
    "disabled": (
        "The console account is disabled or temporarily locked.",
        "Tài khoản đang bị khóa hoặc bị khóa tạm thời.",
    ),
}


#: The refusal reason of a claim joserfc finds wrong or missing (others: ``claims``).
_CLAIM_REASONS = {"iss": "issuer", "aud": "audience", "nonce": "nonce"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _derive(secret: str, purpose: bytes) -> str:
    return _b64(hmac.new(secret.encode(), purpose, hashlib.sha256).digest())


@dataclass(frozen=True, slots=True)
class Flow:
    """One pending sign-in, all of it derived from the flow cookie's secret."""

    secret: str
    next: str

    @property
    def state(self) -> str:
        return _derive(self.secret, b"hub oidc state")

    @property
    def nonce(self) -> str:
        return _derive(self.secret, b"hub oidc nonce")

    @property
    def verifier(self) -> str:
        """PKCE ``code_verifier`` (43 characters of the unreserved set, RFC 7636 §4.1)."""
        return _derive(self.secret, b"hub oidc pkce")

    @property
    def challenge(self) -> str:
        return _b64(hashlib.sha256(self.verifier.encode()).digest())

    @property
    def cookie(self) -> str:
        return f"{self.secret}.{_b64(self.next.encode())}"

    @classmethod
    def from_cookie(cls, value: str | None) -> Flow | None:
        if not value or len(value) > 1200 or "." not in value:
            return None
        secret, _, encoded = value.partition(".")
        try:
            target = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except ValueError:
            return None
        return cls(secret, target) if len(secret) >= 43 else None


@dataclass(frozen=True, slots=True)
class Provider:
    """What the discovery document says (OpenID Connect Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class Identity:
    """A validated ID token's claims (nothing else of the token is kept)."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]


class OidcSignIn:
    """The console's OIDC client (one per app: ``Console.oidc``)."""

    def __init__(
        self,
        settings: OidcSettings,
        db: Database,
        accounts: AccountService,
        *,
        redirect_base_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        #: The callback the provider sends the browser back to (registered there).
        self.redirect_uri = f"{(settings.redirect_base_url or redirect_base_url).rstrip('/')}{CALLBACK_PATH}"
        self._db = db
        self._accounts = accounts
        self._transport = transport
        ttl = settings.discovery_cache_seconds
        self._provider: TTLCache[str, Provider] = TTLCache(maxsize=1, ttl=ttl)
        self._jwks: TTLCache[str, KeySet] = TTLCache(maxsize=1, ttl=ttl)
        self._jwks_fetched_at = float("-inf")
        #: Monotonic time source of the JWKS re-fetch limit.
        self.monotonic: Callable[[], float] = time.monotonic

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout_seconds, transport=self._transport, follow_redirects=False
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcUnavailableError(
                f"identity provider {what} unreachable: {type(exc).__name__}",
                message_vi="không kết nối được hệ thống xác thực",
            ) from None
        return _json_of(response, what)

    # -- discovery and keys ----------------------------------------------------------------------

    async def provider(self) -> Provider:
        """The provider's endpoints from its discovery document (cached ``discovery_cache_seconds``)."""
        cached = self._provider.get("provider")
        if cached is not None:
            return cached
        issuer = self.settings.issuer
        document = await self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration", "discovery")
        try:
            found = Provider(
                issuer=str(document["issuer"]),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
            )
        except KeyError as exc:
            raise _unusable(f"discovery document without {exc.args[0]}") from None
        # Discovery §4.3: the document's issuer must be exactly the one asked for.
        if found.issuer != issuer:
            raise _unusable(f"discovery issuer {found.issuer!r} is not the configured {issuer!r}")
        for url in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri):
            if urlsplit(url).scheme != urlsplit(issuer).scheme:
                raise _unusable(f"discovery endpoint {url!r} does not use the issuer's scheme")
        self._provider["provider"] = found
        return found

    async def _keys(self, kid: str | None) -> KeySet:
        """The provider's JWKS; fetched again when ``kid`` is not in it (rate-limited)."""
        cached = self._jwks.get("jwks")
        known = cached is not None and (kid is None or any(key.kid == kid for key in cached.keys))
        if cached is not None and (known or self.monotonic() - self._jwks_fetched_at < JWKS_REFETCH_SECONDS):
            return cached
        provider = await self.provider()
        document = await self._get_json(provider.jwks_uri, "JWKS")
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise _unusable("JWKS not usable") from None
        self._jwks["jwks"] = keys
        self._jwks_fetched_at = self.monotonic()
        return keys

    # -- the flow ----------------------------------------------------------------------------------

    async def begin(self, next_path: str) -> tuple[str, Flow]:
        """The provider's authorization URL and the flow the browser keeps in its cookie."""
        provider = await self.provider()
        flow = Flow(secrets.token_urlsafe(32), next_path)
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": flow.challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return f"{provider.authorization_endpoint}{separator}{urlencode(query)}", flow

    async def identity(self, flow: Flow | None, params: Mapping[str, str]) -> Identity:
        """The validated identity of the provider's answer ``params`` (the callback's query)."""
        state = params.get("state", "")
        if flow is None or not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise _refused("state")
        if "error" in params or not params.get("code"):
            raise _refused("provider_error")
        id_token = await self._exchange(params["code"], flow)
        return await self._validate(id_token, flow.nonce)

    async def _exchange(self, code: str, flow: Flow) -> str:
        provider = await self.provider()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": flow.verifier,
        }
        auth = httpx.Auth()  # adds nothing: a public client sends its client_id in the form
        if self.settings.client_secret is None:
            form["client_id"] = self.settings.client_id
        else:  # client_secret_basic (OpenID Connect Core §9, the default method)
            auth = httpx.BasicAuth(self.settings.client_id, self.settings.client_secret.get_secret_value())
        try:
            async with self._client() as client:
                response = await client.post(
                    provider.token_endpoint, data=form, auth=auth, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise OidcUnavailableError(
                f"identity provider token endpoint unreachable: {type(exc).__name__}",
                message_vi="không kết nối được hệ thống xác thực",
            ) from None
        if response.status_code in (400, 401):  # RFC 6749 §5.2: invalid_grant and friends
            raise _refused("token_endpoint")
        body = _json_of(response, "token endpoint")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise _unusable("token answer without an id_token")
        return id_token

    async def _validate(self, id_token: str, nonce: str) -> Identity:
        header = _header_of(id_token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise _refused("alg")
        kid = header.get("kid")
        keys = await self._keys(kid if isinstance(kid, str) else None)
        try:
            token = jwt.decode(id_token, keys, algorithms=self.settings.algorithms)
        except JoseError:  # bad signature, no key for the kid, malformed
            raise _refused("signature") from None
        claims = token.claims
        now = int(self._accounts.clock().timestamp())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.settings.leeway_seconds,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _refused("expired") from None
        except ClaimError as exc:  # wrong or missing; iat / nbf in the future
            raise _refused(_CLAIM_REASONS.get(exc.claim, "claims")) from None
        except JoseError:
            raise _refused("claims") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.settings.client_id:
            raise _refused("audience")  # Core §3.1.3.7 steps 4-5
        if not isinstance(claims["sub"], str) or len(claims["sub"]) > 255:
            raise _refused("claims")
        return Identity(self.settings.issuer, claims["sub"], claims)

    # -- the local account -----------------------------------------------------------------------

    def _restrictions(self, claims: Mapping[str, Any]) -> None:
        domains = self.settings.allowed_email_domains
        if domains:
            email = claims.get("email")
            if (
                not isinstance(email, str)
                or claims.get("email_verified") is not True
                or email.rpartition("@")[2].lower() not in domains
            ):
                raise _refused("email_domain")
        wanted = self.settings.required_groups
        if wanted:
            groups = claims.get(self.settings.groups_claim)
            if not isinstance(groups, list) or not set(wanted) & {g for g in groups if isinstance(g, str)}:
                raise _refused("group")

    def account_for(self, identity: Identity, *, client: str) -> Account:
        """The enabled local account ``identity`` maps to (linked at its first sign-in), with the
        ``account.oidc_login`` audit row; else :class:`OidcRefusedError` (audited by :meth:`refuse`)."""
        self._restrictions(identity.claims)
        now: datetime = self._accounts.clock()
        with self._db.transaction() as session:
            row = session.scalar(
                select(UserAccount)
                .where(
                    UserAccount.oidc_issuer == identity.issuer, UserAccount.oidc_subject == identity.subject
                )
                .with_for_update()
            )
            linked = row is not None
            if row is None:
                value = identity.claims.get(self.settings.match_claim)
                if not isinstance(value, str) or not value:
                    raise _refused("unknown_identity")
                username = unicodedata.normalize("NFC", value)[:64]
                row = session.scalar(
                    select(UserAccount).where(UserAccount.username == username).with_for_update()
                )
                if row is None:  # the authenticated name is kept: the admin sees who was refused
                    raise _refused("unknown_identity", f"oidc:{username}")
                if row.oidc_subject is not None:
                    raise _refused("linked_elsewhere", row.username)
            locked = row.locked_until is not None and row.locked_until > now
            if row.disabled_at is not None or locked:
                raise _refused("disabled", row.username)
            if not linked:
                row.oidc_issuer, row.oidc_subject = identity.issuer, identity.subject
                audit(
                    session,
                    row.username,
                    "account.oidc_link",
                    row.username,
                    issuer=identity.issuer,
                    subject=identity.subject,
                    claim=self.settings.match_claim,
                )
            row.last_login_at = now
            audit(
                session,
                row.username,
                "account.oidc_login",
                row.username,
                issuer=identity.issuer,
                client=client,
            )
            return account_of(row, roles_of(session, row.id))

    def refuse(self, error: OidcRefusedError | OidcUnavailableError, *, client: str) -> None:
        """The audit row of a refused sign-in (the reason, never a code or token), counted
        against the client address like a wrong password."""
        reason = error.reason if isinstance(error, OidcRefusedError) else "unavailable"
        target = (error.target if isinstance(error, OidcRefusedError) else None) or "oidc"
        with self._db.transaction() as session:
            audit(
                session,
                f"client:{client}",
                "account.oidc_refused",
                target,
                reason=reason,
                issuer=self.settings.issuer,
            )
        if isinstance(error, OidcRefusedError):
            self._accounts.address_throttle.failed(client)


def _unusable(why: str) -> OidcUnavailableError:
    return OidcUnavailableError(
        f"identity provider answer not usable: {why}",
        message_vi="hệ thống xác thực trả lời không hợp lệ",
    )


def _json_of(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200 or len(response.content) > _MAX_BODY:
        raise _unusable(f"{what} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _unusable(f"{what} answer is not JSON") from None
    if not isinstance(body, dict):
        raise _unusable(f"{what} answer is not a JSON object")
    return body


def _header_of(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read only to choose the key and refuse bad ``alg``s."""
    if token.count(".") != 2:
        raise _refused("signature")
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        raise _refused("signature") from None
    if not isinstance(header, dict):
        raise _refused("signature")
    return header
