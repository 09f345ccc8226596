from __future__ import annotations

import uuid
from pathlib import Path

from httpx import Response
from litestar.testing import AsyncTestClient

from medchat.app import create_app
from medchat.platform.embedded import EmbeddedRedis
from medchat.settings import Settings
from tests.support.fake_llm import running_fake_llm


async def test_ping_and_liveness(client: AsyncTestClient) -> None:
    ping = await client.get("/ping")
    assert ping.status_code == 200
    assert ping.json() == {"status": "ok"}
    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_pings_every_store(client: AsyncTestClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["mongodb"] == "ok"
    assert body["checks"]["redis"] == "ok"


async def test_readyz_names_a_store_that_stops_answering(settings: Settings, tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "own-redis").start()
    own_database = f"t_{uuid.uuid4().hex}"
    own = Settings.load(**{**settings.model_dump(), "redis_url": redis.url, "mongodb_database": own_database})
    try:
        async with AsyncTestClient(app=create_app(own)) as client:
            assert (await client.get("/readyz")).status_code == 200
            redis.stop()
            response = await client.get("/readyz")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "unavailable"
            assert body["checks"]["redis"] in {"error", "timeout"}
            assert body["checks"]["mongodb"] == "ok"
    finally:
        redis.stop()


async def test_unknown_api_route_is_problem_json(client: AsyncTestClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"


async def test_metrics_and_openapi_are_served(client: AsyncTestClient) -> None:
    await client.get("/ping")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "medchat_requests_total" in metrics.text
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/readyz" in schema.json()["paths"]


async def test_security_headers_on_every_response(client: AsyncTestClient) -> None:
    for path in ("/", "/ping", "/static/css/app.css", "/api/v1/nothing-here"):
        response = await client.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


async def test_readyz_stays_ready_when_the_model_is_down_and_reports_it(settings: Settings) -> None:
    """A model-provider outage must not take every web pod out of the Service: sign-in, history and
    documents still work; the model's state is reported beside the checks and as a gauge."""
    with running_fake_llm(models_status=500) as fake_llm:
        remote = settings.model_copy(
            update={"llm_api_key": "test-key", "llm_base_url": fake_llm.base_url, "llm_max_retries": 0}
        )
        async with AsyncTestClient(app=create_app(remote)) as client:
            response = await client.get("/readyz")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "ok"
            assert body["checks"]["llm"] == "error", "the model's state is reported"
            assert body["optional"] == ["llm"]
            assert _gauge(await client.get("/metrics"), "medchat_llm_available") == 0.0

            fake_llm.models_status = 200
            body = (await client.get("/readyz")).json()
            assert body["checks"]["llm"] == "ok"
            assert _gauge(await client.get("/metrics"), "medchat_llm_available") == 1.0


def _gauge(metrics: Response, name: str) -> float:
    values = [line.split()[-1] for line in metrics.text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} is not exported"
    return float(values[0])
