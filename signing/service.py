"""PAdES signing of result documents (pyHanko), with the Decree 30 appearances.

Levels (ETSI EN 319 142-1): B-B, B-T (RFC 3161 signature time-stamp), B-LT (validation data in
the DSS), B-LTA (plus a document time-stamp). Several signatures on one document are incremental
updates; the first may be a DocMDP P=2 certification so that the number/date and the agency
signature can follow (Decree 30/2020 Điều 14–15, 17; docs/signing.md §5.1).

The unit of reuse is :class:`DocumentSigner`: one loaded key, one shared time-stamper, one trust
store — built once per batch or per worker process, never per document.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields
from pyhanko.sign.fields import FieldMDPAction, FieldMDPSpec, MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.signers.pdf_signer import PdfSigningSession
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.stamp import BaseStampStyle

from schemas.errors import HubError, InvalidPdfError, SigningError, TimestampUnavailableError
from schemas.timefmt import VN_TZ
from signing.appearance import (
    AppearanceTemplate,
    Box,
    personal_style,
    seal_box,
    seal_style,
    text_stamp_lines,
    text_stamp_style,
)
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.trust import TrustStore

__all__ = [
    "DocumentSigner",
    "SignedDocument",
    "atomic_write",
    "count_pages",
    "open_pdf",
    "reserved_bytes_for",
]

#: Upper bound on the input size accepted for signing (pyHanko #336 breaks above 100 MB).
MAX_PDF_BYTES = 90 * 1024 * 1024


def open_pdf(data: bytes) -> IncrementalPdfFileWriter:
    """Open a PDF for an incremental update, refusing broken or encrypted files."""
    if len(data) > MAX_PDF_BYTES:
        raise InvalidPdfError(
            f"PDF is too large to sign ({len(data)} bytes, limit {MAX_PDF_BYTES})",
            message_vi="Tệp PDF quá lớn để ký số",
        )
    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise InvalidPdfError(
            "not a PDF file (missing %PDF- header)",
            message_vi="Tệp không phải định dạng PDF (thiếu phần đầu %PDF-)",
        )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        reader = writer.prev
        if reader.encrypted:
            raise InvalidPdfError(
                "encrypted PDFs cannot be signed; remove the password protection first",
                message_vi="Không thể ký tệp PDF đã mã hóa; hãy gỡ bỏ mật khẩu bảo vệ trước",
            )
        count = count_pages(reader.root)
    except InvalidPdfError:
        raise
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise InvalidPdfError(
            f"the PDF is damaged or unreadable: {exc}",
            message_vi="Tệp PDF bị hỏng hoặc không đọc được",
        ) from exc
    if count < 1:
        raise InvalidPdfError("the PDF has no pages", message_vi="Tệp PDF không có trang nào")
    return writer


#: Deepest page tree accepted (real files nest a few levels; a deeper one is hostile).
MAX_PAGE_TREE_DEPTH = 64


def count_pages(root: Any) -> int:
    """Leaf pages under the catalog's ``/Pages``, walking every ``/Kids`` once.

    A page tree is a tree (ISO 32000-1 §7.7.3.2): a node reached twice (a cycle, or a shared
    kid) or nested deeper than :data:`MAX_PAGE_TREE_DEPTH` is refused as
    :class:`InvalidPdfError` here, before any signing code walks it.
    """
    seen: set[int] = set()
    pages = 0
    stack: list[tuple[Any, int]] = [(root.raw_get("/Pages"), 0)]
    while stack:
        ref, depth = stack.pop()
        if isinstance(ref, generic.IndirectObject):
            if ref.idnum in seen:
                raise InvalidPdfError(
                    "the page tree is not a tree (a page node is reached twice)",
                    message_vi="Cây trang của tệp PDF bị lặp vòng (cấu trúc không hợp lệ)",
                )
            seen.add(ref.idnum)
        node = _deref(ref)
        if not isinstance(node, generic.DictionaryObject):
            raise InvalidPdfError(
                "a page tree node is not a dictionary", message_vi="Cây trang PDF không hợp lệ"
            )
        if node.get("/Type") == "/Page" or "/Kids" not in node:
            pages += 1
            continue
        if depth >= MAX_PAGE_TREE_DEPTH:
            raise InvalidPdfError("the page tree is too deep", message_vi="Cây trang PDF lồng quá sâu")
        kids = _deref(node.raw_get("/Kids"))
        if not isinstance(kids, generic.ArrayObject):
            raise InvalidPdfError(
                "a page tree node has no /Kids array", message_vi="Cây trang PDF không hợp lệ"
            )
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return pages


def _deref(obj: Any) -> Any:
    return obj.get_object() if isinstance(obj, generic.IndirectObject) else obj  # type: ignore[no-untyped-call]


def reserved_bytes_for(level: SignatureLevel, signer: Signer | None = None) -> int:
    """Space for the CMS blob (hex digits), given up front so pyHanko skips its dry-run estimate.

    Every certificate the signer embeds (its own + registry, e.g. all certificates on a token)
    plus ~4 KB for attributes and the signature value; a TSA token adds ~10 KB (its own
    certificate chain). Revocation data for B-LT/B-LTA goes to the DSS, not the CMS.
    """
    certs = 3 * 2048
    if signer is not None:
        own = signer.signing_cert
        registry = list(signer.cert_registry)
        certs = sum(len(c.dump()) for c in registry) + (len(own.dump()) if own is not None else 2048)
    ts = 0 if level is SignatureLevel.B_B else 10_240
    # pyHanko counts the hex-encoded size (two characters per byte).
    return 2 * (4096 + certs + ts)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + fsync + rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VnPdfSigner(PdfSigner):
    """PdfSigner whose signing time (CMS ``signingTime`` and stamp text) is in Vietnam time."""

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> PdfSigningSession:
        session: PdfSigningSession = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = session.system_time.astimezone(VN_TZ)
        self.system_time_used: datetime = session.system_time
        return session


@dataclass(frozen=True)
class SignedDocument:
    data: bytes
    field_name: str
    signed_at: datetime


@dataclass
class DocumentSigner:
    """Signs PDFs with one already-opened pyHanko ``Signer`` (reused across documents)."""

    signer: Signer
    trust_store: TrustStore | None = None
    timestamper: TimeStamper | None = None
    templates: dict[str, AppearanceTemplate] = field(
        default_factory=lambda: {"default": AppearanceTemplate()}
    )
    signature_png: bytes | None = None
    seal_png: bytes | None = None
    _lt_context_kwargs: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        """Release per-event-loop resources (the time-stamper's HTTP session)."""
        close = getattr(self.timestamper, "aclose", None)
        if close is not None:
            await close()

    def _template(self, name: str) -> AppearanceTemplate:
        try:
            return self.templates[name]
        except KeyError:
            raise SigningError(
                f"unknown appearance template {name!r}",
                message_vi=f"Không có mẫu trình bày chữ ký '{name}'",
            ) from None

    def _box_spec(self, writer: IncrementalPdfFileWriter, name: str, box: Box) -> SigFieldSpec:
        page_count = int(writer.prev.root["/Pages"]["/Count"])
        page = box.page if box.page >= 0 else page_count + box.page
        if not 0 <= page < page_count:
            raise SigningError(
                f"template page {box.page} does not exist in a {page_count}-page document",
                message_vi="Vị trí chữ ký nằm ngoài số trang của văn bản",
            )
        return SigFieldSpec(sig_field_name=name, on_page=page, box=box.rect())

    def _role_box(self, template: AppearanceTemplate, role: SignRole) -> Box:
        if role is SignRole.PERSONAL:
            return template.personal_box
        if role is SignRole.AGENCY:
            return seal_box(template)
        return template.text_stamp_box

    def field_and_style(
        self, writer: IncrementalPdfFileWriter, options: SignOptions
    ) -> tuple[str, SigFieldSpec | None, BaseStampStyle | None, dict[str, str]]:
        """Pick/create the signature field and its Decree 30 appearance.

        Visible roles use stable field names (``Sig_personal``, ``Sig_agency``…); a field reserved
        earlier (before a certification signature) is filled in place, which DocMDP P=2 allows.
        """
        existing = {name: value for name, value, _ in fields.enumerate_sig_fields(writer.prev)}
        role = options.role
        if options.field_name:
            name = options.field_name
        elif role is SignRole.INVISIBLE:
            n = len(existing) + 1
            while f"Sig{n}" in existing:
                n += 1
            name = f"Sig{n}"
        else:
            name = f"Sig_{role.value}"
        reuse = name in existing and existing[name] is None
        if name in existing and not reuse:
            raise SigningError(
                f"signature field {name!r} already exists and is signed",
                message_vi=f"Trường chữ ký '{name}' đã tồn tại và đã được ký",
            )
        if role is SignRole.INVISIBLE:
            return name, None if reuse else SigFieldSpec(sig_field_name=name), None, {}
        template = self._template(options.template)
        spec = None if reuse else self._box_spec(writer, name, self._role_box(template, role))

        if role is SignRole.PERSONAL:
            png = self.signature_png or _read_opt(template.signature_image)
            if png is None:
                raise SigningError(
                    "no signature image configured for a personal signature",
                    message_vi="Chưa cấu hình hình ảnh chữ ký của người có thẩm quyền",
                )
            return name, spec, personal_style(png), {}
        if role is SignRole.AGENCY:
            png = self.seal_png or _read_opt(template.seal_image)
            if png is None:
                raise SigningError(
                    "no seal image configured for an agency signature",
                    message_vi="Chưa cấu hình hình ảnh con dấu của cơ quan",
                )
            return name, spec, seal_style(png), {}
        text = text_stamp_lines(
            kind="copy" if role is SignRole.COPY else "attachment",
            copy_form=options.copy_form,
            agency_name=options.agency_name,
            document_number=options.document_number,
        )
        return name, spec, text_stamp_style(template, text), {}

    def reserve_fields(self, writer: IncrementalPdfFileWriter, options: SignOptions) -> None:
        """Create empty fields for later signatures in the same revision as this one."""
        roles = options.reserve_fields
        if roles is None:
            roles = [SignRole.AGENCY] if options.certify and options.role is SignRole.PERSONAL else []
        if not roles:
            return
        existing = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev)}
        template = self._template(options.template)
        for role in roles:
            name = f"Sig_{role.value}"
            if role is SignRole.INVISIBLE or role is options.role or name in existing:
                continue
            fields.append_signature_field(
                writer, self._box_spec(writer, name, self._role_box(template, role))
            )

    def lock_fields(
        self, writer: IncrementalPdfFileWriter, name: str, spec: SigFieldSpec | None, options: SignOptions
    ) -> SigFieldSpec | None:
        """Put the FieldMDP lock of ``options.open_fields`` on this signature's field: every
        form field except those (and the reserved ones) is locked once it is signed."""
        if options.open_fields is None:
            return spec
        reserved = [f"Sig_{role.value}" for role in options.reserve_fields or ()]
        if options.reserve_fields is None and options.certify and options.role is SignRole.PERSONAL:
            reserved = [f"Sig_{SignRole.AGENCY.value}"]
        lock = FieldMDPSpec(FieldMDPAction.EXCLUDE, fields=sorted({*options.open_fields, *reserved}))
        if spec is not None:
            return dataclasses.replace(spec, field_mdp_spec=lock)
        for field_name, _value, ref in fields.enumerate_sig_fields(writer.prev):
            if field_name == name:  # a field reserved earlier: lock it in place
                sig_field = ref.get_object()
                sig_field[generic.NameObject("/Lock")] = lock.as_sig_field_lock()
                writer.mark_update(ref)
        return None

    def metadata(self, name: str, options: SignOptions) -> PdfSignatureMetadata:
        level = options.level
        lt = level in (SignatureLevel.B_LT, SignatureLevel.B_LTA)
        vc = None
        if lt:
            if self.trust_store is None:
                raise SigningError(
                    "B-LT/B-LTA need a trust store to collect validation data",
                    message_vi="Ký mức B-LT/B-LTA cần kho chứng thư tin cậy",
                )
            vc = self.trust_store.validation_context(allow_fetching=True, **self._lt_context_kwargs)
        return PdfSignatureMetadata(
            field_name=name,
            md_algorithm=options.digest_algorithm,
            subfilter=SigSeedSubFilter.PADES,
            reason=options.reason,
            location=options.location,
            certify=options.certify,
            docmdp_permissions=MDPPerm.FILL_FORMS,
            embed_validation_info=lt,
            use_pades_lta=level is SignatureLevel.B_LTA,
            validation_context=vc,
            signer_key_usage=set(),
        )

    async def sign(self, data: bytes, options: SignOptions) -> SignedDocument:
        """Sign one PDF (bytes in, bytes out). Raises hub errors only."""
        writer = open_pdf(data)
        needs_ts = options.level is not SignatureLevel.B_B
        if needs_ts and self.timestamper is None:
            raise SigningError(
                f"level {options.level} needs a time-stamping authority (TSA) to be configured",
                message_vi=f"Mức ký {options.level} cần cấu hình máy chủ cấp dấu thời gian (TSA)",
            )
        name, field_spec, style, text_params = self.field_and_style(writer, options)
        self.reserve_fields(writer, options)
        field_spec = self.lock_fields(writer, name, field_spec, options)
        meta = self.metadata(name, options)
        pdf_signer = VnPdfSigner(
            meta,
            signer=self.signer,
            timestamper=self.timestamper if needs_ts else None,
            stamp_style=style,
            new_field_spec=field_spec,
        )
        ensure_loaded = getattr(self.signer, "ensure_objects_loaded", None)
        if ensure_loaded is not None:  # PKCS#11: pull certificates before sizing the CMS
            await ensure_loaded()
        try:
            out = await pdf_signer.async_sign_pdf(
                writer,
                bytes_reserved=reserved_bytes_for(options.level, self.signer),
                appearance_text_params=text_params or None,
            )
        except HubError:
            raise
        except PyHankoSigningError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, HubError):
                raise cause from exc
            if "timestamp" in str(exc).lower():
                raise TimestampUnavailableError(
                    f"time-stamping failed: {exc}",
                    message_vi="Không lấy được dấu thời gian từ máy chủ TSA",
                ) from exc
            raise SigningError(f"signing failed: {exc}", message_vi="Ký số thất bại") from exc
        except PdfError as exc:
            raise InvalidPdfError(
                f"the PDF could not be updated: {exc}",
                message_vi="Không cập nhật được tệp PDF (cấu trúc tệp không hợp lệ)",
            ) from exc
        finally:
            vc = meta.validation_context
            if vc is not None:
                await _close_fetchers(vc)
        result = out.getvalue()
        return SignedDocument(data=result, field_name=name, signed_at=pdf_signer.system_time_used)


def _read_opt(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


async def _close_fetchers(vc: Any) -> None:
    fetchers = getattr(vc, "fetchers", None)
    backend = getattr(vc, "_fetcher_backend", None) or getattr(vc, "fetcher_backend", None)
    for obj in (fetchers, backend):
        close = getattr(obj, "close", None)
        if close is not None:
            try:
                res = close()
                if hasattr(res, "__await__"):
                    await res
            except (RuntimeError, OSError):
                pass
