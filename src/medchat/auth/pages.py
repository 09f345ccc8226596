"""The HTML pages: sign in, create account, sign out, profile, and the admin users page (HTMX row actions).

Forms post urlencoded bodies (CSRF-checked by the app's ``CSRFConfig``); a form error re-renders the
page with messages tied to their fields. Successful posts redirect: a 303 for plain browsers, an
``HX-Redirect`` for HTMX (boosted) requests, so the whole page, nav included, is fetched afresh.
Routes that also answer fragments (the users list, its row actions) decide with the platform's one
rule, ``wants_fragment``: a plain or boosted form post never gets a bare fragment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, MediaType, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.plugins.htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK

from medchat.auth.csrf import csrf_key, issue_for_session
from medchat.auth.guards import Principal, principal_of, require_user
from medchat.auth.rules import AccountDisabled, RegistrationClosed
from medchat.auth.services import Accounts
from medchat.auth.sessions import SESSION_COOKIE
from medchat.auth.views import Account, principal_of_account
from medchat.platform.clock import utcnow
from medchat.platform.errors import AppError, Conflict, InvalidCredentials, RateLimited, ValidationFailed

AFTER_LOGIN = "/chat"
"""Where a sign-in or a new account lands without a ``next``."""
FORM_ERRORS = (ValidationFailed, Conflict, InvalidCredentials, RateLimited, AccountDisabled, RegistrationClosed)


@dataclass
class LoginForm:
    email: str = ""
    password: str = ""
    next: str = ""


@dataclass
class RegisterForm:
    email: str = ""
    password: str = ""
    full_name: str = ""


@dataclass
class NameForm:
    full_name: str = ""


@dataclass
class PasswordForm:
    current_password: str = ""
    new_password: str = ""


@dataclass
class ConfirmForm:
    password: str = ""


@dataclass
class ApiKeyForm:
    name: str = ""
    expires_in_days: str = ""
    """Blank for a key that does not expire."""


def safe_next(target: str | None) -> str:
    """Only a path on this site: ``//evil.example``, ``/\\evil`` and absolute URLs fall back to the default."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return AFTER_LOGIN
    return target


def redirect(request: HTMXRequest, to: str) -> Response[Any]:
    return ClientRedirect(to) if request.htmx else Redirect(to, status_code=303)


def session_cookie(accounts: NamedDependency[Accounts], value: str, *, expire: bool = False) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=accounts.settings.secure_cookies,
        max_age=0 if expire else int(accounts.sessions.lifetime.total_seconds()),
    )


def form_page(template: str, error: AppError, **context: Any) -> HTMXTemplate:
    """Re-render a form with the error: its field messages (``errors``) next to the fields, the rest on top."""
    field_errors: dict[str, list[str]] = {}
    for item in error.extra.get("errors") or []:
        field_errors.setdefault(str(item.get("key")), []).append(str(item.get("message")))
    return HTMXTemplate(
        template_name=template,
        context={**context, "error": None if field_errors else error.detail, "field_errors": field_errors},
        status_code=error.status,
        headers=error.headers,
    )


