"""Every metric the Grafana dashboard and the alert rules query is exported by medchat, after real traffic.

A panel or an alert on a name the app never exports shows "No data" or never fires, and nothing else
notices. So: run the app (in-process, real stores, its in-process ingestion worker, the HTTP fake model),
make traffic that reaches every instrumented path (sign-up, an upload ingested to ``ready``, questions
including an emergency, a failing model call, a readiness check), scrape ``/metrics`` and look up every
``medchat_*`` series named by a PromQL expression of ``deploy/observability`` (recording rules
``medchat:*`` resolved to the expressions they record).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from medchat.app import create_app
from medchat.settings import Settings
from tests.support.accounts import register
from tests.support.app import engine_of, in_app_loop
from tests.support.documents import upload, wait_until_final
from tests.support.fake_llm import FakeLLMServer, running_fake_llm
from tests.support.leaflets import GOUT_LEAFLET, GOUT_LEAFLET_NAME

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "medchat.json"
RULES = OBSERVABILITY / "prometheus" / "rules" / "medchat.rules.yml"

# A series name medchat exports, and a recording rule's name (``level:metric:operations``).
METRIC_NAME = re.compile(r"\bmedchat_[a-z0-9_]+")
RECORDED_NAME = re.compile(r"\bmedchat:[a-zA-Z0-9_:]+")
# Series a histogram or counter family writes besides its family name.
SERIES_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")

CHAT = "/api/v1/chat/messages"
QUESTION = "How is a gout flare treated?"
EMERGENCY = "I have crushing chest pain spreading to my left arm"


# --- what the dashboard and the rules query ---------------------------------------------------------------


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def recorded_expressions() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}


def rule_expressions() -> list[str]:
    return [rule["expr"] for rule in rules()]


def metric_names(expression: str, recorded: dict[str, str]) -> set[str]:
    """Every ``medchat_*`` series ``expression`` reads, through the recording rules it names."""
    names = set(METRIC_NAME.findall(expression))
    for rule_name in RECORDED_NAME.findall(expression):
        if rule_name not in recorded:
            raise AssertionError(f"{expression!r} names the recording rule {rule_name}, which no rule records")
        names |= metric_names(recorded[rule_name], recorded)
    return names


def queried_metric_names() -> set[str]:
    recorded = recorded_expressions()
    expressions = dashboard_expressions() + rule_expressions()
    return {name for expression in expressions for name in metric_names(expression, recorded)}


# --- what a scrape holds ----------------------------------------------------------------------------------


def scraped_series(exposition: str) -> dict[str, float]:
    """Each series name with at least one sample in the scrape, with the sum of its samples' values."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def family_of(name: str) -> str:
    """``medchat_x_bucket`` -> ``medchat_x``: the family a histogram's or counter's series belongs to."""
    for suffix in SERIES_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def missing_from(scrape: dict[str, float], names: set[str]) -> dict[str, str]:
    """The queried series the scrape lacks, each with its family (the name to look for in ``metrics.py``)."""
    return {name: family_of(name) for name in sorted(names) if name not in scrape}


def never_counted(scrape: dict[str, float], names: set[str]) -> list[str]:
    """Counters and histograms still at zero: exported (an unlabelled one always is) but never reached."""
    counting = [name for name in names if name.endswith(("_total", "_count", "_bucket"))]
    return sorted(name for name in counting if name in scrape and scrape[name] == 0)


# --- the extractor, checked on its own ------------------------------------------------------------------------


def test_the_extractor_reads_series_through_recording_rules_and_catches_a_made_up_name() -> None:
    recorded = {"medchat:made_up:rate5m": "sum(rate(medchat_made_up_total[5m]))"}
    expression = "medchat:made_up:rate5m / histogram_quantile(0.99, sum by (le) (rate(medchat_x_seconds_bucket[5m])))"
    names = metric_names(expression, recorded)
    scrape = scraped_series(
        "# TYPE medchat_x_seconds histogram\n"
        'medchat_x_seconds_bucket{le="+Inf"} 1.0\nmedchat_x_seconds_count 1.0\nmedchat_x_seconds_sum 0.5\n'
        "# TYPE medchat_idle counter\nmedchat_idle_total 0.0\n"
    )

    assert names == {"medchat_made_up_total", "medchat_x_seconds_bucket"}
    assert missing_from(scrape, names) == {"medchat_made_up_total": "medchat_made_up"}
    assert never_counted(scrape, names | {"medchat_idle_total"}) == ["medchat_idle_total"]
    with pytest.raises(AssertionError, match="medchat:typo:rate5m"):
        metric_names("medchat:typo:rate5m > 1", recorded)


def test_the_dashboard_and_the_rules_query_the_catalog() -> None:
    """Sanity for the check below: the queries do name the model, pipeline and store metrics."""
    names = {family_of(name) for name in queried_metric_names()}
    assert {
        "medchat_requests",
        "medchat_request_duration_seconds",
        "medchat_llm_requests",
        "medchat_llm_errors",
        "medchat_llm_time_to_first_token_seconds",
        "medchat_llm_tokens",
        "medchat_llm_available",
        "medchat_retrieval_duration_seconds",
        "medchat_retrieval_hits",
        "medchat_ingestion_jobs",
        "medchat_queue_depth",
        "medchat_store_call_duration_seconds",
    } <= names


# --- the app under traffic ----------------------------------------------------------------------------------


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    with running_fake_llm(reply="A flare is treated early with an anti-inflammatory painkiller [1].") as server:
        yield server


@pytest.fixture
async def remote_client(settings: Settings, fake_llm: FakeLLMServer) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app answering with the fake remote model (usage reported, so token counters move)."""
    remote = settings.model_copy(
        update={
            "llm_api_key": "test-key",
            "llm_base_url": fake_llm.base_url,
            "llm_model": "fake/test-model",
            "llm_max_retries": 1,
            "llm_timeout_seconds": 1.0,
        }
    )
    async with AsyncTestClient(app=create_app(remote)) as client:
        yield client


async def make_traffic(client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer) -> None:
    """Reach every instrumented path once: ingestion, retrieval, triage, the model (ok and failing), readiness."""
    user = await register(client)
    document = await upload(client, user.headers, GOUT_LEAFLET.encode(), filename=GOUT_LEAFLET_NAME)
    ingested = await wait_until_final(client, user.headers, document["id"])
    assert ingested["status"] == "ready", ingested

    answered = await client.post(CHAT, json={"content": QUESTION}, headers=user.headers)
    assert answered.status_code == 201, answered.text
    emergency = await client.post(CHAT, json={"content": EMERGENCY}, headers=user.headers)
    assert emergency.status_code == 201, emergency.text
    fake_llm.fail_with("status_500")
    failed = await client.post(CHAT, json={"content": QUESTION}, headers=user.headers)
    assert failed.status_code == 503, failed.text
    await in_app_loop(client, engine_of(client).wait_background())  # the titles the model writes
    fake_llm.fail_with(None)

    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_every_metric_a_panel_or_an_alert_queries_is_in_a_scrape_after_traffic(
    remote_client: AsyncTestClient[Litestar], fake_llm: FakeLLMServer
) -> None:
    await make_traffic(remote_client, fake_llm)

    response = await remote_client.get("/metrics")

    assert response.status_code == 200, response.text
    queried = queried_metric_names()
    scrape = scraped_series(response.text)
    not_exported, never_reached = missing_from(scrape, queried), never_counted(scrape, queried)
    assert (not_exported, never_reached) == ({}, []), (
        f"queried by deploy/observability but not exported: {not_exported}; exported but still 0: {never_reached}"
    )
