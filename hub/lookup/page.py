"""The public Vietnamese lookup page ``/tra-cuu?MHS=<code>&SGT=<ID number>`` (§8, Thanh Hóa).

A Jinja2 template (``templates/lookup.html``, autoescaped: :mod:`hub.pages`), UTF-8 and NFC;
the ID number is never echoed back into the page. No script; the one inline ``<style>``
is allowed by its hash in :data:`PAGE_CSP` (CSP Level 3 §8.3
"hash-source"), the page sent with that policy.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from jinja2 import Environment
from markupsafe import Markup

from hub.lookup.service import LookupView
from hub.pages import csp_hash, environment, render
from schemas.timefmt import VN_TZ

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.35rem;text-align:left}"
    ".late{color:#b00020;font-weight:bold}.ok{color:#1b5e20}form label{display:block;margin:.5rem 0}"
)

#: The page's Content-Security-Policy: its own inline style, forms to itself, nothing else.
PAGE_CSP = (
    f"default-src 'none'; style-src {csp_hash(_STYLE)}; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _when(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if value else "—"


@cache
def _templates() -> Environment:
    return environment(__package__, when=_when)


def render_page(
    *, code: str = "", view: LookupView | None = None, message: str | None = None, need_id: bool = True
) -> str:
    return render(
        _templates(),
        "lookup.html",
        style=Markup(_STYLE),  # noqa: S704 - the package's own stylesheet, no outside input
        code=code,
        view=view,
        message=message,
        need_id=need_id,
    )
