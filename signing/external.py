"""External signing: the key never reaches the hub.

Flow (pyHanko "interrupted signing"): ``prepare`` checks the officer's certificate (Circular
15/2025 §2.2), reserves the signature field, computes the PDF byte-range digest and the CMS signed
attributes, and stores the pending request; the officer's tool (token/VGCA-style signing client)
signs the returned ``data_to_sign`` (or its SHA-256 digest, for tools that sign a prehashed
value) and sends back either the raw signature or a complete CMS SignedData; ``complete`` checks
that the signature matches the prepared attributes and the prepared certificate, then embeds it
(with an RFC 3161 signature time-stamp for B-T). Pending requests expire.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import load_der_x509_certificate
from pydantic import BaseModel
from pyhanko.sign.signers import ExternalSigner
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, PdfTBSDocument
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

from schemas.errors import (
    ExternalSignatureMismatchError,
    ExternalSigningExpiredError,
    HubError,
    InvalidInputError,
    PermissionDeniedError,
    SigningError,
)
from schemas.timefmt import now_vn
from signing.models import CertificateCheck, SignatureLevel, SigningWarning, SignOptions
from signing.pdfa import pdfa_dss_settings, pdfa_part
from signing.service import DocumentSigner, VnPdfSigner, open_pdf, reserved_bytes_for
from signing.signer_service import SigningService
from signing.store import PendingSignature, PendingStore, check_request_id

__all__ = [
    "ExternalSigningRequest",
    "ExternalSigningService",
]


class ExternalSigningRequest(BaseModel):
    """What the officer's signing tool receives."""

    request_id: str
    expires_at: datetime
    field_name: str
    digest_algorithm: str
    signature_mechanism: str
    #: DER of the CMS signed attributes; sign these bytes (PKCS#1 v1.5 / PSS / ECDSA with hashing).
    data_to_sign_b64: str
    #: Hash of ``data_to_sign`` for tools that sign a prehashed digest.
    digest_to_sign_b64: str
    certificate: CertificateCheck | None = None
    warnings: list[SigningWarning] = []


