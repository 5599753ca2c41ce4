"""``GET /api/v1/reports/ontime`` (JSON, CSV, XLSX) and ``hub report ontime`` (docs/reports.md §5);
the roles and bad parameters of it and of ``GET /api/v1/reports/usage`` (docs/reports.md §8)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from hub.commands.report import app as report_app
from hub.reports.export import COLUMNS
from hub.reports.query import GroupBy
from schemas.dossier import Dossier
from tests.api.livehub import LiveHub
from tests.reports.support import generate
from tests.reports.test_ontime_rule import WORKING
from tests.reports.test_report_sql import _dataset, _expected, _store

URL = "/api/v1/reports/ontime"
USAGE_URL = "/api/v1/reports/usage"


def _march_totals(dossiers: list[Dossier]) -> Counter[str]:
    return sum(_expected(dossiers, "2025-03", GroupBy.PROCEDURE, WORKING).values(), Counter())


def test_json_for_the_dashboards(full_hub: LiveHub) -> None:
    _store(full_hub.db, _dataset())
    with full_hub.client("portal") as client:
        answer = client.get(URL, params={"period": "2025-03", "group_by": "field"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"], body["group_by"]) == ("2025-03-01", "2025-03-31", "field")
    total = body["total"]
    expected = _march_totals(_dataset())
    for name in ("received", "carried_over", "new", "early", "on_time", "late", "supplement", "overdue"):
        assert total[name] == expected[name], name
    assert {row["key"] for row in body["rows"]} >= {"G01", "G02"}
    assert next(row for row in body["rows"] if row["key"] == "G01")["label"] == "Lĩnh vực G01"


def test_csv_and_xlsx_downloads(full_hub: LiveHub) -> None:
    _store(full_hub.db, _dataset())
    params = {"from": "2025-03-01", "to": "2025-03-31", "group_by": "procedure"}
    with full_hub.client("officer") as client:
        data = client.get(URL, params=params).json()
        as_csv = client.get(URL, params={**params, "format": "csv"})
        as_xlsx = client.get(URL, params={**params, "format": "xlsx"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="ontime-procedure-20250301-20250331.csv"' in as_csv.headers["content-disposition"]
    assert as_csv.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0] == list(COLUMNS.values())
    assert lines[-1][:3] == ["total", "Tổng cộng", str(data["total"]["received"])]
    assert len(lines) == 1 + len(data["rows"]) + 1
    assert all(unicodedata.is_normalized("NFC", cell) for line in lines for cell in line)

    assert as_xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    title = sheet["A1"].value
    assert title == "Tình hình giải quyết hồ sơ theo thủ tục hành chính, từ 01/03/2025 đến 31/03/2025"
    assert unicodedata.is_normalized("NFC", title)
    header = [cell.value for cell in sheet[3]]
    assert header == list(COLUMNS.values())
    first = data["rows"][0]
    assert [cell.value for cell in sheet[4]][:4] == [
        first["key"],
        first["label"],
        first["received"],
        first["carried_over"],
    ]
    last = [cell.value for cell in sheet[sheet.max_row]]
    assert last[0] == "total"
    assert last[list(COLUMNS).index("on_time_share")] == data["total"]["on_time_share"]
    assert (
        sheet.cell(row=sheet.max_row, column=list(COLUMNS).index("on_time_share") + 1).number_format == "0.0%"
    )


def test_filters_narrow_the_report(full_hub: LiveHub) -> None:
    """``procedure``, ``field`` and ``channel`` (docs/reports.md §9): only the matching dossiers."""
    dossiers = _dataset()
    _store(full_hub.db, dossiers)
    params = {"period": "2025-03", "group_by": "channel"}
    with full_hub.client("officer") as client:
        whole = client.get(URL, params=params).json()
        one = client.get(URL, params={**params, "procedure": "1.003901.H42", "channel": "2"}).json()
        field = client.get(URL, params={**params, "field": "G02"}).json()
    narrowed = [d for d in dossiers if d.procedure_code == "1.003901.H42" and int(d.channel) == 2]
    expected = sum(_expected(narrowed, "2025-03", GroupBy.PROCEDURE, WORKING).values(), Counter())
    assert one["total"]["received"] == expected["received"] > 0
    assert [row["key"] for row in one["rows"]] == ["2"]
    assert 0 < field["total"]["received"] < whole["total"]["received"]


#: Days that neither report takes (the shared ReportDays parameters, docs/reports.md §2.1).
BAD_DAYS = [
    {"period": "2025-13"},
    {"period": "2025-Q5"},
    {"from": "2025-03-31", "to": "2025-03-01"},
    {"from": "2025-03-01"},
    {"period": "2025", "from": "2025-01-01", "to": "2025-01-31"},
    {"from": "2015-01-01", "to": "2025-01-01"},
]
BAD_ONTIME_FILTERS = [
    {"period": "2025", "channel": "9"},
    {"period": "2025", "procedure": "x" * 41},
    {"period": "2025", "group_by": "owner"},
    {"period": "2025", "agency": "H42; DROP"},
]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        *((url, days) for url in (URL, USAGE_URL) for days in BAD_DAYS),
        *((URL, filters) for filters in BAD_ONTIME_FILTERS),
        (USAGE_URL, {"period": "2025", "format": "docx"}),
    ],
)
def test_bad_requests_are_422_with_the_error_shape(
    full_hub: LiveHub, url: str, params: dict[str, str]
) -> None:
    with full_hub.client("technician") as client:
        answer = client.get(url, params=params)
    assert answer.status_code == 422, answer.text
    assert "error" in answer.json()


@pytest.mark.parametrize(
    ("url", "allowed", "refused"),
    [
        (URL, ("officer", "clerk", "technician", "portal", "admin"), ("source",)),
        (USAGE_URL, ("officer", "technician", "admin"), ("source", "portal", "clerk")),
    ],
)
def test_roles(full_hub: LiveHub, url: str, allowed: tuple[str, ...], refused: tuple[str, ...]) -> None:
    """The on-time report: aggregates for the dashboards too; the usage report: not for clerks
    or portals (docs/reports.md §8)."""
    with full_hub.client(None) as client:
        assert client.get(url, params={"period": "2025"}).status_code == 401
    for role in refused:
        with full_hub.client(role) as client:
            answer = client.get(url, params={"period": "2025"})
            assert answer.status_code == 403, role
            assert answer.json()["error"]["code"] == "forbidden"
    for role in allowed:
        with full_hub.client(role) as client:
            assert client.get(url, params={"period": "2025"}).status_code == 200, role


def test_cli(full_hub: LiveHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dossiers = _dataset() + generate(50, 2024, seed=3)  # some carried over into 2025
    _store(full_hub.db, dossiers)
    monkeypatch.setenv("HUB_DATABASE_URL", full_hub.settings.database_url)
    runner = CliRunner()
    table = runner.invoke(report_app, ["ontime", "--period", "2025-03", "--group-by", "channel"])
    assert table.exit_code == 0, table.output
    assert "Tổng cộng" in table.output
    assert "Trực tuyến" in table.output
    as_json = runner.invoke(
        report_app, ["ontime", "--from", "2025-03-01", "--to", "2025-03-31", "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["total"]["received"] == _march_totals(dossiers)["received"]
    out = tmp_path / "march.xlsx"
    written = runner.invoke(
        report_app, ["ontime", "--period", "2025-03", "--format", "xlsx", "--out", str(out)]
    )
    assert written.exit_code == 0, written.output
    sheet = load_workbook(out).active
    assert sheet is not None
    assert sheet["A1"].value.startswith("Tình hình giải quyết hồ sơ theo thủ tục")
    refused = runner.invoke(report_app, ["ontime", "--period", "2025-03", "--format", "xlsx"])
    assert refused.exit_code != 0
    assert "--out" in refused.output
    bad = runner.invoke(report_app, ["ontime", "--period", "2025-Q9"])
    assert bad.exit_code != 0
