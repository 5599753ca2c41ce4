"""Per-dossier QR codes that open the public lookup page (Decision 163/2025 Art. 15(6)).

The QR holds only ``<public_base_url>/tra-cuu?MHS=<code>``; the page then asks for the ID
number, so a photographed receipt does not leak it.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno


def lookup_url(public_base_url: str, code: str) -> str:
    return f"{public_base_url.rstrip('/')}/tra-cuu?{urlencode({'MHS': code})}"


def qr_png(data: str, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_svg(data: str, *, scale: int = 4) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        buffer, kind="svg", scale=scale, border=4, xmldecl=False, title="Tra cứu hồ sơ"
    )
    return buffer.getvalue()
