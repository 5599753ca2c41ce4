"""API key administration over HTTP (role ``admin``), the same operations as ``hub keys``.

The token is returned once, at creation; listings show only name, role and prefix. Every
creation and revocation is audited with the calling admin as actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import get_keys, require_role
from hub.api.errors import error_responses
from hub.api.limits import require_json
from hub.auth.keys import ApiKeyInfo, Principal
from hub.db.models import ApiRole

router = APIRouter(
    prefix="/api/v1/keys", tags=["api keys"], responses=error_responses(401, 403, 404, 409, 422)
)
Admin = Annotated[Principal, Depends(require_role("admin"))]


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: ApiRole
    agency_codes: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=100)] = []
    """Agencies a ``source`` key may write dossiers of; a source key without any writes nothing."""


class KeyView(BaseModel):
    """What the API shows of an :class:`~hub.auth.keys.ApiKeyInfo` (read from its attributes)."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    role: ApiRole
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    agency_codes: list[str]


class IssuedKeyView(KeyView):
    token: str
    """Shown once; only its SHA-256 is stored."""


def _view(info: ApiKeyInfo) -> KeyView:
    view = KeyView.model_validate(info)
    view.agency_codes = sorted(view.agency_codes)
    return view


@router.post("", status_code=201, summary="Create an API key", dependencies=[Depends(require_json)])
def create_key(body: KeyRequest, request: Request, principal: Admin, response: Response) -> IssuedKeyView:
    issued = get_keys(request).create(
        body.name, body.role, actor=principal.name, agency_codes=body.agency_codes
    )
    response.headers["Cache-Control"] = "no-store"
    return IssuedKeyView(token=issued.token, **_view(issued.info).model_dump())


@router.get("", summary="List API keys (no tokens)")
def list_keys(request: Request, _principal: Admin) -> list[KeyView]:
    return [_view(info) for info in get_keys(request).list()]


@router.delete("/{name}", summary="Revoke an API key")
def revoke_key(name: str, request: Request, principal: Admin) -> KeyView:
    return _view(get_keys(request).revoke(name, actor=principal.name))
