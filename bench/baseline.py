"""The baseline: a bare Bolt ``AsyncApp`` whose ``/atlas`` listener only acks, on the bot's server
stack: the same Slack client options (:func:`bot.slack.client.build_slack_client`), Bolt's own aiohttp
adapter as in ``slack_bolt.app.async_server`` (``to_bolt_request`` -> ``async_dispatch`` ->
``to_aiohttp_response``), the bot's body limit, and the runner and site settings and event loop
of ``atlas-chatops serve``. None of the bot's own code runs on its request path, so the difference
the benchmark sees is the bot's work.

    SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=... SLACK_API_URL=... PORT=... python -m bench.baseline
"""

from __future__ import annotations

import asyncio
import os
import signal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.logs import configure_logging
from bot.loop import event_loop_factory, freeze_start_up_objects, space_out_full_collections
from bot.settings import Settings
from bot.slack.client import build_slack_client
from bot.web import MAX_BODY_BYTES


def build_baseline(settings: Settings) -> web.Application:
    bolt = AsyncApp(
        client=build_slack_client(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        raise_error_for_unhandled_request=False,
    )

    @bolt.command("/atlas")
    async def on_command(ack: AsyncAck) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(settings: Settings) -> None:
    runner = web.AppRunner(build_baseline(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, shutdown_timeout=5)
    await site.start()
    freeze_start_up_objects()  # as serve does
    space_out_full_collections()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    settings = Settings.from_environ(dict(os.environ))
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=[])
    # The bot's event loop too: the same server stack.
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(serve(settings))


if __name__ == "__main__":
    main()
