"""``atlas-chatops check``: one line per check, each failure with how to fix it.

Checks settings, the policy file, Slack (``auth.test`` and the granted scopes), Atlas (an
authenticated read, which with a service account also fetches a token) and the database
(reachable, migrated). Exit code 0 only when every check passes. Never prints a secret.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.atlas import AtlasClient, AtlasSettings
from bot.atlas.errors import (
    AtlasConfigurationError,
    AtlasConnectError,
    AtlasError,
    AtlasForbiddenError,
    AtlasUnauthorizedError,
)
from bot.errors import ChatOpsError
from bot.settings import Settings
from commands import load_registry

__all__ = ["REQUIRED_BOT_SCOPES", "CheckResult", "run_checks"]

# The bot scopes the code uses: commands (the slash command), chat:write (approval messages,
# threads, updates, ephemerals) and usergroups:read (roles given to user groups).
REQUIRED_BOT_SCOPES = frozenset({"commands", "chat:write", "usergroups:read"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f"\n      fix: {self.fix}" if self.fix else "")


async def _check_slack(settings: Settings) -> CheckResult:
    from bot.slack.client import build_slack_client

    client = build_slack_client(settings)
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown")
        return CheckResult(
            "slack",
            False,
            f"auth.test answered {error}",
            "SLACK_BOT_TOKEN is wrong, revoked or for another app: copy the Bot User OAuth Token (xoxb-) "
            "from the app's OAuth & Permissions page, reinstalling the app if needed.",
        )
    except (SlackClientError, OSError) as exc:
        return CheckResult(
            "slack",
            False,
            f"could not reach {settings.slack_api_url} ({type(exc).__name__})",
            "check SLACK_API_URL and outbound HTTPS to slack.com.",
        )
    granted = {s.strip() for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    missing = sorted(REQUIRED_BOT_SCOPES - granted) if granted else []
    detail = f"bot {response.get('user_id')} in team {response.get('team')} ({response.get('team_id')})"
    if missing:
        return CheckResult(
            "slack",
            False,
            f"{detail}, but missing scopes: {', '.join(missing)}",
            "add them under OAuth & Permissions (or update the app from app-manifest.yml) and reinstall.",
        )
    return CheckResult("slack", True, detail)


async def _check_atlas(environ: Mapping[str, str]) -> CheckResult:
    try:
        atlas_settings = AtlasSettings.model_validate({k: v for k, v in environ.items() if v != ""})
        client = AtlasClient.from_settings(atlas_settings)
    except (AtlasConfigurationError, ValueError) as exc:
        return CheckResult(
            "atlas",
            False,
            str(exc).splitlines()[0],
            "set MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (a service account), or "
            "MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY.",
        )
    try:
        orgs = await client.list_orgs(items_per_page=1)
    except AtlasUnauthorizedError as exc:
        return CheckResult(
            "atlas",
            False,
            f"credentials refused ({exc.error_code or exc.status})",
            "check MONGODB_ATLAS_CLIENT_ID / MONGODB_ATLAS_CLIENT_SECRET (or the API key pair); "
            "a service account secret may have expired.",
        )
    except AtlasForbiddenError as exc:
        return CheckResult(
            "atlas",
            False,
            f"forbidden ({exc.error_code or exc.status}): {exc.detail or ''}".strip(),
            "add this machine's IP to the service account's API access list, or grant it the org roles "
            "listed in the README.",
        )
    except AtlasConnectError:
        return CheckResult("atlas", False, "could not connect", "check MONGODB_ATLAS_BASE_URL and outbound HTTPS.")
    except AtlasError as exc:
        return CheckResult("atlas", False, f"{type(exc).__name__}: {exc}", "see the message above.")
    finally:
        await client.aclose()
    count = orgs.total_count if orgs.total_count is not None else len(orgs.results)
    return CheckResult("atlas", True, f"authenticated; {count} organisation(s) visible")


async def _check_database(settings: Settings) -> CheckResult:
    from bot.db import create_engine, redact_url
    from bot.schema import schema_status

    engine = create_engine(settings.database_url)
    try:
        status = await schema_status(engine)
    except ChatOpsError as exc:
        return CheckResult(
            "database",
            False,
            exc.user_message,
            "check DATABASE_URL and that the database is running.",
        )
    finally:
        await engine.dispose()
    where = redact_url(settings.database_url)
    if not status.at_head:
        return CheckResult(
            "database",
            False,
            f"{where} is at revision {status.current or 'none'}, not {status.head}",
            "run `atlas-chatops migrate`.",
        )
    return CheckResult("database", True, f"{where} reachable, schema at {status.head}")


async def run_checks(environ: Mapping[str, str], *, out: TextIO | None = None) -> int:
    from bot.policy import load_policy

    out = out or sys.stdout
    results: list[CheckResult] = []
    try:
        settings = Settings.from_environ(environ)
        results.append(CheckResult("settings", True, "all required variables set"))
    except ChatOpsError as exc:
        results.append(CheckResult("settings", False, exc.user_message, "set the variables named above (see README)."))
        settings = None
    if settings is not None:
        try:
            policy = load_policy(settings.policy_path, known_actions=load_registry())
            results.append(
                CheckResult(
                    "policy",
                    True,
                    f"{settings.policy_path}: {len(policy.actions)} action(s) enabled, {len(policy.roles)} role(s)",
                )
            )
        except ChatOpsError as exc:
            results.append(
                CheckResult(
                    "policy",
                    False,
                    exc.user_message,
                    "fix the key named above; policy.example.yml is a worked example.",
                )
            )
        results.append(await _check_slack(settings))
    results.append(await _check_atlas(environ))
    if settings is not None:
        results.append(await _check_database(settings))
    for result in results:
        print(result.line(), file=out)
    return 0 if all(r.ok for r in results) else 1
