"""API keys tied to console accounts, and signing grants naming ``user:<username>``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.accounts.service import AccountService
from hub.auth.keys import ApiKeyService, Principal
from hub.db.models import ApiRole
from hub.db.session import Database
from hub.services.signing_authority import authorize_key
from schemas.errors import InvalidInputError, PermissionDeniedError
from signing.facade import KeyGrant
from signing.models import SignRole
from signing.settings import KeyPurpose, ServerKeySettings
from tests.accounts.support import PASSWORD, console_settings


def test_a_key_tied_to_an_account_stops_with_the_account(db: Database) -> None:
    accounts = AccountService(db, console_settings())
    accounts.create("root", "Quản trị", PASSWORD, ["admin"], actor="tests")
    accounts.create("lan", "Nguyễn Thị Lan", PASSWORD, ["officer"], actor="root")
    with pytest.raises(InvalidInputError, match="no enabled console account"):
        ApiKeyService(db).create("ghost-key", "officer", actor="root", account="ghost")
    with pytest.raises(InvalidInputError, match="invalid key name"):  # no key can pose as an account
        ApiKeyService(db).create("user:lan", "officer", actor="root")
    token = ApiKeyService(db).create("lan-key", "officer", actor="root", account="lan").token
    principal = ApiKeyService(db).authenticate(token)
    assert principal is not None
    assert principal.identities == {"lan-key", "user:lan"}
    accounts.disable("lan", actor="root")
    assert ApiKeyService(db).authenticate(token) is None
    accounts.enable("lan", actor="root")
    assert ApiKeyService(db).authenticate(token) is not None
    assert [key.account for key in ApiKeyService(db).list()] == ["lan"]


def test_signing_grants_may_name_an_account() -> None:
    grants = {"lan-sign": KeyGrant(KeyPurpose.PERSONAL, frozenset({"user:lan"}))}
    lan = Principal("lan-key", ApiRole.OFFICER, account="lan")
    binh = Principal("binh-key", ApiRole.OFFICER, account="binh")
    assert authorize_key(grants, lan, "lan-sign", SignRole.PERSONAL) is KeyPurpose.PERSONAL
    with pytest.raises(PermissionDeniedError):
        authorize_key(grants, binh, "lan-sign", SignRole.PERSONAL)


def test_key_settings_accept_user_entries() -> None:
    assert ServerKeySettings(purpose="seal", principals=["van-thu-so", "user:thu.nguyen"]).principals[1] == (
        "user:thu.nguyen"
    )
    with pytest.raises(ValidationError):
        ServerKeySettings(purpose="seal", principals=["user:Thu Nguyen"])
