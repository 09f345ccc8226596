"""What each module hands out: only what others use, and never a Beanie document (ARCHITECTURE.md)."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from beanie import Document

MODULES = ["medchat.auth", "medchat.chat", "medchat.retrieval", "medchat.llm"]


def _types_in(annotation: object) -> Iterator[object]:
    yield annotation
    for argument in typing.get_args(annotation):
        yield from _types_in(argument)


def _is_document(annotation: object) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, Document)


def _callables_of(exported: object) -> Iterator[tuple[str, object]]:
    if inspect.isclass(exported):
        for name, member in inspect.getmembers(exported):
            if name.startswith("_") and name != "__init__":
                continue
            function = member.fget if isinstance(member, property) else member
            if inspect.isfunction(function) or inspect.ismethod(function):
                yield name, function
    elif inspect.isfunction(exported):
        yield exported.__name__, exported


@pytest.mark.parametrize("module_name", MODULES)
def test_no_public_name_is_or_returns_a_beanie_document(module_name: str) -> None:
    module = importlib.import_module(module_name)
    leaks = []
    for name in module.__all__:
        exported = getattr(module, name)
        if _is_document(exported):
            leaks.append(name)
        for member_name, member in _callables_of(exported):
            hints = typing.get_type_hints(member)
            if any(_is_document(part) for hint in hints.values() for part in _types_in(hint)):
                leaks.append(f"{name}.{member_name}")
    assert leaks == []


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_used_outside_the_module(module_name: str) -> None:
    """A name in ``__all__`` that no other part of medchat mentions is surface nobody needs."""
    source = Path(importlib.import_module("medchat").__file__).parent
    own = source / module_name.split(".")[1]
    outside = "\n".join(path.read_text() for path in source.rglob("*.py") if own not in path.parents)
    module = importlib.import_module(module_name)
    unused = [name for name in module.__all__ if name not in outside]
    assert unused == []
