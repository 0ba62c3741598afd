"""Which event loop serve runs on."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from bot.errors import ConfigurationError
from bot.loop import FULL_COLLECTION_EVERY, event_loop_factory, freeze_start_up_objects, space_out_full_collections


def _loop_module(name: str) -> str:
    loop = event_loop_factory(name)()  # type: ignore[arg-type]
    try:
        return type(loop).__module__.split(".")[0]
    finally:
        loop.close()


def test_auto_takes_uvloop_when_it_is_installed() -> None:
    assert event_loop_factory("auto") is uvloop.new_event_loop
    assert _loop_module("auto") == "uvloop"


def test_asyncio_is_asyncio_own_loop() -> None:
    assert event_loop_factory("asyncio") is asyncio.new_event_loop
    assert _loop_module("asyncio") == "asyncio"


def test_uvloop_asked_for_but_missing_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(ConfigurationError, match="ATLAS_CHATOPS_EVENT_LOOP"):
        event_loop_factory("uvloop")
    assert event_loop_factory("auto") is asyncio.new_event_loop


def test_start_up_objects_are_frozen_out_of_collections() -> None:
    import gc

    built_at_start_up = [object() for _ in range(100)]
    try:
        before = gc.get_freeze_count()
        freeze_start_up_objects()
        assert gc.get_freeze_count() >= before + len(built_at_start_up)
    finally:
        gc.unfreeze()


def test_full_collections_are_spaced_out_and_young_ones_left_alone() -> None:
    import gc

    before = gc.get_threshold()
    try:
        space_out_full_collections()
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
        assert before[2] < FULL_COLLECTION_EVERY
    finally:
        gc.set_threshold(*before)
