"""The measurements. Each phase drives one kind of traffic and returns only measured values.

Timing sources: the load process stamps when it sent each request and when the answer arrived;
the fake Slack stamps each Web API call on arrival; the fake Atlas stamps each API request on
arrival. All are ``time.monotonic()`` on one machine, so differences across processes are valid.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.flows import Pending, click_bodies, command_bodies, create_pending, slack_client
from bench.stack import APPROVERS, SEED_CHANNELS, LoadResult, ServerProcess, Stack
from bench.stats import Summary
from bot.views import APPROVE_ACTION_ID
from tests.slack_requests import slash_command

__all__ = [
    "LOADS",
    "AckRow",
    "BenchmarkBroken",
    "BusyResult",
    "ClickRow",
    "Load",
    "SaturationResult",
    "ack_phase",
    "busy_phase",
    "click_phase",
    "pending_list_phase",
    "progress",
    "saturation",
    "settle",
]

# A slow Atlas (figures 3 and 4) is slow on every API request, reads and the action alike, the way
# a struggling Atlas is; /api/oauth/* stays fast (the bot caches its token anyway).
ATLAS_API_PATH = r"^/api/atlas/"
TRIGGER_ID_SECONDS = 3.0  # Slack's lifetime of a trigger_id: a form opened later never shows


class BenchmarkBroken(RuntimeError):
    """The benchmark could not measure what it set out to (never raised for a missed target)."""


_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"  [{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Load:
    label: str
    rate: float | None = None
    concurrency: int | None = None


LOADS = (
    Load("open  50/s", rate=50),
    Load("open 200/s", rate=200),
    Load("closed c=1", concurrency=1),
    Load("closed c=50", concurrency=50),
)


async def _send(stack: Stack, server: ServerProcess, bodies: list[bytes], load: Load) -> LoadResult:
    return await stack.load.run(f"{server.url}/slack/events", bodies, rate=load.rate, concurrency=load.concurrency)


async def settle(stack: Stack, *, timeout: float = 300.0) -> None:
    """Wait until the bot has finished the work its last requests started (it goes CPU-quiet and
    no Atlas request is open), so one phase's backlog never lands in the next one's figures."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        before = stack.bot.cpu_seconds()
        await asyncio.sleep(0.3)
        # At most one clock tick (10 ms) in 300 ms: a bot with nothing left to do but its timers.
        if stack.bot.cpu_seconds() - before <= 0.011 and stack.atlas.in_flight == 0:
            quiet += 1
            if quiet >= 2:
                return
        else:
            quiet = 0
    progress(f"bot still busy after {timeout:.0f} s; continuing")


async def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# How long after the last click a result still counts. An overloaded bot leaves approvals to its
# sweeper, which starts a few per pass: those trickle in for many minutes, long after anyone watching
# the channel gave up, so they are counted as lost instead of being waited for.
RESULT_WINDOW_SECONDS = 120.0


async def _await_results(stack: Stack, expected: set[str], *, last_sent: float, stall: float = 30.0) -> float:
    """Wait for a result post in every expected thread, until none has come for ``stall`` seconds, or
    until :data:`RESULT_WINDOW_SECONDS` after the last click, whichever comes first; returns that
    moment, the cut-off after which anything that still arrives counts as lost."""
    deadline = last_sent + RESULT_WINDOW_SECONDS
    seen, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        got = len(expected & stack.watch.results.keys())
        if got == len(expected):
            break
        if got != seen:
            seen, changed = got, time.monotonic()
        elif time.monotonic() - changed > stall:
            break
        await asyncio.sleep(0.2)
    return time.monotonic()


def _p99_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1] * 1000 if ordered else 0.0


# ---------------------------------------------------------------------------------- figures 1 and 2


@dataclass
class AckRow:
    load: Load
    sent: int
    bot: Summary | None
    baseline: Summary | None
    opened: Summary | None  # command sent -> views.open at the fake Slack
    bot_errors: int
    baseline_errors: int
    not_opened: int
    late_opens: int  # views.open later than Slack's 3 s trigger_id lifetime
    bot_cpu_ms: float  # bot CPU per command, including everything the command started after the ack
    baseline_cpu_ms: float
    lag_p99_ms: float  # how late the open-loop generator itself was


