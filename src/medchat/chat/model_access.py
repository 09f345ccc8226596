"""Which roles may use which model: the admin's rules over ``llm``'s one model registry.

A rule is stored per offered model (its public name) as the roles allowed to use it. A model without a
rule is open to every role, so nothing changes until an administrator sets one; a rule for a model no
longer configured is ignored. Every role keeps at least one model (a rule that would leave a role with
none is refused). The chat's picker, the JSON API's ``model`` and ``/v1`` all ask ``ModelAccess``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import get_args, get_type_hints

import msgspec
import pymongo
from beanie import Document
from pydantic import Field

from medchat.chat.schemas import MessageOut
from medchat.llm import ModelRegistry, OfferedModel
from medchat.platform import audit
from medchat.platform.clock import utcnow
from medchat.platform.errors import Forbidden, NotFound, ValidationFailed
from medchat.platform.identity import Principal

ROLES: tuple[str, ...] = get_args(get_type_hints(Principal)["role"])
"""Every role a principal may have (auth's ``user`` and ``admin``)."""


class ModelAccessRule(Document):
    model: str
    """The offered model's public name (``medchat``, ``medchat/<id>``, ``medchat-sources-only``)."""
    roles: list[str] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None

    class Settings:
        name = "chat_model_access"
        indexes = [pymongo.IndexModel([("model", pymongo.ASCENDING)])]  # noqa: RUF012 - Beanie reads it


class UnknownModel(NotFound):
    code = "model_not_found"
    title = "No such model"


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"
    title = "Model not allowed"


class ModelOut(msgspec.Struct, kw_only=True):
    """A model the caller may choose (``GET /api/v1/chat/models``)."""

    name: str
    """What to send as ``model``."""
    label: str
    kind: str
    """``remote``, ``local`` or ``sources-only``."""
    default: bool
    """Used when a question names no model (when the caller may use it)."""


class ModelAccessOut(ModelOut, kw_only=True):
    """A configured model and the roles that may use it (``/api/v1/admin/model-access``)."""

    roles: list[str]
    restricted: bool
    """False: no rule is set, every role may use it."""


class ModelAccessPage(msgspec.Struct, kw_only=True):
    roles: list[str]
    """Every role there is."""
    models: list[ModelAccessOut]


class ModelAccessUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str
    roles: list[str]
    """The roles that may use ``model`` from now on (possibly none, while every role keeps a model)."""


@dataclass(frozen=True, slots=True)
class ModelChoices:
    models: list[ModelOut]
    """What the caller may choose, default first."""
    selected: str | None


def model_out(model: OfferedModel) -> ModelOut:
    return ModelOut(name=model.name, label=model.label, kind=model.kind, default=model.is_default)


RULES_KEPT_SECONDS = 5.0
"""How long a process answers from the rules it read last: a change made in this process is seen at once,
one made in another (web worker, pod) within this time."""
_read_rules: dict[str, tuple[float, list[tuple[str, tuple[str, ...]]]]] = {}
"""Per database: (when read, the stored rules)."""


async def _stored_rules() -> list[tuple[str, tuple[str, ...]]]:
    """Every stored rule, read at most once per ``RULES_KEPT_SECONDS`` (a question would otherwise read them)."""
    database = ModelAccessRule.get_pymongo_collection().database.name
    kept = _read_rules.get(database)
    if kept is not None and time.monotonic() - kept[0] < RULES_KEPT_SECONDS:
        return kept[1]
    rules = [(rule.model, tuple(rule.roles)) for rule in await ModelAccessRule.find_all().to_list()]
    _read_rules[database] = (time.monotonic(), rules)
    return rules


def _forget_rules() -> None:
    _read_rules.pop(ModelAccessRule.get_pymongo_collection().database.name, None)


@dataclass(frozen=True, slots=True)
class ModelAccess:
    """The registry seen through the stored rules (few, changed rarely, so kept for a few seconds)."""

    registry: ModelRegistry

    async def rules(self) -> dict[str, tuple[str, ...]]:
        """The stored rules of offered models: name -> allowed roles."""
        return {model: roles for model, roles in await _stored_rules() if model in self.registry}

    async def allowed(self, caller: Principal) -> list[OfferedModel]:
        """The models ``caller``'s role may use, in the registry's order (default first)."""
        rules = await self.rules()
        return [model for model in self.registry if caller.role in rules.get(model.name, ROLES)]

    async def choose(self, caller: Principal, name: str | None) -> OfferedModel:
        """The model named ``name`` if the caller may use it; without a name the default, or the first
        model the caller may use. 404 ``model_not_found`` for a name not offered, 403 ``model_not_allowed``."""
        allowed = await self.allowed(caller)
        if name is None:
            if not allowed:
                raise ModelNotAllowed("Your account may use no model; ask an administrator.")
            return next((model for model in allowed if model.is_default), allowed[0])
        model = self.registry.get(name)
        if model is None:
            names = ", ".join(model.name for model in allowed)
            raise UnknownModel(f"The model '{name}' does not exist; the models are: {names}.", param="model")
        if model not in allowed:
            raise ModelNotAllowed(f"Your account may not use the model '{name}'.", param="model")
        return model

    async def choices(self, caller: Principal, thread: Sequence[MessageOut] = ()) -> ModelChoices:
        """The composer's picker: the caller's models, the one of the thread's latest answer selected
        (when the caller may still use it), else the default."""
        allowed = await self.allowed(caller)
        latest = next((m.model_label for m in reversed(thread) if m.role == "assistant" and m.model_label), None)
        used = next((model for model in allowed if latest and model.label == latest), None)
        default = next((model for model in allowed if model.is_default), allowed[0] if allowed else None)
        selected = used or default
        models = [model_out(model) for model in allowed]
        return ModelChoices(models=models, selected=selected.name if selected else None)

    async def for_answer(self, caller: Principal, answer_label: str | None) -> OfferedModel:
        """The model to regenerate an answer with: the one that wrote it when still allowed, else ``choose``'s."""
        allowed = await self.allowed(caller)
        same = next((model for model in allowed if answer_label and model.label == answer_label), None)
        return same or await self.choose(caller, None)

    async def overview(self) -> ModelAccessPage:
        rules = await self.rules()
        return ModelAccessPage(roles=list(ROLES), models=[self._out(model, rules) for model in self.registry])

    async def set_roles(self, name: str, roles: list[str], *, actor: str, ip: str | None) -> ModelAccessOut:
        """Allow exactly ``roles`` to use model ``name``; audited. 404 for a model not offered, 400 for an
        unknown role or a rule that would leave a role with no model."""
        model = self.registry.get(name)
        if model is None:
            raise UnknownModel(f"The model '{name}' does not exist.", param="model")
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValidationFailed(
                f"Unknown role {', '.join(unknown)}; the roles are {', '.join(ROLES)}.", param="roles"
            )
        chosen = [role for role in ROLES if role in roles]
        rules = {**await self.rules(), name: tuple(chosen)}
        for role in ROLES:
            if not any(role in rules.get(offered.name, ROLES) for offered in self.registry):
                raise ValidationFailed(
                    f"The role {role} would have no model left: allow it another model first.", param="roles"
                )
        stored = await ModelAccessRule.find_one(ModelAccessRule.model == name)
        if stored is None:
            await ModelAccessRule(model=name, roles=chosen, updated_by=actor).insert()
        else:
            stored.roles, stored.updated_at, stored.updated_by = chosen, utcnow(), actor
            await stored.save()
        _forget_rules()
        await audit.record(
            "update", actor_id=actor, resource_type="model_access", resource_id=name, ip=ip, roles=chosen
        )
        return self._out(model, rules)

    @staticmethod
    def _out(model: OfferedModel, rules: dict[str, tuple[str, ...]]) -> ModelAccessOut:
        return ModelAccessOut(
            name=model.name,
            label=model.label,
            kind=model.kind,
            default=model.is_default,
            roles=list(rules.get(model.name, ROLES)),
            restricted=model.name in rules,
        )
