# mypy: disable-error-code="no-untyped-call"
"""Difference-analysis policy for incremental updates after a signature.

pyHanko's default policy refuses *new visible signature fields* after a certification (DocMDP)
signature, which it documents as "stricter than Acrobat". Documents in circulation are certified
at P=2 by the competent person's signature and then receive the agency signature in a new,
visible field overlapping a third of the first one (Decree 30/2020 Appendix I, 8a; docs/signing.md
§7), so the Vietnamese policy allows that. Everything else is pyHanko's default: page content,
annotation or structure changes after signing remain tampering.
"""

from __future__ import annotations

import re

from pyhanko.sign.diff_analysis import (
    CatalogModificationRule,
    DocInfoRule,
    DSSCompareRule,
    FormUpdatingRule,
    GenericFieldModificationRule,
    MetadataUpdateRule,
    ModificationLevel,
    ObjectStreamRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
    XrefStreamRule,
)

__all__ = ["plain_pdf_text", "vn_diff_policy"]

#: pyHanko object reprs in its difference-analysis messages, and their PDF notation.
_REFERENCE = re.compile(r"Reference\(idnum=(\d+), generation=(\d+)(?:, pdf=[^)]*)?\)")
_CONTEXT = re.compile(r"\w*Context\(path=PathInRevision\('([^']*)'\)[^)]*\)")
_PATH = re.compile(r"PathInRevision\('([^']*)'\)")
_OTHER_REPR = re.compile(r"<pyhanko[^>]*>|<[\w.]+ object at 0x[0-9a-f]+>|\b[A-Z]\w*\((?:\w+=)[^()]*\)")


def plain_pdf_text(message: str) -> str:
    """A difference-analysis message with the library's object reprs in PDF terms: an indirect
    reference as ``13 0 R`` (ISO 32000-1 §7.3.10), a location as its path from the catalog;
    any other repr is dropped (docs/signing.md §10.1: no library text in a report)."""
    text = _REFERENCE.sub(r"\1 \2 R", message)
    text = _CONTEXT.sub(r"\1", text)
    text = _PATH.sub(r"\1", text)
    return _OTHER_REPR.sub("…", text).strip()


def vn_diff_policy() -> StandardDiffPolicy:
    """pyHanko's default rules, plus new visible signature fields after a P=2 certification."""
    return StandardDiffPolicy(
        global_rules=[
            CatalogModificationRule(),
            DocInfoRule().as_qualified(ModificationLevel.LTA_UPDATES),
            XrefStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
            ObjectStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
            DSSCompareRule().as_qualified(ModificationLevel.LTA_UPDATES),
            MetadataUpdateRule().as_qualified(ModificationLevel.LTA_UPDATES),
        ],
        form_rule=FormUpdatingRule(
            field_rules=[
                SigFieldCreationRule(allow_new_visible_after_certify=True),
                SigFieldModificationRule(),
                GenericFieldModificationRule(),
            ],
        ),
    )
