"""Which event loop ``serve`` runs on, and keeping its start-up objects out of the collector's way."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Callable
from typing import Literal

from bot.errors import ConfigurationError

__all__ = [
    "FULL_COLLECTION_EVERY",
    "EventLoopName",
    "event_loop_factory",
    "freeze_start_up_objects",
    "space_out_full_collections",
]

EventLoopName = Literal["auto", "uvloop", "asyncio"]


def event_loop_factory(name: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when asked for or, with ``auto``, when installed; else asyncio's own loop.

    uvloop (libuv) takes about 15% less CPU per command than asyncio's loop in ``bench/``; the
    bot does not depend on either's specifics, and the tests run it on both.
    """
    if name == "asyncio" or (name == "auto" and importlib.util.find_spec("uvloop") is None):
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        raise ConfigurationError(
            "ATLAS_CHATOPS_EVENT_LOOP: uvloop is not installed (pip install uvloop, or set it to asyncio)"
        ) from None
    return uvloop.new_event_loop


def freeze_start_up_objects() -> None:
    """Move everything built at start-up (modules, the SQLAlchemy metadata, Bolt, clients, models)
    to the collector's permanent generation. It lives as long as the process; left in the oldest
    generation, every full collection walked it again: 50-80 ms pauses at ack p99 in ``bench/``.
    """
    gc.collect()
    gc.freeze()


# Young-generation collections between two full ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 100


def space_out_full_collections() -> None:
    """Make full collections ten times rarer; young ones stay as they are.

    A full collection walks every live object: with 200 executions in flight (about 150,000
    objects, coroutines mostly) each took 50-115 ms in ``bench/``, every 2-5 s, and every
    thread waits for it. That was the whole ack p99 of the busy figure (51-74 ms against 12.5
    idle). Cyclic garbage that outlives two young collections now waits longer to be freed;
    the benchmark's peak RSS shows what that costs.
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
