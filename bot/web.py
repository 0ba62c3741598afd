"""The HTTP surface: ``POST /slack/events`` (Bolt, signature checked), ``GET /healthz`` and
``GET /metrics``, on aiohttp (the server stack Bolt's own async server uses)."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context

from bot.errors import StoreUnavailable
from bot.metrics import Metrics
from bot.slack.gate import malformed, signature_ok
from bot.store import Store
from bot.work_loop import WorkLoop

__all__ = ["MAX_BODY_BYTES", "build_web_app"]

log = logging.getLogger(__name__)

# Slack's largest payloads here are view submissions of our own small modals; anything far
# bigger is not from Slack and is refused by aiohttp with 413 before it is read.
MAX_BODY_BYTES = 256 * 1024


def build_web_app(
    bolt: AsyncApp,
    *,
    store: Store,
    metrics: Metrics,
    signing_secret: SecretStr | None = None,
    work: WorkLoop,
) -> web.Application:
    """``work`` runs what the store does: the store may belong to another loop (see bot.work_loop)."""

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        raw = await request.read()
        # Bolt parses before it verifies and trusts field types (bot.slack.gate): check both first.
        if signing_secret is not None and not signature_ok(
            signing_secret.get_secret_value(),
            raw,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            now=time.time(),
        ):
            return web.json_response({"error": "invalid request"}, status=401)
        if (problem := malformed(raw, request.content_type)) is not None:
            log.info("refused a signed request that Slack would not send: %s", problem)
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_request = await to_bolt_request(request)
        body = bolt_request.raw_body
        # Interactivity is one form field, `payload`; Events API deliveries are JSON; the rest are commands.
        kind = "interactive" if body.startswith("payload=") else "event" if body.startswith("{") else "command"
        if kind == "command" and "payload" in body:
            # Bolt's parse_body reads any form body containing "payload" as interactivity and, finding
            # no payload field, sees nothing: "/atlas help payload" reached no listener. It is a command.
            bolt_request.body = dict(parse_qsl(body, keep_blank_values=True))
            bolt_request.context = build_async_context(AsyncBoltContext({}), bolt_request.body)
        bolt_response = await bolt.async_dispatch(bolt_request)
        metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)
        if bolt_response.status == 404:
            # No listener for it (an action, view or event we do not handle): ack and do nothing,
            # so Slack neither shows the user an error nor retries an event delivery.
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        try:
            await work.call(store.ping())
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
