# mypy: disable-error-code="no-untyped-call"
"""Fixture material for the verification tests: small PDFs signed with pyHanko's own API
against the throwaway test PKI (signing.testpki), so verification is tested independently of
the hub's signing service.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.fields import MDPPerm, SigSeedSubFilter
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hub.simulators.pki import RunningPki
from signing.samples import sample_pdf
from signing.trust import TrustStore

#: Title of the page the verification tests sign; ``overwrite_signed_bytes`` tampers with its "123/QD".
PAGE_TITLE = "QUYET DINH SO 123/QD-SNNMT"


def make_pdf() -> bytes:
    """The one-page A4 PDF the verification tests sign (uncompressed content, easy to tamper with)."""
    return sample_pdf(PAGE_TITLE)


def _close_vc(vc: ValidationContext | None) -> None:
    """Release the aiohttp session pyHanko opened while fetching revocation data."""
    if vc is None:
        return
    fetchers = getattr(vc, "fetchers", None) or getattr(getattr(vc, "_handlers", None), "fetchers", None)
    closer = getattr(fetchers, "close", None) if fetchers is not None else None
    if closer is not None:
        try:
            result = closer()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        except RuntimeError:
            pass


def sign(
    pdf: bytes,
    pki: RunningPki,
    p12: Path,
    *,
    field: str = "Sig1",
    pades: bool = True,
    timestamp: bool = False,
    ltv: bool = False,
    lta: bool = False,
    certify: bool = False,
    docmdp: MDPPerm = MDPPerm.FILL_FORMS,
    box: tuple[int, int, int, int] | None = None,
    pss: bool = False,
    leaf_only: bool = False,
) -> bytes:
    """Sign ``pdf`` with pyHanko (``PdfSigner``) using a PKCS#12 of the test PKI."""
    loaded = signers.SimpleSigner.load_pkcs12(str(p12), passphrase=pki.pki.p12_password.encode())
    assert loaded is not None
    signer = signers.SimpleSigner(
        signing_cert=loaded.signing_cert,
        signing_key=loaded.signing_key,
        # VGCA-style tools embed only the signer's certificate (docs/signing.md §7)
        cert_registry=SimpleCertificateStore() if leaf_only else loaded.cert_registry,
        prefer_pss=pss,
    )
    vc = TrustStore.from_test_pki(pki.pki).validation_context() if (ltv or lta) else None
    kwargs: dict[str, Any] = {}
    if pades:
        kwargs["subfilter"] = SigSeedSubFilter.PADES
    if certify:
        kwargs["certify"] = True
        kwargs["docmdp_permissions"] = docmdp
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        embed_validation_info=ltv or lta,
        use_pades_lta=lta,
        validation_context=vc,
        **kwargs,
    )
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    if box is not None:
        fields.append_signature_field(w, fields.SigFieldSpec(sig_field_name=field, on_page=0, box=box))
    tsa = timestamps.HTTPTimeStamper(pki.tsa_url) if (timestamp or lta) else None
    out = signers.PdfSigner(meta, signer, timestamper=tsa).sign_pdf(w)
    _close_vc(vc)
    return bytes(out.getvalue())


def append_content_change(pdf: bytes, new_text: bytes = b"QUYET DINH SO 999/QD-GIAMAO") -> bytes:
    """An incremental update that rewrites the page content after signing (tampering)."""
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    page_ref = w.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 760 Td (" + new_text + b") Tj ET")
    page[generic.NameObject("/Contents")] = w.add_object(stream)
    w.update_container(page)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def overwrite_signed_bytes(pdf: bytes, old: bytes = b"123/QD", new: bytes = b"999/QD") -> bytes:
    """Change bytes inside the signed byte range without touching the signature."""
    assert len(old) == len(new)
    assert old in pdf
    return pdf.replace(old, new, 1)


def make_pdf_with_text_field(name: str = "SoKyHieu") -> bytes:
    """A one-page PDF with an empty text form field (the document number, filled after the
    competent person signs: Decree 30/2020 Art. 14-15)."""
    r = IncrementalPdfFileWriter(BytesIO(make_pdf()))
    page_ref = r.root["/Pages"]["/Kids"][0]
    field = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
            generic.NameObject("/FT"): generic.NameObject("/Tx"),
            generic.NameObject("/T"): generic.TextStringObject(name),
            generic.NameObject("/V"): generic.TextStringObject(""),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (72, 700, 300, 720)]
            ),
            generic.NameObject("/P"): page_ref,
            generic.NameObject("/F"): generic.NumberObject(4),
            generic.NameObject("/DA"): generic.TextStringObject("/Helv 10 Tf 0 g"),
        }
    )
    field_ref = r.add_object(field)
    page = page_ref.get_object()
    page[generic.NameObject("/Annots")] = generic.ArrayObject([field_ref])
    r.update_container(page)
    r.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject(
        {generic.NameObject("/Fields"): generic.ArrayObject([field_ref])}
    )
    r.update_root()
    out = BytesIO()
    r.write(out)
    return out.getvalue()


def fill_text_field(pdf: bytes, value: str, name: str = "SoKyHieu") -> bytes:
    """An incremental update that only fills the text field's value (form filling)."""
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    for ref in w.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            field[generic.NameObject("/V")] = generic.TextStringObject(value)
            w.update_container(field)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def self_signed_p12(directory: Path, password: str, common_name: str = "Đỗ Văn Tự Ký") -> Path:
    """A PKCS#12 whose certificate its own key signed (no CA vouches for it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    path = directory / "self_signed.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"self-signed", key, cert, None, serialization.BestAvailableEncryption(password.encode())
        )
    )
    return path
