"""The HTTP surface: ``POST /slack/events`` (Bolt, signature checked), ``GET /healthz`` and
``GET /metrics``, on aiohttp (the server stack Bolt's own async server uses)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.metrics import Metrics
from bot.slack.gate import Refused, SlackBody, read_body, signature_ok
from bot.work_loop import Work

__all__ = ["MAX_BODY_BYTES", "build_web_app"]

log = logging.getLogger(__name__)

# Slack's largest payloads here are view submissions of our own small modals; anything far
# bigger is not from Slack and is refused by aiohttp with 413 before it is read.
MAX_BODY_BYTES = 256 * 1024


def _bolt_request(body: SlackBody, request: web.Request) -> AsyncBoltRequest:
    """The request for Bolt, with the body already parsed and verified.

    Bolt would parse the body again (and misread a slash command whose text says "payload" as an
    empty interactive payload) and check the signature again; the bot's Bolt app does neither
    (``request_verification_enabled=False``, see bot.app). An empty body skips Bolt's parse.
    """
    bolt_request = AsyncBoltRequest(body="", query=request.query_string, headers=request.headers)  # type: ignore[arg-type]
    bolt_request.raw_body = body.text
    bolt_request.body = body.fields
    bolt_request.context = build_async_context(AsyncBoltContext({}), body.fields)
    return bolt_request


def build_web_app(
    bolt: AsyncApp,
    *,
    metrics: Metrics,
    signing_secret: SecretStr,
    work: Work,
) -> web.Application:
    """Every request to ``/slack/events`` is verified here with ``signing_secret``: ``bolt`` must
    not verify again (it would, as Bolt parses, see no body). The database is checked on ``work``'s
    side, where the store lives (see bot.work_loop), and its metrics join ``metrics`` when it keeps
    its own."""

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        raw = await request.read()
        # Bolt parses before it verifies and trusts field types (bot.slack.gate): check both first.
        if not signature_ok(
            signing_secret.get_secret_value(),
            raw,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            now=time.time(),
        ):
            return web.json_response({"error": "invalid request"}, status=401)
        body = read_body(raw, request.content_type)
        if isinstance(body, Refused):
            log.info("refused a signed request that Slack would not send: %s", body.reason)
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_response = await bolt.async_dispatch(_bolt_request(body, request))
        metrics.ack_seconds.labels(body.kind).observe(time.perf_counter() - started)
        if bolt_response.status == 404:
            # No listener for it (an action, view or event we do not handle): ack and do nothing,
            # so Slack neither shows the user an error nor retries an event delivery.
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        if not await work.call("database_ok"):
            return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    async def metrics_endpoint(_: web.Request) -> web.Response:
        work_side = await work.metrics_text()
        body = metrics.render() if work_side is None else metrics.render(ack_side_only=True) + work_side
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
