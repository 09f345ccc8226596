from __future__ import annotations

from medchat.llm.errors import LLMRateLimited, LLMStreamInterrupted, LLMTimeout, LLMUnavailable
from medchat.platform.errors import DependencyUnavailable


def test_finer_errors_keep_the_stable_code_and_name_the_reason() -> None:
    problem = LLMTimeout("slow").to_problem()

    assert issubclass(LLMTimeout, LLMUnavailable)
    assert issubclass(LLMUnavailable, DependencyUnavailable)
    assert problem["code"] == "llm_unavailable"
    assert problem["reason"] == "timeout"
    assert problem["status"] == 503


def test_rate_limited_carries_retry_after() -> None:
    error = LLMRateLimited("wait", retry_after=7)

    assert error.headers == {"Retry-After": "7"}
    assert error.to_problem()["retry_after"] == 7


def test_interrupted_keeps_the_partial_text_out_of_the_problem() -> None:
    error = LLMStreamInterrupted("cut", partial_text="Hypertension is")

    assert isinstance(error, LLMUnavailable)
    assert error.partial_text == "Hypertension is"
    assert "Hypertension" not in str(error.to_problem())
