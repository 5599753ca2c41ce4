"""Input errors specific to PDF verification (subclasses of :class:`hub.errors.InvalidPdfError`)."""

from __future__ import annotations

from hub.errors import InvalidPdfError

__all__ = ["EncryptedPdfError", "NotPdfError", "UnsignedPdfError"]


class NotPdfError(InvalidPdfError):
    """The upload is not a PDF at all (no ``%PDF-`` header)."""

    code = "not_pdf"


class EncryptedPdfError(InvalidPdfError):
    """The PDF is encrypted; signatures are verified on the decrypted file only."""

    code = "encrypted_pdf"


class UnsignedPdfError(InvalidPdfError):
    """The PDF carries no signature and no document time-stamp."""

    code = "unsigned_pdf"
