"""What answers Slack: Bolt with the listeners, and the web app serving it.

Light on purpose: with the work in a process of its own (bot.work_process), serve's own process
loads this and no database driver, SQLAlchemy, Alembic or Atlas client (about 30 MB less).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.actions import ActionSpec
from bot.intake import Intake
from bot.metrics import Metrics
from bot.policy import load_policy
from bot.sealing import Sealer
from bot.settings import Settings
from bot.slack.client import build_slack_client
from bot.slack.listeners import FormsOpening, register
from bot.web import build_web_app
from bot.work_loop import Work
from commands import load_registry

__all__ = ["build_ack_side", "build_intake"]


def build_intake(settings: Settings, *, registry: Mapping[str, ActionSpec[Any]] | None = None) -> Intake:
    """The ack side's checks, from the same registry, policy file and key the work side reads."""
    registry = dict(registry or load_registry())
    return Intake(
        registry=registry,
        policy=load_policy(settings.policy_path, known_actions=registry),
        sealer=Sealer(settings.sealing_key),
    )


def build_ack_side(
    settings: Settings, *, intake: Intake, metrics: Metrics, work: Work, forms_opening: FormsOpening
) -> tuple[AsyncApp, web.Application]:
    """Bolt with the listeners, and the web app serving it: what answers Slack, handing the rest to
    ``work``. Builds no client of the work side's."""
    bolt = AsyncApp(
        # Bolt's own client makes one call (auth.test, on the first request) from the loop that
        # serves HTTP; ours belongs to the service's loop, so Bolt gets one without a shared session.
        client=build_slack_client(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Commands and clicks are answered by our own listeners; no OAuth flow, one workspace.
        raise_error_for_unhandled_request=False,
        # bot.web verifies every HTTP request before Bolt sees it and hands Bolt the parsed body
        # (bot.slack.gate); Socket Mode requests are not signed.
        request_verification_enabled=False,
    )
    register(bolt, intake, metrics, work, forms_opening)
    web_app = build_web_app(bolt, metrics=metrics, signing_secret=settings.slack_signing_secret, work=work)
    return bolt, web_app
