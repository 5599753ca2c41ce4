# mypy: disable-error-code="no-untyped-call"
"""Keep a PDF/A document PDF/A when the hub signs it (docs/signing.md §5.4).

A signature is an incremental update (ISO 19005-2 §6.1.3 allows them, and ISO 19005-1 does
not forbid them), so signing a PDF/A file must not break the rules the update itself touches:

* **metadata** (ISO 19005-1 §6.7.3, ISO 19005-2 §6.6.2.3): every document-information entry
  that has an XMP counterpart must be equivalent to it. pyHanko updates ``/Producer`` and
  ``/ModDate`` in the Info dictionary and ``pdf:Producer`` / ``xmp:ModifyDate`` in the XMP
  separately (the Info producer keeps the old producer, the XMP one does not; two clocks), so
  :class:`PdfAIncrementalWriter` copies the XMP values into the Info dictionary last;
* **transparency** (ISO 19005-1 §6.4): PDF/A-1 forbids soft masks (``/SMask``) on image
  XObjects; a transparent PNG is drawn with a 1-bit stencil mask instead
  (:class:`StencilMaskedImage`, the same overlap of seal and signature, hard edges);
* **fonts** (ISO 19005-1 §6.3.5): an embedded CID font subset needs a ``/CIDSet`` in PDF/A-1
  (:class:`CidSetGlyphAccumulatorFactory`);
* **signatures** (ISO 19005-2 §6.4.3): the byte range of the last signature covers the whole
  file, so for B-LTA the validation data go into the DSS *before* the document time-stamp
  (:func:`pdfa_dss_settings`).

The input's PDF/A part comes from its XMP ``pdfaid:part`` (ISO 19005-1 §6.7.11).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata import model
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, TimestampDSSContentSettings

__all__ = [
    "CidSetGlyphAccumulatorFactory",
    "PdfAIncrementalWriter",
    "PdfAPart",
    "StencilMaskedImage",
    "pdfa_dss_settings",
    "pdfa_part",
]

_PDFAID_PART = model.ExpandedName(ns=model.NS["pdfaid"], local_name="part")
_PDFAID_CONFORMANCE = model.ExpandedName(ns=model.NS["pdfaid"], local_name="conformance")
#: Alpha at or above which a pixel of a transparent PNG is painted under a stencil mask.
STENCIL_ALPHA_THRESHOLD = 128


@dataclass(frozen=True, slots=True)
class PdfAPart:
    """``pdfaid:part`` and ``pdfaid:conformance`` of a PDF/A document (e.g. 1 / "B")."""

    part: int
    conformance: str


def _xmp_fields(root: generic.DictionaryObject) -> dict[model.ExpandedName, model.XmpValue]:
    """The top-level XMP properties of the catalog's metadata stream ({} if none/unreadable)."""
    from pyhanko.pdf_utils.metadata import xmp_xml

    try:
        # ``root["/Metadata"]``, not ``root.get``: only item access loads (and caches) the
        # stream as pyHanko's MetadataStream, which its own metadata update needs.
        stream = root["/Metadata"] if "/Metadata" in root else None  # noqa: SIM401
        if not isinstance(stream, xmp_xml.MetadataStream):
            return {}
        return {name: value for structure in stream.xmp for name, value in structure}
    except Exception:  # noqa: BLE001 - malformed XMP: not a PDF/A we can recognise
        return {}


def pdfa_part(root: generic.DictionaryObject) -> PdfAPart | None:
    """The PDF/A identification of the document whose catalog is ``root``, or ``None``."""
    fields = _xmp_fields(root)
    part = fields.get(_PDFAID_PART)
    if part is None or not str(part.value).strip().isdigit():
        return None
    conformance = fields.get(_PDFAID_CONFORMANCE)
    return PdfAPart(int(str(part.value).strip()), str(conformance.value).strip() if conformance else "")


class PdfAIncrementalWriter(IncrementalPdfFileWriter):
    """An incremental writer whose Info dictionary says what the XMP says (ISO 19005-1 §6.7.3).

    After pyHanko's own metadata update, ``/Producer`` and ``/ModDate`` (when present in the
    Info dictionary) are set from ``pdf:Producer`` and ``xmp:ModifyDate`` of the XMP packet.
    """

    def _update_meta(self) -> None:
        super()._update_meta()
        if self._info is None:
            return
        fields = _xmp_fields(self.root)
        if not fields:
            return
        info = self._info.get_object()
        producer = fields.get(model.PDF_PRODUCER)
        if producer is not None and isinstance(producer.value, str):
            info["/Producer"] = generic.TextStringObject(producer.value)
        modified = fields.get(model.XMP_MODDATE)
        if modified is not None and isinstance(modified.value, str) and "/ModDate" in info:
            from datetime import datetime

            info["/ModDate"] = generic.pdf_date(datetime.fromisoformat(modified.value))
        self.mark_update(self._info)


