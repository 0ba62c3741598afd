"""The HTTP surface: ``POST /slack/events`` (Bolt, signature checked), ``GET /healthz`` and
``GET /metrics``, on aiohttp (the server stack Bolt's own async server uses)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.errors import StoreUnavailable
from bot.metrics import Metrics
from bot.store import Store

__all__ = ["MAX_BODY_BYTES", "build_web_app"]

log = logging.getLogger(__name__)

# Slack's largest payloads here are view submissions of our own small modals; anything far
# bigger is not from Slack and is refused by aiohttp with 413 before it is read.
MAX_BODY_BYTES = 256 * 1024


def build_web_app(bolt: AsyncApp, *, store: Store, metrics: Metrics) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        bolt_request = await to_bolt_request(request)
        kind = "interactive" if bolt_request.raw_body.startswith("payload=") else "command"
        bolt_response = await bolt.async_dispatch(bolt_request)
        metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        try:
            await store.ping()
        except StoreUnavailable:
            return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    async def metrics_endpoint(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
