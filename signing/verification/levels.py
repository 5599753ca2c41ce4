"""Structural PAdES baseline level detection (ETSI EN 319 142-1 §6.3).

* B-B: ``/SubFilter /ETSI.CAdES.detached`` (CAdES signed attributes incl. signing-certificate-v2).
* B-T: B-B plus a signature time-stamp, or a document time-stamp in a later revision.
* B-LT: B-T plus a Document Security Store with revocation data (OCSP/CRL) added after the signature.
* B-LTA: B-LT plus a document time-stamp covering that DSS.

``adbe.pkcs7.detached`` signatures (what VGCA-style tools emit, docs/signing.md §7) are not PAdES
baseline signatures whatever they carry; they are reported as level ``none`` with format PKCS#7.
The level says what the file *contains*; whether those elements validate is the verdict's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from signing.verification.model import PadesLevel, SignatureFormat

__all__ = ["DocumentLayout", "detect_level", "signature_format"]

_PADES_SUBFILTERS = {"/ETSI.CAdES.detached"}
_PKCS7_SUBFILTERS = {"/adbe.pkcs7.detached", "/adbe.pkcs7.sha1"}


def signature_format(sub_filter: str) -> SignatureFormat:
    if sub_filter in _PADES_SUBFILTERS:
        return SignatureFormat.PADES
    if sub_filter in _PKCS7_SUBFILTERS:
        return SignatureFormat.PKCS7
    return SignatureFormat.OTHER


@dataclass(frozen=True)
class DocumentLayout:
    """Per-document facts the level detection needs, computed once."""

    #: Revisions whose catalog carries a DSS with OCSP responses or CRLs.
    dss_revisions: tuple[int, ...]
    #: Revisions in which a document time-stamp was added.
    doc_ts_revisions: tuple[int, ...]

    @classmethod
    def of(cls, reader: PdfFileReader, doc_timestamps: list[EmbeddedPdfSignature]) -> DocumentLayout:
        # A DSS persists in every later revision; only revisions that *add* revocation data
        # count, otherwise a second signature would inherit the first one's B-LT status.
        dss_revs: list[int] = []
        previous: tuple[int, int] = (0, 0)
        for rev in range(reader.xrefs.total_revisions):
            root = reader.get_historical_root(rev)
            dss = root.get("/DSS")
            if dss is None:
                continue
            dss = dss.get_object()
            counts = (len(dss.get("/OCSPs", ())), len(dss.get("/CRLs", ())))
            if counts != previous and any(counts):
                dss_revs.append(rev)
            previous = counts
        return cls(
            dss_revisions=tuple(dss_revs),
            doc_ts_revisions=tuple(sorted(ts.signed_revision for ts in doc_timestamps)),
        )


def has_signature_timestamp(emb: EmbeddedPdfSignature) -> bool:
    return any(True for _ in extract_tst_data_iter(emb.signer_info, signed=False))


def has_adobe_revinfo(emb: EmbeddedPdfSignature) -> bool:
    """Adobe-style revocation data in the signed attributes (``adbe-revocationInfoArchival``)."""
    attrs = emb.signer_info["signed_attrs"]
    if not attrs:
        return False
    return any(attr["type"].native == "adobe_revocation_info_archival" for attr in attrs)


def detect_level(
    emb: EmbeddedPdfSignature, layout: DocumentLayout, sub_filter: str, *, dss_covers_signer: bool = True
) -> PadesLevel:
    """``dss_covers_signer``: the DSS holds an OCSP response or CRL about the signer's certificate
    (a DSS filled for *another* signature does not lift this one to B-LT)."""
    if signature_format(sub_filter) is not SignatureFormat.PADES:
        return PadesLevel.NONE
    rev = emb.signed_revision
    later_doc_ts = [r for r in layout.doc_ts_revisions if r > rev]
    if not (has_signature_timestamp(emb) or later_doc_ts):
        return PadesLevel.B_B
    dss_after = [r for r in layout.dss_revisions if r > rev]
    if not dss_after or not dss_covers_signer:
        return PadesLevel.B_T
    first_dss = min(dss_after)
    if any(r >= first_dss for r in later_doc_ts):
        return PadesLevel.B_LTA
    return PadesLevel.B_LT


def has_long_term_data(emb: EmbeddedPdfSignature, layout: DocumentLayout) -> bool:
    """Revocation data embedded for this signature (DSS after it, or Adobe archival attribute)."""
    return has_adobe_revinfo(emb) or any(r > emb.signed_revision for r in layout.dss_revisions)
