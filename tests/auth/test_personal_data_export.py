"""Exporting a person's data through the API, the admin API and the profile page, with a conversation
and a document of theirs in it (each module's share gathered through the real services)."""

from __future__ import annotations

import json

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import RegisterUser, sign_in
from tests.support.documents import upload, wait_until_final


async def test_a_user_with_a_conversation_and_a_document_is_exported_three_ways(
    client: AsyncTestClient[Litestar], register_user: RegisterUser, register_admin: RegisterUser
) -> None:
    user = await register_user(client)
    admin = await register_admin(client)
    asked = await client.post(
        "/api/v1/chat/messages", json={"content": "How often should hands be cleaned?"}, headers=user.headers
    )
    assert asked.status_code == 201, asked.text
    document = await upload(
        client, user.headers, b"Hand hygiene: clean hands before and after every patient contact.", filename="hands.txt"
    )
    await wait_until_final(client, user.headers, document["id"])

    own = await client.get("/api/v1/users/me/export", headers=user.headers)
    by_admin = await client.get(f"/api/v1/users/{user.id}/export", headers=admin.headers)
    await sign_in(client, user.email, user.password)
    from_profile = await client.get("/profile/export")

    for response in (own, by_admin, from_profile):
        assert response.status_code == 200, response.text
        data = json.loads(response.content)
        assert data["user"]["id"] == user.id
        assert [item["id"] for item in data["documents"]] == [document["id"]]
        assert data["documents"][0]["filename"] == "hands.txt"
        assert "owner_id" not in data["documents"][0]
        conversations = data["chat"]["conversations"]
        assert [item["conversation"]["id"] for item in conversations] == [asked.json()["conversation_id"]]
        assert "How often should hands be cleaned?" in json.dumps(conversations)