class StencilMaskedImage(PdfImage):
    """A transparent image drawn without a soft mask (PDF/A-1, ISO 19005-1 §6.4).

    Pixels at least half opaque are painted (their colour composited onto white), the rest
    are masked out by a 1-bit ``/ImageMask`` stencil in ``/Mask`` (allowed by PDF/A-1).
    """

    @property
    def image_ref(self) -> generic.IndirectObject:
        assert self.writer is not None
        cached = self._image_ref
        if cached is None or cached.get_pdf_handler() is not self.writer:
            self._image_ref = cached = _stencil_masked(self.image, self.writer)
        return cached


def _stencil_masked(img: Image.Image, writer: Any) -> generic.IndirectObject:
    rgba = img.convert("RGBA")
    alpha = rgba.getchannel("A")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    # ImageMask samples: 0 paints, 1 masks out (default /Decode [0 1]).
    stencil = alpha.point(lambda a: 0 if a >= STENCIL_ALPHA_THRESHOLD else 255).convert("1")
    n = generic.NameObject
    mask = generic.StreamObject(
        {
            n("/Type"): n("/XObject"),
            n("/Subtype"): n("/Image"),
            n("/Width"): generic.NumberObject(stencil.width),
            n("/Height"): generic.NumberObject(stencil.height),
            n("/ImageMask"): generic.BooleanObject(True),
            n("/BitsPerComponent"): generic.NumberObject(1),
        },
        stream_data=stencil.tobytes(),
    )
    mask.compress()
    image = generic.StreamObject(
        {
            n("/Type"): n("/XObject"),
            n("/Subtype"): n("/Image"),
            n("/Width"): generic.NumberObject(rgb.width),
            n("/Height"): generic.NumberObject(rgb.height),
            n("/ColorSpace"): n("/DeviceRGB"),
            n("/BitsPerComponent"): generic.NumberObject(8),
            n("/Mask"): writer.add_object(mask),
        },
        stream_data=rgb.tobytes(),
    )
    image.compress()
    ref: generic.IndirectObject = writer.add_object(image)
    return ref


def png_without_soft_mask(png: bytes) -> StencilMaskedImage:
    """A PDF image of ``png`` for PDF/A-1 appearances."""
    img = Image.open(io.BytesIO(png))
    img.load()
    return StencilMaskedImage(img)


class _CidSetGlyphAccumulator(GlyphAccumulator):
    """Adds the ``/CIDSet`` of the embedded subset to its font descriptor (ISO 19005-1 §6.3.5)."""

    def prepare_write(self) -> None:
        done = self._write_prepared
        super().prepare_write()
        if done:
            return
        cids = {0, *(cid for cid, _width in self._glyphs.values())}
        bits = bytearray((max(cids) // 8) + 1)
        for cid in cids:
            bits[cid // 8] |= 0x80 >> (cid % 8)
        cid_set = generic.StreamObject(stream_data=bytes(bits))
        cid_set.compress()
        descriptor = self.cidfont_obj["/FontDescriptor"].get_object()
        descriptor[generic.NameObject("/CIDSet")] = self.writer.add_object(cid_set)


class CidSetGlyphAccumulatorFactory(GlyphAccumulatorFactory):
    """pyHanko's TrueType/OpenType font engine factory, with ``/CIDSet`` (PDF/A-1 fonts)."""

    def create_font_engine(self, writer: Any, obj_stream: Any = None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        with open(self.font_file, "rb") as fh:
            return _CidSetGlyphAccumulator(
                writer=writer,
                font_handle=io.BytesIO(fh.read()),
                font_size=self.font_size,
                ot_script_tag=self.ot_script_tag,
                ot_language_tag=self.ot_language_tag,
                writing_direction=self.writing_direction,
                bcp47_lang_code=self.bcp47_lang_code,
                obj_stream=obj_stream,
            )


def pdfa_dss_settings() -> DSSContentSettings:
    """B-LT/B-LTA on a PDF/A file: all DSS updates before the document time-stamp, so the last
    signature's ``/ByteRange`` covers the whole file (ISO 19005-2 §6.4.3). VRI entries are left
    out (optional in ETSI EN 319 142-1 §5.4.2 and required to come after the time-stamp)."""
    return DSSContentSettings(
        include_vri=False,
        next_ts_settings=TimestampDSSContentSettings(update_before_ts=True, include_vri=False),
    )
