"""``serve`` with the work in a process of its own (bot.work_process, the default): one real
``python -m bot serve`` whose service runs in its child, driven as Slack would drive it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot.db import create_engine
from bot.schema import schema_status
from tests.db import drop_database, make_database
from tests.fakes.fake_atlas import FakeAtlas
from tests.replicas.cluster import Cluster, Replica, atlas_writes, wait_until

pytestmark = [pytest.mark.postgres]


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def work_processes(replica: Replica) -> list[int]:
    """The serve process's children (its work process)."""
    return children(replica.process.pid)


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_a_request_runs_through_the_work_process_and_metrics_join_both_sides(
    cluster: Cluster, fake_atlas: FakeAtlas
) -> None:
    org = fake_atlas.add_org("Acme")
    federation = fake_atlas.add_federation([org["id"]])["id"]
    idp = fake_atlas.add_idp(federation)["id"]
    (replica,) = await cluster.start("replica-a")
    assert "the service in a process of its own" in replica.log()
    (work,) = work_processes(replica)
    assert "bot.work_process" in command_line(work)

    requested = await cluster.request(replica, f"revoke-jwks {federation} {idp}", reason="work process flow")
    approved = await cluster.post(replica, cluster.approve_click(requested))
    assert approved.status == 200
    succeeded = 'atlas_chatops_requests_total{action="revoke-jwks",outcome="succeeded"} 1.0'

    async def scrape() -> str:
        async with cluster.http.get(f"{replica.url}/metrics") as response:
            assert response.status == 200
            return (await response.read()).decode()

    async def done() -> bool:
        return succeeded in await scrape()

    # The work side counts requests and Atlas calls, the ack side acks: /metrics joins them.
    await wait_until(done, timeout=15, what="the execution counted as succeeded in /metrics")
    jwks = f"/api/atlas/v2/federationSettings/{federation}/identityProviders/{idp}/jwks"
    assert atlas_writes(fake_atlas)[jwks] == 1
    assert any("Executing in Atlas now" in text for text in cluster.thread(requested))
    text = await scrape()
    command_acks = next(x for x in text.splitlines() if x.startswith('atlas_chatops_ack_seconds_count{kind="command"}'))
    assert float(command_acks.split()[-1]) >= 1
    # Each family is named once.
    type_lines = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))
    assert {"atlas_chatops_ack_seconds", "atlas_chatops_requests_total", "atlas_chatops_pending_approvals"} <= {
        line.split()[2] for line in type_lines
    }

    # SIGKILL leaves no work process executing on (PR_SET_PDEATHSIG).
    replica.signal(signal.SIGKILL)
    await replica.wait_exit(10)
    await wait_until(lambda: asyncio.sleep(0, not running(work)), timeout=5, what="the work process to die too")


async def test_serve_exits_non_zero_when_its_work_process_dies(cluster: Cluster) -> None:
    (replica,) = await cluster.start("replica-a")
    (work,) = work_processes(replica)
    os.kill(work, signal.SIGKILL)
    assert await replica.wait_exit(15) == 1
    assert "the work process has exited" in replica.log()


async def test_sigterm_drains_and_stops_the_work_process_with_serve(cluster: Cluster) -> None:
    (replica,) = await cluster.start("replica-a")
    (work,) = work_processes(replica)
    replica.signal(signal.SIGTERM)
    assert await replica.wait_exit(30) == 0
    assert not running(work)
    assert "stopped" in replica.log()


async def test_commands_are_refused_as_busy_while_the_work_process_is_stopped(cluster: Cluster) -> None:
    (replica,) = await cluster.start("replica-a")
    (work,) = work_processes(replica)
    os.kill(work, signal.SIGSTOP)
    try:
        await asyncio.sleep(1.3)  # its heartbeat is now over 1 s old
        refused, _ = await cluster.command(replica, "whoami")
        assert refused.status == 200 and b"too busy" in refused.body
    finally:
        os.kill(work, signal.SIGCONT)
    await asyncio.sleep(0.3)
    answer, trigger_id = await cluster.command(replica, "revoke-jwks 5f1a2b3c4d5e6f7a8b9c0d1e 5f1a2b3c4d5e6f7a8b9c0d1f")
    assert answer.status == 200 and not answer.body
    await cluster.fake_slack.wait_for(
        "views.open", predicate=lambda c: c.args.get("trigger_id") == trigger_id, timeout=10
    )


async def test_serve_migrates_a_new_sqlite_database_before_it_is_ready(cluster: Cluster, tmp_path: Path) -> None:
    # The work process has the migration run by a child of its own (python -m bot.schema), so that
    # Alembic never loads into it; that child is gone once serve is healthy.
    url = await make_database("sqlite", directory=tmp_path, migrate=False)
    (replica,) = await cluster.start("replica-a", database_url=url)
    engine = create_engine(url)
    try:
        status = await schema_status(engine)
    finally:
        await engine.dispose()
    assert status.at_head, status
    (work,) = work_processes(replica)
    assert "bot.work_process" in command_line(work)
    assert not [pid for pid in children(work) if running(pid)]


async def test_serve_refuses_a_postgresql_schema_it_may_not_migrate_in_one_line(cluster: Cluster) -> None:
    url = await make_database("postgresql", migrate=False)
    try:
        (replica,) = await cluster.start("replica-a", database_url=url, wait_healthy=False)
        assert await replica.wait_exit(60) == 2
    finally:
        await drop_database(url)
    printed = replica.log()
    assert "atlas-chatops: DATABASE_URL: the schema is at revision none" in printed, printed
    assert "Run `atlas-chatops migrate`" in printed
    assert "Traceback" not in printed


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19


async def test_the_work_process_yields_the_cpu_to_serve(cluster: Cluster) -> None:
    (replica,) = await cluster.start("replica-a")
    (work,) = work_processes(replica)
    assert niceness(work) - niceness(replica.process.pid) == 10
