"""What the OpenAPI document says about answers besides success: problem+json errors and the bearer scheme.

Routes list the statuses they really answer with ``responses=problem_responses(400, 401, 404, ...)``;
the bodies are the problem details ``problems.handle_exception`` writes for every ``AppError``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from medchat.platform.errors import PROBLEM_MEDIA_TYPE

BEARER_SCHEME = "BearerToken"
BEARER = [{BEARER_SCHEME: []}]
"""``security=BEARER`` on a controller: its routes need ``Authorization: Bearer <access_token>``."""
SECURITY_COMPONENTS = Components(
    security_schemes={
        BEARER_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="The access_token from /api/v1/auth/login, /register or /refresh.",
        )
    }
)

_DESCRIPTIONS = {
    400: "The request is not valid: `validation_failed` (with `errors` per field where known) or `bad_request`",
    401: "No valid credentials: `unauthorized`, `invalid_credentials` or `invalid_token`",
    403: "Not allowed: `forbidden` (admins only), `account_disabled`, `registration_closed` or "
    "`model_not_allowed` (the caller's role may not use that model)",
    404: "`not_found`: no such resource, or it is not the caller's (`model_not_found`: no such model)",
    409: "`conflict` with the current state (an email already taken) or `last_admin`",
    413: "`payload_too_large`: the body or file is over the limit",
    415: "`unsupported_media_type`: the file's type is not accepted here",
    422: "`unreadable_document`: the file has an accepted type but could not be read",
    429: "`rate_limited`: too many requests; `Retry-After` gives the seconds to wait",
    503: "Try again later: a store or the language model did not answer (`dependency_unavailable`, "
    "`llm_unavailable`), or every worker is taken (`busy`, with `Retry-After`)",
}


class Problem(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details. Some codes add members: ``errors`` (per field), ``retry_after``, the ids
    of a failed answer to retry with."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    """Stable and machine-readable: what clients branch on."""


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Error answers of a route, each an ``application/problem+json`` ``Problem``."""
    unknown = set(statuses) - _DESCRIPTIONS.keys()
    if unknown:
        raise ValueError(f"no description for status {sorted(unknown)}")
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


def plain_response(data_container: Any, *, media_type: str, description: str) -> ResponseSpec:
    """A further success answer of a route (another status or media type than its return type's)."""
    return ResponseSpec(
        data_container=data_container, media_type=media_type, description=description, generate_examples=False
    )
