"""Every Prometheus metric medchat exports besides the HTTP ones (``telemetry.prometheus_config``).

One catalog, so the dashboards and alert rules in ``deploy/observability`` have one place to match
(``tests/deploy/test_observability_metrics.py`` scrapes a running app and checks every name they use).

Correct with several processes per pod: when ``PROMETHEUS_MULTIPROC_DIR`` is set before this module
is imported (``medchat serve --workers N`` and the container set it), each process writes its values
to files there and ``/metrics`` sums them (``multiprocess_mode`` says how a gauge is combined).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "medchat"

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_MODEL = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
_JOB = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)

# --- the model ------------------------------------------------------------------------------------
LLM_REQUESTS = Counter(
    f"{PREFIX}_llm_requests_total",
    "Model calls by model, provider kind and outcome (ok, error, stopped).",
    ["model", "provider", "outcome"],
)
LLM_ERRORS = Counter(
    f"{PREFIX}_llm_errors_total",
    "Failed model calls by model and reason (unavailable, timeout, interrupted, rejected, ...).",
    ["model", "reason"],
)
LLM_DURATION = Histogram(
    f"{PREFIX}_llm_request_duration_seconds",
    "Model call duration from request to last token.",
    ["model"],
    buckets=_MODEL,
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    f"{PREFIX}_llm_time_to_first_token_seconds",
    "Time from the model request to its first streamed token.",
    ["model"],
    buckets=_MODEL,
)
LLM_TOKENS = Counter(
    f"{PREFIX}_llm_tokens_total",
    "Tokens sent to (direction=input) and written by (direction=output) the model.",
    ["model", "direction"],
)

# --- the answer pipeline --------------------------------------------------------------------------
TRIAGE_OUTCOMES = Counter(
    f"{PREFIX}_triage_outcomes_total",
    "Questions by triage outcome (none, emergency, crisis, out_of_scope, ...).",
    ["category"],
)
RETRIEVAL_DURATION = Histogram(
    f"{PREFIX}_retrieval_duration_seconds",
    "Passage search duration by stage (embedding, vector_search, total).",
    ["stage"],
    buckets=_FAST,
)
RETRIEVAL_HITS = Histogram(
    f"{PREFIX}_retrieval_hits",
    "Passages a question's search returned.",
    buckets=(0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
)
ANSWERS = Counter(
    f"{PREFIX}_answers_total",
    "Stored answers by final status (complete, failed) and grounding (grounded, ungrounded, none).",
    ["status", "grounding"],
)
STREAMS_IN_FLIGHT = Gauge(
    f"{PREFIX}_streams_in_flight",
    "Answers being written right now.",
    multiprocess_mode="livesum",
)

# --- ingestion and the queue ----------------------------------------------------------------------
INGESTION_JOBS = Counter(
    f"{PREFIX}_ingestion_jobs_total",
    "Ingestion jobs by outcome (ready, failed, retried, superseded).",
    ["outcome"],
)
INGESTION_DURATION = Histogram(
    f"{PREFIX}_ingestion_duration_seconds",
    "Ingestion job duration (parse, chunk, embed, index), by outcome.",
    ["outcome"],
    buckets=_JOB,
)
INGESTION_CHUNKS = Counter(
    f"{PREFIX}_ingestion_chunks_total",
    "Chunks embedded and indexed (its rate is chunks per second).",
)
QUEUE_DEPTH = Gauge(
    f"{PREFIX}_queue_depth",
    "Jobs waiting in the background queue (read from Redis; the worker autoscaler follows it).",
    multiprocess_mode="mostrecent",
)

# --- the stores -----------------------------------------------------------------------------------
STORE_CALL_DURATION = Histogram(
    f"{PREFIX}_store_call_duration_seconds",
    "Store call duration by store (mongodb, redis, qdrant) and operation.",
    ["store", "operation"],
    buckets=_FAST,
)
STORE_CALL_ERRORS = Counter(
    f"{PREFIX}_store_call_errors_total",
    "Store calls that failed, by store and operation.",
    ["store", "operation"],
)
