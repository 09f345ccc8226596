"""Store round trips per turn, from the server's own Prometheus counters.

``medchat_store_call_duration_seconds`` (``src/medchat/platform/metrics.py``) observes every store call
with its ``store`` and ``operation`` labels; its ``_count`` series, scraped from ``/metrics`` before and
after a level, gives the calls that level made. ``/metrics`` sums every worker's files (multiprocess
mode, what ``medchat serve`` sets up by default), and the scrape itself makes no store call.
"""

from __future__ import annotations

from collections import defaultdict

import httpx
from prometheus_client.parser import text_string_to_metric_families

STORE_CALLS = "medchat_store_call_duration_seconds"

StoreCalls = dict[tuple[str, str], float]
"""(store, operation) -> calls so far"""


async def store_calls(http: httpx.AsyncClient) -> StoreCalls:
    response = await http.get("/metrics")
    response.raise_for_status()
    calls: StoreCalls = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != STORE_CALLS:
            continue
        for sample in family.samples:
            if sample.name == f"{STORE_CALLS}_count":
                key = (sample.labels.get("store", "?"), sample.labels.get("operation", "?"))
                calls[key] = calls.get(key, 0.0) + sample.value
    return calls


def per_turn(before: StoreCalls, after: StoreCalls, turns: int) -> dict[str, dict[str, float]]:
    """Calls per turn between the scrapes: {store: {operation: calls, ..., "total": calls}}."""
    result: dict[str, dict[str, float]] = defaultdict(dict)
    for (store, operation), count in sorted(after.items()):
        made = count - before.get((store, operation), 0.0)
        if made > 0:
            result[store][operation] = made / turns
    for operations in result.values():
        operations["total"] = sum(operations.values())
    return dict(result)


def describe(calls: dict[str, dict[str, float]]) -> str:
    """``mongodb 7.0 (find 3.0, insert 2.0, ...); redis 2.0 (...)``, stores by calls, operations by calls."""
    parts = []
    for store, operations in sorted(calls.items(), key=lambda item: -item[1]["total"]):
        detail = ", ".join(
            f"{operation} {count:.1f}"
            for operation, count in sorted(operations.items(), key=lambda item: -item[1])
            if operation != "total" and count >= 0.05
        )
        parts.append(f"{store} {operations['total']:.1f} ({detail})")
    return "; ".join(parts) or "none counted"