async def ack_phase(stack: Stack, load: Load, count: int) -> AckRow:
    stack.reset_observations()
    bodies, triggers = command_bodies(stack, count, tag="ack")
    cpu = stack.bot.cpu_seconds()
    bot = await _send(stack, stack.bot, bodies, load)
    # Let the views.open calls and preview reads these commands started finish before the baseline
    # runs, so the baseline never shares the machine with the bot's backlog.
    await settle(stack)
    bot_cpu = stack.bot.cpu_seconds() - cpu
    opened = [stack.watch.opened[t] - bot.sent[i] for i, t in enumerate(triggers) if t in stack.watch.opened]
    if not opened:
        raise BenchmarkBroken(
            f"no views.open arrived for {count} commands ({load.label}); Slack saw {dict(stack.watch.counts)}, "
            f"failures {dict(stack.watch.failures)}"
        )
    base_bodies, _ = command_bodies(stack, count, tag="base")
    cpu = stack.baseline.cpu_seconds()
    base = await _send(stack, stack.baseline, base_bodies, load)
    base_cpu = stack.baseline.cpu_seconds() - cpu
    return AckRow(
        load=load,
        sent=count,
        bot=Summary.of(bot.latencies()),
        baseline=Summary.of(base.latencies()),
        opened=Summary.of(opened),
        bot_errors=count - len(bot.ok),
        baseline_errors=count - len(base.ok),
        not_opened=count - len(opened),
        late_opens=sum(1 for o in opened if o > TRIGGER_ID_SECONDS),
        bot_cpu_ms=bot_cpu / count * 1000,
        baseline_cpu_ms=base_cpu / count * 1000,
        lag_p99_ms=_p99_ms(bot.lag + base.lag),
    )


# ---------------------------------------------------------------------------------- figure 3


@dataclass
class ClickRow:
    load: Load
    atlas_delay: float
    sent: int
    ack: Summary | None
    to_atlas: Summary | None  # click sent -> the action's DELETE arrives at the fake Atlas
    to_result: Summary | None  # click sent -> the result is posted in the request's thread
    errors: int
    no_atlas: int
    no_result: int
    failed: int  # results saying the action did not succeed
    left: int  # approvals the bot had not acted on when results stopped coming (cancelled afterwards)
    bot_cpu_ms: float


def _delete_arrivals(stack: Stack) -> dict[str, float]:
    """IdP id -> arrival of its revoke-jwks DELETE (…/identityProviders/{idp}/jwks)."""
    return {
        a.path.rsplit("/", 2)[1]: a.arrived
        for a in stack.atlas.arrivals
        if a.method == "DELETE" and a.path.endswith("/jwks")
    }


async def click_phase(stack: Stack, load: Load, count: int, *, atlas_delay: float) -> ClickRow:
    stack.reset_observations()
    pending = await create_pending(stack, count)
    await settle(stack)
    stack.atlas.arrivals.clear()
    stack.watch.results.clear()
    if atlas_delay:
        stack.atlas.delay("*", ATLAS_API_PATH, atlas_delay, times=count * 8)
    bodies = click_bodies(stack, pending)
    cpu = stack.bot.cpu_seconds()
    clicks = await _send(stack, stack.bot, bodies, load)
    accepted = {p.message_ts for i, p in enumerate(pending) if clicks.status[i] == 200}
    cutoff = await _await_results(stack, accepted, last_sent=max(clicks.sent))
    await settle(stack)
    bot_cpu = stack.bot.cpu_seconds() - cpu
    left = await stack.cancel_leftovers([p.request_id for p in pending])
    deletes = {idp: t for idp, t in _delete_arrivals(stack).items() if t <= cutoff}
    if not deletes:
        raise BenchmarkBroken(f"no Atlas DELETE arrived for {count} approvals ({load.label})")
    results = {ts: r for ts, r in stack.watch.results.items() if r[0] <= cutoff}
    to_atlas, to_result = [], []
    for i, p in enumerate(pending):
        if p.idp_id in deletes:
            to_atlas.append(deletes[p.idp_id] - clicks.sent[i])
        if p.message_ts in results:
            to_result.append(results[p.message_ts][0] - clicks.sent[i])
    return ClickRow(
        load=load,
        atlas_delay=atlas_delay,
        sent=count,
        ack=Summary.of(clicks.latencies()),
        to_atlas=Summary.of(to_atlas),
        to_result=Summary.of(to_result),
        errors=count - len(clicks.ok),
        no_atlas=count - len(to_atlas),
        no_result=count - len(to_result),
        failed=sum(1 for p in pending if p.message_ts in results and not results[p.message_ts][1]),
        left=left,
        bot_cpu_ms=bot_cpu / count * 1000,
    )


