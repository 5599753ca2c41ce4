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
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, PdfSigningSession
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.stamp import BaseStampStyle

from schemas.errors import (
    HubError,
    InvalidPdfError,
    SignaturePlacementError,
    SigningError,
    TimestampUnavailableError,
)
from schemas.timefmt import VN_TZ
from signing.appearance import (
    AppearanceTemplate,
    Box,
    personal_style,
    seal_box,
    seal_style,
    text_stamp_style,
)
from signing.image_policy import ImagePolicy, check_appearance_image, image_problems
from signing.models import SignatureLevel, SigningWarning, SignOptions, SignRole
from signing.pagetext import page_text
from signing.pdfa import PdfAIncrementalWriter, pdfa_dss_settings, pdfa_part
from signing.placement import (
    DEFAULT_ASPECT,
    certificate_name,
    image_aspect,
    locate_signature,
    pdf_bytes,
    signed_personal_box,
)
from signing.stamp_layout import layout_text_stamp, stamp_lines
from signing.trust import TrustStore

__all__ = [
    "DocumentSigner",
    "SignedDocument",
    "atomic_write",
    "count_pages",
    "open_pdf",
    "remove_leftover_parts",
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
        writer: IncrementalPdfFileWriter = PdfAIncrementalWriter(io.BytesIO(data), strict=False)
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


#: Suffix of the temp files :func:`atomic_write` renames into place (``.<name>.<random>.part``).
PART_SUFFIX = ".part"


def process_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``, Linux ≥ 4.7)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # fallback: the classic swap (briefly process-wide)
    os.umask(old)
    return old


