"""Vietnamese text handling: every string the hub stores or sends is Unicode NFC.

TCVN 6909:2001 (Circular 15/2025 part 2) fixes Unicode for Vietnamese; the same letter can be
typed precomposed (NFC) or decomposed (NFD, common from macOS and some IMEs), so text is
normalised once at the boundary.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def nfc(value: str) -> str:
    """Return ``value`` in Unicode NFC with surrounding whitespace removed."""
    return unicodedata.normalize("NFC", value).strip()


def strip_diacritics(value: str) -> str:
    """ASCII rendering of Vietnamese text for SMS replies (``đ`` → ``d``, accents dropped)."""
    decomposed = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return ascii_only.encode("ascii", "ignore").decode("ascii")


#: Text normalised to NFC; empty strings allowed.
VnText = Annotated[str, AfterValidator(nfc)]
#: Non-empty text normalised to NFC.
VnName = Annotated[str, AfterValidator(nfc), StringConstraints(min_length=1, max_length=500)]
