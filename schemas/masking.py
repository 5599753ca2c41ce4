"""Masking of personal data and credentials in free text (logs, attempt summaries, pages).

Decree 13/2023/NĐ-CP on personal data protection: ID numbers (9-digit CMND, 12-digit CCCD),
phone numbers and credentials must not end up in logs or in answers to roles that do not need
them (see ``docs/architecture.md``, "Personal data"). Every layer masks with these functions.
"""

from __future__ import annotations

import re
from typing import Any

#: Not inside a longer token: a UUID's ``-0330-4701-97ab`` is not a phone number.
_PHONE_RE = re.compile(r"(?<![\w+-])(?:\+84|84|0)(?:[ .-]?\d){8,9}(?![\w-])")
#: 9 or 12 digits not inside a longer number, nor a dossier code's ``.``/``-`` parts; glued to
#: letters (``CCCD001099012345``, ``SGT001099012345``) they are still an ID number.
_ID_RE = re.compile(r"(?<![\d.-])(\d{12}|\d{9})(?!\d)")
#: Hex digests and UUIDs are masked nowhere: a digit run inside one is no ID or phone number.
_HEX_RE = re.compile(
    r"(?<![0-9A-Za-z])((?:[0-9A-Fa-f]{32,}|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}))(?![0-9A-Za-z])"
)
_TOKEN_RE = re.compile(r"\bhub_([a-z0-9]{8})_[A-Za-z0-9_-]+")
_BEARER_RE = re.compile(r"(?i)\b(bearer|x-api-key[\"']?\s*[:=]\s*[\"']?)\s*([^\s\"',]{8,})")
#: ``password=…``, ``"client_secret": "…"``, ``pass=…``, ``pwd:…``, ``mat_khau=…`` (the short
#: names only as whole words: ``bypass=1`` stays).
_SECRET_FIELD_RE = re.compile(
    r"(?i)([\"']?(?:\w*(?:password|passwd|secret|token)|(?<![a-z0-9])(?:pass|pwd|pin|passphrase|api_?key"
    r"|m[aậ]t[ _]?kh[aẩ]u))[\"']?\s*[:=]\s*[\"']?)([^\s\"',&}]+)"
)


def mask_phone(value: str) -> str:
    """``0912345678`` → ``091*****78``; keeps enough to tell numbers apart in logs."""
    digits = re.sub(r"\D", "", value)
    if digits.startswith("84"):
        digits = "0" + digits[2:]
    if len(digits) < 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def _mask_id(match: re.Match[str]) -> str:
    number = match.group(1)
    return "*" * (len(number) - 3) + number[-3:]


def _mask_credential(match: re.Match[str]) -> str:
    label = match.group(1)
    return f"{label} ***" if label.lower() == "bearer" else f"{label}***"


#: In ASCII text, the credential patterns cannot match without one of these (lower-cased):
#: ``_BEARER_RE``'s words, and a ``_SECRET_FIELD_RE`` name's core (``mật khẩu`` in ASCII has "kh").
_BEARER_WORDS = re.compile("bearer|x-api-key")
_SECRET_WORDS = re.compile("pass|secret|token|pwd|pin|api|kh")


def _mask_token(match: re.Match[str]) -> str:
    return f"hub_{match.group(1)}_***"


def _mask_secret_field(match: re.Match[str]) -> str:
    return f"{match.group(1)}***"


def mask_pii(text: str) -> str:
    """Mask ID numbers, phone numbers, API tokens and secret-looking fields in ``text``.

    A pattern that cannot match is not run (the secret-field one scans slowly, and every
    delivery's answer is masked): an API token needs ``hub_``; in ASCII text, where ignoring
    case is plain lower-casing, a credential needs one of its words. Other text (Unicode case
    folding has more equivalents) always runs every pattern.
    """
    if "hub_" in text:
        text = _TOKEN_RE.sub(_mask_token, text)
    lowered = text.lower() if text.isascii() else None
    if lowered is None or _BEARER_WORDS.search(lowered):
        text = _BEARER_RE.sub(_mask_credential, text)
    if lowered is None or (("=" in text or ":" in text) and _SECRET_WORDS.search(lowered)):
        text = _SECRET_FIELD_RE.sub(_mask_secret_field, text)
    parts = _HEX_RE.split(text)  # text, digest, text, digest, …, text
    for index in range(0, len(parts), 2):
        phones_masked = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), parts[index])
        parts[index] = _ID_RE.sub(_mask_id, phones_masked)
    return "".join(parts)


def mask_id_number(value: str) -> str:
    """Any ID number (CCCD, CMND, passport): all but the last three characters hidden."""
    return "*" * max(len(value) - 3, 0) + value[-3:] if len(value) > 3 else "*" * len(value)


def mask_json(value: Any) -> Any:
    """``value`` (decoded JSON: dicts, lists, scalars) with :func:`mask_pii` applied to every string."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {key: mask_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_json(item) for item in value)
    return value


def unmask_edit(original: Any, edited: Any) -> Any:
    """``edited`` with every string that is exactly the masked form of the string at the same
    place in ``original`` replaced by the original: someone who saw a masked copy and edited
    other fields sends the masks back, and they must not overwrite the real values."""
    if isinstance(edited, str):
        if isinstance(original, str) and edited != original and edited == mask_pii(original):
            return original
        return edited
    if isinstance(edited, dict) and isinstance(original, dict):
        return {key: unmask_edit(original.get(key), item) for key, item in edited.items()}
    if isinstance(edited, list) and isinstance(original, list):
        kept = [unmask_edit(old, new) for old, new in zip(original, edited, strict=False)]
        return kept + edited[len(kept) :]
    return edited


#: What masking leaves behind: three or more ``*`` (ID numbers, phones, secrets, tokens).
_MASK_MARK = re.compile(r"\*{3,}")


def masked_leftovers(original: Any, edited: Any, path: str = "$") -> list[str]:
    """Paths (``$.a.b[0]``) of strings in ``edited`` that carry mask marks and differ from
    ``original`` at the same place: a masked value that was edited, moved or retyped, which
    would store the mask instead of the personal data."""
    if isinstance(edited, str):
        return [path] if _MASK_MARK.search(edited) and edited != original else []
    found: list[str] = []
    if isinstance(edited, dict):
        source = original if isinstance(original, dict) else {}
        for key, item in edited.items():
            found.extend(masked_leftovers(source.get(key), item, f"{path}.{key}"))
    elif isinstance(edited, list):
        items = original if isinstance(original, list) else []
        for i, item in enumerate(edited):
            found.extend(masked_leftovers(items[i] if i < len(items) else None, item, f"{path}[{i}]"))
    return found
