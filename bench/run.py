"""Benchmark the bot's hot paths under load, against a bare Bolt app measured in the same run.

    python -m bench.run                      # full: SQLite and PostgreSQL, 2,000 requests per cell
    python -m bench.run --short              # CI: SQLite, a few hundred requests, under a minute
    python -m bench.run --backends sqlite --requests 500

The real bot (``python -m bot serve``), a bare Bolt ``AsyncApp`` that only acks (``bench.baseline``)
and the load generator (``bench.load``) run as separate processes; the fake Slack and fake Atlas
from the test suite run in this one (see :mod:`bench.stack`). Every figure is measured in this run
and printed as p50 / p99 / max in milliseconds. Targets are printed as PASS/MISS next to their
figure; a missed target does not change the exit code, a benchmark that could not measure (a
process died, no views.open arrived, no Atlas call was made) exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bench.phases import (
    LOADS,
    AckRow,
    BenchmarkBroken,
    BusyResult,
    ClickRow,
    Load,
    PendingListResult,
    SaturationResult,
    ack_phase,
    busy_phase,
    click_phase,
    pending_list_phase,
    progress,
    saturation,
    settle,
)
from bench.stack import running_stack
from bench.stats import ms, ratio
from tests.db import Backend, pg_reachable

# The targets, for a 2-core machine.
ACK_RATIO_MAX = 1.3
ACK_P99_MAX = 0.050
OPEN_P99_MAX = 0.250
CLICK_TO_ATLAS_P50_MAX = 0.030
BUSY_RATIO_MAX = 1.3
SATURATION_SHARE_MIN = 0.5
SATURATION_P99_LIMIT = 0.100
RSS_MAX_BYTES = 200_000_000

PHASES = ("ack", "click", "busy", "pending", "saturation")


@dataclass
class Options:
    backends: list[Backend]
    requests: int
    flow_requests: int
    click_cells: tuple[tuple[float, Load, int], ...]  # (Atlas delay, load, approvals) per figure-3 row
    busy_target: int
    busy_delay: float
    sat_step: float
    sat_seconds: float
    sat_min_requests: int
    sat_ceiling: float
    seed_pending: int
    short: bool
    bot_args: list[str] | None
    profile: str | None
    logs: Path | None
    phases: frozenset[str]


@dataclass
class BackendReport:
    backend: Backend
    seeded: int
    acks: list[AckRow] = field(default_factory=list)
    clicks: list[ClickRow] = field(default_factory=list)
    busy: BusyResult | None = None
    sat_bot: SaturationResult | None = None
    sat_baseline: SaturationResult | None = None
    pending_list: PendingListResult | None = None
    rss_start_kib: int = 0
    rss_peak_kib: int = 0
    rss_by_phase: list[tuple[str, int]] = field(default_factory=list)  # (phase, VmHWM after it)
    rss_peak_by_process: list[tuple[str, int]] = field(default_factory=list)  # (process, its own VmHWM)
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    speed_start_ms: float = 0.0
    speed_end_ms: float = 0.0
    seconds: float = 0.0
    bot_log: dict[str, int] = field(default_factory=dict)


SPEED_LOOP = 1_000_000


def machine_speed_ms() -> float:
    """Milliseconds for a fixed pure-Python loop, best of 5: the same code and interpreter take this
    much longer when the machine is slower (a busy host, a throttled CPU), which load average does not
    show. Figures from runs at different speeds are not comparable."""
    best = float("inf")
    for _ in range(5):
        started, total = time.perf_counter(), 0
        for i in range(SPEED_LOOP):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _speed(ms: float) -> str:
    return f"machine speed: {SPEED_LOOP:,} Python additions in {ms:.0f} ms (best of 5; lower is faster)"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


async def measure(backend: Backend, options: Options) -> BackendReport:
    report = BackendReport(
        backend=backend, seeded=options.seed_pending, load_start=os.getloadavg(), speed_start_ms=machine_speed_ms()
    )
    started = time.monotonic()
    progress(f"[{backend}] starting fakes, seeding {options.seed_pending} pending requests, starting bot and baseline")
    async with running_stack(
        backend, seed_pending_count=options.seed_pending, bot_command=options.bot_args, keep_logs=options.logs
    ) as stack:
        report.rss_start_kib = stack.idle_rss_kib

        def peak(phase: str) -> None:
            # VmHWM only grows: the phase after which it jumped is the one that needed the memory.
            report.rss_by_phase.append((phase, stack.bot.memory_kib("VmHWM")))

        profiler = await start_profiler(stack.bot.pid, f"{options.profile}.{backend}.txt") if options.profile else None
        # Warm-up, not measured: first requests pay for lazy imports, auth.test, the user-group
        # cache, the Atlas token and connection set-up.
        await ack_phase(stack, Load("warm-up", rate=50), 20 if options.short else 100)
        await click_phase(stack, Load("warm-up", concurrency=4), 10, atlas_delay=0)
        for load in LOADS if "ack" in options.phases else ():
            progress(f"[{backend}] ack {load.label}")
            row = await ack_phase(stack, load, options.requests)
            report.acks.append(row)
            peak(f"ack {load.label}")
            progress(f"    bot {ms(row.bot)}  baseline {ms(row.baseline)}  views.open {ms(row.opened)}")
        for delay, load, count in options.click_cells if "click" in options.phases else ():
            progress(f"[{backend}] approve click {load.label}, Atlas +{delay * 1000:.0f} ms")
            click = await click_phase(stack, load, count, atlas_delay=delay)
            report.clicks.append(click)
            peak(f"click {load.label} +{delay * 1000:.0f}ms")
            progress(f"    ack {ms(click.ack)}  -> Atlas {ms(click.to_atlas)}  -> result {ms(click.to_result)}")
        if "busy" in options.phases:
            progress(f"[{backend}] ack with {options.busy_target} slow executions in flight")
            report.busy = await busy_phase(
                stack, options.requests, target=options.busy_target, atlas_delay=options.busy_delay
            )
            peak("busy")
        if "pending" in options.phases:
            progress(f"[{backend}] /atlas pending")
            report.pending_list = await pending_list_phase(stack, 20)
            peak("/atlas pending")
        if "saturation" in options.phases:
            progress(f"[{backend}] saturation")
            search = {
                "step": options.sat_step,
                "seconds": options.sat_seconds,
                "min_requests": options.sat_min_requests,
                "limit": SATURATION_P99_LIMIT,
                "ceiling": options.sat_ceiling,
            }
            report.sat_baseline = await saturation(stack, stack.baseline, **search)
            report.sat_bot = await saturation(stack, stack.bot, **search)
            await settle(stack)
            peak("saturation")
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        # VmHWM is the process's peak resident set over its whole life, i.e. over every phase above.
        report.rss_peak_kib = stack.bot.memory_kib("VmHWM")
        report.rss_peak_by_process = stack.bot.memory_kib_by_process("VmHWM")
        report.bot_log = dict(stack.bot.warnings())
    report.load_end = os.getloadavg()
    report.speed_end_ms = machine_speed_ms()
    report.seconds = time.monotonic() - started
    return report


async def start_profiler(pid: int, path: str) -> asyncio.subprocess.Process:
    """py-spy sampling the bot for the whole run (only threads holding the GIL: CPU, not waits),
    as collapsed stacks. py-spy is not a dependency: ``pip install py-spy`` (or the bench extra)."""
    progress(f"profiling the bot (pid {pid}) with py-spy into {path}")
    return await asyncio.create_subprocess_exec(
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--subprocesses",  # the work process too (bot.work_process)
        "--gil",
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        path,
        stdout=asyncio.subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------------------- the report


def _mb(kib: int) -> str:
    return f"{kib * 1024 / 1e6:.0f} MB"


def render(report: BackendReport, options: Options) -> list[str]:
    name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[report.backend]
    out = [
        "",
        f"=== {name}: {report.seeded:,} pending requests seeded; {options.requests:,} requests per ack cell, "
        f"{options.flow_requests:,} per click cell (5/s reference: its own count)",
        f"    load average at start {_load(report.load_start)}; {_speed(report.speed_start_ms)}",
    ]
    if report.acks:
        out += _render_acks(report.acks) + _render_opens(report.acks)
    if report.clicks:
        out += _render_clicks(report.clicks)
    if report.busy is not None:
        out += _render_busy(report.busy)
    out += _render_capacity(report, options)
    out += [
        "",
        f"   {name} took {report.seconds:.0f} s; load average at end {_load(report.load_end)}; "
        f"{_speed(report.speed_end_ms)}",
    ]
    if report.bot_log:
        out.append("   bot WARNING/ERROR log lines (by logger and first words):")
        for line, n in sorted(report.bot_log.items(), key=lambda kv: -kv[1])[:10]:
            out.append(f"     {n:>6} x {line}")
    return out


W = 29  # one "p50 / p99 / max" column


def _render_acks(rows: list[AckRow]) -> list[str]:
    out = [
        "",
        "1. ack latency of /atlas revoke-jwks, request sent -> HTTP 200 (ms, p50 / p99 / max)",
        f"   {'load':<12}{'bot':<{W}}{'baseline (bare Bolt)':<{W}}{'bot/baseline':<21}"
        f"{'non-200':<9}{'CPU ms/cmd':<12}gen. lag p99",
    ]
    for row in rows:
        out.append(
            f"   {row.load.label:<12}{ms(row.bot):<{W}}{ms(row.baseline):<{W}}{ratio(row.bot, row.baseline):<21}"
            f"{f'{row.bot_errors}/{row.baseline_errors}':<9}{f'{row.bot_cpu_ms:.1f}/{row.baseline_cpu_ms:.1f}':<12}"
            f"{row.lag_p99_ms:.1f} ms"
        )
    t1 = next((r for r in rows if r.load.rate == 200), None)
    if t1 is not None and t1.bot is not None and t1.baseline is not None:
        ok = t1.bot.p99 <= ACK_RATIO_MAX * t1.baseline.p99 and t1.bot.p99 < ACK_P99_MAX
        out.append(
            f"   target at 200/s: bot p99 {t1.bot.p99 * 1000:.1f} ms = {t1.bot.p99 / t1.baseline.p99:.2f}x baseline; "
            f"needs <= {ACK_RATIO_MAX}x and < {ACK_P99_MAX * 1000:.0f} ms  [{verdict(ok)}]"
        )
    return out


def _render_opens(rows: list[AckRow]) -> list[str]:
    out = [
        "",
        "2. command sent -> views.open arriving at the fake Slack, the trigger_id window (ms)",
        f"   {'load':<12}{'p50 / p99 / max':<{W}}{'missing':<9}{'> 3 s':<7}target p99 < {OPEN_P99_MAX * 1000:.0f} ms",
    ]
    for row in rows:
        ok = row.opened is not None and row.opened.p99 < OPEN_P99_MAX and row.not_opened == 0
        out.append(f"   {row.load.label:<12}{ms(row.opened):<{W}}{row.not_opened:<9}{row.late_opens:<7}[{verdict(ok)}]")
    return out


def _render_clicks(rows: list[ClickRow]) -> list[str]:
    out = [
        "",
        "3. Approve click sent -> the Atlas DELETE arrives / -> the result is posted in the thread (ms)",
        f"   {'Atlas':<9}{'load':<12}{'click ack':<{W}}{'-> Atlas DELETE':<{W}}{'-> result in thread':<{W}}"
        f"{'lost/failed/left':<17}{'CPU ms/click':<13}target p50 < {CLICK_TO_ATLAS_P50_MAX * 1000:.0f} ms",
    ]
    for c in rows:
        atlas = "instant" if not c.atlas_delay else f"+{c.atlas_delay * 1000:.0f} ms"
        target = ""
        if not c.atlas_delay:
            target = f"[{verdict(c.to_atlas is not None and c.to_atlas.p50 < CLICK_TO_ATLAS_P50_MAX)}]"
        out.append(
            f"   {atlas:<9}{c.load.label:<12}{ms(c.ack):<{W}}{ms(c.to_atlas):<{W}}{ms(c.to_result):<{W}}"
            f"{f'{c.errors + c.no_result}/{c.failed}/{c.left}':<17}{c.bot_cpu_ms:<13.1f}{target}"
        )
    out += [
        "   A slow Atlas is slow on every API request: the preview reads the bot repeats before executing "
        "(two at once), then the DELETE.",
        "   lost: no HTTP 200, or no result in the thread within 120 s of the last click (or 30 s without any); "
        "failed: not success;",
        "   left: approvals still unexecuted then, cancelled in the database so they cannot run under later cells",
    ]
    return out


def _render_busy(busy: BusyResult) -> list[str]:
    ok = busy.idle is not None and busy.busy is not None and busy.busy.p99 <= BUSY_RATIO_MAX * busy.idle.p99
    rel = f"{busy.busy.p99 / busy.idle.p99:.2f}x" if busy.busy and busy.idle else "-"
    return [
        "",
        f"4. ack latency at {busy.load.label} while {busy.target} executions are in flight against a fake Atlas "
        f"taking {busy.atlas_delay:.0f} s per request (ms)",
        f"   {'idle':<12}{ms(busy.idle)}",
        f"   {'busy':<12}{ms(busy.busy):<{W}}p99 {rel} idle; target <= {BUSY_RATIO_MAX}x  [{verdict(ok)}]",
        f"   executions in flight while measuring (min/median/max) {'/'.join(map(str, busy.executions))}; "
        f"requests open at Atlas {'/'.join(map(str, busy.atlas_requests))}; executions finished "
        f"{busy.finished} ({busy.failed} not succeeded); non-200 acks {busy.errors}",
    ]


def _render_capacity(report: BackendReport, options: Options) -> list[str]:
    out = [
        "",
        f"5. saturation: highest open-loop rate with ack p99 < {SATURATION_P99_LIMIT * 1000:.0f} ms "
        f"(from {options.sat_step:.0f}/s up, {options.sat_seconds:g} s and >= {options.sat_min_requests} "
        "requests per step)",
    ]
    for sat in (report.sat_bot, report.sat_baseline):
        if sat is None:
            continue
        best = f"{sat.best:.0f}/s" if sat.best is not None else "none"
        out.append(f"   {sat.name:<9}{best:>7}   stopped: {sat.stopped_by}")
        steps = [f"{s.rate:.0f}:{s.ack.p99 * 1000:.0f}" if s.ack else f"{s.rate:.0f}:-" for s in sat.steps]
        for i in range(0, len(steps), 12):
            out.append(f"   {'':<16}{'rate/s:ack p99 ms ' if i == 0 else '':<19}{'  '.join(steps[i : i + 12])}")
        if any(s.opened for s in sat.steps):
            opens = [f"{s.rate:.0f}:{s.opened.p99 * 1000:.0f}" if s.opened else f"{s.rate:.0f}:-" for s in sat.steps]
            for i in range(0, len(opens), 12):
                out.append(f"   {'':<16}{'views.open p99 ms ' if i == 0 else '':<19}{'  '.join(opens[i : i + 12])}")
            # The ack-only figure above says nothing of the forms: this one does.
            in_time = [f"{s.rate:.0f}:{100 * s.in_time / s.count:.0f}" for s in sat.steps if s.count]
            for i in range(0, len(in_time), 12):
                label = "% forms in 3 s " if i == 0 else ""
                out.append(f"   {'':<16}{label:<19}{'  '.join(in_time[i : i + 12])}")
            all_in_time = [s.rate for s in sat.steps if s.count and s.in_time == s.count]
            out.append(
                f"   {'':<16}highest rate with every form opened within 3 s: "
                f"{f'{max(all_in_time):.0f}/s' if all_in_time else 'none'} (commands refused as busy get no form)"
            )
    if report.sat_bot is not None and report.sat_baseline is not None:
        bot_best = report.sat_bot.best or 0.0
        base_best = report.sat_baseline.best or 0.0
        ok = base_best > 0 and bot_best >= SATURATION_SHARE_MIN * base_best
        share = f"{bot_best / base_best:.2f}" if base_best else "-"
        out.append(f"   target bot >= {SATURATION_SHARE_MIN}x baseline: {share}x  [{verdict(ok)}]")
    ok = report.rss_peak_kib * 1024 < RSS_MAX_BYTES
    out.append(
        f"   peak RSS of the bot (VmHWM, whole run) {_mb(report.rss_peak_kib)} with {report.seeded:,} pending "
        f"requests in the database ({_mb(report.rss_start_kib)} right after start); "
        f"target < {RSS_MAX_BYTES / 1e6:.0f} MB  [{verdict(ok)}]"
    )
    if report.rss_peak_by_process:
        each = " | ".join(f"{name} {_mb(kib)}" for name, kib in report.rss_peak_by_process)
        out.append(f"   {'VmHWM by process: ':<18}{each}")
    by_phase = [f"{phase} {kib * 1024 / 1e6:.0f}" for phase, kib in report.rss_by_phase]
    for i in range(0, len(by_phase), 6):
        out.append(f"   {'VmHWM MB after: ' if i == 0 else '':<18}{' | '.join(by_phase[i : i + 6])}")
    if report.pending_list is not None:
        pl = report.pending_list
        out.append(
            f"   /atlas pending in a channel holding {report.seeded // 40:,} of them (closed c=1): "
            f"ack {ms(pl.ack).strip()} ms, replies {pl.replies}/{pl.sent}"
        )
    return out


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


# ---------------------------------------------------------------------------------- command line


def _click_cells(short: bool, count: int) -> tuple[tuple[float, Load, int], ...]:
    if short:
        # Short mode only proves every kind of measurement still works: one load per Atlas speed.
        return ((0.0, LOADS[0], count), (0.5, LOADS[0], count))
    # Every load at each Atlas speed, and a light 5/s reference: an approval costs the bot far more
    # than a command, so at 50/s it already queues; 5/s shows the latency of the path itself.
    reference = (0.0, Load("open   5/s", rate=5), max(100, count // 10))
    return (reference, *((d, load, count) for d in (0.0, 0.5) for load in LOADS))


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI mode: SQLite, a few hundred requests, < 60 s")
    parser.add_argument("--backends", help="comma-separated: sqlite,postgresql (default: both; --short: sqlite)")
    parser.add_argument("--requests", type=int, help="requests per ack cell (default 2000; --short 100)")
    parser.add_argument("--flow-requests", type=int, help="approvals per click cell (default --requests; --short 30)")
    parser.add_argument("--busy-target", type=int, help="executions kept in flight for figure 4 (default 200)")
    parser.add_argument("--sat-step", type=float, help="saturation step in commands/s (default 50)")
    parser.add_argument("--sat-seconds", type=float, help="seconds per saturation step (default 5, >= 500 requests)")
    parser.add_argument("--seed-pending", type=int, default=10_000, help="pending requests seeded (default 10000)")
    parser.add_argument(
        "--bot-args", help="how to start the bot, after the interpreter (default: '-m bot serve'); for A/B runs"
    )
    parser.add_argument("--profile", metavar="PREFIX", help="record the bot with py-spy into PREFIX.<backend>.txt")
    parser.add_argument("--logs", type=Path, metavar="DIR", help="keep the bot's and the baseline's logs in DIR")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all), e.g. to repeat one figure after a change",
    )
    args = parser.parse_args(argv)
    short = bool(args.short)
    backends = args.backends or ("sqlite" if short else "sqlite,postgresql")
    requests = args.requests or (100 if short else 2000)
    flow_requests = args.flow_requests or (30 if short else requests)
    return Options(
        backends=[cast(Backend, b.strip()) for b in backends.split(",") if b.strip()],
        requests=requests,
        flow_requests=flow_requests,
        click_cells=_click_cells(short, flow_requests),
        busy_target=args.busy_target or (20 if short else 200),
        busy_delay=1.0 if short else 2.0,
        sat_step=args.sat_step or (200.0 if short else 50.0),
        sat_seconds=args.sat_seconds or (1.0 if short else 5.0),
        sat_min_requests=50 if short else 500,
        sat_ceiling=400.0 if short else 5000.0,
        seed_pending=args.seed_pending,
        short=short,
        bot_args=shlex.split(args.bot_args) if args.bot_args else None,
        profile=args.profile,
        logs=args.logs,
        phases=frozenset(p.strip() for p in args.phases.split(",") if p.strip()),
    )


def code_version() -> str:
    """The commit measured, and whether bot/ or commands/ differ from it (figures belong to a tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot", "commands"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"commit {head}" + (f" + {len(dirty)} changed file(s) in bot/ and commands/" if dirty else "")


async def amain(options: Options) -> int:
    for backend in options.backends:
        if backend not in ("sqlite", "postgresql"):
            print(f"bench: unknown backend {backend!r}", file=sys.stderr)
            return 2
    if unknown := options.phases - set(PHASES):
        print(f"bench: unknown phase(s) {', '.join(sorted(unknown))}; choose from {', '.join(PHASES)}", file=sys.stderr)
        return 2
    if "postgresql" in options.backends and (why := await pg_reachable()) is not None:
        print(f"bench: PostgreSQL is not reachable ({why}); use --backends sqlite", file=sys.stderr)
        return 2
    header = [
        f"atlas-chatops benchmark, {'short' if options.short else 'full'} mode, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
        f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"code: {code_version()}",
    ]
    print("\n".join(header), flush=True)
    for backend in options.backends:
        try:
            report = await measure(backend, options)
        except BenchmarkBroken as exc:
            print(f"bench: BROKEN on {backend}: {exc}", file=sys.stderr)
            return 1
        print("\n".join(render(report, options)), flush=True)
    return 0


async def guarded(options: Options) -> int:
    """SIGTERM (a CI timeout) or SIGINT cancel the run, so the child processes are stopped and the
    PostgreSQL database is dropped on the way out instead of being left behind."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await amain(options)
    except asyncio.CancelledError:
        print("bench: interrupted; child processes stopped and the database dropped", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(guarded(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
