"""Identifier formats: agency codes, procedure codes and dossier codes.

* Agency code, QCVN 102:2016/BTTTT (Circular 10/2016/TT-BTTTT): ``V1V2V3.Z1Z2.Y1Y2.MX1X2``,
  e.g. ``000.00.18.H42`` (docs/portal.md §5.2).
* Electronic identifier, Decision 20/2020/QĐ-TTg Art. 4: at most 35 characters of ``.0-9A-Z``
  in dot-separated groups growing left to right, first group ``MX1X2`` (e.g. ``H42.018.05``).
* Dossier code, Circular 01/2018/TT-VPCP Art. 19: ``<QCVN 102 agency code>-YYMMDD-XXXX``;
  the centralised-platform form of Circular 04/2025/TT-VPCP Art. 23(2) (Circular 03/2025
  Art. 13 cl. 3): ``<electronic identifier>-YYMMDD-AAXXXX`` with at least four sequence digits.
* Procedure code (MaTTHC): national ``1.000234``; provincial long ``1.000234.000.00.00.H42``
  and short ``1.003901.H42`` (§5.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

from schemas.errors import InvalidInputError

_LEVEL1 = r"[A-Y][0-9]{2}"
AGENCY_CODE_RE = re.compile(rf"^[0-9]{{3}}\.[0-9]{{2}}\.[0-9]{{2}}\.{_LEVEL1}$")
ELECTRONIC_ID_RE = re.compile(rf"^{_LEVEL1}(?:\.[0-9A-Z]+)*$")
PROCEDURE_CODE_RE = re.compile(
    rf"^[1-3]\.[0-9]{{6}}(?:\.[0-9]{{3}}\.[0-9]{{2}}\.[0-9]{{2}}\.{_LEVEL1}|\.{_LEVEL1})?$"
)
_DOSSIER_2018_RE = re.compile(
    rf"^(?P<agency>[0-9]{{3}}\.[0-9]{{2}}\.[0-9]{{2}}\.{_LEVEL1})-(?P<day>[0-9]{{6}})-(?P<seq>[0-9]{{4,5}})$"
)
_DOSSIER_2026_RE = re.compile(
    rf"^(?P<agency>{_LEVEL1}(?:\.[0-9A-Z]+)+)-(?P<day>[0-9]{{6}})-(?P<owner>[0-9]{{2}})(?P<seq>[0-9]{{4,}})$"
)


class DossierCodeForm(StrEnum):
    #: Circular 01/2018 Art. 19 (the 5-digit variant is the substitute code for foreign prefixes).
    QCVN102 = "qcvn102"
    #: Circular 04/2025 Art. 23(2): centralised nationwide platform.
    CENTRALISED = "centralised"


@dataclass(frozen=True, slots=True)
class ParsedDossierCode:
    code: str
    form: DossierCodeForm
    agency: str
    day: date
    sequence: int
    platform_owner: str | None = None

    @property
    def province(self) -> str:
        """Level-1 code (``H42`` for Ninh Bình)."""
        if self.form is DossierCodeForm.QCVN102:
            return self.agency.rsplit(".", 1)[1]
        return self.agency.split(".", 1)[0]


def _invalid(kind_en: str, kind_vi: str, value: str, rule: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid {kind_en} {value!r}: {rule}",
        message_vi=f"{kind_vi} {value!r} không hợp lệ: {rule}",
        details={"value": value},
    )


def validate_agency_code(value: str) -> str:
    """QCVN 102:2016 code (``000.00.18.H42``) or Decision 20/2020 identifier (``H42.18``)."""
    text = value.strip().upper()
    if AGENCY_CODE_RE.match(text):
        return text
    if len(text) <= 35 and ELECTRONIC_ID_RE.match(text):
        return text
    raise _invalid(
        "agency code",
        "mã cơ quan",
        value,
        "expected QCVN 102 form V1V2V3.Z1Z2.Y1Y2.MX1X2 or a Decision 20/2020 identifier",
    )


def validate_procedure_code(value: str) -> str:
    text = value.strip().upper()
    if not PROCEDURE_CODE_RE.match(text):
        raise _invalid(
            "procedure code",
            "mã thủ tục hành chính",
            value,
            "expected 1.000234, 1.000234.000.00.00.H42 or 1.000234.H42",
        )
    return text


def national_procedure_code(value: str) -> str:
    """The national CSDL part (``1.000234``) of any accepted procedure-code form."""
    return validate_procedure_code(value)[:8]


def parse_dossier_code(value: str) -> ParsedDossierCode:
    """Parse and validate a dossier code in either legal form."""
    text = value.strip().upper()
    match = _DOSSIER_2018_RE.match(text)
    form = DossierCodeForm.QCVN102
    owner: str | None = None
    if match is None:
        match = _DOSSIER_2026_RE.match(text)
        form = DossierCodeForm.CENTRALISED
        if match is None or len(match.group("agency")) > 35:
            raise _invalid(
                "dossier code",
                "mã hồ sơ",
                value,
                "expected <agency code>-YYMMDD-XXXX (Circular 01/2018 Art. 19) "
                "or <identifier>-YYMMDD-AAXXXX (Circular 04/2025 Art. 23)",
            )
        owner = match.group("owner")
    day_text = match.group("day")
    try:
        day = date(2000 + int(day_text[:2]), int(day_text[2:4]), int(day_text[4:6]))
    except ValueError:
        raise _invalid("dossier code", "mã hồ sơ", value, f"{day_text} is not a date YYMMDD") from None
    return ParsedDossierCode(
        code=text,
        form=form,
        agency=match.group("agency"),
        day=day,
        sequence=int(match.group("seq")),
        platform_owner=owner,
    )


def validate_dossier_code(value: str) -> str:
    return parse_dossier_code(value).code


def format_dossier_code(agency: str, day: date, sequence: int, *, platform_owner: str | None = None) -> str:
    """Build a dossier code; with ``platform_owner`` the Circular 04/2025 centralised form."""
    agency = validate_agency_code(agency)
    if sequence < 1:
        raise InvalidInputError("dossier sequence numbers start at 1")
    if platform_owner is None:
        if sequence > 9999:
            raise InvalidInputError(
                "Circular 01/2018 dossier codes have 4 sequence digits; day overflow",
                message_vi="số thứ tự hồ sơ trong ngày vượt quá 9999",
            )
        return f"{agency}-{day:%y%m%d}-{sequence:04d}"
    if not re.fullmatch(r"[0-9]{2}", platform_owner):
        raise InvalidInputError("platform owner digits (AA) must be two digits")
    return f"{agency}-{day:%y%m%d}-{platform_owner}{sequence:04d}"


def _field_validator(check: Callable[[str], str]) -> AfterValidator:
    """Adapt a validator to pydantic, which reports ``ValueError`` as a field error."""

    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None

    return AfterValidator(run)


DossierCode = Annotated[str, _field_validator(validate_dossier_code)]
AgencyCode = Annotated[str, _field_validator(validate_agency_code)]
ProcedureCode = Annotated[str, _field_validator(validate_procedure_code)]
