"""Benchmark: the CPU an Atlas write costs the bot, over httpx's own transport and over aiohttp.

The same ``AtlasClient`` (OAuth, token cached) sends the same DELETE (revoke an IdP's JWKS) to
FakeAtlas on loopback, once with the writes' pool on ``httpx.AsyncHTTPTransport`` (what the bot
used before) and once on :class:`bot.atlas._transport.AiohttpTransport` (what it uses now), in
alternating rounds so the machine's drift hits both. FakeAtlas runs on a :class:`bot.work_loop.WorkLoop`
thread (its own event loop), and the figure is the CPU of the client's thread alone
(``time.thread_time``), so the fake's work is not counted; wall time per call is printed beside it.

    python -m bench.atlas_transport_bench [--calls 500] [--concurrency 1,20] [--rounds 3] [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from bot.atlas import AtlasClient, OAuthClientCredentialsAuth
from bot.atlas._transport import MAX_CONNECTIONS, AiohttpTransport, MethodSplitTransport
from bot.work_loop import WorkLoop
from tests.fakes.fake_atlas import FakeAtlas

WAYS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpx": lambda: httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20)
    ),
    "aiohttp": lambda: AiohttpTransport(pool="writes"),
}


async def _round(client: AtlasClient, fed: str, idp: str, calls: int, concurrency: int) -> tuple[float, float]:
    """CPU seconds of this thread and wall seconds for ``calls`` DELETEs at ``concurrency``."""
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            await client.revoke_identity_provider_jwks(fed, idp)

    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.thread_time() - cpu, time.perf_counter() - wall


async def _start_fake() -> tuple[FakeAtlas, dict[str, Any], str]:
    fake = FakeAtlas(record_requests=False)
    seed = fake.seed_demo()
    return fake, seed, await fake.start(host="127.0.0.1", port=0)


async def main(calls: int, concurrencies: list[int], rounds: int) -> None:
    atlas = WorkLoop.start_thread(asyncio.new_event_loop)
    fake, seed, base_url = await atlas.call(_start_fake())
    try:
        await _measure(seed, base_url, calls, concurrencies, rounds)
        assert fake.count("oauthToken") == len(WAYS), "tokens must stay cached"
    finally:
        await atlas.call(fake.stop())
        atlas.stop()


async def _measure(seed: dict[str, Any], base_url: str, calls: int, concurrencies: list[int], rounds: int) -> None:
    account = seed["serviceAccount"]
    fed, idp = seed["federationSettingsId"], seed["idps"]["oidc"]
    clients = {
        way: AtlasClient(
            auth=OAuthClientCredentialsAuth(account["clientId"], SecretStr(account["secret"])),
            base_url=base_url,
            transport=MethodSplitTransport(writes=build()),
        )
        for way, build in WAYS.items()
    }
    try:
        print(f"FakeAtlas on {base_url} (own thread); DELETE revoke JWKS; {calls} calls x {rounds} rounds")
        print("CPU of the client's thread per call, median of the rounds (wall per call after the slash)")
        for concurrency in concurrencies:
            for client in clients.values():
                await _round(client, fed, idp, max(20, calls // 10), concurrency)  # warm: token, pool
            cpu: dict[str, list[float]] = {way: [] for way in clients}
            wall: dict[str, list[float]] = {way: [] for way in clients}
            for number in range(rounds):
                order = list(clients) if number % 2 == 0 else list(reversed(clients))
                for way in order:
                    spent, took = await _round(clients[way], fed, idp, calls, concurrency)
                    cpu[way].append(spent / calls * 1000)
                    wall[way].append(took / calls * 1000)
            medians = {way: (statistics.median(cpu[way]), statistics.median(wall[way])) for way in clients}
            cells = "   ".join(f"{way} {spent:.3f} / {took:.3f} ms" for way, (spent, took) in medians.items())
            ratio = medians["aiohttp"][0] / medians["httpx"][0]
            print(f"  concurrency {concurrency:>3}:   {cells}   CPU aiohttp/httpx {ratio:.2f}x")
    finally:
        for client in clients.values():
            await client.aclose()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", default="1,20", help="comma-separated (default 1,20)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", action="store_true", help="CI mode: 50 calls, 2 rounds, concurrency 20")
    args = parser.parse_args()
    if args.short:
        asyncio.run(main(50, [20], 2))
    else:
        asyncio.run(main(args.calls, [int(c) for c in args.concurrency.split(",")], args.rounds))


if __name__ == "__main__":
    cli()
