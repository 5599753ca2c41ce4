"""Decree 30/2020 Appendix I image rules: the officer's signature is a transparent blue PNG, the
agency seal a transparent red PNG; anything else is refused (or signed with a warning by policy)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw

from schemas.errors import SignatureImageRejectedError
from signing.image_policy import ImagePolicy, image_problems
from signing.keys import Pkcs12KeySource
from signing.models import SignatureLevel, SignOptions, SignRole
from signing.samples import sample_pdf, sample_seal_png, sample_signature_png
from signing.settings import SigningSettings
from signing.signer_service import SigningConfig, SigningService, config_from_settings

KeyFactory = Callable[..., Pkcs12KeySource]


def _scribble(fmt: str, ink: tuple[int, int, int], *, background: tuple[int, int, int, int]) -> bytes:
    img = Image.new("RGBA", (300, 120), background)
    ImageDraw.Draw(img).line([(20, 60), (100, 20), (180, 100), (280, 40)], fill=(*ink, 255), width=8)
    buf = io.BytesIO()
    (img.convert("RGB") if fmt == "JPEG" else img).save(buf, format=fmt)
    return buf.getvalue()


BLACK_JPEG = _scribble("JPEG", (0, 0, 0), background=(255, 255, 255, 255))
BLACK_PNG = _scribble("PNG", (10, 10, 10), background=(0, 0, 0, 0))
BLUE_ON_WHITE = _scribble("PNG", (20, 40, 170), background=(255, 255, 255, 255))
NAVY_PNG = _scribble("PNG", (0, 0, 90), background=(0, 0, 0, 0))


def _sign(service: SigningService, key: Pkcs12KeySource, role: SignRole) -> list[str]:
    _, result = asyncio.run(
        service.sign_bytes(sample_pdf(), key, SignOptions(level=SignatureLevel.B_B, role=role))
    )
    return [w.code for w in result.warnings]


def test_sample_images_pass() -> None:
    assert image_problems(sample_signature_png(), SignRole.PERSONAL) == []
    assert image_problems(sample_seal_png(), SignRole.AGENCY) == []
    assert image_problems(NAVY_PNG, SignRole.PERSONAL) == []  # dark blue ink is still blue


@pytest.mark.parametrize(
    ("image", "code"),
    [
        (BLACK_JPEG, "image_not_png"),
        (BLACK_PNG, "image_wrong_colour"),
        (BLUE_ON_WHITE, "image_not_transparent"),
    ],
)
def test_bad_signature_image_is_refused(
    image: bytes, code: str, signing_config: SigningConfig, p12_key: KeyFactory
) -> None:
    signing_config.signature_png = image
    with pytest.raises(SignatureImageRejectedError) as exc:
        _sign(SigningService(signing_config), p12_key("officer"), SignRole.PERSONAL)
    assert code in exc.value.details["problems"]
    assert "Phụ lục I" in exc.value.message_vi or "trong suốt" in exc.value.message_vi
    assert exc.value.code == "signature_image_rejected"


def test_blue_image_is_not_a_seal(signing_config: SigningConfig, p12_key: KeyFactory) -> None:
    signing_config.seal_png = sample_signature_png()
    with pytest.raises(SignatureImageRejectedError, match="must be red"):
        _sign(SigningService(signing_config), p12_key("agency"), SignRole.AGENCY)


def test_red_seal_is_not_a_signature(signing_config: SigningConfig, p12_key: KeyFactory) -> None:
    signing_config.signature_png = sample_seal_png()
    with pytest.raises(SignatureImageRejectedError, match="must be blue"):
        _sign(SigningService(signing_config), p12_key("officer"), SignRole.PERSONAL)


def test_warn_policy_signs_and_reports(signing_config: SigningConfig, p12_key: KeyFactory) -> None:
    signing_config.signature_png = BLACK_JPEG
    signing_config.image_policy = ImagePolicy.WARN
    codes = _sign(SigningService(signing_config), p12_key("officer"), SignRole.PERSONAL)
    assert "image_not_png" in codes


def test_policy_from_settings() -> None:
    assert config_from_settings(SigningSettings()).image_policy is ImagePolicy.REFUSE
    warn = config_from_settings(SigningSettings(image_policy="warn"))
    assert warn.image_policy is ImagePolicy.WARN
