"""Operating the bot: `atlas-chatops check`, start-up errors, /healthz, /metrics and request ids in logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp

import tests.fakes.fake_slack as fake_slack_module
from bot.check import run_checks
from bot.cli import main
from bot.db import create_engine
from bot.logs import JsonFormatter, RequestIdFilter, SecretScrubber
from bot.metrics import Metrics
from bot.slack.after_ack import AfterAck
from bot.store import Store
from bot.web import build_web_app
from bot.work_loop import LocalWork, WorkLoop
from tests.db import make_database
from tests.e2e.harness import BOB, DEFAULT_POLICY, Harness
from tests.e2e.test_flow import seed_oidc_idp

pytestmark = pytest.mark.e2e


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(DEFAULT_POLICY), encoding="utf-8")
    return path


def check_environ(h: Harness, policy_file: Path, **overrides: str) -> dict[str, str]:
    return {**h.environ, "ATLAS_CHATOPS_POLICY": str(policy_file), **overrides}


async def checks(environ: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_checks(environ, out=out)
    return code, out.getvalue()


async def test_check_passes_with_good_settings(harness: Harness, policy_file: Path) -> None:
    code, printed = await checks(check_environ(harness, policy_file))
    assert code == 0, printed
    lines = printed.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "settings:"],
        ["ok", "policy:"],
        ["ok", "slack:"],
        ["ok", "atlas:"],
        ["ok", "database:"],
    ]
    assert "5 action(s) enabled" in printed and "authenticated" in printed


async def test_check_with_wrong_credentials_says_what_is_wrong_and_how_to_fix_it(
    harness: Harness, policy_file: Path, tmp_path: Path
) -> None:
    h = harness
    # A database nobody migrated, a bot token from another app, an Atlas secret that was rotated.
    unmigrated = await make_database("sqlite", directory=tmp_path, migrate=False)
    environ = check_environ(
        h,
        policy_file,
        SLACK_BOT_TOKEN="xoxb-not-this-apps-token-1234",
        MONGODB_ATLAS_CLIENT_SECRET="mdb_sa_sk_rotated_secret_value_0000",
        DATABASE_URL=unmigrated,
    )
    code, printed = await checks(environ)
    assert code == 1
    assert "FAIL  slack: auth.test answered invalid_auth" in printed
    assert "fix: SLACK_BOT_TOKEN is wrong" in printed
    assert "FAIL  atlas: credentials refused" in printed and "fix: check MONGODB_ATLAS_CLIENT_ID" in printed
    assert "FAIL  database:" in printed and "fix: run `atlas-chatops migrate`." in printed
    assert "ok    policy:" in printed
    for secret in ("xoxb-not-this-apps-token-1234", "mdb_sa_sk_rotated_secret_value_0000", h.atlas_client_secret):
        assert secret not in printed


async def test_check_reports_missing_scopes_and_missing_settings(
    harness: Harness, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_slack_module, "_BOT_SCOPES", "commands,chat:write")
    code, printed = await checks(check_environ(harness, policy_file))
    assert code == 1 and "missing scopes: usergroups:read" in printed and "reinstall" in printed

    environ = check_environ(harness, policy_file)
    del environ["SLACK_SIGNING_SECRET"]
    code, printed = await checks(environ)
    assert code == 1 and "FAIL  settings:" in printed and "SLACK_SIGNING_SECRET" in printed


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    # main() configures logging for the process (root handlers on the captured stderr); undo it.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logging")
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"ATLAS_CHATOPS_EVENT_LOOP": "trio"}, "ATLAS_CHATOPS_EVENT_LOOP"),
        # os.nice takes 0-19 more; the setting is checked before anything starts, not by the child.
        ({"ATLAS_CHATOPS_WORK_NICENESS": "20"}, "ATLAS_CHATOPS_WORK_NICENESS"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    change: dict[str, str | None], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"SLACK_BOT_TOKEN": "xoxb-start-up-test", "SLACK_SIGNING_SECRET": "start-up-secret"}
    for key, value in change.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    code = main(["serve"], environ=environ)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("atlas-chatops: ") and named in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "start-up-secret" not in err and "xoxb-start-up-test" not in err


async def test_healthz_and_metrics_after_a_full_request(harness: Harness) -> None:
    h = harness
    health = await h.http.get(f"{h.url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "database": "ok"})

    fed, idp = seed_oidc_idp(h)
    requested = await h.request(f"revoke-jwks {fed} {idp}")
    await h.click(requested, user=BOB)
    await h.wait_thread(requested, "Done")
    await h.settle()

    scraped = await h.http.get(f"{h.url}/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'atlas_chatops_requests_total{action="revoke-jwks",outcome="succeeded"} 1.0' in text
    assert 'atlas_chatops_requests_total{action="revoke-jwks",outcome="approved"} 1.0' in text
    assert 'atlas_chatops_atlas_call_seconds_count{action="revoke-jwks",status="ok"} 1.0' in text
    command_acks = next(
        line for line in text.splitlines() if line.startswith('atlas_chatops_ack_seconds_count{kind="command"}')
    )
    assert float(command_acks.split()[-1]) >= 1
    assert "atlas_chatops_pending_approvals" in text
    for secret in h.secrets:
        assert secret not in text


class _StoreOnly:
    """The work side's real health check, over a store alone."""

    database_ok = AfterAck.database_ok

    def __init__(self, store: Store) -> None:
        self.service = SimpleNamespace(store=store)


@pytest.fixture
async def unreachable_database_app() -> AsyncIterator[str]:
    # Port 1 on loopback: nothing listens, so every connection is refused at once.
    engine = create_engine("postgresql://postgres@127.0.0.1:1/none")
    bolt = AsyncApp(signing_secret="healthz-test", token="xoxb-healthz")
    runner = web.AppRunner(
        build_web_app(
            bolt,
            metrics=Metrics(),
            signing_secret=SecretStr("healthz-test"),
            work=LocalWork(WorkLoop.same_loop(), _StoreOnly(Store(engine))),
        ),
        access_log=None,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await engine.dispose()


async def test_healthz_is_503_when_the_database_is_unreachable(unreachable_database_app: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{unreachable_database_app}/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "degraded", "database": "unreachable"})


async def test_json_log_lines_carry_the_request_id(harness: Harness) -> None:
    h = harness
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretScrubber(h.secrets))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        fed, idp = seed_oidc_idp(h)
        requested = await h.request(f"revoke-jwks {fed} {idp}")
        await h.click(requested, user=BOB)
        await h.wait_thread(requested, "Done")
        await h.settle()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    ours = {e["message"]: e.get("request_id") for e in entries if e["logger"] == "bot.service"}
    requested_line = next(m for m in ours if m.startswith("revoke-jwks requested on"))
    executing_line = next(m for m in ours if m.startswith("executing revoke-jwks"))
    finished_line = next(m for m in ours if m == "revoke-jwks finished: succeeded")
    for message in (requested_line, executing_line, finished_line):
        assert ours[message] == requested.request_id, (message, ours)
