"""The answer pipeline: persist the question, retrieve, generate with streaming, persist the answer.

``ChatEngine`` (``engine``) ties the parts together: ``turns`` prepares and stores a question,
``generation`` writes its answer, publishing the ``events`` of an ``AnswerRun``; ``titles`` names new
conversations; ``ports`` are what the pipeline needs from outside (caller, passage search, safety checks).
"""

from medchat.chat.answering.engine import ChatEngine
from medchat.chat.answering.events import (
    AnswerEvent,
    AnswerFailed,
    AnswerRun,
    Failed,
    Finished,
    Meta,
    SourcesFound,
    Token,
)
from medchat.chat.answering.ports import Caller, PassageSearch, SafetyChecks, no_passages
from medchat.chat.answering.titles import heuristic_title
from medchat.chat.answering.turns import PreparedTurn

__all__ = [
    "AnswerEvent",
    "AnswerFailed",
    "AnswerRun",
    "Caller",
    "ChatEngine",
    "Failed",
    "Finished",
    "Meta",
    "PassageSearch",
    "PreparedTurn",
    "SafetyChecks",
    "SourcesFound",
    "Token",
    "heuristic_title",
    "no_passages",
]
