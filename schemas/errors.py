"""The hub's single error hierarchy (every layer raises these; nothing below ``schemas`` exists).

Every failure the hub raises on purpose derives from :class:`HubError` and is either
retryable (the same request may succeed later) or permanent (retrying cannot help). The
delivery worker only looks at that split: retryable errors are rescheduled with backoff,
permanent ones go to the dead-letter queue with their reason. HTTP status codes are not an
attribute of an error: the API layer maps classes to statuses (``hub.api.errors``).

Messages are bilingual where a person reads them: ``message`` is English (logs, API
``message``), ``message_vi`` Vietnamese (officers, verification reports, citizens).

Hierarchy::

    HubError
    ├── RetryableError                      retry later, honouring retry_after
    │   ├── TransportError                  connection refused/reset, DNS failure
    │   │   └── EndpointTimeoutError        connect/read/write/pool timeout (throttling minimum applies)
    │   ├── EndpointBusyError               HTTP 5xx, 408, 425, 429, a portal's "busy" answer
    │   ├── CircuitOpenError                the endpoint's breaker is open; nothing was sent
    │   ├── SendFencedError                 the sender's lease could no longer be trusted; nothing was sent
    │   ├── SessionExpiredError             portal session / OAuth2 token rejected; log in again
    │   ├── TimestampUnavailableError       the TSA did not answer
    │   └── TooManyRequestsError            a client of the hub exceeded its rate limit
    └── PermanentError
        ├── InvalidInputError               malformed or invalid input
        │   ├── MalformedJsonError          body is not a well-formed JSON object
        │   ├── PayloadTooLargeError
        │   ├── UnsupportedMediaTypeError
        │   ├── UnsafeXmlError              DTD, entities, external references
        │   └── InvalidPdfError
        │       ├── NotPdfError
        │       ├── EncryptedPdfError
        │       └── UnsignedPdfError
        ├── InvalidTransitionError          status change the one-stop procedure forbids
        ├── ConflictError
        ├── NotFoundError
        ├── ConfigurationError
        ├── FeatureNotConfiguredError
        ├── AuthenticationError             a client of the hub is not authenticated
        ├── PermissionDeniedError           … or its role may not do this
        ├── BusinessRejectionError          a portal understood the request and refused it
        ├── SoapFaultError                  SOAP Client/Sender fault
        ├── RemoteAuthenticationError       a portal refused the hub's credentials
        └── SigningError
            ├── CertificateRejectedError    pre-signing check failed (Circular 15/2025 §2.2)
            ├── RevocationUnavailableError  no OCSP/CRL answer and policy says refuse
            ├── TokenPinError
            ├── ExternalSigningExpiredError
            ├── ExternalSignatureMismatchError
            ├── SignatureImageRejectedError  signature/seal image not as Decree 30 App. I prescribes
            └── SignaturePlacementError      no place for the signature image on the page

Errors raised while talking to a remote endpoint carry typed attributes describing the
exchange (``status_code``, ``request_summary``, ``response_summary``; the connectors set them
in one place, ``connectors/http_errors.py``): summaries are already bounded and masked, so
they can be stored on a delivery attempt as they are. ``details`` holds anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack


class ErrorContext(TypedDict, total=False):
    """The keyword arguments of :class:`HubError` after ``message`` (what a subclass passes on)."""

    message_vi: str | None
    details: Mapping[str, Any] | None
    status_code: int | None
    request_summary: str | None
    response_summary: str | None


class HubError(Exception):
    """Root of every error the hub raises deliberately."""

    retryable: bool = False
    #: Stable machine-readable code, used in API error bodies and DLQ filters.
    code: str = "hub_error"

    def __init__(
        self,
        message: str,
        *,
        message_vi: str | None = None,
        details: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        request_summary: str | None = None,
        response_summary: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.message_vi = message_vi or message
        self.details: dict[str, Any] = dict(details or {})
        #: HTTP status the remote endpoint answered with, when there was an answer.
        self.status_code = status_code
        #: Bounded, masked excerpt of what was sent (for the attempt log).
        self.request_summary = request_summary
        #: Bounded, masked excerpt of what came back.
        self.response_summary = response_summary

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


class RetryableError(HubError):
    """A transient failure: the same request may succeed later.

    ``retry_after`` (seconds) carries a server hint such as HTTP ``Retry-After``; the retry
    policy clamps it to the endpoint's bounds.
    """

    retryable = True
    code = "retryable_error"

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


# --- input and domain -------------------------------------------------------------------


class InvalidInputError(PermanentError):
    """Input failed validation (malformed JSON/XML, unknown fields, invalid codes)."""

    code = "invalid_input"


class MalformedJsonError(InvalidInputError):
    """The body is not a well-formed UTF-8 JSON object."""

    code = "malformed_json"


class PayloadTooLargeError(InvalidInputError):
    code = "payload_too_large"


class UnsupportedMediaTypeError(InvalidInputError):
    code = "unsupported_media_type"


class UnsafeXmlError(InvalidInputError):
    """XML with a DTD, entity declarations or external references (XXE, billion laughs)."""

    code = "unsafe_xml"


class InvalidPdfError(InvalidInputError):
    code = "invalid_pdf"


class NotPdfError(InvalidPdfError):
    """The upload is not a PDF at all (no ``%PDF-`` header)."""

    code = "not_pdf"


class EncryptedPdfError(InvalidPdfError):
    """The PDF is encrypted; signatures are verified on the decrypted file only."""

    code = "encrypted_pdf"


class UnsignedPdfError(InvalidPdfError):
    """The PDF carries no signature and no document time-stamp."""

    code = "unsigned_pdf"


class InvalidTransitionError(PermanentError):
    """A dossier status change the one-stop procedure does not allow."""

    code = "invalid_transition"


class ConflictError(PermanentError):
    code = "conflict"


class NotFoundError(PermanentError):
    code = "not_found"


class ConfigurationError(PermanentError):
    """Configuration is missing or invalid; raised at start-up with a clear message."""

    code = "configuration_error"


class FeatureNotConfiguredError(PermanentError):
    """A capability this deployment has not configured (e.g. server-held signing keys)."""

    code = "not_configured"


class AuthenticationError(PermanentError):
    code = "unauthenticated"


class PermissionDeniedError(PermanentError):
    code = "forbidden"


# --- talking to portals -----------------------------------------------------------------


class TransportError(RetryableError):
    """Dropped or refused connections, DNS failures: nothing usable came back."""

    code = "transport_error"


class EndpointTimeoutError(TransportError):
    """The endpoint did not answer in time (connect, read, write or pool timeout).

    The retry policy waits at least ``throttle_min_seconds`` after one: a slow portal is
    treated like a throttling one.
    """

    code = "timeout"


class EndpointBusyError(RetryableError):
    """HTTP 5xx, 408, 425, 429, or a portal's own "busy" answer."""

    code = "endpoint_busy"


