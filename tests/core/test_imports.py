"""What each of serve's two processes loads: a module only the other one needs would stay resident
for the process's whole life (bench/ measures the bot's memory against a 200 MB target)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(*modules: str) -> set[str]:
    """Top-level and dotted module names a fresh interpreter holds after importing ``modules``."""
    code = "import importlib, json, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "print(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    ("side", "modules", "absent"),
    [
        # serve itself: Bolt and the web app acking; the database and Atlas are the work side's, and
        # it only verifies signatures (cryptography is loaded by the first seal, bot.sealing).
        (
            "ack side",
            ("bot.cli", "bot.ack_side", "bot.work_process"),
            ("sqlalchemy", "alembic", "httpx", "bot.store", "cryptography"),
        ),
        # python -m bot.work_process: migrations run in a child of its own (python -m bot.schema).
        (
            "work side",
            ("bot.work_process", "bot.work_side", "bot.slack.after_ack", "bot.logs", "bot.loop", "bot.settings"),
            ("alembic", "slack_bolt", "aiohttp.web", "bot.ack_side", "bot.slack.listeners", "bot.cli", "cryptography"),
        ),
    ],
)
def test_each_process_leaves_out_what_only_the_other_needs(
    side: str, modules: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    loaded = loaded_after(*modules)
    assert set(modules) <= loaded  # the check itself sees what it imported
    assert [m for m in absent if m in loaded] == [], side
