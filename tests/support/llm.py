"""Types for the llm tests' fixtures (the fake server itself is ``tests.support.fake_llm``)."""

from __future__ import annotations

from collections.abc import Callable

from medchat.llm.remote import RemoteProvider

RemoteFactory = Callable[..., RemoteProvider]
"""The ``make_remote`` fixture: ``make_remote(**options)`` builds a provider pointed at the fake server."""