class AccountPages(Controller):
    include_in_schema = False

    @get("/login", media_type=MediaType.HTML)
    async def login_page(
        self,
        request: HTMXRequest,
        next_: Annotated[str, QueryParameter(name="next")] = "",
        deleted: FromQuery[bool] = False,
    ) -> Any:
        if principal_of(request):
            return redirect(request, safe_next(next_))
        return HTMXTemplate(template_name="auth/login.html", context={"next": safe_next(next_), "deleted": deleted})

    @post("/login", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def login(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[LoginForm],
    ) -> Any:
        context = {"values": {"email": data.email}, "next": safe_next(data.next)}
        try:
            user = await accounts.authenticate(email=data.email, password=data.password, address=client_ip)
        except FORM_ERRORS as error:
            return form_page("auth/login.html", error, **context)
        return await self._signed_in(request, accounts, user, safe_next(data.next))

    @get("/register", media_type=MediaType.HTML)
    async def register_page(self, request: HTMXRequest, accounts: NamedDependency[Accounts]) -> Any:
        if principal_of(request):
            return redirect(request, AFTER_LOGIN)
        return HTMXTemplate(template_name="auth/register.html", context=self._register_context(accounts))

    @post("/register", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def register(
        self,
        request: HTMXRequest,
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[RegisterForm],
    ) -> Any:
        try:
            user = await accounts.register(
                email=data.email, password=data.password, full_name=data.full_name, ip=client_ip
            )
        except FORM_ERRORS as error:
            values = {"email": data.email, "full_name": data.full_name}
            return form_page("auth/register.html", error, values=values, **self._register_context(accounts))
        return await self._signed_in(request, accounts, user, AFTER_LOGIN)

    @post("/logout", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def logout(self, request: HTMXRequest, accounts: NamedDependency[Accounts]) -> Response[Any]:
        if secret := request.cookies.get(SESSION_COOKIE):
            await accounts.end_session(secret)
        response = redirect(request, "/")
        response.set_cookie(session_cookie(accounts, "", expire=True))
        return response

    async def _signed_in(self, request: HTMXRequest, accounts: Accounts, user: Account, to: str) -> Response[Any]:
        """A new session id on every sign-in (no fixation); the old one, if any, is dropped."""
        if old := request.cookies.get(SESSION_COOKIE):
            await accounts.end_session(old)
        response = redirect(request, to)
        response.set_cookie(session_cookie(accounts, await accounts.start_session(user)))
        return response

    @staticmethod
    def _register_context(accounts: Accounts) -> dict[str, Any]:
        settings = accounts.settings
        return {
            "closed": settings.registration == "closed",
            "domains": settings.registration_domains,
            "min_length": settings.password_min_length,
        }


class ProfilePages(Controller):
    path = "/profile"
    guards = [require_user]  # noqa: RUF012 - Litestar reads it as a class attribute
    include_in_schema = False

    @get("/", media_type=MediaType.HTML)
    async def profile(
        self, current_user: NamedDependency[Principal], accounts: NamedDependency[Accounts]
    ) -> HTMXTemplate:
        return await self._page(accounts, current_user)

    @post("/", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def update_name(
        self,
        request: HTMXRequest,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        data: URLEncodedBody[NameForm],
    ) -> HTMXTemplate:
        try:
            user = await accounts.update_profile(current_user.id, full_name=data.full_name)
        except ValidationFailed as error:
            return await self._page(accounts, current_user, error=error)
        request.scope["user"] = principal_of_account(user)  # the nav on this very response shows the new name
        return await self._page(accounts, current_user, notice="Your name was saved.")

    @post("/password", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def change_password(
        self,
        request: HTMXRequest,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        data: URLEncodedBody[PasswordForm],
    ) -> HTMXTemplate:
        try:
            user = await accounts.change_password(
                current_user.id, current_password=data.current_password, new_password=data.new_password
            )
        except (ValidationFailed, RateLimited) as error:
            return await self._page(accounts, current_user, error=error)
        # Every session of this user ended with the change; this browser gets a fresh one.
        if old := request.cookies.get(SESSION_COOKIE):
            await accounts.end_session(old)
        session = await accounts.start_session(user)
        issue_for_session(request, key=csrf_key(accounts.settings.signing_key), session=session)
        page = await self._page(
            accounts, current_user, notice="Your password was changed. Other sessions were signed out."
        )
        page.set_cookie(session_cookie(accounts, session))
        return page

    @get("/export")
    async def export(
        self,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> Response[bytes]:
        return export_response(await accounts.export(current_user.id, ip=client_ip))

    @post("/delete", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def delete_account(
        self,
        request: HTMXRequest,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[ConfirmForm],
    ) -> Response[Any]:
        try:
            await accounts.delete_own_account(current_user.id, password=data.password, ip=client_ip)
        except (ValidationFailed, Conflict, RateLimited) as error:
            return await self._page(accounts, current_user, error=error)
        if secret := request.cookies.get(SESSION_COOKIE):
            await accounts.end_session(secret)
        response = redirect(request, "/login?deleted=true")
        response.set_cookie(session_cookie(accounts, "", expire=True))
        return response

    @post("/api-keys", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def create_api_key(
        self,
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
        data: URLEncodedBody[ApiKeyForm],
    ) -> HTMXTemplate:
        """The new key is on this response only: it is stored hashed."""
        try:
            days = int(data.expires_in_days) if data.expires_in_days.strip() else None
        except ValueError:
            days = 0  # refused below with the expiry field's message
        try:
            made = await accounts.create_api_key(current_user.id, name=data.name, expires_in_days=days, ip=client_ip)
        except (ValidationFailed, Conflict) as error:
            return await self._page(accounts, current_user, error=error)
        page = await self._page(accounts, current_user, new_key=made.key)
        page.headers["Cache-Control"] = "no-store"
        return page

    @post("/api-keys/{key_id:str}/revoke", status_code=HTTP_200_OK, media_type=MediaType.HTML)
    async def revoke_api_key(
        self,
        *,
        key_id: FromPath[str],
        current_user: NamedDependency[Principal],
        accounts: NamedDependency[Accounts],
        client_ip: NamedDependency[str | None],
    ) -> HTMXTemplate:
        await accounts.revoke_api_key(current_user.id, key_id, ip=client_ip)
        return await self._page(accounts, current_user, notice="The API key was revoked.")

    @staticmethod
    async def _page(
        accounts: Accounts,
        principal: Principal,
        *,
        error: AppError | None = None,
        notice: str | None = None,
        new_key: str | None = None,
    ) -> HTMXTemplate:
        user = await accounts.get_user(principal.id)
        context = {
            "user": user,
            "notice": notice,
            "min_length": accounts.settings.password_min_length,
            "api_keys": await accounts.list_api_keys(principal.id),
            "new_key": new_key,
        }
        if error is not None:
            return form_page("auth/profile.html", error, **context)
        return HTMXTemplate(template_name="auth/profile.html", context={**context, "field_errors": {}})


def export_response(data: dict[str, Any]) -> Response[bytes]:
    stamp = utcnow().strftime("%Y%m%d")
    return Response(
        content=json.dumps(data, indent=2, ensure_ascii=False, default=str).encode(),
        media_type=MediaType.JSON,
        headers={
            "Content-Disposition": f'attachment; filename="medchat-export-{stamp}.json"',
            "Cache-Control": "no-store",
        },
    )
