"""The cyclic collector pause around resolving and planning: always resumed, never forced on."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler._gc import no_cycle_collection


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:  # pragma: no cover - the suite runs with the collector on
        gc.disable()


@no_cycle_collection
def _state() -> bool:
    return gc.isenabled()


@no_cycle_collection
def _fail() -> None:
    raise ValueError("boom")


def test_paused_while_running_and_resumed_after() -> None:
    gc.enable()
    assert _state() is False
    assert gc.isenabled()


def test_resumed_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(ValueError, match="boom"):
        _fail()
    assert gc.isenabled()


def test_left_off_when_the_caller_had_turned_it_off() -> None:
    gc.disable()
    assert _state() is False
    assert not gc.isenabled()
