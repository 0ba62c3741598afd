"""The load process: signs and POSTs request bodies to a Slack endpoint, and times each one.

It runs apart from the bot, the baseline and the fakes so its own CPU use never shows up inside
the process being measured. The driver (:mod:`bench.run`) talks to it over stdin/stdout, one
JSON object per line:

    job    {"url": ..., "secret": ..., "bodies": [...], "mode": "open", "rate": 200}
           {"url": ..., "secret": ..., "bodies": [...], "mode": "closed", "concurrency": 50}
    result {"results": [[sent_at, done_at, status], ...], "lag": [...], "errors": {...}}

Bodies are the exact wire bytes built with :mod:`tests.slack_requests`; they are signed here, at
send time, so the signature timestamp is fresh however long ago the driver built them. Times are
``time.monotonic()``, which on Linux is one clock for every process on the machine, so the
driver can subtract them from the fakes' arrival times.

Open loop sends request ``i`` at ``start + i / rate`` whatever happened to earlier ones (no
coordinated omission); ``lag`` says how late the generator itself was, so a figure can be
trusted only when that stays small. Closed loop keeps ``concurrency`` requests outstanding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

from tests.slack_requests import sign

# status for a request that got no HTTP answer at all (connection refused, reset, timeout)
NO_RESPONSE = -1


async def _send(
    session: aiohttp.ClientSession, url: str, secret: str, body: bytes, errors: Counter[str]
) -> tuple[float, float, int]:
    headers = sign(body, secret)
    sent_at = time.monotonic()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        errors[type(exc).__name__] += 1
        status = NO_RESPONSE
    return sent_at, time.monotonic(), status


async def _open_loop(
    session: aiohttp.ClientSession, job: dict[str, Any], bodies: list[bytes], errors: Counter[str]
) -> tuple[list[tuple[float, float, int]], list[float]]:
    rate = float(job["rate"])
    tasks: list[asyncio.Task[tuple[float, float, int]]] = []
    lag: list[float] = []
    start = time.monotonic() + 0.05
    for i, body in enumerate(bodies):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lag.append(time.monotonic() - due)
        tasks.append(asyncio.create_task(_send(session, job["url"], job["secret"], body, errors)))
    return list(await asyncio.gather(*tasks)), lag


async def _closed_loop(
    session: aiohttp.ClientSession, job: dict[str, Any], bodies: list[bytes], errors: Counter[str]
) -> list[tuple[float, float, int]]:
    results: list[tuple[float, float, int] | None] = [None] * len(bodies)
    queue = iter(range(len(bodies)))

    async def worker() -> None:
        for i in queue:
            results[i] = await _send(session, job["url"], job["secret"], bodies[i], errors)

    await asyncio.gather(*(worker() for _ in range(int(job["concurrency"]))))
    return [r for r in results if r is not None]


async def run_job(session: aiohttp.ClientSession, job: dict[str, Any]) -> dict[str, Any]:
    bodies = [b.encode("utf-8") for b in job["bodies"]]
    errors: Counter[str] = Counter()
    lag: list[float] = []
    if job["mode"] == "open":
        results, lag = await _open_loop(session, job, bodies, errors)
    else:
        results = await _closed_loop(session, job, bodies, errors)
    return {"results": results, "lag": lag, "errors": dict(errors)}


async def main() -> None:
    loop = asyncio.get_running_loop()
    # No connection cap: Slack opens as many connections as it needs, and a cap here would queue
    # requests inside the generator and hide the server's latency behind our own.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            result = await run_job(session, json.loads(line))
            sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