def remove_leftover_parts(directory: Path) -> list[Path]:
    """Delete the temp files of writes that never finished (a batch killed with SIGKILL leaves
    its ``.<name>.<random>.part`` files behind); return what was removed."""
    removed = []
    for leftover in directory.glob(f".*{PART_SUFFIX}"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + fsync + rename: never a half-written file.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), not the
    0600 of :func:`tempfile.mkstemp`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~process_umask())
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
    #: Problems accepted by a ``warn`` image policy (docs/signing.md §5.4).
    warnings: tuple[SigningWarning, ...] = ()


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
    image_policy: ImagePolicy = ImagePolicy.REFUSE
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

    def _personal_box(self, writer: IncrementalPdfFileWriter, options: SignOptions) -> Box:
        """Where the competent person's image goes (docs/signing.md §5.5): an explicit position,
        else between the title and the name on the last page, else the template's box."""
        if options.position is not None:
            return options.position
        signed = signed_personal_box(writer.prev)
        if signed is not None and options.role is SignRole.AGENCY:
            return signed  # the seal follows the signature already on the page
        template = self._template(options.template)
        png = self.signature_png or _read_opt(template.signature_image)
        aspect = image_aspect(png) if png else DEFAULT_ASPECT
        signer_name = certificate_name(getattr(self.signer, "signing_cert", None))
        try:
            return locate_signature(page_text(pdf_bytes(writer), -1), aspect, signer_name)
        except SignaturePlacementError:
            if template.personal_box is None:
                raise
            return template.personal_box

    def _role_box(
        self,
        writer: IncrementalPdfFileWriter,
        options: SignOptions,
        template: AppearanceTemplate,
        role: SignRole,
    ) -> Box:
        if role is SignRole.PERSONAL:
            return self._personal_box(writer, options)
        if role is SignRole.AGENCY:
            return seal_box(template, self._personal_box(writer, options))
        return template.text_stamp_box

    def appearance_image(self, options: SignOptions) -> bytes:
        """The signature (personal) or seal (agency) PNG of this signer or template."""
        template = self._template(options.template)
        if options.role is SignRole.PERSONAL:
            png = self.signature_png or _read_opt(template.signature_image)
            if png is None:
                raise SigningError(
                    "no signature image configured for a personal signature",
                    message_vi="Chưa cấu hình hình ảnh chữ ký của người có thẩm quyền",
                )
        else:
            png = self.seal_png or _read_opt(template.seal_image)
            if png is None:
                raise SigningError(
                    "no seal image configured for an agency signature",
                    message_vi="Chưa cấu hình hình ảnh con dấu của cơ quan",
                )
        return png

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
        pdfa = pdfa_part(writer.root)
        part = pdfa.part if pdfa is not None else None
        if role in (SignRole.PERSONAL, SignRole.AGENCY):
            box = None if reuse else self._role_box(writer, options, template, role)
            spec = None if box is None else self._box_spec(writer, name, box)
            png = self.appearance_image(options)
            check_appearance_image(png, role, self.image_policy)  # refuses, or logs by policy
            style = (
                personal_style(png, pdfa_part=part)
                if role is SignRole.PERSONAL
                else seal_style(png, pdfa_part=part)
            )
            return name, spec, style, {}
        lines = stamp_lines(
            kind="copy" if role is SignRole.COPY else "attachment",
            copy_form=options.copy_form,
            agency_name=options.agency_name,
            document_number=options.document_number,
        )
        # text wrapped/shrunk into the free top-right corner of page 1, or into the given box
        # (a reserved field keeps the template's box); docs/signing.md §5.6
        box = template.text_stamp_box if reuse else options.position
        layout = layout_text_stamp(lines, page_text(pdf_bytes(writer), 0), template.resolved_font(), box)
        spec = None if reuse else self._box_spec(writer, name, layout.box)
        return name, spec, text_stamp_style(template, layout.text, layout.font_size, pdfa_part=part), {}

    def reserve_fields(
        self,
        writer: IncrementalPdfFileWriter,
        options: SignOptions,
        own_field: SigFieldSpec | None = None,
    ) -> SigFieldSpec | None:
        """Create empty fields for later signatures in the same revision as this one.

        Viewers draw widget annotations in ``/Annots`` order, later ones on top. The agency
        seal must lie over the left third of the personal signature (Decree 30/2020 Art. 33(1b),
        Appendix I box 8), so this signature's own new field is appended *before* the reserved
        ones and the field spec to sign with becomes ``None`` (sign the field now present);
        otherwise ``own_field`` is returned unchanged.
        """
        roles = options.reserve_fields
        if roles is None:
            roles = [SignRole.AGENCY] if options.certify and options.role is SignRole.PERSONAL else []
        existing = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev)}
        roles = [
            role
            for role in roles
            if role is not SignRole.INVISIBLE
            and role is not options.role
            and f"Sig_{role.value}" not in existing
        ]
        if not roles:
            return own_field
        template = self._template(options.template)
        if own_field is not None:
            fields.append_signature_field(writer, own_field)
        for role in roles:
            name = f"Sig_{role.value}"
            box = self._role_box(writer, options, template, role)
            fields.append_signature_field(writer, self._box_spec(writer, name, box))
        return None

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

    def metadata(self, name: str, options: SignOptions, *, pdfa: bool = False) -> PdfSignatureMetadata:
        """pyHanko signature settings; ``pdfa``: the input is PDF/A (DSS before the document
        time-stamp, :func:`signing.pdfa.pdfa_dss_settings`)."""
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
            dss_settings=pdfa_dss_settings() if pdfa and lt else DSSContentSettings(),
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
        # the FieldMDP lock goes on this signature's field before it is placed (docs/signing.md §13.2)
        field_spec = self.lock_fields(writer, name, field_spec, options)
        field_spec = self.reserve_fields(writer, options, field_spec)
        meta = self.metadata(name, options, pdfa=pdfa_part(writer.root) is not None)
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
        warnings = (
            tuple(image_problems(self.appearance_image(options), options.role))
            if options.role in (SignRole.PERSONAL, SignRole.AGENCY)
            else ()
        )
        return SignedDocument(
            data=result, field_name=name, signed_at=pdf_signer.system_time_used, warnings=warnings
        )


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
