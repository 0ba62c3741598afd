"""Benchmark: the CPU an Atlas write costs the bot, over httpx's own transport and over aiohttp.

The same ``AtlasClient`` (OAuth, token cached) sends the same DELETE (revoke an IdP's JWKS) to
FakeAtlas on loopback, once with the writes' pool on ``httpx.AsyncHTTPTransport`` (what the bot
used before) and once on :class:`bot.atlas._transport.AiohttpTransport` (what it uses now), in
alternating rounds so the machine's drift hits both. FakeAtlas runs on a thread of its own with its
own event loop, and the figure is the CPU of the client's thread alone (``time.thread_time``), so
the fake's work is not counted; wall time per call is printed beside it.

    python -m bench.atlas_transport_bench [--calls 500] [--concurrency 1,20] [--rounds 3] [--short]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from bot.atlas import AtlasClient, OAuthClientCredentialsAuth
from bot.atlas._transport import MAX_CONNECTIONS, AiohttpTransport, MethodSplitTransport
from tests.fakes.fake_atlas import FakeAtlas

WAYS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "httpx": lambda: httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20)
    ),
    "aiohttp": lambda: AiohttpTransport(pool="writes"),
}


class FakeAtlasThread:
    """FakeAtlas served from a thread with its own loop, so its CPU is not the client thread's."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.base_url = ""
        self.seed: dict[str, Any] = {}
        self.fake: FakeAtlas | None = None
        self._thread = threading.Thread(target=self._main, name="fake-atlas", daemon=True)

    def __enter__(self) -> FakeAtlasThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("FakeAtlas did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.fake = FakeAtlas(record_requests=False)
        self.seed = self.fake.seed_demo()
        self.base_url = await self.fake.start(host="127.0.0.1", port=0)
        self._ready.set()
        await self._stop.wait()
        await self.fake.stop()


async def _round(client: AtlasClient, fed: str, idp: str, calls: int, concurrency: int) -> tuple[float, float]:
    """CPU seconds of this thread and wall seconds for ``calls`` DELETEs at ``concurrency``."""
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            await client.revoke_identity_provider_jwks(fed, idp)

    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.thread_time() - cpu, time.perf_counter() - wall


async def main(calls: int, concurrencies: list[int], rounds: int) -> None:
    with FakeAtlasThread() as atlas:
        account = atlas.seed["serviceAccount"]
        fed, idp = atlas.seed["federationSettingsId"], atlas.seed["idps"]["oidc"]
        clients = {
            way: AtlasClient(
                auth=OAuthClientCredentialsAuth(account["clientId"], SecretStr(account["secret"])),
                base_url=atlas.base_url,
                transport=MethodSplitTransport(writes=build()),
            )
            for way, build in WAYS.items()
        }
        try:
            print(f"FakeAtlas on {atlas.base_url} (own thread); DELETE revoke JWKS; {calls} calls x {rounds} rounds")
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
        assert atlas.fake is not None and atlas.fake.count("oauthToken") == len(clients), "tokens must stay cached"


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
