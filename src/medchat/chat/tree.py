"""A conversation's messages as a tree (``parent_id``): threads, branches and their alternatives.

Editing a question or regenerating an answer adds a sibling; the thread shown is the path from the
root to the conversation's active leaf. Built in memory from one read of the conversation's messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from medchat.chat.models import Message


class MessageTree:
    def __init__(self, messages: Iterable[Message]) -> None:
        ordered = sorted(messages, key=lambda message: (message.created_at, str(message.id)))
        self.by_id: dict[str, Message] = {str(message.id): message for message in ordered}
        self.children: dict[str | None, list[Message]] = {}
        for message in ordered:
            parent = message.parent_id if message.parent_id in self.by_id else None
            self.children.setdefault(parent, []).append(message)

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, message_id: str | None) -> Message | None:
        return self.by_id.get(message_id) if message_id else None

    def ordered(self) -> list[Message]:
        """Every message, depth first in creation order (parents before children)."""
        result: list[Message] = []
        pending = list(reversed(self.children.get(None, [])))
        while pending:
            message = pending.pop()
            result.append(message)
            pending.extend(reversed(self.children.get(str(message.id), [])))
        return result

    def latest_leaf(self, start_id: str | None) -> Message | None:
        """Follow the newest child from ``start_id`` (the newest root when None) down to a leaf."""
        current = self.get(start_id)
        if current is None:
            roots = self.children.get(None, [])
            if not roots:
                return None
            current = roots[-1]
        while children := self.children.get(str(current.id)):
            current = children[-1]
        return current

    def path_to(self, leaf_id: str | None) -> list[Message]:
        """The thread ending at ``leaf_id``, root first; the newest branch when the leaf is unknown."""
        leaf = self.get(leaf_id) or self.latest_leaf(None)
        path: list[Message] = []
        seen: set[str] = set()
        while leaf is not None and str(leaf.id) not in seen:
            seen.add(str(leaf.id))
            path.append(leaf)
            leaf = self.get(leaf.parent_id)
        path.reverse()
        return path

    def siblings(self, message: Message) -> list[str]:
        parent = message.parent_id if message.parent_id in self.by_id else None
        return [str(sibling.id) for sibling in self.children.get(parent, [])]

    def history_before(self, parent_id: str | None) -> list[Message]:
        """The thread up to and including ``parent_id`` (what a new message under it follows)."""
        return self.path_to(parent_id) if parent_id else []
