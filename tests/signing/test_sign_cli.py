"""``hub sign`` and ``hub pki`` command lines (typer runner, real PKI and TSA)."""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
import typer
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select
from typer.testing import CliRunner, Result

from hub.commands.issue import app as issue_app
from hub.commands.pki import app as pki_app
from hub.commands.pki import serve_port
from hub.commands.sign import app as sign_app
from hub.db.models import AuditEntry
from hub.db.session import Database
from hub.services.issuance import DocumentRegister
from hub.simulators.pki import RunningPki, serve_test_pki
from schemas.timefmt import now_vn
from signing.issuance import (
    DATE_FIELD,
    NUMBER_FIELD,
    OPEN_AFTER_SIGNATURE,
    date_line,
    ensure_number_places,
    number_place_values,
)
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf, sample_seal_png, write_sample_pdfs
from signing.testpki import TestPki
from signing.verification import Verdict, VerificationPolicy, verify_pdf
from tests.signing.conftest import Sign

runner = CliRunner()


@pytest.fixture(autouse=True)
def audit_database(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``hub sign`` audits into the hub's database: a migrated SQLite one per test."""
    target = tmp_path / "hub.db"
    shutil.copy(sqlite_template, target)
    url = f"sqlite:///{target}"
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    return url


def _sign(
    test_pki: TestPki, pki_services: RunningPki, src: Path, out: Path, *args: str, secret: str | None = None
) -> Result:
    """``hub sign SRC`` with the officer's test key into ``out`` (the key's own password by default)."""
    return runner.invoke(
        sign_app,
        [str(src), *_base(test_pki, pki_services, out), *args],
        env={"HUB_SIGN_SECRET": test_pki.p12_password if secret is None else secret},
    )


def _inputs(directory: Path, n: int) -> Path:
    write_sample_pdfs(directory, n)
    (directory / "notes.txt").write_text("not a pdf, ignored")
    return directory


def _base(test_pki: TestPki, pki_services: RunningPki, out: Path) -> list[str]:
    return [
        "--out",
        str(out),
        "--p12",
        str(test_pki.officer_p12),
        "-t",
        str(test_pki.root_cert),
        "--tsa-url",
        pki_services.tsa_url,
        "--fetch-host",
        test_pki.service_host,
    ]


def test_sign_directory(tmp_path: Path, test_pki: TestPki, pki_services: RunningPki) -> None:
    src = _inputs(tmp_path / "in", 3)
    out = tmp_path / "out"
    result = _sign(test_pki, pki_services, src, out, "--level", "B-T", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [i["ok"] for i in body["items"]] == [True, True, True]
    for f in sorted(out.iterdir()):
        assert len(PdfFileReader(io.BytesIO(f.read_bytes())).embedded_signatures) == 1
    assert test_pki.p12_password not in result.output


def test_partial_failure_exit_code(tmp_path: Path, test_pki: TestPki, pki_services: RunningPki) -> None:
    src = _inputs(tmp_path / "in", 2)
    (src / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    result = _sign(test_pki, pki_services, src, tmp_path / "out", "--level", "B-B")
    assert result.exit_code == 1
    assert "LỖI broken.pdf" in result.output
    assert "Đã ký 2/3" in result.output
    assert not (tmp_path / "out" / "broken.pdf").exists()


def test_refusals_exit_4(tmp_path: Path, test_pki: TestPki, pki_services: RunningPki) -> None:
    src = _inputs(tmp_path / "in", 1)
    wrong = _sign(test_pki, pki_services, src, tmp_path / "o1", secret="sai")
    assert wrong.exit_code == 4
    assert "wrong_pin" in wrong.output
    args = [
        str(src),
        "--out",
        str(tmp_path / "o2"),
        "--p12",
        str(test_pki.revoked_p12),
        "-t",
        str(test_pki.root_cert),
        "--fetch-host",
        test_pki.service_host,
        "--tsa-url",
        pki_services.tsa_url,
    ]
    revoked = runner.invoke(sign_app, args, env={"HUB_SIGN_SECRET": test_pki.p12_password})
    assert revoked.exit_code == 4
    assert "thu hồi" in revoked.output
    assert not (tmp_path / "o2").exists()
    neither = runner.invoke(sign_app, [str(src), "--out", str(tmp_path / "o3")])
    assert neither.exit_code != 0


def _one_line_refusal(result: Result) -> str:
    """A refusal is exit 4 with one bilingual line on stderr, never a traceback."""
    assert result.exit_code == 4, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("role", "missing"), [("copy", "--agency-name"), ("attachment", "--document-number")]
)
def test_text_stamp_role_without_its_text_is_refused(
    role: str, missing: str, tmp_path: Path, test_pki: TestPki, pki_services: RunningPki
) -> None:
    src = _inputs(tmp_path / "in", 1)
    result = _sign(test_pki, pki_services, src, tmp_path / "out", "--role", role)
    line = _one_line_refusal(result)
    assert f"Thiếu {missing}" in line
    assert f"--role {role} needs {missing}" in line
    assert not (tmp_path / "out").exists()


def test_time_stamped_level_without_tsa_is_refused_before_the_certificate_check(
    tmp_path: Path, test_pki: TestPki, pki_services: RunningPki
) -> None:
    """B-T is the default level: without a TSA the refusal comes first and says how to set one."""
    src = _inputs(tmp_path / "in", 1)
    before = pki_services.counters
    result = runner.invoke(
        sign_app,
        [
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--p12",
            str(test_pki.revoked_p12),
            "-t",
            str(test_pki.root_cert),
        ],
        env={"HUB_SIGN_SECRET": test_pki.p12_password},
    )
    line = _one_line_refusal(result)
    assert "--tsa-url" in line
    assert "tsa_url" in line
    assert "B-B" in line
    assert "TSA" in line
    after = pki_services.counters
    assert (after["ocsp"], after["crl"]) == (before["ocsp"], before["crl"])  # no certificate check
    assert not (tmp_path / "out").exists()


def test_password_prompt_when_env_missing(
    tmp_path: Path, test_pki: TestPki, pki_services: RunningPki
) -> None:
    src = _inputs(tmp_path / "in", 1)
    result = runner.invoke(
        sign_app,
        [
            str(src),
            *_base(test_pki, pki_services, tmp_path / "out"),
            "--level",
            "B-B",
            "--secret-env",
            "UNSET_VAR_X",
        ],
        input=test_pki.p12_password + "\n",
    )
    assert result.exit_code == 0, result.output


def test_pki_init(tmp_path: Path) -> None:
    result = runner.invoke(pki_app, ["init", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    for name in ("root.crt.pem", "officer.p12", "agency.p12", "signature.png", "seal.png", "sample.pdf"):
        assert (tmp_path / "demo" / name).is_file()


def _cli_audit(url: str) -> list[tuple[str, str, str, dict[str, object]]]:
    db = Database.connect(url, pool_size=1)
    try:
        with db.sessions() as session:
            rows = session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.target, AuditEntry.details).order_by(
                    AuditEntry.id
                )
            ).all()
    finally:
        db.dispose()
    return [(a, actor, target, details) for a, actor, target, details in rows]


def test_every_cli_signature_and_refusal_is_audited(
    tmp_path: Path, test_pki: TestPki, pki_services: RunningPki, audit_database: str, signature_png: bytes
) -> None:
    src = _inputs(tmp_path / "in", 2)
    inputs = sorted(src.glob("*.pdf"))
    signature_image = tmp_path / "chu-ky.png"
    signature_image.write_bytes(signature_png)
    args = [
        str(src),
        *_base(test_pki, pki_services, tmp_path / "out"),
        "--level",
        "B-B",
        "--role",
        "personal",
        "--signature-image",
        str(signature_image),
    ]
    ok = runner.invoke(sign_app, args, env={"HUB_SIGN_SECRET": test_pki.p12_password})
    assert ok.exit_code == 0, ok.output
    wrong = _sign(test_pki, pki_services, src, tmp_path / "o2", secret="sai")
    assert wrong.exit_code == 4

    rows = _cli_audit(audit_database)
    actor = f"cli:{getpass.getuser()}"
    digests = [f"sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in inputs]
    assert [(a, who, target, d["outcome"]) for a, who, target, d in rows] == [
        *[("signing.cli", actor, digest, "signed") for digest in digests],
        *[("signing.cli", actor, digest, "refused") for digest in digests],
    ]
    assert {(d["key_id"], d["purpose"]) for *_, d in rows[:2]} == {("p12:officer.p12", "personal")}
    outputs = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "out").iterdir()}
    assert {d["output_sha256"] for *_, d in rows[:2]} == outputs
    assert rows[2][3]["error_code"] == "wrong_pin"


def test_without_the_audit_log_nothing_is_signed(
    tmp_path: Path, test_pki: TestPki, pki_services: RunningPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'not-migrated.db'}")
    src = _inputs(tmp_path / "in", 1)
    result = _sign(test_pki, pki_services, src, tmp_path / "out", "--level", "B-B")
    assert result.exit_code == 4
    assert "audit" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_pki_serve_keeps_the_pki_unless_asked_to_rebuild(tmp_path: Path) -> None:
    """Earlier test signatures keep verifying across restarts of ``hub pki serve``."""
    directory = tmp_path / "demo"
    with serve_test_pki(directory) as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        root = first.pki.root_cert.read_bytes()
    assert serve_port(directory, None, rebuild=False) == port
    with serve_test_pki(directory, port=port, rebuild=False) as again:
        assert again.pki.root_cert.read_bytes() == root
        assert again.pki.officer_p12 == first.pki.officer_p12
    with serve_test_pki(directory, port=port, rebuild=True) as rebuilt:
        assert rebuilt.pki.root_cert.read_bytes() != root
    assert serve_port(tmp_path / "new", None, rebuild=False) == 8765
    with pytest.raises(typer.Exit) as refused:
        serve_port(directory, port + 1, rebuild=False)
    assert refused.value.exit_code == 4


# --- hub issue: number, date, seal (Decree 30/2020 Art. 14, 15, 17) --------------------------------


def _officer_signed(sign: Sign, path: Path) -> Path:
    """A draft with its number and date places, certified by the competent person."""
    options = SignOptions(
        level=SignatureLevel.B_T, role=SignRole.PERSONAL, certify=True, open_fields=list(OPEN_AFTER_SIGNATURE)
    )
    signed, _ = sign(options, key="officer", pdf=ensure_number_places(sample_pdf("GCN")))
    path.write_bytes(signed)
    return path


def _issue_args(test_pki: TestPki, pki_services: RunningPki, source: Path, out: Path) -> list[str]:
    seal = source.parent / "con-dau.png"
    if not seal.exists():
        seal.write_bytes(sample_seal_png())
    return [
        "--seal-image",
        str(seal),
        str(source),
        "--out",
        str(out),
        "--p12",
        str(test_pki.agency_p12),
        "-t",
        str(test_pki.root_cert),
        "--tsa-url",
        pki_services.tsa_url,
        "--agency-code",
        "000.00.18.H42",
        "--agency-abbreviation",
        "SNNMT",
        "--document-type",
        "QĐ",
        "--place",
        "Ninh Bình",
    ]


def test_issue_numbers_dates_and_seals_from_the_register(
    tmp_path: Path, test_pki: TestPki, pki_services: RunningPki, sign: Sign, audit_database: str
) -> None:
    source = _officer_signed(sign, tmp_path / "gcn.pdf")
    env = {"HUB_SIGN_SECRET": test_pki.p12_password}
    first = runner.invoke(
        issue_app, [*_issue_args(test_pki, pki_services, source, tmp_path / "1.pdf"), "--json"], env=env
    )
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    today = now_vn().date()
    assert body["symbol"] == "01/QĐ-SNNMT"
    assert body["date_line"] == date_line("Ninh Bình", today)
    issued = (tmp_path / "1.pdf").read_bytes()
    assert number_place_values(issued) == {NUMBER_FIELD: "Số: 01/QĐ-SNNMT", DATE_FIELD: body["date_line"]}
    report = verify_pdf(issued, VerificationPolicy.from_paths([test_pki.root_cert]))
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.signatures[0].modifications.filled_fields == [DATE_FIELD, NUMBER_FIELD]

    second = runner.invoke(
        issue_app, _issue_args(test_pki, pki_services, source, tmp_path / "2.pdf"), env=env
    )
    assert second.exit_code == 0, second.output
    assert "Số 02/QĐ-SNNMT" in second.output

    again = runner.invoke(
        issue_app, _issue_args(test_pki, pki_services, tmp_path / "1.pdf", tmp_path / "3.pdf"), env=env
    )
    assert again.exit_code == 4  # already numbered: refused before a number is taken
    assert "Văn bản đã được cấp số" in again.output
    unsigned = tmp_path / "draft.pdf"
    unsigned.write_bytes(ensure_number_places(sample_pdf("GCN")))
    refused = runner.invoke(
        issue_app, _issue_args(test_pki, pki_services, unsigned, tmp_path / "4.pdf"), env=env
    )
    assert refused.exit_code == 4
    assert not (tmp_path / "3.pdf").exists()
    assert not (tmp_path / "4.pdf").exists()

    db = Database.connect(audit_database, pool_size=1)
    try:
        lines = DocumentRegister(db).lines("000.00.18.H42", today.year)
        with db.sessions() as session:
            rows = (
                session.execute(
                    select(AuditEntry.details)
                    .where(AuditEntry.action == "signing.cli.issue")
                    .order_by(AuditEntry.id)
                )
                .scalars()
                .all()
            )
    finally:
        db.dispose()
    assert [(line.number, line.state.value, line.output_file_id) for line in lines] == [
        (1, "issued", str(tmp_path / "1.pdf")),
        (2, "issued", str(tmp_path / "2.pdf")),
    ]
    assert [(row["outcome"], row.get("document_number")) for row in rows] == [
        ("numbered", "01/QĐ-SNNMT"),
        ("signed", "01/QĐ-SNNMT"),
        ("numbered", "02/QĐ-SNNMT"),
        ("signed", "02/QĐ-SNNMT"),
        ("refused", None),
        ("refused", None),
    ]
