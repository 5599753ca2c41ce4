"""Appearance templates: where the Decree 30 appearances go on a page (docs/signing.md §5.2, §5.5).

Plain settings models, kept apart from the drawing code in :mod:`signing.appearance` so that
reading the configuration never loads the PDF stack.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import ConfigurationError

__all__ = ["DEFAULT_FONT_PATH", "ISO8601_VN_FORMAT", "PT_PER_MM", "AppearanceTemplate", "Box"]

DEFAULT_FONT_PATH = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")
#: ISO 8601 with the Vietnam offset; Asia/Ho_Chi_Minh has no DST so the offset is constant.
ISO8601_VN_FORMAT = "%Y-%m-%dT%H:%M:%S+07:00"
PT_PER_MM = 72 / 25.4


class Box(BaseModel):
    """A rectangle on a page in PDF points, origin bottom-left. ``page`` -1 = last page."""

    model_config = ConfigDict(frozen=True)

    page: int = 0
    x: float
    y: float
    width: float = Field(gt=0)
    height: float = Field(gt=0)

    def rect(self) -> tuple[int, int, int, int]:
        return (round(self.x), round(self.y), round(self.x + self.width), round(self.y + self.height))


class AppearanceTemplate(BaseModel):
    """Where and how the Decree 30 appearances are drawn for one kind of document (A4 default).

    ``personal_box``: a fixed box for procedures whose documents the signer block cannot be
    found in (scans); ``None`` = the block must be found on the page (docs/signing.md §5.5).
    The text stamp sits at the top right of page 1 inside the 15–20 mm right margin rule.
    """

    name: str = "default"
    font_path: Path = DEFAULT_FONT_PATH
    font_size: int = 10
    personal_box: Box | None = None
    seal_diameter_mm: float = Field(default=36.0, gt=5, lt=80)
    seal_overlap_fraction: float = Field(default=1 / 3, gt=0, le=1)
    text_stamp_box: Box = Box(page=0, x=300, y=762, width=252, height=54)
    signature_image: Path | None = None
    seal_image: Path | None = None

    def resolved_font(self) -> Path:
        if not self.font_path.is_file():
            raise ConfigurationError(
                f"stamp font {self.font_path} not found (install fonts-liberation2 or configure font_path)",
                message_vi=f"Không tìm thấy phông chữ {self.font_path} để trình bày chữ ký số",
            )
        return self.font_path
