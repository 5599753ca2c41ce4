"""Verify every signature and document time-stamp in a PDF.

Validation follows ETSI EN 319 102-1 through pyHanko's ``ades_lta_validation`` (PoE-aware, so a
signature time-stamp proves the certificate was valid *at signing time*, Decree 68/2024 Art. 31),
with pyHanko's incremental-update difference analysis for changes after signing. The EN 319 102-1
indication is mapped to the verdict Circular 15/2025 §2.3.4 asks for ("hợp lệ" / "không hợp lệ",
plus "không xác định" when evidence is missing) by :func:`_judge`, which also applies the
Vietnamese rules pyHanko does not know:

* the signer's claimed signing time is used as the time of signing when there is no time-stamp
  (what documents in circulation carry, docs/signing.md §7); a certificate that was expired or
  revoked at that claimed time makes the signature invalid;
* a path that does not reach a recognised root is "không hợp lệ" (Circular 15/2025 §2.3: the
  path must lead to the NEAC / Government root);
* overlapping signature widgets (Decree 30/2020 Appendix I: the seal covers a third of the
  personal signature) are never treated as tampering; only the diff analysis judges changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509
from pyhanko.pdf_utils import misc
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.generic import IndirectObject
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed, AdESStatus, AdESSubIndic
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
from pyhanko.sign.validation.ades import (
    AdESBasicValidationResult,
    AdESLTAValidationResult,
    AdESWithTimeValidationResult,
    ades_basic_validation,
    ades_lta_validation,
    ades_with_time_validation,
)
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.generic_cms import (
    extract_tst_data_iter,
    message_imprint_checker,
    validate_tst_signed_data,
)
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, async_validate_pdf_timestamp
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import (
    PdfSignatureStatus,
    SignatureCoverageLevel,
    StandardCMSSignatureStatus,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.ltv.poe import ValidationObjectType
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from schemas.errors import (
    EncryptedPdfError,
    InvalidPdfError,
    NotPdfError,
    PayloadTooLargeError,
    UnsignedPdfError,
)
from signing.revocation_fetch import NotChecked, PolicyFetcherBackend
from signing.verification.certinfo import certificate_info, managing_unit, name_attr
from signing.verification.diffpolicy import plain_pdf_text, vn_diff_policy
from signing.verification.indication import indication_for, subindication_text
from signing.verification.levels import (
    DocumentLayout,
    detect_level,
    has_long_term_data,
    has_signature_timestamp,
    signature_format,
)
from signing.verification.model import (
    CheckOutcome,
    CheckResult,
    DocumentTimestampReport,
    ModificationReport,
    PolicyInfo,
    Reason,
    RevocationEvidence,
    RevocationReport,
    RevocationSource,
    SignatureFormat,
    SignatureReport,
    SigningTimeSource,
    TimestampInfo,
    Verdict,
    VerificationReport,
    to_vn_time,
)
from signing.verification.policy import RevocationMode, VerificationPolicy
from signing.verification.reasons import not_checked_detail, reason, revocation_not_checked

__all__ = ["averify_pdf", "verify_pdf", "verify_pdf_file"]

log = logging.getLogger(__name__)

#: Exceptions a malformed PDF can surface while pyHanko parses it lazily.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    misc.PdfError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    EOFError,
    RecursionError,
    NotImplementedError,
    OverflowError,
    zlib.error,  # corrupt Flate streams
)

_COVERAGE_NAMES: dict[
    SignatureCoverageLevel, Literal["entire_file", "entire_revision", "contiguous_block", "unclear"]
] = {
    SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "contiguous_block",
    SignatureCoverageLevel.UNCLEAR: "unclear",
}


# --- entry points ---------------------------------------------------------------------------


def verify_pdf(
    data: bytes, policy: VerificationPolicy, *, file_name: str | None = None
) -> VerificationReport:
    """Synchronous wrapper around :func:`averify_pdf` (CLI, worker threads).

    Runs its own event loop: call it from a thread, not from inside a running loop (use
    :func:`averify_pdf` there).
    """
    return asyncio.run(averify_pdf(data, policy, file_name=file_name))


def verify_pdf_file(path: Path, policy: VerificationPolicy) -> VerificationReport:
    """Read ``path`` (refusing files above ``policy.max_pdf_bytes`` before reading) and verify it."""
    size = path.stat().st_size
    _check_size(size, policy)
    return verify_pdf(path.read_bytes(), policy, file_name=path.name)


async def averify_pdf(
    data: bytes, policy: VerificationPolicy, *, file_name: str | None = None
) -> VerificationReport:
    """Verify all signatures in ``data``.

    :raises PayloadTooLargeError: above ``policy.max_pdf_bytes``.
    :raises NotPdfError / EncryptedPdfError / UnsignedPdfError / InvalidPdfError: bad input.
    """
    _check_size(len(data), policy)
    reader = _open_reader(data)
    try:
        signatures = list(reader.embedded_regular_signatures)
        doc_timestamps = list(reader.embedded_timestamp_signatures)
        layout = DocumentLayout.of(reader, doc_timestamps)
        dss_knowledge = _dss_knowledge(reader)
    except _PARSE_ERRORS as exc:
        raise _broken(exc) from exc
    if not signatures and not doc_timestamps:
        raise UnsignedPdfError(
            "The PDF contains no digital signature",
            message_vi="Tệp PDF không có chữ ký số nào",
        )

    backend = (
        PolicyFetcherBackend(policy.fetch_settings, policy.trust_roots, policy.intermediates)
        if policy.allow_fetching
        else None
    )
    if backend is not None:
        backend.offer(dss_knowledge.known_certs)
    ctx = _Context(
        policy=policy, reader=reader, layout=layout, dss_knowledge=dss_knowledge, fetcher_backend=backend
    )
    sig_reports: list[SignatureReport] = []
    ts_reports: list[DocumentTimestampReport] = []
    try:
        for index, emb in enumerate(signatures, start=1):
            try:
                sig_reports.append(await _verify_signature(ctx, index, emb))
            except _PARSE_ERRORS as exc:
                raise _broken(exc, field=str(emb.field_name)) from exc
        for index, emb in enumerate(doc_timestamps, start=1):
            try:
                ts_reports.append(await _verify_document_timestamp(ctx, index, emb))
            except _PARSE_ERRORS as exc:
                raise _broken(exc, field=str(emb.field_name)) from exc
    finally:
        if backend is not None:
            await backend.close()

    verdict, reasons = _overall(sig_reports, ts_reports)
    return VerificationReport(
        file_name=file_name,
        file_sha256=hashlib.sha256(data).hexdigest(),
        file_size=len(data),
        verified_at=policy.validation_time or datetime.now(UTC),
        verdict=verdict,
        verdict_vi=verdict.vi,
        reasons=reasons,
        signature_count=len(sig_reports),
        document_timestamp_count=len(ts_reports),
        signatures=sig_reports,
        document_timestamps=ts_reports,
        policy=PolicyInfo(
            trust_anchors=policy.anchor_names(),
            revocation_mode=policy.revocation_mode.value,
            online_fetching=policy.allow_fetching,
        ),
    )


# --- input handling -------------------------------------------------------------------------


def _check_size(size: int, policy: VerificationPolicy) -> None:
    if size > policy.max_pdf_bytes:
        raise PayloadTooLargeError(
            f"PDF is {size} bytes; the limit is {policy.max_pdf_bytes} bytes",
            message_vi=f"Tệp PDF có dung lượng {size} byte, vượt giới hạn {policy.max_pdf_bytes} byte",
            details={"size": size, "limit": policy.max_pdf_bytes},
        )


def _broken(exc: BaseException, *, field: str | None = None) -> InvalidPdfError:
    where = f" (signature field {field})" if field else ""
    where_vi = f" (trường chữ ký {field})" if field else ""
    log.info("unreadable PDF%s: %s: %s", where, type(exc).__name__, exc)
    return InvalidPdfError(
        f"The PDF is damaged or malformed{where}.",
        message_vi=f"Tệp PDF bị hỏng hoặc sai cấu trúc{where_vi}.",
        details={"error": type(exc).__name__},
    )


def _open_reader(data: bytes) -> PdfFileReader:
    if b"%PDF-" not in data[:1024]:
        raise NotPdfError(
            "The upload is not a PDF file (no %PDF- header)",
            message_vi="Tệp tải lên không phải tệp PDF (thiếu phần đầu %PDF-)",
        )
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        encrypted = reader.encrypted
        if not encrypted:
            _ = reader.root
            _ = reader.xrefs.total_revisions
    except _PARSE_ERRORS as exc:
        raise _broken(exc) from exc
    if encrypted:
        raise EncryptedPdfError(
            "The PDF is encrypted; decrypt it before verification",
            message_vi="Tệp PDF đã bị mã hóa; cần giải mã trước khi kiểm tra chữ ký số",
        )
    return reader


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _dss_knowledge(reader: PdfFileReader) -> LocalKnowledge:
    """OCSP responses, CRLs and certificates stored in the DSS (ISO 32000-2 §12.8.4.3)."""
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return LocalKnowledge()
    try:
        ocsps = [
            cont
            for ref in dss.ocsps
            for cont in OCSPContainer.load_multi(
                asn1_ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
            )
        ]
        crls = [
            CRLContainer(asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL)))
            for ref in dss.crls
        ]
        certs = list(dss.load_certs())
    except _PARSE_ERRORS as exc:
        # A damaged DSS only costs the embedded validation data; signatures are still checked
        # (online data, or "không xác định" when the policy requires revocation data).
        log.warning("ignoring unreadable DSS: %s: %s", type(exc).__name__, exc)
        return LocalKnowledge()
    return LocalKnowledge(known_ocsps=ocsps, known_crls=crls, known_certs=certs)


def _carried_certs(emb: EmbeddedPdfSignature) -> list[x509.Certificate]:
    """Certificates a signature carries: signer, CMS ``certificates``, and those inside its
    signature time-stamp tokens."""
    certs = [emb.signer_cert, *emb.other_embedded_certs]
    for tst in extract_tst_data_iter(emb.signer_info, signed=False):
        certs.extend(c.chosen for c in tst["certificates"] or () if c.name == "certificate")
    return certs


def _adobe_knowledge(emb: EmbeddedPdfSignature) -> LocalKnowledge:
    """Revocation data in the ``adbe-revocationInfoArchival`` signed attribute (Adobe-style LTV)."""
    ocsps: list[OCSPContainer] = []
    crls: list[CRLContainer] = []
    for attr in emb.signer_info["signed_attrs"] or ():
        if attr["type"].native != "adobe_revocation_info_archival":
            continue
        for ria in attr["values"]:
            ocsps.extend(OCSPContainer(item) for item in ria["ocsp"] or ())
            crls.extend(CRLContainer(item) for item in ria["crl"] or ())
    return LocalKnowledge(known_ocsps=ocsps, known_crls=crls)


def _knowledge_digests(*knowledge: LocalKnowledge) -> frozenset[bytes]:
    out: set[bytes] = set()
    for k in knowledge:
        out.update(_digest(o.ocsp_response_data.dump()) for o in k.known_ocsps)
        out.update(_digest(c.crl_data.dump()) for c in k.known_crls)
    return frozenset(out)


# --- per-signature validation -------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    policy: VerificationPolicy
    reader: PdfFileReader
    layout: DocumentLayout
    dss_knowledge: LocalKnowledge
    #: One policy-bound fetcher backend per verified document (None when offline).
    fetcher_backend: PolicyFetcherBackend | None

    def offer_certs(self, emb: EmbeddedPdfSignature) -> None:
        """Links for the chain-to-anchor check made before any fetch (docs/signing.md §12.1);
        each link is signature-checked, so what a document carries cannot forge trust."""
        if self.fetcher_backend is not None:
            self.fetcher_backend.offer(_carried_certs(emb))

    def timing(self) -> ValidationTimingInfo:
        now = self.policy.validation_time or datetime.now(UTC)
        return ValidationTimingInfo(
            validation_time=now,
            best_signature_time=now,
            point_in_time_validation=self.policy.validation_time is not None,
        )

    def revocation_policy(self) -> CertRevTrustPolicy:
        if self.policy.revocation_mode is RevocationMode.REQUIRE:
            rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
            ca_rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
        else:
            rule = RevocationCheckingRule.CHECK_IF_DECLARED_SOFT
            ca_rule = RevocationCheckingRule.CHECK_IF_DECLARED_SOFT
        return CertRevTrustPolicy(
            RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=ca_rule)
        )

    def spec(self) -> PdfSignatureValidationSpec:
        trust = SimpleTrustManager.build(trust_roots=list(self.policy.trust_roots))
        cert_policy = CertValidationPolicySpec(trust_manager=trust, revinfo_policy=self.revocation_policy())
        ts_policy = CertValidationPolicySpec(
            trust_manager=trust,
            revinfo_policy=CertRevTrustPolicy(
                RevocationCheckingPolicy(
                    ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
                    intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
                )
            ),
        )
        fetch_rule = (
            RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
            if self.policy.allow_fetching
            else RevinfoOnlineFetchingRule.LOCAL_ONLY
        )
        sig_spec = SignatureValidationSpec(
            cert_validation_policy=cert_policy,
            ts_cert_validation_policy=ts_policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=fetch_rule, fetcher_backend=self.fetcher_backend
            ),
            local_knowledge=self.local_knowledge(),
            # Circular 15/2025 Annex II: Key Usage checking is optional; accept either bit.
            key_usage_settings=KeyUsageConstraints(
                key_usage={"non_repudiation", "digital_signature"}, match_all_key_usages=False
            ),
        )
        return PdfSignatureValidationSpec(
            signature_validation_spec=sig_spec,
            diff_policy=vn_diff_policy() if self.policy.diff_analysis else None,
        )

    def local_knowledge(self) -> LocalKnowledge:
        """Configured intermediates, with proof of existence "now" (they are in our own store)."""
        base = LocalKnowledge(known_certs=list(self.policy.intermediates))
        now = self.policy.validation_time or datetime.now(UTC)
        return LocalKnowledge(
            known_certs=list(self.policy.intermediates),
            known_poes=list(base.assert_existence_known_at(now)),
        )

    def timestamp_context(self) -> ValidationContext:
        return ValidationContext(
            trust_roots=list(self.policy.trust_roots),
            other_certs=list(self.policy.intermediates),
            allow_fetching=self.policy.allow_fetching,
            fetcher_backend=self.fetcher_backend,
            revocation_mode="soft-fail",
            moment=self.policy.validation_time,
        )


def _sub_filter(emb: EmbeddedPdfSignature) -> str:
    value = emb.sig_object.get("/SubFilter")
    return str(value) if value is not None else ""


def _modifications(emb: EmbeddedPdfSignature, reader: PdfFileReader) -> ModificationReport:
    coverage = emb.coverage
    diff = emb.diff_result
    later = reader.xrefs.total_revisions - 1 - emb.signed_revision
    detail: str | None = None
    filled: list[str] = []
    level: ModificationLevel | None
    if diff is None:
        level = ModificationLevel.NONE if coverage == SignatureCoverageLevel.ENTIRE_FILE else None
    elif isinstance(diff, DiffResult):
        level = diff.modification_level
        filled = _filled_fields(diff, reader, emb.signed_revision)
    else:  # SuspiciousModification
        level = ModificationLevel.OTHER
        detail = plain_pdf_text(str(diff))
    docmdp = emb.docmdp_level
    if coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        permitted: bool | None = False
    elif level is None:
        permitted = None
    else:
        permitted = not (
            level == ModificationLevel.OTHER or (docmdp is not None and level.value > docmdp.value)
        )
    return ModificationReport(
        coverage=_COVERAGE_NAMES.get(coverage, "unclear") if coverage is not None else "unclear",
        modification_level=level.name.lower() if level is not None else None,
        permitted=permitted,
        tampered=permitted is False,
        later_revisions=later,
        detail=detail,
        filled_fields=filled,
    )


def _filled_fields(diff: DiffResult, reader: PdfFileReader, signed_revision: int) -> list[str]:
    """The non-signature form fields pyHanko's diff saw changed whose value really differs
    from the one this signature covered."""
    if not diff.changed_form_fields:
        return []
    then = _field_values(reader.get_historical_resolver(signed_revision).root)
    now = _field_values(reader.root)
    return sorted(name for name in diff.changed_form_fields if name in now and now[name] != then.get(name))


#: Most form fields walked when naming the filled ones (a hostile form cannot loop or exhaust).
_MAX_FORM_FIELDS = 10_000


def _field_values(root: Any) -> dict[str, str | None]:
    """``/V`` of every terminal non-signature field (ISO 32000-1 §13.7.3.1), by full name."""
    values: dict[str, str | None] = {}
    acroform = root.get("/AcroForm")
    stack = [(kid, "") for kid in (acroform.get_object().get("/Fields") or ()) if acroform is not None]
    seen: set[object] = set()
    while stack and len(seen) < _MAX_FORM_FIELDS:
        ref, parent = stack.pop()
        key = ref.reference if isinstance(ref, IndirectObject) else id(ref)
        field = ref.get_object()
        if key in seen or not hasattr(field, "get"):
            continue  # a field reached twice (a cycle in /Kids) is walked once
        seen.add(key)
        name = f"{parent}.{field.get('/T')}" if parent and "/T" in field else str(field.get("/T", parent))
        kids = [kid for kid in field.get("/Kids") or () if "/T" in kid.get_object()]
        if kids:
            stack.extend((kid, name) for kid in kids)
        elif field.get("/FT") != "/Sig":
            value = field.get("/V")
            values[name] = str(value) if value is not None else None
    return values


@dataclass(frozen=True)
class _RevinfoSummary:
    ocsps: int
    crls: int
    source: RevocationSource
    evidence: list[RevocationEvidence]


def _signer_revinfo(
    result: AdESBasicValidationResult[Any],
    signer: x509.Certificate,
    embedded: frozenset[bytes],
) -> _RevinfoSummary:
    """OCSP responses / CRLs about the signer's certificate that the validation used, and where
    they came from (kept as evidence: Circular 15/2025 §2.3 "lưu trữ ... kết quả kiểm tra")."""
    evidence: list[RevocationEvidence] = []
    seen: set[bytes] = set()
    for vo in result.validation_objects:
        value = vo.value
        if vo.object_type == ValidationObjectType.OCSP_RESPONSE and isinstance(value, OCSPContainer):
            single = _ocsp_single_for(value.ocsp_response_data, signer)
            if single is None:
                continue
            raw = value.ocsp_response_data.dump()
            digest = _digest(raw)
            if digest in seen:
                continue
            seen.add(digest)
            basic = value.ocsp_response_data["response_bytes"]["response"].parsed
            tbs = basic["tbs_response_data"]
            responder = tbs["responder_id"]
            if responder.name == "by_name":
                responder_name = name_attr(responder.chosen, "common_name")
            else:  # by_key: name the certificate the responder shipped, if any
                certs = basic["certs"].native if basic["certs"] else None
                responder_name = name_attr(basic["certs"][0].subject, "common_name") if certs else None
            next_update = single["next_update"].native
            evidence.append(
                RevocationEvidence(
                    kind="ocsp",
                    source=RevocationSource.EMBEDDED if digest in embedded else RevocationSource.FETCHED,
                    issued_at=tbs["produced_at"].native,
                    next_update=next_update,
                    status=str(single["cert_status"].name),
                    authority=responder_name,
                    sha256=digest.hex(),
                )
            )
        elif vo.object_type == ValidationObjectType.CRL and isinstance(value, CRLContainer):
            crl_obj: asn1_crl.CertificateList = value.crl_data
            if crl_obj.issuer != signer.issuer:
                continue
            raw = crl_obj.dump()
            digest = _digest(raw)
            if digest in seen:
                continue
            seen.add(digest)
            revoked = any(
                entry["user_certificate"].native == signer.serial_number
                for entry in crl_obj["tbs_cert_list"]["revoked_certificates"] or ()
            )
            evidence.append(
                RevocationEvidence(
                    kind="crl",
                    source=RevocationSource.EMBEDDED if digest in embedded else RevocationSource.FETCHED,
                    issued_at=crl_obj["tbs_cert_list"]["this_update"].native,
                    next_update=crl_obj["tbs_cert_list"]["next_update"].native,
                    status="revoked" if revoked else "good",
                    authority=name_attr(crl_obj.issuer, "common_name"),
                    sha256=digest.hex(),
                )
            )
    sources = {e.source for e in evidence}
    if not sources:
        src = RevocationSource.NONE
    elif len(sources) > 1:
        src = RevocationSource.MIXED
    else:
        src = sources.pop()
    return _RevinfoSummary(
        ocsps=sum(1 for e in evidence if e.kind == "ocsp"),
        crls=sum(1 for e in evidence if e.kind == "crl"),
        source=src,
        evidence=evidence,
    )


def _ocsp_single_for(response: asn1_ocsp.OCSPResponse, cert: x509.Certificate) -> Any:
    """The SingleResponse about ``cert`` (serial and issuer-name hash match), if any."""
    try:
        basic = response["response_bytes"]["response"].parsed
        for single in basic["tbs_response_data"]["responses"]:
            cert_id = single["cert_id"]
            if cert_id["serial_number"].native != cert.serial_number:
                continue
            algo = cert_id["hash_algorithm"]["algorithm"].native
            name_hash = hashlib.new(algo, cert.issuer.dump()).digest()
            if name_hash == cert_id["issuer_name_hash"].native:
                return single
    except (KeyError, ValueError, TypeError):
        return None
    return None


def _ocsp_covers(response: asn1_ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    return _ocsp_single_for(response, cert) is not None


def _timestamp_info(status: TimestampSignatureStatus) -> TimestampInfo:
    tsa = name_attr(status.signing_cert.subject, "common_name") if status.signing_cert is not None else None
    ok = status.intact and status.valid and status.trusted
    return TimestampInfo(
        time=status.timestamp,
        tsa_name=tsa,
        intact=bool(status.intact and status.valid),
        trusted=bool(status.trusted),
        outcome=CheckOutcome.PASSED if ok else CheckOutcome.FAILED,
    )


def _fmt(dt: datetime | None) -> str:
    return to_vn_time(dt).strftime("%d/%m/%Y %H:%M:%S %z") if dt is not None else "?"


async def _verify_signature(ctx: _Context, index: int, emb: EmbeddedPdfSignature) -> SignatureReport:
    policy = ctx.policy
    ctx.offer_certs(emb)
    spec = ctx.spec()
    emb.compute_integrity_info(  # type: ignore[no-untyped-call]
        diff_policy=spec.diff_policy, skip_diff=spec.diff_policy is None
    )
    signer = emb.signer_cert
    sub_filter = _sub_filter(emb)
    fmt = signature_format(sub_filter)
    dss = ctx.dss_knowledge
    covers = any(_ocsp_covers(o.ocsp_response_data, signer) for o in dss.known_ocsps) or any(
        c.crl_data.issuer == signer.issuer for c in dss.known_crls
    )
    level = detect_level(emb, ctx.layout, sub_filter, dss_covers_signer=covers)
    mods = _modifications(emb, ctx.reader)

    result: AdESBasicValidationResult[Any] | None
    failure: str | None
    try:
        result = await _run_ades(ctx, emb, spec)
        subindic: AdESSubIndic = result.ades_subindic
        failure = result.failure_msg
    except (SignatureValidationError, PathBuildingError, PathValidationError) as exc:
        # pyHanko reports most problems through the result; the rest are format problems.
        log.info("signature %s: validation raised %s", index, type(exc).__name__)
        result = None
        subindic = getattr(exc, "ades_subindication", None) or AdESFailure.FORMAT_FAILURE
        failure = str(exc)

    status: StandardCMSSignatureStatus | None = result.api_status if result is not None else None

    # --- time-stamp & signing time ---------------------------------------------------------
    ts_status: TimestampSignatureStatus | None = None
    if isinstance(result, AdESLTAValidationResult) and result.signature_timestamp_status is not None:
        candidate = result.signature_timestamp_status.api_status
        if isinstance(candidate, TimestampSignatureStatus):
            ts_status = candidate
    if ts_status is None and status is not None:
        ts_status = status.timestamp_validity
    if ts_status is None and has_signature_timestamp(emb):
        ts_status = await _validate_signature_timestamp(ctx, emb)
    ts_info = _timestamp_info(ts_status) if ts_status is not None else None
    claimed = emb.self_reported_timestamp
    if ts_status is not None and ts_status.intact and ts_status.valid:
        signing_time: datetime | None = ts_status.timestamp
        time_source = SigningTimeSource.TIMESTAMP
    elif claimed is not None:
        signing_time, time_source = claimed, SigningTimeSource.CLAIMED
    else:
        signing_time, time_source = None, SigningTimeSource.NONE

    if result is not None:
        embedded = _knowledge_digests(ctx.dss_knowledge, _adobe_knowledge(emb))
        revinfo = _signer_revinfo(result, signer, embedded)
    else:
        revinfo = _RevinfoSummary(0, 0, RevocationSource.NONE, [])
    ocsps, crls, src = revinfo.ocsps, revinfo.crls, revinfo.source

    reasons = _judge(
        subindic=subindic,
        failure=failure,
        status=status,
        signer=signer,
        signing_time=signing_time,
        time_source=time_source,
        mods=mods,
        policy=policy,
        revinfo_found=bool(ocsps or crls),
    )

    revoked_details = status.revocation_details if status is not None else None
    revoked_before_signing = bool(
        revoked_details is not None
        and (signing_time is None or revoked_details.revocation_date <= signing_time)
    )
    if revoked_before_signing:
        rev_outcome = CheckOutcome.FAILED
    elif ocsps or crls:
        rev_outcome = CheckOutcome.PASSED
    else:
        rev_outcome = CheckOutcome.UNKNOWN
    not_checked: NotChecked | None = None
    if rev_outcome is CheckOutcome.UNKNOWN:
        backend = ctx.fetcher_backend
        not_checked = backend.not_checked_reason(signer) if backend is not None else NotChecked.OFFLINE
    revocation = RevocationReport(
        outcome=rev_outcome,
        not_checked_reason=not_checked.value if not_checked is not None else None,
        revoked=revoked_details is not None,
        revoked_at=revoked_details.revocation_date if revoked_details is not None else None,
        revocation_reason=str(revoked_details.revocation_reason.native)
        if revoked_details is not None
        else None,
        source=src,
        ocsp_responses=ocsps,
        crls=crls,
        evidence=revinfo.evidence,
    )
    codes = {r.code for r in reasons}
    already_invalid = any(r.severity == "error" for r in reasons)
    if rev_outcome is CheckOutcome.UNKNOWN and not already_invalid and "revocation_unavailable" not in codes:
        # Circular 15/2025 Annex II: when neither CRL nor OCSP could be checked, warn.
        reasons.append(revocation_not_checked(not_checked or NotChecked.NOT_ATTEMPTED))
    if time_source is SigningTimeSource.CLAIMED:
        reasons.append(reason("claimed_time_only"))
    if fmt is SignatureFormat.PKCS7 and not has_long_term_data(emb, ctx.layout):
        reasons.append(reason("pkcs7_without_ltv"))
    if mods.permitted and mods.later_revisions > 0:
        reasons.append(reason("later_changes_permitted"))
        if mods.filled_fields:
            reasons.append(reason("form_fields_filled", fields=", ".join(mods.filled_fields)))

    # --- derived check results ------------------------------------------------------------
    integrity = _integrity(status, subindic, mods)
    chain = _chain_result(status, codes)
    valid_at_signing = _valid_at_signing(codes, signing_time, revoked_before_signing, chain, revocation)

    verdict = _verdict_of(reasons)
    indication, subindication = indication_for(
        verdict,
        subindic,
        reasons,
        not_yet_valid=signing_time is not None and signing_time < signer.not_valid_before,
    )
    path_certs: list[x509.Certificate] = []
    anchor: str | None = None
    if status is not None and status.validation_path is not None:
        path_certs = list(status.validation_path.iter_certs(include_root=True))
        anchor = str(path_certs[0].subject.human_friendly) if path_certs else None
    if not path_certs:
        path_certs = [signer, *emb.other_embedded_certs]

    docmdp = emb.docmdp_level
    certified = bool(ctx.reader.root.get("/Perms") is not None and _is_certification(emb))
    return SignatureReport(
        index=index,
        field_name=str(emb.field_name),
        is_certification=certified,
        docmdp_permission=int(docmdp.value) if (certified and docmdp is not None) else None,
        sub_filter=sub_filter.lstrip("/"),
        signature_format=fmt,
        pades_level=level,
        digest_algorithm=str(emb.md_algorithm),
        signature_algorithm=str(emb.signer_info["signature_algorithm"].signature_algo),
        issuing_ca=name_attr(signer.issuer, "common_name") or str(signer.issuer.human_friendly),
        signer_name=name_attr(signer.subject, "common_name") or str(signer.subject.human_friendly),
        managing_unit=managing_unit(signer),
        signing_time=signing_time,
        signing_time_source=time_source,
        integrity=integrity,
        valid_at_signing_time=valid_at_signing,
        certificate_valid_from=signer.not_valid_before,
        certificate_valid_to=signer.not_valid_after,
        claimed_signing_time=claimed,
        signer_certificate=certificate_info(signer),
        certificate_chain=[certificate_info(c) for c in path_certs],
        trust_anchor=anchor,
        chain=chain,
        revocation=revocation,
        signature_timestamp=ts_info,
        long_term_validation_data=has_long_term_data(emb, ctx.layout),
        has_signature_timestamp=has_signature_timestamp(emb),
        modifications=mods,
        ades_indication=indication,
        ades_subindication=subindication,
        verdict=verdict,
        verdict_vi=verdict.vi,
        reasons=reasons,
    )


async def _run_ades(
    ctx: _Context, emb: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec
) -> AdESBasicValidationResult[Any]:
    """Pick the EN 319 102-1 validation process that fits the signature.

    * no signature time-stamp (B-B, plain adbe.pkcs7): basic validation (§5.3) at current time;
    * with a signature time-stamp: validation with time (§5.5); only when that is indeterminate
      for lack of proof of existence (certificate expired/revoked since) is the long-term process
      (§5.6.3) run, which uses embedded revocation data and document time-stamps for past
      validation. pyHanko's long-term process always attempts past validation, which fails for a
      B-T signature without embedded revocation data even when the current-time check passed.
    """
    sig_spec = spec.signature_validation_spec
    base = sig_spec.local_knowledge
    adobe = _adobe_knowledge(emb)
    dss = ctx.dss_knowledge
    knowledge = LocalKnowledge(
        known_ocsps=[*base.known_ocsps, *dss.known_ocsps, *adobe.known_ocsps],
        known_crls=[*base.known_crls, *dss.known_crls, *adobe.known_crls],
        known_certs=[*base.known_certs, *dss.known_certs],
        known_poes=list(base.known_poes),
    )
    augmented = dataclasses.replace(sig_spec, local_knowledge=knowledge)
    timing = ctx.timing()
    kwargs: dict[str, Any] = {
        "timing_info": timing,
        "raw_digest": emb.compute_digest(),
        "extra_status_kwargs": emb.summarise_integrity_info(),
        "status_cls": PdfSignatureStatus,
    }
    if not has_signature_timestamp(emb):
        # pyHanko's basic process always builds a StandardCMSSignatureStatus (it ignores
        # ``status_cls``), so the PDF integrity kwargs must not be passed; the diff analysis
        # result is reported separately by _modifications().
        return await ades_basic_validation(
            emb.signed_data, augmented, timing_info=timing, raw_digest=kwargs["raw_digest"]
        )
    with_time = await ades_with_time_validation(emb.signed_data, augmented, **kwargs)
    with_time = _check_period_at_best_time(with_time, emb.signer_cert)
    if with_time.ades_subindic.status is not AdESStatus.INDETERMINATE:
        return with_time
    lta = await ades_lta_validation(emb, spec, timing_info=timing)
    if lta.ades_subindic.status is not AdESStatus.INDETERMINATE:
        return lta
    return with_time


def _check_period_at_best_time(
    result: AdESWithTimeValidationResult, signer: x509.Certificate
) -> AdESWithTimeValidationResult:
    """EN 319 102-1 §5.5.4: the signing certificate must be within its validity period at the
    best-signature-time. pyHanko 0.38 can report PASSED for a certificate that had already
    expired when the signature time-stamp was issued; correct that to OUT_OF_BOUNDS_NO_POE
    (after expiry) or FAILED/NOT_YET_VALID (before issuance)."""
    if result.ades_subindic != AdESPassed.OK:
        return result
    best = result.best_signature_time
    if best < signer.not_valid_before:
        return dataclasses.replace(
            result,
            ades_subindic=AdESFailure.NOT_YET_VALID,
            failure_msg="signature time-stamp predates the certificate validity period",
        )
    if best > signer.not_valid_after:
        return dataclasses.replace(
            result,
            ades_subindic=AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
            failure_msg="certificate already expired at the signature time-stamp",
        )
    return result


def _usable_for_signing(cert: x509.Certificate) -> bool:
    """Key Usage allows signatures: digitalSignature or nonRepudiation (RFC 5280 §4.2.1.3)."""
    usage = cert.key_usage_value
    if usage is None:
        return True
    bits = set(usage.native)
    return bool(bits & {"digital_signature", "non_repudiation"})


async def _validate_signature_timestamp(
    ctx: _Context, emb: EmbeddedPdfSignature
) -> TimestampSignatureStatus | None:
    """Validate the signature time-stamp token on its own (when the AdES process stopped early)."""
    for tst in extract_tst_data_iter(emb.signer_info, signed=False):
        try:
            kwargs = await validate_tst_signed_data(
                tst, ctx.timestamp_context(), message_imprint_checker(emb.signer_info)
            )
        except (SignatureValidationError, PathBuildingError, PathValidationError, ValueError):
            continue
        return TimestampSignatureStatus(**kwargs)
    return None


def _is_certification(emb: EmbeddedPdfSignature) -> bool:
    """True when this signature carries a DocMDP transform (ISO 32000-1 §12.8.2.2)."""
    for ref in emb.sig_object.get("/Reference", ()):
        ref = ref.get_object()
        if ref.get("/TransformMethod") == "/DocMDP":
            return True
    return False


def _judge(
    *,
    subindic: AdESSubIndic,
    failure: str | None,
    status: StandardCMSSignatureStatus | None,
    signer: x509.Certificate,
    signing_time: datetime | None,
    time_source: SigningTimeSource,
    mods: ModificationReport,
    policy: VerificationPolicy,
    revinfo_found: bool,
) -> list[Reason]:
    """Map the EN 319 102-1 sub-indication plus the diff analysis to bilingual reasons."""
    out: list[Reason] = []
    if failure:  # the library's own words stay in the log, never in the report
        log.info("validation ended %s: %s", subindic.standard_name, failure)
    detail, detail_vi = subindication_text(subindic)
    said = {"detail": detail, "detail_vi": detail_vi}
    valid_from, valid_to = signer.not_valid_before, signer.not_valid_after
    in_period = signing_time is not None and valid_from <= signing_time <= valid_to
    revoked = status.revocation_details if status is not None else None
    outside_period = reason(
        "not_valid_at_signing_time",
        valid_from=_fmt(valid_from),
        valid_to=_fmt(valid_to),
        when=_fmt(signing_time),
    )

    if subindic == AdESFailure.HASH_FAILURE or (status is not None and not status.intact):
        out.append(reason("hash_failure"))
    elif subindic == AdESFailure.SIG_CRYPTO_FAILURE or (status is not None and not status.valid):
        out.append(reason("signature_crypto_failure"))
    elif subindic == AdESFailure.FORMAT_FAILURE:
        out.append(reason("format_failure", **said))
    elif subindic == AdESFailure.REVOKED:
        out.append(reason("revoked", when=_fmt(revoked.revocation_date if revoked else None)))
    elif subindic in (AdESIndeterminate.REVOKED_NO_POE, AdESIndeterminate.REVOKED_CA_NO_POE):
        when = revoked.revocation_date if revoked else None
        if when is not None and signing_time is not None and signing_time >= when:
            out.append(reason("revoked", when=_fmt(when)))
        else:
            out.append(reason("revoked_no_poe", when=_fmt(when)))
    elif subindic in (AdESFailure.NOT_YET_VALID, AdESIndeterminate.NOT_YET_VALID, AdESIndeterminate.EXPIRED):
        out.append(outside_period)
    elif subindic in (AdESIndeterminate.OUT_OF_BOUNDS_NO_POE, AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED):
        if signing_time is not None and not in_period:
            out.append(outside_period)
        else:
            out.append(reason("expired_no_poe", valid_to=_fmt(valid_to)))
    elif (
        policy.revocation_mode is RevocationMode.REQUIRE
        and not revinfo_found
        and subindic
        in (
            AdESIndeterminate.TRY_LATER,
            AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE,
            AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE,
        )
    ):
        out.append(reason("revocation_unavailable"))
    elif subindic in (
        AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE,
        AdESIndeterminate.SIG_CONSTRAINTS_FAILURE,
    ) and not _usable_for_signing(signer):
        out.append(reason("key_usage", detail=", ".join(sorted(signer.key_usage_value.native or ())) or "-"))
    elif _self_signed_untrusted(signer, policy) and subindic.status is AdESStatus.INDETERMINATE:
        out.append(reason("self_signed", subject=_cn(signer.subject)))
    elif subindic == AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND:
        out.append(reason("untrusted_chain", issuer=_cn(signer.issuer)))
    elif subindic in (
        AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE,
        AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE,
    ):
        out.append(reason("chain_failure", **said))
    elif subindic == AdESIndeterminate.SIG_CONSTRAINTS_FAILURE:
        out.append(
            reason("key_usage" if "usage" in (failure or "").lower() else "generic_indeterminate", **said)
        )
    elif subindic in (
        AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE,
        AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    ):
        out.append(reason("weak_algorithm", **said))
    elif subindic in (AdESIndeterminate.TRY_LATER, AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE):
        out.append(reason("revocation_unavailable"))
    elif subindic == AdESIndeterminate.NO_POE:
        out.append(reason("no_poe", **said))
    elif subindic != AdESPassed.OK:
        out.append(
            reason("generic_indeterminate", detail=f"{subindic.standard_name}: {detail}", detail_vi=detail_vi)
        )

    # A certificate outside its validity period at the (claimed) signing time is invalid even if
    # the current-time validation happened to pass (Decree 68/2024 Art. 31 k1a).
    if (
        subindic == AdESPassed.OK
        and signing_time is not None
        and not in_period
        and time_source is not SigningTimeSource.NONE
    ):
        out.append(outside_period)

    if status is not None and status.timestamp_validity is not None:
        ts = status.timestamp_validity
        if not (ts.intact and ts.valid and ts.trusted):
            if ts.intact and ts.valid:
                out.append(_untrusted_tsa("timestamp_invalid"))
            else:
                out.append(
                    reason(
                        "timestamp_invalid",
                        detail="token digest mismatch",
                        detail_vi="giá trị băm không khớp",
                    )
                )

    if (changed := _modification_reason(mods)) is not None:
        out.append(changed)
    return out


def _cn(name: x509.Name) -> str:
    return name_attr(name, "common_name") or str(name.human_friendly)


def _self_signed_untrusted(signer: x509.Certificate, policy: VerificationPolicy) -> bool:
    """A self-issued signer certificate that is not itself a configured trust anchor."""
    return signer.self_issued and all(signer.dump() != root.dump() for root in policy.trust_roots)


def _untrusted_tsa(code: str) -> Reason:
    """A time-stamp token that is intact but issued by a TSA outside the trust list."""
    return reason(
        code,
        detail="untrusted time-stamping authority",
        detail_vi="đơn vị cấp dấu thời gian không được tin cậy",
    )


_MODIFICATION_TEXT = {
    "other": (
        "the content or structure of the document changed",
        "có thay đổi nội dung hoặc cấu trúc tài liệu",
    ),
    "annotations": ("annotations were added or changed", "có thêm hoặc sửa chú thích"),
    "form_filling": ("form fields were filled or signatures added", "có điền biểu mẫu hoặc thêm chữ ký"),
    "lta_updates": ("long-term validation data was added", "có bổ sung dữ liệu kiểm tra dài hạn"),
}


def _modification_reason(mods: ModificationReport) -> Reason | None:
    """What the revisions after a signature or document time-stamp say against it, if anything."""
    if mods.coverage in ("unclear", "contiguous_block"):
        return reason("coverage_unclear")
    if not mods.tampered:
        return None
    level = mods.modification_level or "other"
    en, vi = _MODIFICATION_TEXT.get(level, _MODIFICATION_TEXT["other"])
    return reason("modified_after_signing", detail=en, detail_vi=vi)


def _verdict_of(reasons: Iterable[Reason]) -> Verdict:
    severities = {r.severity for r in reasons}
    if "error" in severities:
        return Verdict.INVALID
    if "indeterminate" in severities:
        return Verdict.INDETERMINATE
    return Verdict.VALID


def _integrity(
    status: StandardCMSSignatureStatus | None, subindic: AdESSubIndic, mods: ModificationReport
) -> CheckResult:
    if subindic == AdESFailure.HASH_FAILURE or (status is not None and not status.intact):
        return CheckResult.failed(
            "digest mismatch inside the signed byte range", "giá trị băm không khớp trong phạm vi đã ký"
        )
    if subindic == AdESFailure.SIG_CRYPTO_FAILURE or (status is not None and not status.valid):
        return CheckResult.failed("signature value invalid", "giá trị chữ ký không hợp lệ")
    if mods.tampered:
        return CheckResult.failed("document modified after signing", "tài liệu bị sửa đổi sau khi ký")
    if status is None:
        return CheckResult.unknown()
    if mods.later_revisions and mods.permitted:
        return CheckResult.passed(
            "intact; later revisions contain only permitted changes",
            "toàn vẹn; các phiên bản sau chỉ có thay đổi được phép",
        )
    return CheckResult.passed("intact", "toàn vẹn")


def _chain_result(status: StandardCMSSignatureStatus | None, codes: set[str]) -> CheckResult:
    if "self_signed" in codes:
        return CheckResult.failed(
            "self-signed certificate, not a trusted root", "chứng thư tự ký, không phải chứng thư gốc tin cậy"
        )
    if "untrusted_chain" in codes:
        return CheckResult.failed("no path to a trusted root", "không có đường dẫn tới chứng thư gốc tin cậy")
    if status is not None and status.validation_path is not None:
        return CheckResult.passed("path to a trusted root", "có đường dẫn tới chứng thư gốc tin cậy")
    return CheckResult.unknown()


def _valid_at_signing(
    codes: set[str],
    signing_time: datetime | None,
    revoked_before_signing: bool,
    chain: CheckResult,
    revocation: RevocationReport,
) -> CheckResult:
    """Circular 15/2025 §2.3.4(6), saying what was checked: the validity period always, the
    revocation status only when OCSP/CRL data was consulted (Annex II)."""
    if revoked_before_signing or "revoked" in codes:
        return CheckResult.failed(
            "certificate revoked at signing time", "chứng thư đã bị thu hồi tại thời điểm ký"
        )
    if "not_valid_at_signing_time" in codes:
        return CheckResult.failed(
            "outside the certificate validity period", "ngoài thời hạn hiệu lực của chứng thư"
        )
    if chain.outcome is CheckOutcome.FAILED:
        return CheckResult.failed(
            "certificate not issued under a trusted root", "chứng thư không thuộc hệ thống chứng thực tin cậy"
        )
    if codes & {"expired_no_poe", "revoked_no_poe", "revocation_unavailable", "no_poe", "chain_failure"}:
        return CheckResult.unknown("not provable", "không xác định được")
    if signing_time is None:
        return CheckResult.unknown("no signing time", "không có thời gian ký")
    if chain.outcome is not CheckOutcome.PASSED:
        return CheckResult.unknown()
    if revocation.outcome is CheckOutcome.PASSED:
        return CheckResult.passed(
            "within the validity period and not revoked at signing time, per OCSP/CRL",
            "trong thời hạn hiệu lực và chưa bị thu hồi tại thời điểm ký, theo OCSP/CRL",
        )
    en, vi = not_checked_detail(revocation.not_checked_reason or "not_attempted")
    return CheckResult.passed(
        f"within the validity period at signing time; revocation NOT checked: {en}",
        f"trong thời hạn hiệu lực tại thời điểm ký; CHƯA kiểm tra được tình trạng thu hồi: {vi}",
    )


# --- document time-stamps ---------------------------------------------------------------------


async def _verify_document_timestamp(
    ctx: _Context, index: int, emb: EmbeddedPdfSignature
) -> DocumentTimestampReport:
    diff_policy = vn_diff_policy() if ctx.policy.diff_analysis else None
    reasons: list[Reason] = []
    ctx.offer_certs(emb)
    try:
        status = await async_validate_pdf_timestamp(
            emb, ctx.timestamp_context(), diff_policy=diff_policy, skip_diff=diff_policy is None
        )
    except (SignatureValidationError, PathBuildingError, PathValidationError) as exc:
        log.info("document time-stamp %s: %s: %s", emb.field_name, type(exc).__name__, exc)
        raise InvalidPdfError(
            f"Document time-stamp {emb.field_name} cannot be processed",
            message_vi=f"Không xử lý được dấu thời gian tài liệu {emb.field_name}",
        ) from exc
    mods = _modifications(emb, ctx.reader)
    info = _timestamp_info(status)
    if not (status.intact and status.valid):
        reasons.append(reason("hash_failure"))
    elif not status.trusted:
        reasons.append(_untrusted_tsa("document_timestamp_invalid"))
    if (changed := _modification_reason(mods)) is not None:
        reasons.append(changed)
    verdict = _verdict_of(reasons)
    return DocumentTimestampReport(
        index=index,
        field_name=str(emb.field_name),
        timestamp=info,
        modifications=mods,
        verdict=verdict,
        verdict_vi=verdict.vi,
        reasons=reasons,
    )


def _overall(
    sigs: list[SignatureReport], timestamps: list[DocumentTimestampReport]
) -> tuple[Verdict, list[Reason]]:
    reasons: list[Reason] = []
    for s in sigs:
        if s.verdict is Verdict.INVALID:
            reasons.append(reason("signature_invalid", index=s.index, field=s.field_name))
        elif s.verdict is Verdict.INDETERMINATE:
            reasons.append(reason("signature_indeterminate", index=s.index, field=s.field_name))
    for t in timestamps:
        for r in t.reasons:
            if r.severity in ("error", "indeterminate"):
                reasons.append(r)
    if not sigs:
        reasons.append(reason("timestamps_only"))
    elif not reasons:
        reasons.append(reason("all_valid", count=len(sigs)))
    return _verdict_of(reasons), reasons
