"""The work side: the service and its clients (database, Slack, Atlas), the executions and the
sweeper. What ``python -m bot.work_process`` builds, so nothing here imports Bolt, the web app or
Alembic (migrations run in a process of their own, see :func:`bot.schema.ensure_schema_in_child`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import ClientSession, ClientTimeout
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.actions import ActionSpec
from bot.atlas import AtlasClient, AtlasSettings
from bot.db import create_engine
from bot.metrics import Metrics
from bot.policy import Policy, load_policy
from bot.sealing import Sealer
from bot.service import ChatOps
from bot.settings import Settings
from bot.slack.client import SLACK_TIMEOUT_SECONDS, build_slack_client
from bot.slack.directory import Directory
from bot.store import Store
from bot.sweeper import Sweeper
from commands import load_registry

__all__ = ["WorkSide", "build_work_side"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class WorkSide:
    """The service and its clients: what runs where the work runs (bot.work_loop)."""

    settings: Settings
    engine: AsyncEngine
    store: Store
    atlas: AtlasClient
    slack: AsyncWebClient
    service: ChatOps
    metrics: Metrics
    sweeper: Sweeper
    _sweeper_task: asyncio.Task[None] | None = None

    def start_sweeper(self) -> None:
        self._sweeper_task = asyncio.get_running_loop().create_task(self.sweeper.run_forever())

    async def shutdown(self, *, drain_seconds: float = 20.0) -> None:
        if self._sweeper_task is not None:
            self._sweeper_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper_task
        remaining = await self.service.drain(drain_seconds)
        if remaining:
            log.warning(
                "%d executions still running at the drain deadline were stopped: those not yet sent to Atlas "
                "were handed back, the others are resolved by another replica's stale-lease sweep",
                remaining,
            )
        await self.atlas.aclose()
        if self.slack.session is not None:
            await self.slack.session.close()
        await self.engine.dispose()


def build_work_side(
    settings: Settings,
    *,
    environ: Mapping[str, str],
    policy: Policy | None = None,
    registry: Mapping[str, ActionSpec[Any]] | None = None,
    atlas_transport: httpx.AsyncBaseTransport | None = None,
    atlas_options: Mapping[str, Any] | None = None,
) -> WorkSide:
    """``atlas_options`` are extra keyword arguments for :class:`AtlasClient` (tests pass a fast
    ``retry`` policy, a short ``timeout`` or a recording ``sleep``). Call it on the loop the service
    will run on."""
    registry = dict(registry or load_registry())
    policy = policy or load_policy(settings.policy_path, known_actions=registry)
    atlas_settings = AtlasSettings.model_validate({k: v for k, v in environ.items() if v != ""})
    atlas = AtlasClient.from_settings(atlas_settings, transport=atlas_transport, **dict(atlas_options or {}))
    engine = create_engine(settings.database_url)
    store = Store(engine)
    # slack_sdk applies its timeout only to sessions it makes itself: give ours the same one.
    slack = build_slack_client(settings, session=ClientSession(timeout=ClientTimeout(total=SLACK_TIMEOUT_SECONDS)))
    directory = Directory(slack, ttl_seconds=settings.group_cache_seconds)
    if settings.slack_team_id:
        directory.set_team_id(settings.slack_team_id)
    metrics = Metrics()
    service = ChatOps(
        store=store,
        policy=policy,
        registry=registry,
        atlas=atlas,
        slack=slack,
        directory=directory,
        sealer=Sealer(settings.sealing_key),
        metrics=metrics,
        replica_id=settings.replica_id,
        lease_seconds=settings.execution_lease_seconds,
        environ=environ,
    )
    return WorkSide(
        settings=settings,
        engine=engine,
        store=store,
        atlas=atlas,
        slack=slack,
        service=service,
        metrics=metrics,
        sweeper=Sweeper(service, replica_id=settings.replica_id, interval_seconds=settings.sweep_interval_seconds),
    )
