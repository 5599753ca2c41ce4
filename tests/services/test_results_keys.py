"""``[signing.keys]``: server-held keys configured without secrets in the file, checked at start-up,
and a PKCS#11 agency seal on a real SoftHSM2 token signing a result paper."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from hub.api.app import create_app
from hub.config import Settings, load_settings
from hub.db.session import Database
from hub.services.intake import IntakeService
from hub.services.results import ResultSigningService
from hub.services.signing_authority import SealCheck, SigningAudit
from hub.services.signing_keys import build_signing_facade, key_images, key_sources
from hub.simulators.pki import RunningPki
from hub.storage.files import FileStore
from schemas.changes import DossierUpsert
from schemas.errors import ConfigurationError
from signing.facade import SigningFacade
from signing.keys import Pkcs11KeySource, Pkcs12KeySource
from signing.samples import sample_pdf
from signing.verification import Verdict, VerificationPolicy, verify_pdf
from tests.sample_dossier import CODE, make_dossier
from tests.services.results_support import CLERK, ISSUANCE, OFFICER, p12_key, sign_twice
from tests.signing.softhsm_support import MODULE, SoftHsm

TOKEN_PIN = "246810"


def p12_keys(pki: RunningPki) -> dict[str, object]:
    return {
        "officer": p12_key(OFFICER, pki.pki.officer_p12, "OFFICER_PW"),
        "agency": p12_key(CLERK, pki.pki.agency_p12, "AGENCY_PW"),
    }


def test_keys_are_built_from_the_environment_never_from_the_file(pki: RunningPki, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, signing={"keys": p12_keys(pki)})
    env = {"OFFICER_PW": pki.pki.p12_password, "AGENCY_PW": pki.pki.p12_password}
    sources = key_sources(settings.signing, env)
    assert set(sources) == {"officer", "agency"}
    officer = sources["officer"]
    assert isinstance(officer, Pkcs12KeySource)
    assert officer.password.reveal() == pki.pki.p12_password
    assert pki.pki.p12_password not in repr(officer)
    with officer.open() as signer:  # the password really opens the file
        assert "Nguyễn Thị Lấp Lánh" in signer.signing_cert.subject.human_friendly

    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            signing={"keys": {"agency": {**p12_keys(pki)["agency"], "password": "secret"}}}  # type: ignore[dict-item]
        )
    assert "password: Extra inputs are not permitted" in caught.value.message


@pytest.mark.parametrize(
    ("change", "needle", "needle_vi"),
    [
        ({}, "environment variable AGENCY_PW", "biến môi trường AGENCY_PW"),
        ({"path": "/nonexistent/agency.p12"}, "does not exist", "không tìm thấy tệp"),
    ],
)
def test_missing_secret_or_file_fails_at_start_up(
    pki: RunningPki, tmp_path: Path, change: dict[str, str], needle: str, needle_vi: str
) -> None:
    keys = p12_keys(pki)
    keys["agency"] = {**keys["agency"], **change}  # type: ignore[dict-item]
    settings = load_settings(data_dir=tmp_path, signing={"keys": keys})
    env = {"OFFICER_PW": "x"} if not change else {"OFFICER_PW": "x", "AGENCY_PW": "y"}
    with pytest.raises(ConfigurationError) as caught:
        build_signing_facade(settings, env)
    assert needle in caught.value.message
    assert needle_vi in caught.value.message_vi
    assert "'agency'" in caught.value.message


def test_images_must_be_png(pki: RunningPki, tmp_path: Path) -> None:
    fake = tmp_path / "seal.png"
    fake.write_bytes(b"GIF89a not a png")
    keys = p12_keys(pki)
    keys["agency"] = {**keys["agency"], "image_path": str(fake)}  # type: ignore[dict-item]
    settings = load_settings(signing={"keys": keys})
    with pytest.raises(ConfigurationError, match="not a PNG"):
        key_images(settings.signing)
    keys["agency"] = {**keys["agency"], "image_path": str(tmp_path / "missing.png")}  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="cannot read image"):
        key_images(load_settings(signing={"keys": keys}).signing)


def _opaque_blue_png(path: Path) -> Path:
    """A blue mark on an opaque white background: no seal (red, transparent; Appendix I)."""
    img = Image.new("RGBA", (80, 80), (255, 255, 255, 255))
    ImageDraw.Draw(img).ellipse((10, 10, 70, 70), fill=(20, 40, 200, 255))
    img.save(path, "PNG")
    return path


def test_a_bad_seal_image_stops_the_start_not_the_first_seal(pki: RunningPki, tmp_path: Path) -> None:
    bad = _opaque_blue_png(tmp_path / "seal.png")
    keys = p12_keys(pki)
    keys["agency"] = {**keys["agency"], "image_path": str(bad)}  # type: ignore[dict-item]
    env = {"OFFICER_PW": pki.pki.p12_password, "AGENCY_PW": pki.pki.p12_password}
    settings = load_settings(data_dir=tmp_path, signing={"keys": keys})
    with pytest.raises(ConfigurationError) as caught:
        build_signing_facade(settings, env)
    error = caught.value
    assert "signing key 'agency'" in error.message
    assert str(bad) in error.message
    assert "seal image must be red" in error.message
    assert "image_policy" in error.message
    assert "Khóa ký 'agency'" in error.message_vi
    assert "con dấu phải có màu đỏ" in error.message_vi
    assert set(error.details["problems"]) == {"image_not_transparent", "image_wrong_colour"}
    # the operator's choice to sign anyway and warn (docs/signing.md §5.4) still starts
    lenient = load_settings(data_dir=tmp_path, signing={"keys": keys, "image_policy": "warn"})
    build_signing_facade(lenient, env)
    assert key_images(lenient.signing)["agency"] == bad.read_bytes()


def test_a_bad_template_image_stops_the_start(pki: RunningPki, tmp_path: Path) -> None:
    bad = _opaque_blue_png(tmp_path / "seal.png")
    settings = load_settings(
        data_dir=tmp_path,
        signing={
            "keys": p12_keys(pki),
            "templates": {"giay-phep": {"seal_image": str(bad)}},
        },
    )
    with pytest.raises(ConfigurationError, match="signing template 'giay-phep'"):
        build_signing_facade(settings, {"OFFICER_PW": "x", "AGENCY_PW": "y"})


@pytest.mark.parametrize(
    ("signing", "needle"),
    [
        ({"result_agency_key": "seal"}, "result_agency_key names unknown key 'seal'"),
        (
            {"keys": {"hsm": {"kind": "pkcs11", "purpose": "seal", "module": str(MODULE), "pin_env": "PIN"}}},
            "set token_label or slot_no",
        ),
        (
            {
                "keys": {
                    "hsm": {
                        "kind": "pkcs11",
                        "purpose": "seal",
                        "module": "/m.so",
                        "token_label": "t",
                        "pin_env": "PIN",
                    }
                }
            },
            "set key_label or key_id",
        ),
        (
            {
                "keys": {
                    "hsm": {"kind": "pkcs11", "module": "/m.so", "slot_no": 0, "key_id": "zz", "pin_env": "P"}
                }
            },
            "key_id",
        ),
        ({"keys": {"x": {"kind": "pkcs12", "path": "/a.p12", "password_env": "NOT A NAME"}}}, "password_env"),
        ({"keys": {"x": {"kind": "pem", "path": "/a.pem"}}}, "kind"),
    ],
)
def test_bad_key_settings_name_the_key(signing: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(signing=signing)
    assert needle in caught.value.message


def test_pkcs11_settings_map_to_the_token_selection(tmp_path: Path) -> None:
    assert MODULE.exists(), "SoftHSM2 missing: run scripts/bootstrap.sh (apt-get install softhsm2)"
    chain = tmp_path / "ca.pem"
    chain.write_text("placeholder")
    settings = load_settings(
        signing={
            "keys": {
                "seal": {
                    "kind": "pkcs11",
                    "purpose": "seal",
                    "module": str(MODULE),
                    "token_label": "so-nnmt",
                    "key_id": "0A0b",
                    "cert_label": "agency-cert",
                    "pin_env": "SEAL_PIN",
                    "use_raw_mechanism": True,
                    "extra_certs": [str(chain)],
                }
            }
        }
    )
    source = key_sources(settings.signing, {"SEAL_PIN": "1234"})["seal"]
    assert isinstance(source, Pkcs11KeySource)
    assert (source.token_label, source.key_id, source.cert_label) == ("so-nnmt", b"\x0a\x0b", "agency-cert")
    assert source.pin.reveal() == "1234"
    assert source.use_raw_mechanism
    assert source.extra_certs == (chain,)


def test_same_key_for_both_signatures_is_refused(pki: RunningPki, tmp_path: Path, db: Database) -> None:
    settings = load_settings(data_dir=tmp_path, signing={"keys": p12_keys(pki)})
    facade = build_signing_facade(settings, {"OFFICER_PW": "x", "AGENCY_PW": "y"})
    files = FileStore(db, tmp_path / "files", public_base_url="http://h", max_bytes=10**6)
    with pytest.raises(ConfigurationError, match="two different keys"):
        ResultSigningService(
            facade,
            files,
            IntakeService(db, settings),
            officer_key="agency",
            agency_key="agency",
            audit=SigningAudit(db),
            seal_check=SealCheck(VerificationPolicy.production()),
        )


def test_app_builds_the_facade_and_result_service_at_start_up(
    pki: RunningPki, tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    signing = {"keys": p12_keys(pki), "result_officer_key": "officer", "result_agency_key": "agency"}
    settings = load_settings(data_dir=tmp_path, signing=signing)
    with pytest.raises(ConfigurationError, match="OFFICER_PW"):
        create_app(settings, db)  # secrets missing: refused at start-up, not at first use
    monkeypatch.setenv("OFFICER_PW", pki.pki.p12_password)
    monkeypatch.setenv("AGENCY_PW", pki.pki.p12_password)
    app = create_app(settings, db)
    facade = app.state.services.signing
    assert isinstance(facade, SigningFacade)
    assert set(facade.keys) == {"officer", "agency"}
    assert isinstance(app.state.services.results, ResultSigningService)

    plain = create_app(load_settings(data_dir=tmp_path), db)
    assert plain.state.services.signing is None  # no keys: the signing stack is not built
    assert plain.state.services.results is None


# --- a PKCS#11 agency seal on SoftHSM2 ---------------------------------------------------------


@pytest.fixture
def agency_token(softhsm: SoftHsm, pki: RunningPki) -> str:
    """A SoftHSM2 token of its own holding the agency key (id 0a, label "agency") and its
    certificate."""
    return softhsm.token(
        f"so-nnmt-{uuid.uuid4().hex[:8]}",
        TOKEN_PIN,
        keys=[(pki.pki.agency_key, "agency", "0a")],
        certificates=[(pki.pki.agency_cert, "agency", b"\x0a")],
    )


def test_agency_seal_from_a_configured_pkcs11_token(
    pki: RunningPki,
    images: dict[str, Path],
    tmp_path: Path,
    db: Database,
    agency_token: str,
) -> None:
    settings: Settings = load_settings(
        data_dir=tmp_path,
        endpoints={"cong-dvcqg": {"kind": "webhook", "url": "http://127.0.0.1:9/x"}},
        routing=[{"kinds": ["dossier.sync"], "endpoints": ["cong-dvcqg"]}],
        signing={
            "trust_anchor_paths": [str(pki.pki.root_cert)],
            "revocation_fetch": {"allowed_hosts": [pki.pki.service_host]},
            "tsa_url": pki.tsa_url,
            "keys": {
                "lanh-ntl": p12_key(OFFICER, pki.pki.officer_p12, "OFFICER_PW", images["officer"]),
                "so-nnmt": {
                    "kind": "pkcs11",
                    "purpose": "seal",
                    "principals": [CLERK.name],
                    "module": str(MODULE),
                    "token_label": agency_token,
                    "key_label": "agency",
                    "cert_label": "agency",
                    "pin_env": "SEAL_PIN",
                    "image_path": str(images["agency"]),
                    "extra_certs": [str(pki.pki.issuing_ca_cert)],
                },
            },
            "result_officer_key": "lanh-ntl",
            "result_agency_key": "so-nnmt",
            "issuance": ISSUANCE,
        },
    )
    env = {"OFFICER_PW": pki.pki.p12_password, "SEAL_PIN": TOKEN_PIN}
    intake = IntakeService(db, settings)
    intake.upsert_dossier(DossierUpsert(dossier=make_dossier(), version=1), actor="src")
    files = FileStore(db, tmp_path / "files", public_base_url="http://127.0.0.1:8080", max_bytes=10**7)
    facade = build_signing_facade(settings, env)
    service = ResultSigningService.from_settings(settings, facade, files, intake, db)
    assert service is not None
    source = files.save(sample_pdf(), filename="gcn.pdf", media_type="application/pdf", dossier_code=CODE)

    signed = sign_twice(service, CODE, source.id)

    _info, path = files.get(signed.file_id)
    policy = VerificationPolicy.from_paths([pki.pki.root_cert], fetch_settings=pki.pki.fetch_settings())
    report = verify_pdf(path.read_bytes(), policy)
    assert report.verdict is Verdict.VALID, report.reasons
    assert [s.signer_name for s in report.signatures] == [
        "Nguyễn Thị Lấp Lánh",
        "Sở Nông nghiệp và Môi trường tỉnh Ninh Bình",
    ]
    assert intake.get_dossier(CODE).results[0].sha256 == signed.sha256
