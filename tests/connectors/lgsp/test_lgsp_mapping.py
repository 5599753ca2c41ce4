"""Canonical ⇄ LGSP mapping: §4.2 value rules and canonical → wire → canonical round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.lgsp.mapping import (
    format_lgsp_datetime,
    from_sync_document,
    from_traces,
    parse_lgsp_datetime,
    to_sync_document,
    to_traces,
)
from connectors.lgsp.models import MSyncDocument, UpdateDocumentTracesRequest
from schemas.dossier import ProcessingStep
from schemas.errors import InvalidInputError
from schemas.status import DossierStatus
from schemas.timefmt import VN_TZ
from tests.connectors.lgsp.lgsp_factories import make_dossier, make_steps, vn


def test_dates_are_utc_with_milliseconds() -> None:
    assert format_lgsp_datetime(vn(2025, 6, 12, 8, 5, 0)) == "2025-06-12T01:05:00.000Z"
    assert format_lgsp_datetime(vn(2025, 1, 1, 3, 0, 0, 987654)) == "2024-12-31T20:00:00.987Z"
    assert format_lgsp_datetime(datetime(2025, 6, 12, 1, 5, tzinfo=UTC)) == "2025-06-12T01:05:00.000Z"
    back = parse_lgsp_datetime("2024-12-31T20:00:00.987Z")
    assert back == vn(2025, 1, 1, 3, 0, 0, 987000)
    assert back.utcoffset() == timedelta(hours=7)


def test_naive_and_malformed_dates_refused() -> None:
    with pytest.raises(InvalidInputError, match="naive"):
        format_lgsp_datetime(datetime(2025, 6, 12, 8, 5))
    for text in ("20250612080500", "2025-06-12T08:05:00+07:00", "2025-06-12T01:05:00Z"):
        with pytest.raises(InvalidInputError, match="yyyy-MM-dd"):
            parse_lgsp_datetime(text)


def test_sync_document_value_rules_in_progress() -> None:
    doc = to_sync_document(make_dossier())
    assert doc.Status == 1
    assert doc.NationalStatus == 4
    assert doc.IsSuccess is False
    assert doc.IsReturned is False
    assert doc.ReturnedType == 1  # by post
    assert doc.ApplicantsType == 1
    assert [f.FeeType for f in doc.DocFees] == [4]
    assert doc.DocFees[0].Price == 700000
    assert doc.HasSupplementary is True
    assert doc.RequireSupplementaryDate == "2025-06-16T02:30:00.123Z"
    assert doc.Supplementaries[0].OldDateAppointed == "2025-06-26T10:00:00.000Z"
    assert doc.Supplementaries[0].NewDateAppointed == "2025-06-30T10:00:00.000Z"
    assert doc.Attachments[0].Url == "https://hub.ninhbinh.example/files/TL-1"
    assert doc.Attachments[0].Base64 is None
    assert doc.Attachments[1].IsDeleted is True
    assert doc.OrganInchargeIdLevel1 == "000.00.18.H42"
    assert to_sync_document(make_dossier(), organ_level1_id="H42.18").OrganInchargeIdLevel1 == "H42.18"


def _finished(status: DossierStatus) -> dict[str, object]:
    steps = [
        *make_steps(),
        ProcessingStep(
            handler="Phạm Minh Đức",
            position="Chi cục trưởng",
            at=vn(2025, 6, 24, 16, 0, 0),
            content="Phê duyệt cấp giấy chứng nhận",
            status=DossierStatus.FINISHED,
        ),
    ]
    data: dict[str, object] = {"status": status, "finished_at": vn(2025, 6, 24, 16, 0, 0), "steps": steps}
    if status is DossierStatus.RETURNED:
        data["returned_at"] = vn(2025, 6, 25, 9, 0, 0)
        data["return_info"] = "Gửi qua bưu điện"
    return data


@pytest.mark.parametrize("status", [DossierStatus.FINISHED, DossierStatus.RETURNED])
def test_finished_dossier_is_status_2_with_approver(status: DossierStatus) -> None:
    dossier = make_dossier(**_finished(status))
    doc = to_sync_document(dossier)
    assert doc.Status == 2
    assert doc.IsSuccess is True
    assert doc.SuccessDate == doc.FinishedDate == "2025-06-24T09:00:00.000Z"
    assert (doc.ApproverName, doc.ApproverPosition) == ("Phạm Minh Đức", "Chi cục trưởng")
    assert doc.SuccessNote == "Phê duyệt cấp giấy chứng nhận"
    assert doc.IsReturned is (status is DossierStatus.RETURNED)
    if status is DossierStatus.RETURNED:
        assert doc.ReturnedDate == "2025-06-25T02:00:00.000Z"
        assert doc.ReturnNote == "Gửi qua bưu điện"


@pytest.mark.parametrize("status", list(DossierStatus))
def test_status_code_mapping(status: DossierStatus) -> None:
    extra = _finished(status) if status in (DossierStatus.FINISHED, DossierStatus.RETURNED) else {}
    doc = to_sync_document(make_dossier(**{"status": status, **extra}))
    assert doc.Status == (2 if status in (DossierStatus.FINISHED, DossierStatus.RETURNED) else 1)
    assert doc.NationalStatus == status.value


@pytest.mark.parametrize(
    ("status", "is_returned", "expected"),
    [
        (1, False, DossierStatus.PROCESSING),
        (2, False, DossierStatus.FINISHED),
        (2, True, DossierStatus.RETURNED),
    ],
)
def test_status_fallback_without_national_extension(
    status: int, is_returned: bool, expected: DossierStatus
) -> None:
    """A province's record without the hub extension still maps to a canonical status."""
    dossier = make_dossier(**_finished(DossierStatus.RETURNED))
    wire = to_sync_document(dossier).model_copy(
        update={"NationalStatus": None, "Status": status, "IsReturned": is_returned}
    )
    if expected is not DossierStatus.RETURNED:
        wire = wire.model_copy(update={"ReturnedDate": None})
    assert from_sync_document(wire).status is expected


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        _finished(DossierStatus.FINISHED),
        _finished(DossierStatus.RETURNED),
        {"status": DossierStatus.REFUSED, "refused_at": vn(2025, 6, 12, 9, 0, 0), "supplements": []},
        {"summary": "", "documents": [], "fees": [], "other_papers": [], "supplements": [], "due_at": None},
    ],
    ids=["processing", "finished", "returned", "refused", "minimal"],
)
def test_round_trip_canonical_wire_canonical(overrides: dict[str, object]) -> None:
    dossier = make_dossier(**overrides)
    wire = to_sync_document(dossier)
    # through JSON (the REST body) as well as through the model
    again = MSyncDocument.model_validate_json(wire.model_dump_json(exclude_none=True))
    expected = dossier.model_copy(update={"steps": []})  # steps travel as MDocumentTraces
    assert from_sync_document(again) == expected