class CircuitOpenError(RetryableError):
    """The endpoint's circuit breaker is open; the message was not sent."""

    code = "circuit_open"


class SendFencedError(RetryableError):
    """The request was stopped before its first byte left: the caller's send fence said no.

    Raised by :mod:`connectors.http` once a connection is in hand, right before the request is
    written, when the delivery's lease can no longer be trusted (docs/delivery.md §12.2). The
    message was not sent; the worker gives it back without counting an attempt.
    """

    code = "send_fenced"


class SessionExpiredError(RetryableError):
    """The portal session or OAuth2 token was rejected; log in again and retry."""

    code = "session_expired"


class TooManyRequestsError(RetryableError):
    """A client of the hub exceeded its request budget."""

    code = "rate_limited"


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


class ExternalSigningExpiredError(SigningError):
    """The pending external-signing request is unknown, already completed, or expired."""

    code = "external_signing_expired"


class ExternalSignatureMismatchError(SigningError):
    """The returned signature does not verify against the prepared data and certificate."""

    code = "signature_mismatch"


class SignatureImageRejectedError(SigningError):
    """The signature or seal image is not a transparent PNG of the prescribed colour
    (Decree 30/2020 Appendix I: blue signature, red seal)."""

    code = "signature_image_rejected"


class SignaturePlacementError(SigningError):
    """No place for a visible signature: the signer's block was not found on the page and no
    template box or explicit position was given."""

    code = "signature_placement_not_found"


class TimestampUnavailableError(RetryableError):
    code = "tsa_unavailable"
