"""Verification of signed PDFs (PAdES / adbe.pkcs7) with a Circular 15/2025 report.

Public API::

    policy = VerificationPolicy.production()            # real government anchors
    report = verify_pdf(pdf_bytes, policy)               # -> VerificationReport (pydantic)
    text = render_report(report, lang="vi")              # signing.report
"""

from schemas.errors import EncryptedPdfError, NotPdfError, UnsignedPdfError
from signing.verification.engine import averify_pdf, verify_pdf, verify_pdf_file
from signing.verification.model import (
    REPORT_SCHEMA_VERSION,
    PadesLevel,
    SignatureFormat,
    SignatureReport,
    Verdict,
    VerificationReport,
)
from signing.verification.policy import DEFAULT_MAX_PDF_BYTES, RevocationMode, VerificationPolicy

__all__ = [
    "DEFAULT_MAX_PDF_BYTES",
    "REPORT_SCHEMA_VERSION",
    "EncryptedPdfError",
    "NotPdfError",
    "PadesLevel",
    "RevocationMode",
    "SignatureFormat",
    "SignatureReport",
    "UnsignedPdfError",
    "Verdict",
    "VerificationPolicy",
    "VerificationReport",
    "averify_pdf",
    "verify_pdf",
    "verify_pdf_file",
]
