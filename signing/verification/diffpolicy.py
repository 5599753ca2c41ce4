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

__all__ = ["vn_diff_policy"]


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
