"""Benchmark: AtlasClient (OAuth, token cached) vs a raw httpx.AsyncClient against FakeAtlas on loopback.

Both sides make the same GET getGroupCluster calls at the same concurrency; the figure that matters
is the per-call ratio client/raw (target <= 1.15x): the client's own overhead (validation, the
operation table, the auth flow, pydantic parsing) on top of httpx.

    python -m bench.atlas_client_bench [--calls 1000] [--concurrency 20] [--short] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import SecretStr

from bot import __version__
from bot.atlas import AtlasClient, OAuthClientCredentialsAuth, OAuthRateLimiter
from tests.fakes.fake_atlas import FakeAtlas


async def _run(calls: int, concurrency: int, call: Callable[[], Awaitable[Any]]) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _summary(name: str, latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    stats = {
        "mean": statistics.fmean(ordered) * 1000,
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "per_call": wall / len(ordered) * 1000,
        "rps": len(ordered) / wall,
    }
    print(
        f"{name:<7} calls={len(ordered):<6} mean={stats['mean']:.2f} ms  p50={stats['p50']:.2f} ms  "
        f"p99={stats['p99']:.2f} ms  wall/call={stats['per_call']:.3f} ms  ({stats['rps']:.0f} calls/s)"
    )
    return stats


async def main(calls: int, concurrency: int, rounds: int, profile: bool) -> float:
    fake = FakeAtlas(record_requests=False)
    seed = fake.seed_demo()
    base_url = await fake.start(host="127.0.0.1", port=0)
    account = seed["serviceAccount"]
    group, cluster = seed["groupId"], "Cluster0"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    auth = OAuthClientCredentialsAuth(account["clientId"], SecretStr(account["secret"]))
    client = AtlasClient(
        auth=auth,
        http_client=httpx.AsyncClient(
            base_url=base_url, limits=limits, headers={"User-Agent": f"atlas-chatops/{__version__}"}
        ),
        oauth_limiter=OAuthRateLimiter(),
    )
    await client.get_cluster(group, cluster)  # token cached from here on
    token = next(iter(fake.tokens))
    raw = httpx.AsyncClient(base_url=base_url, limits=limits)
    raw_headers = {
        "Accept": "application/vnd.atlas.2024-08-05+json",
        "Authorization": f"Bearer {token}",
        "User-Agent": f"atlas-chatops/{__version__}",
    }
    raw_path = f"/api/atlas/v2/groups/{group}/clusters/{cluster}"

    async def raw_call() -> None:
        response = await raw.get(raw_path, headers=raw_headers)
        response.raise_for_status()
        response.json()

    async def client_call() -> None:
        await client.get_cluster(group, cluster)

    warmup = max(50, calls // 10)
    await _run(warmup, concurrency, raw_call)
    await _run(warmup, concurrency, client_call)
    profiler = cProfile.Profile() if profile else None
    raw_walls: list[float] = []
    client_walls: list[float] = []
    raw_latencies: list[float] = []
    client_latencies: list[float] = []
    # Interleave rounds so drift in machine load hits both sides alike.
    for _ in range(rounds):
        latencies, wall = await _run(calls, concurrency, raw_call)
        raw_latencies += latencies
        raw_walls.append(wall)
        if profiler:
            profiler.enable()
        latencies, wall = await _run(calls, concurrency, client_call)
        if profiler:
            profiler.disable()
        client_latencies += latencies
        client_walls.append(wall)

    print(f"FakeAtlas on {base_url}; {calls} calls x {rounds} round(s) each, concurrency {concurrency}")
    raw_stats = _summary("raw", raw_latencies, sum(raw_walls))
    client_stats = _summary("client", client_latencies, sum(client_walls))
    ratio = client_stats["mean"] / raw_stats["mean"]
    print(
        f"ratio client/raw: mean {ratio:.3f}x  p50 {client_stats['p50'] / raw_stats['p50']:.3f}x  "
        f"p99 {client_stats['p99'] / raw_stats['p99']:.3f}x  (target <= 1.15x)"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    assert fake.count("oauthToken") == 1, "the token must stay cached during the benchmark"
    await client.aclose()
    await raw.aclose()
    await fake.stop()
    return ratio


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", action="store_true", help="CI mode: 200 calls, one round")
    parser.add_argument("--profile", action="store_true", help="cProfile the client side")
    args = parser.parse_args()
    calls, rounds = (200, 1) if args.short else (args.calls, args.rounds)
    asyncio.run(main(calls, args.concurrency, rounds, args.profile))


if __name__ == "__main__":
    cli()