def test_lossy_fields_are_the_documented_ones() -> None:
    from schemas.dossier import Identity, IdentityKind

    dossier = make_dossier()
    dossier.owner.identities = [Identity(kind=IdentityKind.CCCD, number="037190001234")]
    dossier.owner.portal_account_id = "tech-123"
    dossier.has_digitised_components = True
    back = from_sync_document(to_sync_document(dossier))
    assert back.owner.identities == []
    assert back.owner.portal_account_id is None
    assert back.has_digitised_components is False


def test_traces_round_trip_and_value_rules() -> None:
    dossier = make_dossier()
    steps = make_steps()
    request = to_traces(dossier, steps, document_id="LGSP-000001")
    first = request.Traces[0]
    assert (first.DocCode, first.DocumentId, first.Status) == (dossier.code, "LGSP-000001", 2)
    assert first.DateCreated == "2025-06-12T01:05:00.000Z"
    assert first.OrganizationInchargeName == "Bộ phận Một cửa"
    assert request.Traces[1].DeadlineDate == "2025-06-20T10:00:00.000Z"
    again = UpdateDocumentTracesRequest.model_validate_json(request.model_dump_json(exclude_none=True))
    assert from_traces(again) == steps


def test_traces_need_at_least_one_step() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        to_traces(make_dossier(), [])


def test_wire_record_that_is_not_a_dossier_is_invalid_input() -> None:
    wire = to_sync_document(make_dossier()).model_copy(update={"DocTypeCode": "not a procedure code"})
    with pytest.raises(InvalidInputError, match="does not make a valid dossier"):
        from_sync_document(wire)


def test_other_offsets_normalise_to_utc() -> None:
    plus9 = datetime(2025, 6, 12, 10, 5, tzinfo=timezone(timedelta(hours=9)))
    assert format_lgsp_datetime(plus9) == "2025-06-12T01:05:00.000Z"
    assert parse_lgsp_datetime(format_lgsp_datetime(plus9)).tzinfo == VN_TZ
