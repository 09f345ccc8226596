"""A conversation's tree outside the app: the JSON and Markdown exports and the provenance graph.

The JSON export (``medchat.conversation.v1``) holds every message of every branch and the graph; the
Markdown export is the thread shown in the app, for people to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from medchat.chat.models import Conversation
from medchat.chat.schemas import ConversationOut, GraphOut, MessageOut, conversation_out, message_out, to_builtins
from medchat.chat.tree import MessageTree
from medchat.platform.clock import utcnow

EXPORT_FORMAT = "medchat.conversation.v1"


@dataclass(frozen=True, slots=True)
class Export:
    filename: str
    media_type: str
    body: str


class ConversationExportOut(msgspec.Struct, kw_only=True):
    """The JSON export's shape, for the API schema (``export_document`` builds it as plain data)."""

    format: str
    exported_at: datetime
    conversation: ConversationOut
    thread: list[str]
    """Ids of the messages of the branch shown in the app, oldest first."""
    messages: list[MessageOut]
    """Every message of every branch."""
    graph: GraphOut


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "conversation"


def export_document(conversation: Conversation, tree: MessageTree) -> dict[str, Any]:
    thread = [str(message.id) for message in tree.path_to(conversation.active_leaf_id)]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "conversation": to_builtins(conversation_out(conversation)),
        "thread": thread,
        "messages": [to_builtins(message_out(m, siblings=tree.siblings(m))) for m in tree.ordered()],
        "graph": to_builtins(provenance_graph(tree)),
    }


def export_markdown(conversation: Conversation, tree: MessageTree) -> str:
    thread = tree.path_to(conversation.active_leaf_id)
    lines = [
        f"# {conversation.title}",
        "",
        f"Exported from medchat on {utcnow():%Y-%m-%d %H:%M} UTC. "
        f"Started {conversation.created_at:%Y-%m-%d %H:%M} UTC.",
    ]
    other = len(tree) - len(thread)
    if other > 0:
        lines.append(
            f"This is the branch shown in the app; {other} message(s) of other branches are in the JSON export."
        )
    for message in thread:
        when = f"{message.created_at:%Y-%m-%d %H:%M}"
        lines.append("")
        if message.role == "user":
            lines += [f"## You · {when}", "", message.content]
            continue
        label = message.model_label or message.model or "medchat"
        lines += [f"## medchat · {label} · {when}", ""]
        if message.safety.emergency and message.safety.notice:
            lines += [f"> **Emergency:** {message.safety.notice}", ""]
        if message.content:
            lines.append(message.content)
        if message.status == "failed" and message.error:
            lines += ["", f"*This answer failed: {message.error.detail}*"]
        if message.sources:
            lines += ["", "**Sources**", ""]
            for source in message.sources:
                page = f", page {source.page}" if source.page is not None else ""
                snippet = " ".join(source.snippet.split())
                lines.append(f"{source.number}. {source.title}{page} — “{snippet}” (score {source.score:.2f})")
    return "\n".join(lines).rstrip() + "\n"


def provenance_graph(tree: MessageTree) -> GraphOut:
    """Nodes ``user`` / ``retrieval`` / ``generation`` and edges ``retrieved``, ``grounded``, ``answered_by``."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for message in tree.ordered():
        identifier = str(message.id)
        if message.role == "user":
            nodes.append(
                {
                    "id": identifier,
                    "type": "user",
                    "message_id": identifier,
                    "created_at": message.created_at.isoformat(),
                    "emergency": message.safety.emergency,
                }
            )
            continue
        provenance = message.provenance
        timing = message.timing
        retrieval_id = f"{identifier}:retrieval"
        generation_id = f"{identifier}:generation"
        nodes.append(
            {
                "id": retrieval_id,
                "type": "retrieval",
                "message_id": identifier,
                "query": provenance.retrieval_query if provenance else "",
                "question_rewrite": (
                    provenance.question_rewrite.model_dump() if provenance and provenance.question_rewrite else None
                ),
                "available": provenance.retrieval_available if provenance else False,
                "passages": [ref.model_dump() for ref in provenance.retrieved] if provenance else [],
                "ms": timing.retrieval_ms if timing else None,
            }
        )
        nodes.append(
            {
                "id": generation_id,
                "type": "generation",
                "message_id": identifier,
                "model": message.model,
                "provider": provenance.provider_kind if provenance else None,
                "status": message.status,
                "finish_reason": provenance.finish_reason if provenance else None,
                "usage": message.usage.model_dump() if message.usage else None,
                "ms": timing.generation_ms if timing else None,
                "first_token_ms": timing.first_token_ms if timing else None,
                "grounded": message.grounded,
            }
        )
        if message.parent_id and message.parent_id in tree.by_id:
            edges.append({"from": message.parent_id, "to": retrieval_id, "relation": "retrieved"})
            edges.append({"from": message.parent_id, "to": generation_id, "relation": "answered_by"})
        edges.append({"from": retrieval_id, "to": generation_id, "relation": "grounded"})
    return GraphOut(nodes=nodes, edges=edges)
