"""Build large acyclic data without the cyclic garbage collector scanning the heap meanwhile.

Parsing the specs, resolving and planning thousands of AOIs allocate hundreds of thousands of
small objects (YAML nodes, dataclasses, tuples, frozensets) and keep many of them. Each
allocation burst makes CPython's cyclic collector run, and its full collections walk every
tracked object in the process, the API's answers included: at 10,000 AOIs that was more than
half of the planning CPU, spent finding nothing, since these objects form no reference cycles
and reference counting frees them."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def no_cycle_collection(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the cyclic collector paused; it resumes when ``func`` returns or raises.

    For code that builds (almost only) acyclic data, and not for long: a cycle made meanwhile
    (say, a YAML alias that contains itself) is not lost, only collected after the resume.
    Nesting and threads are safe: a call resumes the collector only if it was the one to pause
    it, so it is never left off.
    """

    @functools.wraps(func)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()

    return paused
