"""Composition root: settings in, a wired bot out. The only place that builds I/O objects
(the work side's in :mod:`bot.work_side`, the ack side's in :mod:`bot.ack_side`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.ack_side import build_ack_side
from bot.actions import ActionSpec
from bot.policy import Policy
from bot.settings import Settings
from bot.slack.after_ack import AfterAck
from bot.slack.listeners import FormsOpening
from bot.work_loop import LocalWork, WorkLoop
from bot.work_side import WorkSide, build_work_side

__all__ = ["Bot", "WorkSide", "build_bot", "build_work_side"]


@dataclass(kw_only=True)
class Bot(WorkSide):
    """The whole bot in one process: the work side, and Bolt and the web app acking in front of it."""

    bolt: AsyncApp
    web_app: web.Application
    work: WorkLoop


def build_bot(
    settings: Settings,
    *,
    environ: Mapping[str, str],
    policy: Policy | None = None,
    registry: Mapping[str, ActionSpec[Any]] | None = None,
    atlas_transport: httpx.AsyncBaseTransport | None = None,
    atlas_options: Mapping[str, Any] | None = None,
    work: WorkLoop | None = None,
) -> Bot:
    """Both sides in this process (see :func:`build_work_side` for the options).

    Call it on the loop the service will run on: ``work``'s, or (without ``work``) the one the
    HTTP server runs on. Bolt and the web app may then serve from another loop (see bot.work_loop)."""
    work = work or WorkLoop.same_loop()
    side = build_work_side(
        settings,
        environ=environ,
        policy=policy,
        registry=registry,
        atlas_transport=atlas_transport,
        atlas_options=atlas_options,
    )
    forms_opening = FormsOpening()
    local_work = LocalWork(work, AfterAck(side.service, form_opened=forms_opening.opened))
    bolt, web_app = build_ack_side(
        settings, intake=side.service.intake, metrics=side.metrics, work=local_work, forms_opening=forms_opening
    )
    return Bot(**{f.name: getattr(side, f.name) for f in fields(WorkSide)}, bolt=bolt, web_app=web_app, work=work)
