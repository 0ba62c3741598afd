"""``atlas-chatops``: serve (HTTP or Socket Mode), migrate, check.

Configuration problems end with one line naming the variable and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from bot import __version__
from bot.errors import ChatOpsError, ConfigurationError
from bot.logs import configure_logging, pin_slack_library_levels
from bot.loop import event_loop_factory, freeze_start_up_objects, space_out_full_collections
from bot.settings import Settings
from bot.work_loop import WorkLoop

if TYPE_CHECKING:
    from bot.app import Bot

__all__ = ["main"]

log = logging.getLogger("bot.cli")

# At shutdown, how long what the last acks handed over may take before executions are drained.
HANDED_OVER_WORK_SECONDS = 5.0


async def _serve(
    settings: Settings, environ: Mapping[str, str], *, socket_mode: bool, drain_seconds: float = 20.0
) -> int:
    """Serve until SIGTERM or SIGINT (0), or until the work process dies (1, for a restart)."""
    from bot.ack_side import build_ack_side, build_intake
    from bot.metrics import Metrics
    from bot.slack.listeners import FormsOpening
    from bot.work_process import WorkProcess, WorkSideGone

    process: WorkProcess | None = None
    if settings.work_mode == "process":
        # The work process migrates the database before it says it is ready (bot.work_process).
        forms_opening = FormsOpening()
        process = await WorkProcess.start(environ, form_opened=forms_opening.opened)
        bolt, web_app = build_ack_side(
            settings, intake=build_intake(settings), metrics=Metrics(), work=process, forms_opening=forms_opening
        )
        where = ", the service in a process of its own"
    else:
        from bot.app import build_bot
        from bot.schema import ensure_schema

        await ensure_schema(settings.database_url)
        # The service's clients are made on the loop they will be used on (see bot.work_loop).
        work = (
            WorkLoop.start_thread(event_loop_factory(settings.event_loop))
            if settings.work_mode == "thread"
            else WorkLoop.same_loop()
        )

        async def build() -> Bot:
            bot = build_bot(settings, environ=environ, work=work)
            bot.start_sweeper()
            return bot

        bot = await work.call(build())
        bolt, web_app = bot.bolt, bot.web_app
        where = ", the service on its own thread" if work.threaded else ""
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    socket_handler = None
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        if settings.slack_app_token is None:
            raise ConfigurationError("SLACK_APP_TOKEN: not set (Socket Mode needs an xapp- app-level token)")
        socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
        await socket_handler.connect_async()
    pin_slack_library_levels()
    freeze_start_up_objects()
    space_out_full_collections()
    mode = "Socket Mode (health and metrics over HTTP)" if socket_mode else "HTTP mode"
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]  # "uvloop" or "asyncio"
    log.info(
        "atlas-chatops %s serving in %s on %s:%d (%s event loop%s)",
        __version__,
        mode,
        settings.host,
        settings.port,
        loop_name,
        where,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waits = [loop.create_task(stop.wait())]
    if process is not None:
        waits.append(loop.create_task(process.gone.wait()))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    work_died = process is not None and process.gone.is_set() and not stop.is_set()
    if work_died:
        log.error("the work process has exited: stopping, for serve to be restarted")
    else:
        log.info("shutting down: no new work, finishing executions in flight (up to %.0f s)", drain_seconds)
    # No new work: Socket Mode disconnects; the HTTP server stops listening, closes keep-alive
    # connections (a load balancer's too) and answers the requests already in (acks, so quick). Then
    # the service starts no execution, and those in flight finish or are handed back by the deadline.
    if socket_handler is not None:
        await socket_handler.close_async()
    await runner.cleanup()
    # What the last acks handed over is short (Slack and database calls); executions get the rest.
    handed_over_seconds = min(HANDED_OVER_WORK_SECONDS, drain_seconds)
    if process is not None:
        try:
            cut_short = 0 if work_died else await process.finish(handed_over_seconds)
        except WorkSideGone:
            cut_short, work_died = 0, True
        code = await process.close(drain_seconds=drain_seconds)
        if code:
            log.warning("the work process exited with code %s", code)
    else:
        cut_short = await work.call(work.finish(handed_over_seconds))
        await work.call(bot.shutdown(drain_seconds=drain_seconds))
        work.stop()
    if cut_short:
        log.warning("%d pieces of work after an ack were stopped at shutdown", cut_short)
    log.info("stopped")
    return 1 if work_died else 0


async def _migrate(settings: Settings, revision: str, *, down: bool) -> None:
    from bot.migrate import downgrade, upgrade

    await (downgrade if down else upgrade)(settings.database_url, revision)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(
        prog="atlas-chatops", description="Slack ChatOps for emergency MongoDB Atlas actions"
    )
    parser.add_argument("--version", action="version", version=f"atlas-chatops {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the bot (HTTP mode by default)")
    serve.add_argument("--socket", action="store_true", help="use Socket Mode (needs SLACK_APP_TOKEN)")
    serve.add_argument("--port", type=int, help="override PORT")
    serve.add_argument(
        "--drain-seconds",
        type=float,
        default=20.0,
        help="on SIGTERM, how long executions in flight may take to finish before they are handed back "
        "(default 20; keep it under the platform's kill timeout)",
    )
    migrate = sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="downgrade to --revision instead")
    sub.add_parser("check", help="check configuration, policy, Slack, Atlas and the database")
    args = parser.parse_args(argv)
    command = args.command or "serve"

    if command == "check":
        from bot.check import run_checks

        return asyncio.run(run_checks(environ))
    if getattr(args, "port", None):
        environ["PORT"] = str(args.port)
    try:
        settings = Settings.from_environ(environ)
        configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secret_values(environ))
        if command == "migrate":
            asyncio.run(_migrate(settings, args.revision, down=args.downgrade))
            print(f"database migrated to {args.revision}")
        else:
            with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
                return runner.run(_serve(settings, environ, socket_mode=args.socket, drain_seconds=args.drain_seconds))
    except ConfigurationError as exc:
        print(f"atlas-chatops: {exc.user_message}", file=sys.stderr)
        return 2
    except ChatOpsError as exc:
        print(f"atlas-chatops: {exc.user_message}", file=sys.stderr)
        return 1
    return 0
