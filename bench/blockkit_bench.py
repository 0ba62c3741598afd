"""Benchmark: the CPU of turning the bot's views and messages into the Web API's dicts, with
slack_sdk's own ``to_dict`` and with :mod:`bot.slack.blockkit`, in alternating rounds so the
machine's drift hits both. Each figure is this thread's CPU (``time.thread_time``) per object,
the median over the rounds; the dicts are checked equal before anything is timed.

    python -m bench.blockkit_bench [--calls 2000] [--rounds 5] [--short]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bot.preview import Fact, Preview
from bot.requests import RequestState
from bot.slack.blockkit import block_dicts, view_dict
from bot.views import approval_message, confirm_modal, plain_message
from commands import load_registry

FED, IDP = "65a1b2c3d4e5f6a7b8c9d0e1", "65a1b2c3d4e5f6a7b8c9d0e2"


def _subjects() -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """name -> (slack_sdk's way, ours), each building nothing: the objects are made once."""
    from tests.core.test_views import request  # the unit tests' request, as the bot stores one

    registry = load_registry()
    spec = registry["revoke-jwks"]
    args = spec.validate({"federation_settings_id": FED, "identity_provider_id": IDP})
    preview = Preview(
        facts=(
            Fact(label="Identity provider", value=f"Okta prod ({IDP})"),
            Fact(label="Protocol", value="OIDC WORKFORCE"),
            Fact(label="Issuer", value="https://example.okta.com/oauth2/default"),
            Fact(label="Connected organisations", value="1"),
            Fact(label="Organisations logged out", value="Prod (65a1b2c3d4e5f6a7b8c9d0e3)"),
        ),
        warnings=("Every user of 1 organisation(s) is logged out at once.",),
    )

    def modal(shown: Preview | None) -> Any:
        return confirm_modal(
            spec, args, private_metadata="s" * 300, approvals_required=1, approver_roles=["approver"],
            ttl_minutes=30, preview=shown,
        )  # fmt: skip

    opening, filled = modal(None), modal(preview)
    pending = approval_message(request(), spec, approver_roles=["approver"]).blocks
    done = approval_message(request(state=RequestState.SUCCEEDED, approvers=("U0BOB",)), spec).blocks
    refusal = plain_message(":hourglass: The bot is too busy to open the form within Slack's 3 seconds.").blocks
    return {
        "confirmation modal, opening (views.open)": (opening.to_dict, lambda: view_dict(opening)),
        "confirmation modal, with preview (views.update)": (filled.to_dict, lambda: view_dict(filled)),
        "approval message, pending": (lambda: [b.to_dict() for b in pending], lambda: block_dicts(pending)),
        "approval message, done": (lambda: [b.to_dict() for b in done], lambda: block_dicts(done)),
        "busy refusal (an ack's blocks)": (lambda: [b.to_dict() for b in refusal], lambda: block_dicts(refusal)),
    }


def _cpu_per_call(make: Callable[[], Any], calls: int) -> float:
    started = time.thread_time()
    for _ in range(calls):
        make()
    return (time.thread_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="serialisations per round and way (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per way (default 5)")
    parser.add_argument("--short", action="store_true", help="CI mode: 50 calls, 2 rounds (proves it runs)")
    options = parser.parse_args()
    calls, rounds = (50, 2) if options.short else (options.calls, options.rounds)

    print(f"Block Kit serialisation, CPU per object (us), median of {rounds} rounds of {calls}")
    print(f"{'object':50} {'slack_sdk':>10} {'blockkit':>10} {'ratio':>7}")
    for name, (theirs, ours) in _subjects().items():
        if theirs() != ours():
            raise SystemExit(f"{name}: bot.slack.blockkit differs from slack_sdk's to_dict")
        timed: dict[str, list[float]] = {"theirs": [], "ours": []}
        for _ in range(rounds):
            timed["theirs"].append(_cpu_per_call(theirs, calls))
            timed["ours"].append(_cpu_per_call(ours, calls))
        slack_sdk, blockkit = statistics.median(timed["theirs"]), statistics.median(timed["ours"])
        print(f"{name:50} {slack_sdk * 1e6:10.1f} {blockkit * 1e6:10.1f} {blockkit / slack_sdk:6.2f}x")


if __name__ == "__main__":
    main()