@dataclass
class ExternalSigningService:
    """Prepare/complete external signatures; pending state lives in a :class:`PendingStore`."""

    service: SigningService
    store: PendingStore
    ttl: timedelta = timedelta(minutes=15)

    async def prepare(
        self,
        pdf: bytes,
        certificate_der: bytes,
        options: SignOptions,
        *,
        chain_der: list[bytes] | None = None,
        owner: str | None = None,
    ) -> ExternalSigningRequest:
        """Reserve the signature in ``pdf`` and answer what the officer's tool must sign;
        ``owner`` (the caller) is the only one who may complete it."""
        cert = _load_cert(certificate_der)
        chain = [_load_cert(c) for c in chain_der or []]
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple(chain)
        ext = ExternalSigner(cert, registry, signature_value=512, prefer_pss=options.prefer_pss)
        check = await self.service.check_certificate_of(cert, chain)
        doc_signer: DocumentSigner = self.service.document_signer(ext)
        writer = open_pdf(pdf)
        name, field_spec, style, text_params = doc_signer.field_and_style(writer, options)
        field_spec = doc_signer.reserve_fields(writer, options, field_spec)
        meta = doc_signer.metadata(name, options)
        pdf_signer = VnPdfSigner(meta, signer=ext, stamp_style=style, new_field_spec=field_spec)
        try:
            prep, _tbs, output = await pdf_signer.async_digest_doc_for_signing(
                writer,
                bytes_reserved=reserved_bytes_for(options.level, ext),
                appearance_text_params=text_params or None,
            )
        except HubError:
            raise
        except Exception as exc:
            raise SigningError(
                f"could not prepare the PDF: {exc}", message_vi="Không chuẩn bị được tệp PDF để ký"
            ) from exc
        finally:
            await doc_signer.aclose()
        md = meta.md_algorithm or "sha256"
        mech: algos.SignedDigestAlgorithm = ext.get_signature_mechanism_for_digest(md)
        signed_attrs: cms.CMSAttributes = await ext.signed_attrs(
            prep.document_digest,
            md,
            attr_settings=PdfCMSSignedAttributes(signing_time=pdf_signer.system_time_used),
            use_pades=True,
        )
        attrs_der = signed_attrs.dump()
        now = now_vn()
        request_id = secrets.token_urlsafe(24)
        pending = PendingSignature(
            request_id=request_id,
            created_at=now,
            expires_at=now + self.ttl,
            options=options,
            field_name=name,
            md_algorithm=md,
            signature_mechanism=mech["algorithm"].native,
            certificate_der=cert.dump(),
            chain_der=[c.dump() for c in chain],
            document_digest=prep.document_digest,
            reserved_region_start=prep.reserved_region_start,
            reserved_region_end=prep.reserved_region_end,
            signed_attrs_der=attrs_der,
            signed_at=pdf_signer.system_time_used,
            warnings=[w.model_dump() for w in (check.warnings if check else [])],
            owner=owner,
        )
        output.seek(0)
        self.store.put(pending, output.read())
        h = hashlib.new(md, attrs_der).digest()
        return ExternalSigningRequest(
            request_id=request_id,
            expires_at=pending.expires_at,
            field_name=name,
            digest_algorithm=md,
            signature_mechanism=pending.signature_mechanism,
            data_to_sign_b64=base64.b64encode(attrs_der).decode(),
            digest_to_sign_b64=base64.b64encode(h).decode(),
            certificate=check,
            warnings=list(check.warnings) if check else [],
        )

    async def complete(
        self,
        request_id: str,
        *,
        signature: bytes | None = None,
        cms_der: bytes | None = None,
        owner: str | None = None,
    ) -> tuple[bytes, PendingSignature]:
        """Embed the officer's signature (raw value or CMS) and return the signed PDF.

        A request prepared for an owner is completed by that owner only (anyone else: 403,
        and the request stays for its owner)."""
        check_request_id(request_id)
        if (signature is None) == (cms_der is None):
            raise InvalidInputError(
                "give exactly one of a raw signature or a CMS SignedData",
                message_vi="Cần gửi đúng một trong hai: chữ ký thô hoặc gói CMS",
            )
        found = self.store.get(request_id)
        if found is None:
            raise _expired()
        pending, prepared_pdf = found
        if pending.expires_at <= now_vn():
            self.store.delete(request_id)
            raise _expired()
        if pending.owner is not None and owner != pending.owner:
            raise PermissionDeniedError(
                "this signing request was prepared by another user",
                message_vi="Yêu cầu ký này do người dùng khác tạo",
            )
        cert = asn1_x509.Certificate.load(pending.certificate_der)
        if cms_der is not None:
            sig_cms = _check_returned_cms(cms_der, pending, cert)
        else:
            assert signature is not None
            _verify_raw(signature, pending, cert)
            registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
            registry.register_multiple([asn1_x509.Certificate.load(c) for c in pending.chain_der])
            ext = ExternalSigner(
                cert,
                registry,
                signature_value=_normalise_signature(signature, pending),
                signature_mechanism=_mechanism(pending),
            )
            timestamper = None
            if pending.options.level is not SignatureLevel.B_B:
                doc_signer = self.service.document_signer(ext)
                timestamper = doc_signer.timestamper
            try:
                sig_cms = await ext.async_sign_prescribed_attributes(
                    pending.md_algorithm,
                    signed_attrs=cms.CMSAttributes.load(pending.signed_attrs_der),
                    timestamper=timestamper,
                )
            finally:
                close = getattr(timestamper, "aclose", None)
                if close is not None:
                    await close()
        prepared = PreparedByteRangeDigest(
            document_digest=pending.document_digest,
            reserved_region_start=pending.reserved_region_start,
            reserved_region_end=pending.reserved_region_end,
        )
        out = io.BytesIO(prepared_pdf)
        try:
            await PdfTBSDocument.async_finish_signing(out, prepared, sig_cms)
            result = out.getvalue()
            if pending.options.level in (SignatureLevel.B_LT, SignatureLevel.B_LTA):
                result = await self._extend_lt(result, pending)
        except HubError:
            raise
        except Exception as exc:
            raise SigningError(
                f"could not embed the signature: {exc}", message_vi="Không gắn được chữ ký vào tệp PDF"
            ) from exc
        self.store.delete(request_id)
        return result, pending

    async def _extend_lt(self, data: bytes, pending: PendingSignature) -> bytes:
        """B-LT: add the validation data to the DSS; B-LTA: then a document time-stamp.

        Done as incremental updates after the signature, like pyHanko's own post-signing
        processing (ETSI EN 319 142-1 §5.4/§5.5). A PDF/A input gets the settings server-held
        keys get (:func:`signing.pdfa.pdfa_dss_settings`): no VRI, and the time-stamping
        authority's validation data written *before* the document time-stamp, so the last
        signature covers the whole file (ISO 19005-2 §6.4.3).
        """
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
        from pyhanko.sign.validation.dss import async_add_validation_info

        trust = self.service.config.trust_store
        vc = trust.validation_context(allow_fetching=True)
        reader = PdfFileReader(io.BytesIO(data))
        dss = pdfa_dss_settings() if pdfa_part(reader.root) is not None else DSSContentSettings()
        sig = next(s for s in reader.embedded_regular_signatures if s.field_name == pending.field_name)
        dss_out = await async_add_validation_info(sig, vc, add_vri_entry=dss.include_vri, output=io.BytesIO())
        result: bytes = dss_out.getvalue()
        if pending.options.level is SignatureLevel.B_LTA:
            doc_signer = self.service.document_signer(None)
            if doc_signer.timestamper is None:
                raise SigningError(
                    "B-LTA needs a time-stamping authority", message_vi="Mức B-LTA cần máy chủ dấu thời gian"
                )
            try:
                stamper = PdfTimeStamper(doc_signer.timestamper)
                ts_out = await stamper.async_timestamp_pdf(
                    IncrementalPdfFileWriter(io.BytesIO(result)),
                    pending.md_algorithm,
                    validation_context=vc,
                    bytes_reserved=2 * 12_288,
                    output=io.BytesIO(),
                    dss_settings=dss.get_settings_for_ts(),
                )
            finally:
                await doc_signer.aclose()
            result = ts_out.getvalue()
        return result


