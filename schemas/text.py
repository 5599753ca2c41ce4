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


#: No C0/C1 control characters but TAB, LF and CR (PostgreSQL cannot store NUL; the others
#: break the portals' records and the SMS/HTML renderings). A Rust-regex constraint of
#: pydantic-core, so the check costs no Python per string.
MULTILINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
#: No control characters at all: names, codes and identifiers are one line.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"

#: Longest free text (summary, notes, reasons): docs/portal.md §3.10.
TEXT_MAX = 2000
#: Longest name (owner, handler, paper): §3.10.
NAME_MAX = 500
#: Longest identifier or code the hub takes from a caller (ids, component and result codes).
TOKEN_MAX = 100

#: Text normalised to NFC; empty strings allowed; at most :data:`TEXT_MAX` characters.
VnText = Annotated[str, StringConstraints(max_length=TEXT_MAX, pattern=MULTILINE), AfterValidator(nfc)]
#: Non-empty one-line text normalised to NFC, at most :data:`NAME_MAX` characters.
VnName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX, pattern=ONE_LINE),
    AfterValidator(nfc),
]
#: An identifier or code as a caller sends it: one line, at most :data:`TOKEN_MAX` characters.
Token = Annotated[str, StringConstraints(max_length=TOKEN_MAX, pattern=ONE_LINE)]
