"""Personal data in API answers: masked by default, in clear only on an audited request.

Decree 13/2023/NĐ-CP art. 3 (processing limited to what the purpose needs) and art. 26–27
(records of processing): dossiers and DLQ messages are read by technicians and officers who
mostly need the status, not the citizen's ID or phone number. Answers mask them
(:mod:`schemas.masking`); a role that needs them asks with ``?reveal=pii`` (who may: the
route's :func:`hub.api.deps.allow_reveal`, docs/security.md §3) and every such answer writes an
``pii.reveal`` audit row: who, which record, which route.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from hub.audit.log import record
from hub.db.session import Database
from schemas.dossier import Dossier
from schemas.masking import mask_id_number, mask_json, mask_phone, mask_pii

M = TypeVar("M", bound=BaseModel)

#: Free-text fields of a dossier that may hold numbers the applicant wrote in.
_DOSSIER_FREE_TEXT = ("summary", "return_info", "note")
_CONTACT_FREE_TEXT = ("address", "other")


def masked_dossier(dossier: Dossier) -> dict[str, Any]:
    """The dossier as JSON with the owner's ID numbers and the phone number masked (and ID or
    phone numbers inside free text). Structured fields are masked by position, so amounts,
    codes and dates are never mistaken for ID numbers."""
    data = dossier.model_dump(mode="json")
    owner = data["owner"]
    if owner.get("id_number"):
        owner["id_number"] = mask_id_number(owner["id_number"])
    for identity in owner.get("identities", []):
        identity["number"] = mask_id_number(identity["number"])
    contact = data["contact"]
    if contact.get("phone"):
        contact["phone"] = mask_phone(contact["phone"])
    for name in _CONTACT_FREE_TEXT:
        if contact.get(name):
            contact[name] = mask_pii(contact[name])
    for name in _DOSSIER_FREE_TEXT:
        if data.get(name):
            data[name] = mask_pii(data[name])
    return data


def masked_view(model: M) -> M:
    """An operator view (DLQ message, delivery summary) with every string masked, as ``hub dlq
    show`` masks it: payloads are portal JSON whose PII fields have many names."""
    return type(model).model_validate(mask_json(model.model_dump(mode="json")))


def audit_reveal(db: Database, *, actor: str, kind: str, target: str, route: str) -> None:
    """Record that ``actor`` saw the personal data of ``kind`` ``target`` in clear."""
    with db.transaction() as session:
        record(
            session,
            actor=actor,
            action="pii.reveal",
            target=target,
            details={"kind": kind, "route": route, "fields": ["id_number", "phone"]},
        )