def _expired() -> ExternalSigningExpiredError:
    return ExternalSigningExpiredError(
        "signing request not found or expired; prepare the document again",
        message_vi="Yêu cầu ký không tồn tại hoặc đã hết hạn; hãy chuẩn bị lại văn bản",
    )


def _mismatch(what: str) -> ExternalSignatureMismatchError:
    return ExternalSignatureMismatchError(
        f"returned signature does not match the prepared document: {what}",
        message_vi="Chữ ký trả về không khớp với văn bản và chứng thư số đã chuẩn bị",
        details={"reason": what},
    )


def _load_cert(der_or_pem: bytes) -> asn1_x509.Certificate:
    from asn1crypto import pem

    try:
        data = der_or_pem
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        cert = asn1_x509.Certificate.load(data)
        _ = cert.subject
        return cert
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(
            "signer certificate is not a valid X.509 certificate",
            message_vi="Chứng thư số của người ký không hợp lệ",
        ) from exc


def _mechanism(pending: PendingSignature) -> algos.SignedDigestAlgorithm:
    if pending.signature_mechanism == "rsassa_pss":
        from pyhanko.sign.general import optimal_pss_params

        cert = asn1_x509.Certificate.load(pending.certificate_der)
        return algos.SignedDigestAlgorithm(
            {"algorithm": "rsassa_pss", "parameters": optimal_pss_params(cert, pending.md_algorithm)}
        )
    return algos.SignedDigestAlgorithm({"algorithm": pending.signature_mechanism})


def _normalise_signature(signature: bytes, pending: PendingSignature) -> bytes:
    """Accept ECDSA signatures as raw r||s (PKCS#11 style) as well as DER."""
    if (
        pending.signature_mechanism.endswith("ecdsa")
        and len(signature) in (64, 96, 132)
        and signature[0] != 0x30
    ):
        half = len(signature) // 2
        return encode_dss_signature(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]))
    return signature


def _verify_raw(signature: bytes, pending: PendingSignature, cert: asn1_x509.Certificate) -> None:
    if not signature or len(signature) > 2048:
        raise _mismatch("empty or oversized signature value")
    sig = _normalise_signature(signature, pending)
    public_key = load_der_x509_certificate(cert.dump()).public_key()
    data = pending.signed_attrs_der
    hash_algo = get_pyca_cryptography_hash(pending.md_algorithm)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if pending.signature_mechanism == "rsassa_pss":
                pss, h = process_pss_params(_mechanism(pending)["parameters"])
                public_key.verify(sig, data, pss, h)
            else:
                public_key.verify(sig, data, padding.PKCS1v15(), hash_algo)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, data, ec.ECDSA(hash_algo))
        else:
            raise _mismatch("unsupported key type")
    except InvalidSignature:
        raise _mismatch("signature does not verify with the prepared certificate") from None
    except ValueError:
        raise _mismatch("malformed signature value") from None


def _check_returned_cms(
    cms_der: bytes, pending: PendingSignature, cert: asn1_x509.Certificate
) -> cms.ContentInfo:
    try:
        ci = cms.ContentInfo.load(cms_der)
        if ci["content_type"].native != "signed_data":
            raise _mismatch("CMS is not SignedData")
        sd = ci["content"]
        (si,) = list(sd["signer_infos"])
        attrs = si["signed_attrs"]
        digest = next(a["values"][0].native for a in attrs if a["type"].native == "message_digest")
        certs = [c.chosen for c in sd["certificates"]]
    except HubError:
        raise
    except (ValueError, TypeError, KeyError, StopIteration) as exc:
        raise _mismatch("malformed CMS SignedData") from exc
    if digest != pending.document_digest:
        raise _mismatch("CMS message digest is not the prepared document digest")
    if not any(c.dump() == cert.dump() for c in certs):
        raise _mismatch("CMS is not signed with the prepared certificate")
    public_key = load_der_x509_certificate(cert.dump()).public_key()
    md = si["digest_algorithm"]["algorithm"].native
    try:
        signed = attrs.untag().dump() if hasattr(attrs, "untag") else attrs.dump()
        algo = si["signature_algorithm"]["algorithm"].native
        hash_algo = get_pyca_cryptography_hash(md)
        if isinstance(public_key, rsa.RSAPublicKey):
            if algo == "rsassa_pss":
                pss, h = process_pss_params(si["signature_algorithm"]["parameters"])
                public_key.verify(si["signature"].native, signed, pss, h)
            else:
                public_key.verify(si["signature"].native, signed, padding.PKCS1v15(), hash_algo)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(si["signature"].native, signed, ec.ECDSA(hash_algo))
        else:
            raise _mismatch("unsupported key type")
    except InvalidSignature:
        raise _mismatch("CMS signature does not verify") from None
    return ci
