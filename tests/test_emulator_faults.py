"""Fault injection over real HTTP: each kind, seed reproducibility, the max_faults bound.

Every response that does arrive is validated against the contract by ``ApiSession``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from reconciler.emulator import Emulator, FaultConfig
from reconciler.errors import ConfigError
from tests.conftest import ApiSession

KOCHI = "a4cb9e5f-39ca-5083-b695-e628f4e8019b"
NAGPUR = "1a3cd9bf-677d-5205-8fbf-1414083293b0"
NDVI = "cb668cf4-b6fc-5c37-a944-84c62fd95299"
NDWI = "04d0a9cd-f653-558c-9d19-4103e6386d5a"
VISUALIZATIONS = "/v0/aois/{aoi_id}/visualizations"

MakeEmulator = Callable[..., Emulator]
SessionFor = Callable[..., ApiSession]


def outcome(session: ApiSession, method: str = "GET", path: str = "/v0/aois") -> str:
    """What one request met: its status code, or "drop" for a closed connection."""
    try:
        return str(session.request(method, path).status_code)
    except requests.ConnectionError:
        return "drop"


def kochi_visualizations(emulator: Emulator) -> list[str]:
    with emulator.lock:
        return [v.id for v in emulator.world.visualizations_of(KOCHI)]


def test_server_errors_carry_the_error_body(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    emulator = make_emulator(faults=FaultConfig(error_rate=1.0, max_faults=4))
    session = session_for(emulator)
    statuses = []
    for _ in range(4):
        response = session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})
        statuses.append(response.status_code)
        error = response.json()["error"]
        assert error["code"] == "server_error" and "injected" in error["message"]
    assert set(statuses) <= {500, 502, 503}
    assert kochi_visualizations(emulator) == []  # a 5xx changes nothing
    assert (
        session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI}).status_code == 201
    )
    assert emulator.faults_injected == {"5xx": 4}


def test_rate_limit_sends_retry_after(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    emulator = make_emulator(faults=FaultConfig(rate_limit_rate=1.0, retry_after=7, max_faults=1))
    session = session_for(emulator)
    limited = session.get("/v0/indices")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["error"]["details"] == {"retry_after": 7}
    assert session.get("/v0/indices").status_code == 200


def test_dropped_connections(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    emulator = make_emulator(faults=FaultConfig(drop_rate=1.0, max_faults=2))
    session = session_for(emulator)
    body = {"index_id": NDVI}
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            session.post(f"/v0/aois/{KOCHI}/visualizations", json=body)
    assert kochi_visualizations(emulator) == []  # dropped before anything happened
    assert session.post(f"/v0/aois/{KOCHI}/visualizations", json=body).status_code == 201
    assert emulator.counter.count("POST", VISUALIZATIONS) == 3  # the dropped ones count too


def test_lost_response_still_creates(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    emulator = make_emulator(faults=FaultConfig(lost_response_rate=1.0, max_faults=1))
    session = session_for(emulator)
    # Reads are never "lost": the budget is kept for the create.
    assert session.get(f"/v0/aois/{KOCHI}/visualizations").status_code == 200
    with pytest.raises(requests.ConnectionError):
        session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})
    (created,) = kochi_visualizations(emulator)
    retry = session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDVI})
    assert retry.status_code == 409  # the client's retry learns it exists
    assert retry.json()["error"]["details"] == {"visualization_id": created}
    assert emulator.faults_injected == {"lost": 1}


def test_lost_response_waits_for_a_successful_create(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    emulator = make_emulator(faults=FaultConfig(lost_response_rate=1.0, max_faults=1))
    session = session_for(emulator)
    invalid = session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": "nope"})
    assert invalid.status_code == 400  # answered normally, no fault spent
    assert emulator.faults_injected == {"lost": 0}
    with pytest.raises(requests.ConnectionError):
        session.post(f"/v0/aois/{KOCHI}/visualizations", json={"index_id": NDWI})
    assert len(kochi_visualizations(emulator)) == 1


MIXED = FaultConfig(seed=42, error_rate=0.25, rate_limit_rate=0.2, drop_rate=0.2)


def _sequence(emulator: Emulator, session_for: SessionFor, n: int = 40) -> list[str]:
    session = session_for(emulator)
    return [outcome(session) for _ in range(n)]


def test_same_seed_same_faults(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    first = _sequence(make_emulator(faults=MIXED), session_for)
    second = _sequence(make_emulator(faults=MIXED), session_for)
    assert first == second
    assert {"200", "429", "drop"} <= set(first)
    assert set(first) & {"500", "502", "503"}
    other_seed = FaultConfig(seed=43, error_rate=0.25, rate_limit_rate=0.2, drop_rate=0.2)
    assert _sequence(make_emulator(faults=other_seed), session_for) != first


def test_max_faults_bounds_the_total(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    emulator = make_emulator(faults=FaultConfig(error_rate=0.5, drop_rate=0.5, max_faults=5))
    seen = _sequence(emulator, session_for, n=20)
    assert sum(1 for s in seen if s != "200") == 5
    assert seen[5:] == ["200"] * 15  # every request faulted until the budget ran out
    assert sum(emulator.faults_injected.values()) == 5
    assert emulator.counter.total == 20


def test_faults_can_change_while_running(emulator: Emulator, api_session: ApiSession) -> None:
    assert api_session.get("/v0/aois").status_code == 200
    emulator.faults = FaultConfig(error_rate=1.0, max_faults=1)
    assert api_session.get("/v0/aois").status_code >= 500
    assert api_session.get("/v0/aois").status_code == 200
    emulator.faults = FaultConfig()
    assert emulator.faults == FaultConfig()
    assert emulator.faults_injected == {}


def test_latency_is_not_a_fault(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    emulator = make_emulator(faults=FaultConfig(latency_ms=20, max_faults=0, error_rate=1.0))
    session = session_for(emulator)
    assert [session.get("/v0/aois").status_code for _ in range(3)] == [200, 200, 200]
    assert emulator.faults.latency_ms == 20
    assert emulator.faults_injected == {}  # max_faults=0: nothing but the latency


def test_control_endpoints_are_never_faulted(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=FaultConfig(drop_rate=1.0))
    response = requests.get(f"{emulator.url}/_emulator/requests", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "total": 0,
        "requests": {},
        "faults_injected": {},
        "create_conflicts": 0,
    }


def test_a_retrying_client_converges(make_emulator: MakeEmulator, session_for: SessionFor) -> None:
    """A naive retry loop under every fault kind ends with each visualization exactly once."""
    faults = FaultConfig(
        seed=7,
        error_rate=0.2,
        rate_limit_rate=0.1,
        retry_after=0,
        drop_rate=0.1,
        lost_response_rate=0.3,
        max_faults=15,
    )
    emulator = make_emulator(faults=faults)
    session = session_for(emulator)
    wanted = [NDVI, NDWI]
    assets = ["8b472a7b-a251-53af-ae94-6b71decf1faa", "2f48038d-e47d-5247-bf41-e82ff9b5ce66"]
    todo = [(index, asset) for index in wanted for asset in assets]
    for index, asset in todo:
        for _attempt in range(30):  # bounded; max_faults guarantees an end well before
            try:
                response = session.post(
                    f"/v0/aois/{KOCHI}/visualizations",
                    json={"index_id": index, "src_asset_ids": [asset]},
                )
            except requests.ConnectionError:
                continue
            if response.status_code in (201, 409):
                break
        else:
            pytest.fail(f"no answer for {index} {asset}")
    with emulator.lock:
        made = [(v.index_id, tuple(v.asset_ids)) for v in emulator.world.visualizations_of(KOCHI)]
    assert sorted(made) == sorted((i, (a,)) for i, a in todo)
    assert 0 < sum(emulator.faults_injected.values()) <= 15


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"error_rate": 0.6, "drop_rate": 0.6}, "add up to 1.2"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"retry_after": -1}, "retry_after"),
        ({"max_faults": -1}, "max_faults"),
    ],
)
def test_fault_config_is_checked(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_requests_counter_over_http_sees_faulted_requests(
    make_emulator: MakeEmulator, session_for: SessionFor
) -> None:
    emulator = make_emulator(faults=FaultConfig(error_rate=1.0, max_faults=2))
    session = session_for(emulator)
    for _ in range(3):
        session.get(f"/v0/aois/{NAGPUR}/visualizations")
    body = requests.get(f"{emulator.url}/_emulator/requests", timeout=10).json()
    assert body["requests"] == {"GET /v0/aois/{aoi_id}/visualizations": 3}
    assert body["faults_injected"] == {"5xx": 2}
