"""Fault injection and request counting for the emulator.

Faults are drawn from one ``random.Random(seed)`` behind a lock, one draw per API request, so a
client that sends the same requests in the same order meets the same faults. Kinds:

* latency: every API request waits ``latency_ms`` first (not a fault: never counted or bounded);
* ``5xx``: 500, 502 or 503 with the error body, nothing changes;
* ``429``: rate limited, with a ``Retry-After`` header, nothing changes;
* ``drop``: the connection closes without a response, nothing changes;
* ``lost``: only on the creates (POST of a visualization or of an index): it really is created,
  then the connection closes without a response ("created, but the response was lost").

``max_faults`` bounds the number of faults injected in total, so a retrying client always
converges. The control endpoints under ``/_emulator/`` are never faulted nor counted.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from reconciler.errors import ConfigError


@dataclass(frozen=True)
class FaultConfig:
    """Which faults the emulator injects, and how often (shares of API requests, 0-1).

    The rates are exclusive shares of one draw, so their sum must not exceed 1.
    ``lost_response_rate`` only applies to creates (visualizations, indices) that succeed.
    """

    seed: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    drop_rate: float = 0.0
    lost_response_rate: float = 0.0
    max_faults: int | None = None

    def __post_init__(self) -> None:
        rates = {
            "error_rate": self.error_rate,
            "rate_limit_rate": self.rate_limit_rate,
            "drop_rate": self.drop_rate,
            "lost_response_rate": self.lost_response_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"fault {name} must be between 0 and 1, got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {sum(rates.values()):g}; at most 1 allowed")
        if self.latency_ms < 0:
            raise ConfigError(f"latency_ms must not be negative, got {self.latency_ms}")
        if self.retry_after < 0:
            raise ConfigError(f"retry_after must not be negative, got {self.retry_after}")
        if self.max_faults is not None and self.max_faults < 0:
            raise ConfigError(f"max_faults must not be negative, got {self.max_faults}")


class FaultKind(StrEnum):
    """The kinds of injected faults (also the names the CLI's ``--faults`` takes)."""

    ERROR = "5xx"
    RATE_LIMIT = "429"
    DROP = "drop"
    LOST = "lost"


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind and, for ``5xx``, the status to answer."""

    kind: FaultKind
    status: int = 0


class FaultInjector:
    """Draws the fault (if any) for each API request; thread-safe and reproducible."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._injected: Counter[FaultKind] = Counter()

    @property
    def injected(self) -> dict[str, int]:
        """How many faults of each kind were injected so far."""
        with self._lock:
            return {str(kind): n for kind, n in self._injected.items()}

    @property
    def injected_total(self) -> int:
        """How many faults were injected so far, all kinds together."""
        with self._lock:
            return sum(self._injected.values())

    def draw(self, *, is_create: bool) -> Fault | None:
        """The fault for the next request, or None; ``is_create`` allows a lost response."""
        cfg = self.config
        with self._lock:
            # Always draw, faulted or not, so the sequence depends only on the request order.
            roll = self._rng.random()
            status = self._rng.choice((500, 502, 503))
            if cfg.max_faults is not None and sum(self._injected.values()) >= cfg.max_faults:
                return None
            fault = None
            edge = cfg.error_rate
            if roll < edge:
                fault = Fault(FaultKind.ERROR, status)
            elif roll < (edge := edge + cfg.rate_limit_rate):
                fault = Fault(FaultKind.RATE_LIMIT, 429)
            elif roll < (edge := edge + cfg.drop_rate):
                fault = Fault(FaultKind.DROP)
            elif roll < edge + cfg.lost_response_rate and is_create:
                fault = Fault(FaultKind.LOST)
            if fault is not None:
                self._injected[fault.kind] += 1
            return fault

    def refund(self, fault: Fault) -> None:
        """Un-count a drawn fault that was not carried out (a lost response on a failed create)."""
        with self._lock:
            self._injected[fault.kind] -= 1


class RequestCounter:
    """Counts the API requests the emulator received, by method and route template.

    Keys look like ``"GET /v0/aois/{aoi_id}/visualizations"``; requests to unknown paths count as
    ``"<METHOD> <unknown>"``. Every request is counted when it arrives, before auth and faults,
    so tests can prove that a client retried.
    """

    UNKNOWN_ROUTE = "<unknown>"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._conflicts = 0

    def add(self, method: str, route: str) -> None:
        """Count one request."""
        with self._lock:
            self._counts[f"{method} {route}"] += 1

    @property
    def total(self) -> int:
        """All requests counted since the last reset."""
        with self._lock:
            return sum(self._counts.values())

    def count(self, method: str | None = None, route: str | None = None) -> int:
        """Requests with this method and/or route template (None matches any)."""
        with self._lock:
            items = list(self._counts.items())
        total = 0
        for key, n in items:
            key_method, _, key_route = key.partition(" ")
            if (method is None or key_method == method.upper()) and (
                route is None or key_route == route
            ):
                total += n
        return total

    def conflict(self) -> None:
        """Count one create answered 409 (the same visualization, or an index of that name,
        existed already)."""
        with self._lock:
            self._conflicts += 1

    @property
    def conflicts(self) -> int:
        """Creates answered 409 since the last reset: how often a client re-sent a create."""
        with self._lock:
            return self._conflicts

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()
            self._conflicts = 0

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts, keyed ``"METHOD /route/{template}"``, sorted by key."""
        with self._lock:
            return dict(sorted(self._counts.items()))
