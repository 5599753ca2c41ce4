"""The hub's single error hierarchy.

Every failure the hub raises on purpose derives from :class:`HubError` and is either
:class:`RetryableError` (the same request may succeed later: timeouts, 5xx, 429, portal
"busy" codes, an open circuit) or :class:`PermanentError` (retrying cannot help: invalid
input, business rejections, SOAP client faults, refused certificates).

The delivery worker only looks at this split: retryable errors are rescheduled with backoff,
permanent ones go straight to the dead-letter queue with their reason.

Messages are bilingual where a person will read them: ``message`` is English (logs, API
``detail``), ``message_vi`` is Vietnamese (officers, verification reports, citizens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HubError(Exception):
    """Root of every error the hub raises deliberately."""

    retryable: bool = False
    #: Stable machine-readable code, used in API error bodies and DLQ filters.
    code: str = "hub_error"
    #: HTTP status an API route should answer with when this error escapes a service.
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        message_vi: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.message_vi = message_vi or message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def error_class(self) -> str:
        """Name recorded in delivery attempts and used to filter the dead-letter queue."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "error_class": self.error_class,
            "retryable": self.retryable,
            "message": self.message,
            "message_vi": self.message_vi,
            "details": self.details,
        }


class PermanentError(HubError):
    """Retrying the same request cannot succeed."""

    retryable = False
    code = "permanent_error"
    http_status = 422


class RetryableError(HubError):
    """A transient failure: the same request may succeed later.

    ``retry_after`` (seconds) carries a server hint such as HTTP ``Retry-After``; the retry
    policy clamps it to the endpoint's bounds.
    """

    retryable = True
    code = "retryable_error"
    http_status = 503

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        message_vi: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, message_vi=message_vi, details=details)
        self.retry_after = retry_after


# --- input and domain -------------------------------------------------------------------


class InvalidInputError(PermanentError):
    """Input failed validation (malformed JSON/XML, unknown fields, invalid codes)."""

    code = "invalid_input"
    http_status = 422


class PayloadTooLargeError(InvalidInputError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaTypeError(InvalidInputError):
    code = "unsupported_media_type"
    http_status = 415


class UnsafeXmlError(InvalidInputError):
    """XML with a DTD, entity declarations or external references (XXE, billion laughs)."""

    code = "unsafe_xml"
    http_status = 400


class InvalidTransitionError(PermanentError):
    """A dossier status change the one-stop procedure does not allow."""

    code = "invalid_transition"
    http_status = 409


class ConflictError(PermanentError):
    code = "conflict"
    http_status = 409


class NotFoundError(PermanentError):
    code = "not_found"
    http_status = 404


class ConfigurationError(PermanentError):
    """Configuration is missing or invalid; raised at start-up with a clear message."""

    code = "configuration_error"
    http_status = 500


class FeatureNotConfiguredError(PermanentError):
    """A capability this deployment has not configured (e.g. server-held signing keys)."""

    code = "not_configured"
    http_status = 503


class AuthenticationError(PermanentError):
    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(PermanentError):
    code = "forbidden"
    http_status = 403


# --- talking to portals -----------------------------------------------------------------


class TransportError(RetryableError):
    """Connect/read timeouts, dropped connections, DNS failures."""

    code = "transport_error"


class EndpointBusyError(RetryableError):
    """HTTP 5xx, 429, or a portal's own "busy" answer."""

    code = "endpoint_busy"


class CircuitOpenError(RetryableError):
    """The endpoint's circuit breaker is open; the message was not sent."""

    code = "circuit_open"


class SessionExpiredError(RetryableError):
    """The portal session or OAuth2 token was rejected; log in again and retry."""

    code = "session_expired"


class BusinessRejectionError(PermanentError):
    """The portal understood the request and refused it (validation or business rule)."""

    code = "business_rejection"


class SoapFaultError(PermanentError):
    """A SOAP Client/Sender fault. Server/Receiver faults are raised as retryable instead."""

    code = "soap_fault"


class RemoteAuthenticationError(PermanentError):
    """Credentials were refused by the remote portal (not a merely expired session)."""

    code = "remote_auth_failed"


# --- signing ------------------------------------------------------------------------------


class SigningError(PermanentError):
    code = "signing_error"


class CertificateRejectedError(SigningError):
    """The signer's certificate failed a pre-signing check (Circular 15/2025 §2.2)."""

    code = "certificate_rejected"


class RevocationUnavailableError(SigningError):
    """Neither OCSP nor a current CRL could be consulted and policy says refuse."""

    code = "revocation_unavailable"


class TokenPinError(SigningError):
    code = "wrong_pin"
    http_status = 401


class InvalidPdfError(InvalidInputError):
    code = "invalid_pdf"


class TimestampUnavailableError(RetryableError):
    code = "tsa_unavailable"
