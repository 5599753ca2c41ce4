"""Checks on the images drawn in visible signatures (docs/signing.md §5.4).

Decree 30/2020/NĐ-CP Appendix I (7d, 8a): the competent person's signature image is a PNG with
a transparent background in **blue**; the agency seal image is a PNG with a transparent
background in **red**, at real size. A black JPEG scan, an opaque white background or a black
signature is refused (or, by local policy, drawn with a warning).

The test is on the *ink*: pixels at least half opaque. The background must be mostly fully
transparent, and at least :data:`MIN_INK_SHARE` of the ink must have the role's hue (HSV hue
and saturation; dark navy and light red still count, black, grey and brown do not).
"""

from __future__ import annotations

import io
import logging
from enum import StrEnum
from functools import lru_cache

from PIL import Image, UnidentifiedImageError

from schemas.errors import SignatureImageRejectedError
from signing.models import SigningWarning, SignRole

__all__ = ["MIN_INK_SHARE", "ImagePolicy", "check_appearance_image", "image_problems"]

_log = logging.getLogger(__name__)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Share of the ink pixels that must be of the role's colour.
MIN_INK_SHARE = 0.8
#: Share of all pixels that must be fully transparent (the background).
_MIN_TRANSPARENT_SHARE = 0.2
#: Images are checked on a thumbnail of at most this many pixels a side.
_SAMPLE_SIDE = 256
#: Hue ranges in degrees (HSV): blue ink (cyan-blue to violet-blue), red seal ink.
_HUES: dict[SignRole, tuple[tuple[float, float], ...]] = {
    SignRole.PERSONAL: ((185.0, 275.0),),
    SignRole.AGENCY: ((0.0, 25.0), (330.0, 360.0)),
}
_MIN_SATURATION = 0.3
_MIN_VALUE = 0.15
_WHAT = {SignRole.PERSONAL: ("signature", "chữ ký"), SignRole.AGENCY: ("seal", "con dấu")}
_COLOUR = {SignRole.PERSONAL: ("blue", "màu xanh"), SignRole.AGENCY: ("red", "màu đỏ")}


class ImagePolicy(StrEnum):
    """What to do with an image that breaks the Appendix I rules."""

    REFUSE = "refuse"
    WARN = "warn"


def _share_in_hue(pixels: list[tuple[int, int, int]], ranges: tuple[tuple[float, float], ...]) -> float:
    hits = 0
    for h, s, v in pixels:
        deg = h * 360 / 255
        if s / 255 >= _MIN_SATURATION and v / 255 >= _MIN_VALUE and any(lo <= deg <= hi for lo, hi in ranges):
            hits += 1
    return hits / len(pixels)


def image_problems(data: bytes, role: SignRole) -> list[SigningWarning]:
    """Every way ``data`` breaks the Appendix I rules for ``role`` (empty list: acceptable)."""
    return list(_problems(data, role))


@lru_cache(maxsize=32)  # the same configured image is checked for every document of a batch
def _problems(data: bytes, role: SignRole) -> tuple[SigningWarning, ...]:
    what, what_vi = _WHAT[role]
    colour, colour_vi = _COLOUR[role]
    if not data.startswith(_PNG_MAGIC):
        return (
            SigningWarning(
                code="image_not_png",
                message=(
                    f"the {what} image must be a PNG with a transparent background "
                    "(Decree 30/2020 Appendix I)"
                ),
                message_vi=f"Hình ảnh {what_vi} phải là tệp PNG nền trong suốt (Phụ lục I Nghị định 30/2020)",
            ),
        )
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return (
            SigningWarning(
                code="image_unreadable",
                message=f"the {what} image cannot be read: {exc}",
                message_vi=f"Không đọc được hình ảnh {what_vi}",
            ),
        )
    img = opened.convert("RGBA")
    img.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE))
    alpha = img.getchannel("A").tobytes()
    problems: list[SigningWarning] = []
    transparent = sum(1 for a in alpha if a == 0) / len(alpha)
    if transparent < _MIN_TRANSPARENT_SHARE:
        problems.append(
            SigningWarning(
                code="image_not_transparent",
                message=(
                    f"the {what} image has no transparent background ({transparent:.0%} of it is transparent)"
                ),
                message_vi=f"Hình ảnh {what_vi} không có nền trong suốt",
            )
        )
    flat = img.convert("RGB").convert("HSV").tobytes()
    ink = [(flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i, a in enumerate(alpha) if a >= 128]
    share = _share_in_hue(ink, _HUES[role]) if ink else 0.0
    if share < MIN_INK_SHARE:
        problems.append(
            SigningWarning(
                code="image_wrong_colour",
                message=(
                    f"the {what} image must be {colour} (Decree 30/2020 Appendix I); "
                    f"only {share:.0%} of its ink is {colour}"
                ),
                message_vi=f"Hình ảnh {what_vi} phải có {colour_vi} (Phụ lục I Nghị định 30/2020)",
            )
        )
    return tuple(problems)


def check_appearance_image(data: bytes, role: SignRole, policy: ImagePolicy) -> list[SigningWarning]:
    """Refuse (:class:`SignatureImageRejectedError`) or return the problems as warnings."""
    problems = image_problems(data, role)
    if problems and policy is ImagePolicy.REFUSE:
        raise SignatureImageRejectedError(
            "; ".join(p.message for p in problems),
            message_vi="; ".join(p.message_vi for p in problems),
            details={"role": role.value, "problems": [p.code for p in problems]},
        )
    for problem in problems:
        _log.warning("signature image accepted by policy despite: %s", problem.message)
    return problems
