"""Benchmark: the database work between an Approve click and the Atlas call, two ways, on one store.

* ``approve, then claim``: :meth:`Store.approve`, then :meth:`Store.claim_execution` (two
  transactions: what every click did before, and what the sweeper still does);
* ``approve with claim``: :meth:`Store.approve` with an :class:`ExecutionClaim` (one transaction).

Each request needs one approval, so every approve is the last one and both ways end with the request
executing, leased to this process. Rounds alternate between the two ways so a machine's drift hits
both alike. Printed per request: this process's CPU (SQLAlchemy, the driver, pydantic: what the
bot's work process spends) and the wall time, which at concurrency 1 also holds the round trips and
the database server's own work.

    python -m bench.store_bench [--backends sqlite,postgresql] [--requests 500] [--rounds 6] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot import __version__
from bot.db import create_engine
from bot.preview import Fact, Preview
from bot.requests import NewActionRequest, RequestState
from bot.store import ExecutionClaim, Store
from tests.db import Backend, drop_database, make_database, pg_reachable

LEASE_SECONDS = 120.0
EXECUTOR = "bench-replica"

# About the size of a revoke-jwks preview as the bot stores it (facts; evidence stays out of it).
PREVIEW = Preview(
    facts=(
        Fact(label="Identity provider", value="Okta (OIDC), id 66aa00000000000000000001"),
        Fact(label="Issuer", value="https://example.okta.com/oauth2/default"),
        Fact(label="Audience", value="api://atlas"),
        Fact(label="Authorization type", value="GROUP"),
        Fact(label="Organisations logged out", value="Acme (5f1d00000000000000000001)"),
    ),
    warnings=("Every user of 1 organisation(s) is logged out at once.",),
)


def _new_request(i: int) -> NewActionRequest:
    return NewActionRequest(
        action="revoke-jwks",
        target={"federation_settings_id": "5f1d" * 6, "identity_provider_id": f"{i:024x}"},
        target_label=f"IdP {i:024x} (federation {'5f1d' * 6})",
        requester_id="U0REQUESTER",
        requester_team_id="T0BENCH",
        channel_id="C0INCIDENT",
        reason=f"store benchmark request {i}",
        approvals_required=1,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        preview=PREVIEW,
        preview_digest=PREVIEW.digest,
    )


async def _approve_then_claim(store: Store, request_id: str) -> None:
    result = await store.approve(request_id, approver_id="U0APPROVER")
    assert result.became_approved
    claimed = await store.claim_execution(request_id, executor_id=EXECUTOR, lease_seconds=LEASE_SECONDS)
    assert claimed is not None and claimed.state is RequestState.EXECUTING


async def _approve_with_claim(store: Store, request_id: str) -> None:
    result = await store.approve(request_id, approver_id="U0APPROVER", claim=ExecutionClaim(EXECUTOR, LEASE_SECONDS))
    assert result.claimed and result.request.state is RequestState.EXECUTING


WAYS: dict[str, Callable[[Store, str], Awaitable[None]]] = {
    "approve, then claim": _approve_then_claim,
    "approve with claim": _approve_with_claim,
}


async def _round(
    store: Store, way: Callable[[Store, str], Awaitable[None]], ids: list[str], concurrency: int
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per request over ``ids``."""
    queue = iter(ids)

    async def worker() -> None:
        for request_id in queue:
            await way(store, request_id)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu) / len(ids), (time.perf_counter() - wall) / len(ids)


async def bench(backend: Backend, *, requests: int, rounds: int, concurrency: int) -> dict[str, tuple[float, float]]:
    url = await make_database(backend)
    engine = create_engine(url)
    try:
        store = Store(engine)
        total = requests * rounds * len(WAYS) + requests
        ids: list[str] = []
        for start in range(0, total, 200):
            batch = await asyncio.gather(
                *(store.create_request(_new_request(i)) for i in range(start, min(total, start + 200)))
            )
            ids.extend(r.id for r in batch)
        chunks = [ids[i : i + requests] for i in range(0, len(ids), requests)]
        # A warm-up round of each way (statement caches, the pool's connections), not counted.
        warm = chunks.pop()
        for n, way in enumerate(WAYS.values()):
            half = warm[n::2]
            await _round(store, way, half, concurrency)
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in WAYS}
        for r in range(rounds):
            names = list(WAYS) if r % 2 == 0 else list(reversed(WAYS))
            for name in names:
                figures[name].append(await _round(store, WAYS[name], chunks.pop(), concurrency))
        return {
            name: (statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs))
            for name, runs in figures.items()
        }
    finally:
        await engine.dispose()
        await drop_database(url)


def _machine_speed() -> float:
    best = float("inf")
    for _ in range(5):
        started, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main(backends: list[Backend], requests: int, rounds: int, concurrency: int) -> int:
    print(f"atlas-chatops {__version__} store benchmark; Python {sys.version.split()[0]}")
    print(f"{requests} requests per round, {rounds} rounds per way, concurrency {concurrency}; medians over rounds")
    print(f"machine speed: 1,000,000 Python additions in {_machine_speed():.0f} ms (best of 5; lower is faster)")
    for backend in backends:
        if backend == "postgresql" and (why := await pg_reachable()) is not None:
            print(f"\n{backend}: skipped, PostgreSQL is not reachable ({why})")
            continue
        result = await bench(backend, requests=requests, rounds=rounds, concurrency=concurrency)
        print(f"\n{backend}: approval that completes a request, until it is executing (per request)")
        base_cpu, base_wall = result["approve, then claim"]
        for name, (cpu, wall) in result.items():
            print(
                f"  {name:<20} CPU {cpu * 1e6:7.0f} us ({cpu / base_cpu:4.2f}x)   "
                f"wall {wall * 1e6:7.0f} us ({wall / base_wall:4.2f}x)"
            )
    return 0


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per way (default 6)")
    parser.add_argument("--concurrency", type=int, default=1, help="approvals in flight at once (default 1)")
    args = parser.parse_args()
    backends: list[Backend] = []
    for name in args.backends.split(","):
        if name not in ("sqlite", "postgresql"):
            parser.error(f"--backends: unknown backend {name!r}")
        backends.append(name)  # type: ignore[arg-type]
    raise SystemExit(asyncio.run(main(backends, args.requests, args.rounds, args.concurrency)))


if __name__ == "__main__":
    run()