# ---------------------------------------------------------------------------------- figure 4


@dataclass
class BusyResult:
    load: Load
    target: int
    atlas_delay: float
    idle: Summary | None
    busy: Summary | None
    errors: int
    executions: tuple[int, int, int]  # executions in flight while measuring: min, median, max
    atlas_requests: tuple[int, int, int]  # requests open at the fake Atlas: min, median, max
    finished: int
    failed: int


def _spread(samples: list[int]) -> tuple[int, int, int]:
    if not samples:
        return 0, 0, 0
    return min(samples), int(statistics.median(samples)), max(samples)


async def busy_phase(stack: Stack, count: int, *, target: int, atlas_delay: float, rate: float = 50.0) -> BusyResult:
    """Ack latency at ``rate`` commands/s, first idle, then with ``target`` executions kept in flight
    against an Atlas that takes ``atlas_delay`` seconds for every API request."""
    load = Load(f"open {rate:.0f}/s", rate=rate)
    stack.reset_observations()
    bodies, _ = command_bodies(stack, count, tag="idle")
    idle = await _send(stack, stack.bot, bodies, load)
    await settle(stack)

    # Each execution reads the target again (two reads at once; the organisation names are cached),
    # makes its one action call, then reads the target back: 3 slow round trips. The estimate below
    # still counts 4 (from when the reads ran one after another), which only makes fewer pending
    # requests; the run prints how many executions really stayed in flight. Enough of them to
    # replace every finished execution for the whole window, plus the ramp-up and some slack.
    window = count / rate
    per_execution = 4 * atlas_delay
    supply = target + math.ceil((window + 2 * per_execution) * target / per_execution)
    progress(f"busy: making {supply} pending requests to keep {target} executions in flight")
    pending = await create_pending(stack, supply)
    await settle(stack)
    stack.watch.results.clear()
    stack.atlas.arrivals.clear()
    stack.atlas.delay("*", ATLAS_API_PATH, atlas_delay, times=supply * 8 + count * 6)

    # Clicks that keep the executions topped up come from this process: they are the background,
    # not what is measured; the measured commands come from the load process as everywhere else.
    client = slack_client(stack)
    queue = iter(pending)
    clicked: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()
    refilling = True

    async def click(p: Pending, approver: str) -> None:
        await client.click(
            user_id=approver,
            channel_id=p.channel_id,
            message_ts=p.message_ts,
            action_id=APPROVE_ACTION_ID,
            value=p.request_id,
            response_url=stack.slack.response_url(channel_id=p.channel_id),
        )

    def launch() -> None:
        p = next(queue, None)
        if p is None:
            return
        clicked.add(p.message_ts)
        task = asyncio.get_running_loop().create_task(click(p, APPROVERS[len(clicked) % len(APPROVERS)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_result(thread_ts: str) -> None:
        if refilling and thread_ts in clicked:
            launch()

    def executing() -> int:
        return len(clicked) - len(clicked & stack.watch.results.keys())

    stack.watch.on_result = on_result
    try:
        for _ in range(target):
            launch()
        # In flight for real once the slow reads of every execution are open at the fake Atlas.
        await _wait_for(lambda: stack.atlas.in_flight >= target * 0.9, timeout=30)
        in_flight: list[int] = []
        atlas_open: list[int] = []

        async def sample() -> None:
            while True:
                in_flight.append(executing())
                atlas_open.append(stack.atlas.in_flight)
                await asyncio.sleep(0.1)

        sampler = asyncio.get_running_loop().create_task(sample())
        bodies, _ = command_bodies(stack, count, tag="busy")
        busy = await _send(stack, stack.bot, bodies, load)
        sampler.cancel()
    finally:
        refilling = False
        stack.watch.on_result = None
        stack.atlas.clear_faults()
    await _await_results(stack, clicked, last_sent=time.monotonic())
    await settle(stack)
    # The supply not clicked in time stays pending; it must not swell the seeded pending count.
    await stack.cancel_leftovers([p.request_id for p in pending])
    results = stack.watch.results
    return BusyResult(
        load=load,
        target=target,
        atlas_delay=atlas_delay,
        idle=Summary.of(idle.latencies()),
        busy=Summary.of(busy.latencies()),
        errors=2 * count - len(idle.ok) - len(busy.ok),
        executions=_spread(in_flight),
        atlas_requests=_spread(atlas_open),
        finished=sum(1 for ts in clicked if ts in results),
        failed=sum(1 for ts in clicked if ts in results and not results[ts][1]),
    )


# ---------------------------------------------------------------------------------- figure 5


@dataclass
class SaturationStep:
    rate: float
    achieved: float  # requests per second the generator actually sent
    ack: Summary | None
    errors: int
    opened: Summary | None  # the bot only: command sent -> views.open
    in_time: int  # the bot only: commands whose form opened within Slack's 3 s trigger_id lifetime
    count: int


@dataclass
class SaturationResult:
    name: str
    best: float | None  # highest rate whose ack p99 stayed under the limit
    steps: list[SaturationStep]
    stopped_by: str


def next_rate(rate: float, step: float) -> float:
    """Fine steps where bots saturate, coarser ones beyond, so a fast baseline is found in minutes."""
    if rate < 10 * step:
        return rate + step
    if rate < 20 * step:
        return rate + 2 * step
    return rate + 5 * step


async def saturation(
    stack: Stack,
    server: ServerProcess,
    *,
    step: float,
    seconds: float,
    min_requests: int,
    limit: float,
    ceiling: float,
) -> SaturationResult:
    """Open-loop arrival rates from ``step`` upwards until ack p99 reaches ``limit`` or requests fail.

    Each step offers ``rate * seconds`` commands (at least ``min_requests``), long enough for a
    backlog to show: below saturation the p99 stays flat, past it the queue grows for the whole step.
    """
    steps: list[SaturationStep] = []
    best: float | None = None
    rate = step
    stopped_by = f"reached the {ceiling:.0f}/s ceiling of this run"
    while rate <= ceiling:
        stack.reset_observations()
        count = max(min_requests, int(rate * seconds))
        bodies, triggers = command_bodies(stack, count, tag=f"sat-{server.name}")
        result = await _send(stack, server, bodies, Load(f"{rate:.0f}/s", rate=rate))
        if server is stack.bot:
            await settle(stack)
        span = max(result.sent) - min(result.sent)
        ack = Summary.of(result.latencies())
        waits = [stack.watch.opened[t] - result.sent[i] for i, t in enumerate(triggers) if t in stack.watch.opened]
        opened = Summary.of(waits)
        steps.append(
            SaturationStep(
                rate=rate,
                achieved=(count - 1) / span if span > 0 else 0.0,
                ack=ack,
                errors=count - len(result.ok),
                opened=opened,
                in_time=sum(1 for w in waits if w <= TRIGGER_ID_SECONDS),
                count=count,
            )
        )
        progress(f"saturation {server.name} {rate:.0f}/s: p99 {ack.p99 * 1000 if ack else float('nan'):.1f} ms")
        if ack is None or steps[-1].errors:
            stopped_by = f"requests failed at {rate:.0f}/s"
            break
        if ack.p99 >= limit:
            stopped_by = f"p99 {ack.p99 * 1000:.0f} ms at {rate:.0f}/s"
            break
        if steps[-1].achieved < 0.9 * rate:
            # The generator could not send this fast; a pass here would claim a rate never offered.
            stopped_by = f"load generator topped out at {steps[-1].achieved:.0f}/s"
            break
        best = rate
        rate = next_rate(rate, step)
    return SaturationResult(name=server.name, best=best, steps=steps, stopped_by=stopped_by)


# ---------------------------------------------------------------------------------- /atlas pending


@dataclass
class PendingListResult:
    sent: int
    ack: Summary | None
    replies: int


async def pending_list_phase(stack: Stack, count: int) -> PendingListResult:
    """``/atlas pending`` in a channel holding its share of the seeded pending requests, by an
    approver: it reads pending requests from the database and renders them."""
    stack.reset_observations()
    bodies = [
        slash_command(
            "pending",
            user_id=APPROVERS[i % len(APPROVERS)],
            channel_id=SEED_CHANNELS[0],
            response_url=stack.slack.response_url(channel_id=SEED_CHANNELS[0]),
        )
        for i in range(count)
    ]
    result = await _send(stack, stack.bot, bodies, Load("closed c=1", concurrency=1))
    await _wait_for(lambda: len(stack.slack.response_url_posts) >= count, timeout=30)
    await settle(stack)
    replies = len(stack.slack.response_url_posts)
    return PendingListResult(sent=count, ack=Summary.of(result.latencies()), replies=replies)
