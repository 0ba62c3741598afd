"""Prometheus metrics, in a registry owned by the app (not the process-global one), so tests
and several apps in one process never share counters. Labels never carry user text or secrets."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

__all__ = ["ACK_SIDE_METRICS", "Metrics"]

# Counted where Slack's requests are acked; everything else where the work runs. With the work in a
# process of its own (bot.work_process), /metrics joins the ack side's of these to the work side's
# of the rest, so each family is named once.
ACK_SIDE_METRICS = frozenset(
    {"atlas_chatops_ack_seconds", "atlas_chatops_commands_refused_busy", "atlas_chatops_answers_too_late"}
)


class _Only:
    """The families of ``registry`` on one side: the ack side's or the rest (for generate_latest)."""

    def __init__(self, registry: CollectorRegistry, *, ack_side: bool) -> None:
        self._registry, self._ack_side = registry, ack_side

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if (family.name in ACK_SIDE_METRICS) == self._ack_side:
                yield family


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "atlas_chatops_requests_total",
            "Action requests by action and outcome (requested, denied, invalid, approved, rejected, "
            "expired, succeeded, failed, unknown).",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "atlas_chatops_ack_seconds",
            "Time from receiving a Slack request to answering it, by payload kind.",
            ["kind"],
            buckets=(0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2, 3),
            registry=self.registry,
        )
        self.atlas_seconds = Histogram(
            "atlas_chatops_atlas_call_seconds",
            "Atlas action calls by action and result status.",
            ["action", "status"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=self.registry,
        )
        self.pending = Gauge(
            "atlas_chatops_pending_approvals",
            "Requests waiting for approval, as last counted by this replica's sweeper.",
            registry=self.registry,
        )
        self.executions_in_flight = Gauge(
            "atlas_chatops_executions_in_flight",
            "Approved requests this replica is executing now (what a drain waits for).",
            registry=self.registry,
        )
        self.options_seconds = Histogram(
            "atlas_chatops_picker_options_seconds",
            "Time to find the picker's target options for a block_suggestion (Slack allows 3 s).",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3),
            registry=self.registry,
        )
        self.commands_refused_busy = Counter(
            "atlas_chatops_commands_refused_busy_total",
            "Commands answered 'too busy' in the ack: the bot's work was too far behind to open a form "
            "within Slack's 3 s.",
            registry=self.registry,
        )
        self.answers_too_late = Counter(
            "atlas_chatops_answers_too_late_total",
            "Picker options or a picker's Next answered 'busy': the work they needed could not finish "
            "within 2.5 s of Slack's request.",
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "atlas_chatops_slack_errors_total",
            "Slack Web API calls that failed, by method and Slack error code.",
            ["method", "error"],
            registry=self.registry,
        )

    def render(self, *, ack_side_only: bool = False, work_side_only: bool = False) -> bytes:
        if ack_side_only or work_side_only:
            return generate_latest(_Only(self.registry, ack_side=ack_side_only))  # type: ignore[arg-type]
        return generate_latest(self.registry)
