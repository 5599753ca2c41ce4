"""Server-rendered pages: one Jinja2 environment per package, autoescape always on.

Every HTML page of the hub (the citizen lookup, the console) is a Jinja2 template shipped in
its package (``templates/``), rendered with autoescaping (OWASP XSS Prevention Cheat Sheet,
rule 1: output encoding), and sent with a Content-Security-Policy without inline scripts.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def environment(package: str, **filters: Callable[..., Any]) -> Environment:
    """A template environment for ``package`` (its ``templates`` directory); build it once."""
    env = Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    return env


def render(env: Environment, template: str, **context: Any) -> str:
    """``template`` rendered, in NFC (Vietnamese text in one form)."""
    return unicodedata.normalize("NFC", env.get_template(template).render(**context))


def csp_hash(text: str) -> str:
    """CSP Level 3 hash-source of an inline element's text: ``'sha256-…'``."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
