"""What auth's service really stores: datetimes and booleans written with ``$set`` keep their BSON types
(nx-27017 once stored them as a string and ``1``; fixed at the root in ``platform/nx_server.py``)."""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

from medchat.auth import Accounts
from medchat.auth.models import RefreshToken, User
from medchat.runtime import Runtime
from tests.support.accounts import TEST_PASSWORD

NEW_PASSWORD = "a different long passphrase 77"


async def test_set_changes_keep_their_bson_types(runtime: Runtime) -> None:
    accounts = runtime.services.get(Accounts)
    admin = await accounts.create_user(email="keeper@example.org", password=TEST_PASSWORD, role="admin")
    user = await accounts.create_user(email="typed@example.org", password=TEST_PASSWORD, full_name="Typed")
    signed_in = await accounts.authenticate(email=user.email, password=TEST_PASSWORD, address="10.0.0.9")
    tokens = await accounts.issue_tokens(signed_in)
    await accounts.refresh(tokens.refresh_token)
    await accounts.update_profile(user.id, full_name="Typed Again")
    await accounts.change_password(user.id, current_password=TEST_PASSWORD, new_password=NEW_PASSWORD)
    await accounts.update_user(user.id, disabled=True, actor=admin.id)

    stored = await User.get_pymongo_collection().find_one({"_id": ObjectId(user.id)})
    assert stored is not None
    assert stored["disabled"] is True, repr(stored["disabled"])
    assert isinstance(stored["updated_at"], datetime), repr(stored["updated_at"])
    assert isinstance(stored["last_login_at"], datetime), repr(stored["last_login_at"])
    assert stored["full_name"] == "Typed Again"
    assert type(stored["token_version"]) is int and stored["token_version"] == 2, "password change, then disable"

    used = await RefreshToken.get_pymongo_collection().find_one({"user_id": user.id, "used": True})
    assert used is not None and used["used"] is True and used["revoked"] is False
    assert isinstance(used["expires_at"], datetime)
