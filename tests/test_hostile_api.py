"""plan and apply against an API that misbehaves in ways its contract does not foresee: a
correct plan or a clear error, never a wrong plan with exit 0, and apply that does what it
can and says what it could not.

The emulator serves the world; a proxy in front of it (``tests/apiproxy.py``) spoils chosen
answers: listing pages that repeat an item, statuses outside the contract, answers cut short,
a key revoked during apply, an AOI this key may not read. The client and the command line
talk to it over HTTP on 127.0.0.1, as to the real API.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.api.client import PixxelClient
from reconciler.emulator import Emulator
from reconciler.errors import CutShortError, InvalidResponseError, TransportError
from tests.apiproxy import (
    VISUALIZATIONS,
    Answer,
    ApiProxy,
    Forward,
    Raw,
    Request,
    Revoked,
    cut_short,
    forbidden,
    pages_of,
    repeating_pages,
    statuses,
)
from tests.planning import (
    BENGALURU,
    NDVI,
    NDVI_BENGALURU_AB,
    NDVI_ROLLED_BACK,
    PUNE,
    SECRET,
    SPEC,
    aoi,
    run_cli,
    spec,
    viz,
    write_spec,
)

#: Bengaluru-North's visualizations in the order the emulator lists them.
TRUE_COLOR_BENGALURU = "b92ca99a-2d95-5d67-9c0c-89942b86460e"
#: Pune-East's one visualization in the demo world.
NDWI_PUNE = "1532fbc7-71c6-5a5e-b8b9-3814b5e9cfeb"


@pytest.fixture
def proxy(world: Emulator) -> Iterator[ApiProxy]:
    """A proxy in front of the demo world; its spoilers start empty."""
    with ApiProxy(world.url) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec repository with ``SPEC``: a rollback on Bengaluru-North, a create on Pune-East."""
    monkeypatch.chdir(tmp_path)
    write_spec(tmp_path / "specs", SPEC)
    return tmp_path


def run(proxy: ApiProxy, *args: str) -> Result:
    return run_cli(*args, url=proxy.url, key=SECRET)


def client(proxy: ApiProxy) -> PixxelClient:
    return PixxelClient(proxy.url, SECRET, backoff_factor=0.01, retry_after_cap=0.05)


# --- listings that repeat an item across pages ------------------------------------------------


def test_a_page_that_repeats_an_item_once_is_read_again_and_nothing_is_missed(
    proxy: ApiProxy,
) -> None:
    proxy.spoilers += [repeating_pages(VISUALIZATIONS, "visualization", times=1), pages_of(1)]
    with client(proxy) as api:
        listed = api.list_visualizations(BENGALURU)
    assert [v.id for v in listed] == [NDVI_BENGALURU_AB, TRUE_COLOR_BENGALURU]
    # Page two came back wrong once: the whole listing was read a second time.
    assert proxy.count("GET", VISUALIZATIONS) == 4


def test_a_listing_that_keeps_repeating_an_item_is_an_error_naming_it(proxy: ApiProxy) -> None:
    proxy.spoilers += [repeating_pages(VISUALIZATIONS, "visualization"), pages_of(1)]
    with client(proxy) as api, pytest.raises(InvalidResponseError) as error:
        api.list_visualizations(BENGALURU)
    assert str(error.value).startswith(
        f"GET /v0/aois/{BENGALURU}/visualizations: the listing could not be read consistently "
        "in 3 reads: 'pagination.total' is 2, but the pages hold 1 distinct item, 1 of them "
        "listed twice."
    )
    assert proxy.count("GET", VISUALIZATIONS) == 6


def computing_while_paged(request: Request, forward: Forward) -> Answer | None:
    """Page two shows page one's item again, further along: the API was computing it."""
    if not request.matches("GET", VISUALIZATIONS) or request.offset != 1:
        return None
    page = forward(request).data()
    first = forward(Request("GET", request.path, {"offset": "0", "limit": "1"}, request.key))
    item = {**first.data()["visualization"][0], "progress": 42}
    return Answer.json(200, {**page, "visualization": [item]})


def test_the_same_id_with_other_content_on_two_pages_is_an_error_naming_it(
    proxy: ApiProxy,
) -> None:
    proxy.spoilers += [computing_while_paged, pages_of(1)]
    with client(proxy) as api, pytest.raises(InvalidResponseError) as error:
        api.list_visualizations(BENGALURU)
    assert (
        f"GET /v0/aois/{BENGALURU}/visualizations: the listing could not be read consistently "
        f"in 3 reads: '{NDVI_BENGALURU_AB}' is listed twice with different content."
    ) in str(error.value)
    assert proxy.count("GET", VISUALIZATIONS) == 6


def test_a_plan_over_a_repeating_visualization_listing_fails_naming_the_listing(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers += [repeating_pages(VISUALIZATIONS, "visualization"), pages_of(1)]
    for args in (("plan", "--detailed-exitcode"), ("plan", "--format", "json")):
        result = run(proxy, *args)
        assert result.exit_code == 1, result.output
        assert "the listing could not be read consistently" in result.output
        assert f"GET /v0/aois/{BENGALURU}/visualizations" in result.output
        # Not a plan that creates the visualization it missed.
        assert "create True-Color" not in result.output and '"creates"' not in result.stdout


def test_a_plan_over_a_repeating_aoi_listing_fails_naming_it_not_the_spec(
    proxy: ApiProxy, project: Path
) -> None:
    # The demo world lists Kochi-Coast last: a page that repeats its predecessor misses it.
    write_spec(project / "specs", spec(aoi("Kochi-Coast", viz("NDVI"))))
    proxy.spoilers += [repeating_pages("/v0/aois", "aois"), pages_of(2)]
    result = run(proxy, "plan")
    assert result.exit_code == 1, result.output
    assert "GET /v0/aois: the listing could not be read consistently in 3 reads" in result.output
    assert "unknown AOI" not in result.output and "spec.yaml" not in result.output


def test_a_plan_over_a_listing_that_repeated_once_is_the_plan_without_faults(
    proxy: ApiProxy, world: Emulator, project: Path
) -> None:
    honest = json.loads(run_cli("plan", "--format", "json", url=world.url, key=SECRET).stdout)
    proxy.spoilers += [
        repeating_pages(VISUALIZATIONS, "visualization", times=1),
        repeating_pages("/v0/aois", "aois", times=1),
        pages_of(1),
    ]
    result = run(proxy, "plan", "--format", "json")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert planned["creates"] == honest["creates"] and planned["rollbacks"] == honest["rollbacks"]
    assert planned["observed"] == honest["observed"]


# --- answers cut short, heads too large -------------------------------------------------------


def test_a_read_whose_body_is_cut_short_is_sent_again(proxy: ApiProxy) -> None:
    proxy.spoilers.append(cut_short("GET", VISUALIZATIONS, times=2))
    with client(proxy) as api:
        listed = api.list_visualizations(BENGALURU)
    assert [v.id for v in listed] == [NDVI_BENGALURU_AB, TRUE_COLOR_BENGALURU]
    assert proxy.count("GET", VISUALIZATIONS) == 3


def test_a_read_cut_short_every_time_says_so_and_how_often_it_was_tried(proxy: ApiProxy) -> None:
    proxy.spoilers.append(cut_short("GET", VISUALIZATIONS))
    with client(proxy) as api, pytest.raises(CutShortError) as error:
        api.list_visualizations(BENGALURU)
    message = str(error.value)
    assert message.startswith(
        f"GET /v0/aois/{BENGALURU}/visualizations?offset=0&limit=100 answered 200, then the "
        "connection broke after "
    )
    assert "(answer cut short). Gave up after 6 attempts over " in message
    assert proxy.count("GET", VISUALIZATIONS) == 6 and SECRET not in message


def head_of(lines: list[str]) -> Raw:
    """An answer of 200 with these header lines, and a body that never matters."""
    return Raw(("HTTP/1.1 200 OK\r\n" + "".join(f"{h}\r\n" for h in lines) + "\r\n").encode())


@pytest.mark.parametrize(
    ("lines", "fault"),
    [
        (
            ["X-Trace: " + "x" * 70_000],
            "its status line or a header line is longer than 65,536 bytes",
        ),
        ([f"X-Hop-{n}: 1" for n in range(120)], "it has more than 100 headers"),
    ],
    ids=["long header line", "too many headers"],
)
def test_a_head_too_large_to_read_is_named_not_called_a_dropped_connection(
    proxy: ApiProxy, lines: list[str], fault: str
) -> None:
    proxy.spoilers.append(lambda request, forward: head_of(lines))
    with client(proxy) as api, pytest.raises(TransportError) as error:
        api.list_indices()
    assert str(error.value).endswith(
        f": {proxy.url} answered with a head too large to read: {fault}."
    )
    assert "dropped" not in str(error.value)


def ndvi_on_pune(world: Emulator) -> int:
    """How many NDVI visualizations Pune-East has, as the emulator's world holds them."""
    with world.lock:
        return sum(v.index_id == NDVI for v in world.world.visualizations_of(PUNE))


def report_of(project: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((project / "report.json").read_text())
    return report


def items_by_change(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["change"]: item for item in report["items"]}


def test_a_create_whose_answer_is_cut_short_is_looked_up_and_adopted(
    proxy: ApiProxy, world: Emulator, project: Path
) -> None:
    proxy.spoilers.append(cut_short("POST", VISUALIZATIONS, times=1))
    result = run(proxy, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 0, result.output
    create = items_by_change(report_of(project))["create"]
    assert create["outcome"] == "adopted" and create["status"] == "success"
    assert create["message"].startswith(
        f"its create's answer was lost (POST /v0/aois/{PUNE}/visualizations answered 201, then "
        "the connection broke after "
    )
    assert create["message"].endswith(
        f"and it was found on the AOI as {create['visualization_id']}: adopted"
    )
    assert proxy.count("POST", VISUALIZATIONS) == 1  # looked up, not sent again
    assert ndvi_on_pune(world) == 1
    assert run(proxy, "plan", "--detailed-exitcode").exit_code == 0


def test_a_create_whose_answer_is_lost_and_that_is_not_found_may_exist(
    proxy: ApiProxy, world: Emulator, project: Path
) -> None:
    # A made-up 201 cut short: the emulator never saw the create.
    proxy.spoilers.append(cut_short("POST", VISUALIZATIONS, forward=False))
    result = run(proxy, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 1, result.output
    create = items_by_change(report_of(project))["create"]
    assert create["outcome"] == "failed" and create["visualization_id"] is None
    assert "answered 201, then the connection broke after " in create["message"]
    assert create["message"].endswith(
        "The visualization may exist all the same (no visualization of index NDVI over these "
        "assets is listed on the AOI yet): the next plan shows whether it does, and a create of "
        "it again is safe (the API answers 409)"
    )
    assert ndvi_on_pune(world) == 0
    assert items_by_change(report_of(project))["rollback"]["outcome"] == "rolled back"


# --- a key revoked during apply ---------------------------------------------------------------

#: Six changes: four creates on Kochi-Coast, one on Pune-East, Bengaluru-North's rollback.
SIX_CHANGES = spec(
    aoi("Bengaluru-North", NDVI_ROLLED_BACK),
    aoi("Kochi-Coast", viz("NDVI"), viz("NDWI"), viz("SAVI"), viz("EVI")),
    aoi("Pune-East", viz("NDWI"), viz("NDVI")),
)


def test_a_revoked_key_stops_apply_at_the_first_401(proxy: ApiProxy, project: Path) -> None:
    write_spec(project / "specs", SIX_CHANGES)
    revoked = Revoked(writes=1)
    proxy.spoilers.append(revoked)
    # One change at a time, so that no other write is in flight when the first 401 comes.
    result = run(proxy, "apply", "--yes", "--parallelism", "1", "--report", "report.json")
    assert result.exit_code == 1, result.output
    assert revoked.rejected == 1  # the first refused write, and no other
    report = report_of(project)
    assert report["summary"] == {
        "created": 1,
        "adopted": 0,
        "rolled_back": 0,
        "legend_set": 0,
        "failed": 1,
        "skipped": 4,
    }
    assert report["stopped_early"] is True and report["ok"] is False
    assert report["stop_reason"] == "the API refused the key (401)"
    assert "failed: 401 unauthorized: this API key was revoked" in report["key_refused"]
    skipped = [i for i in report["items"] if i["outcome"] == "skipped"]
    assert {i["message"] for i in skipped} == {"not started: the API refused the key (401)"}
    assert (
        "Error: the API refused the key, so apply sent nothing more (4 changes not attempted): "
    ) in result.output
    assert SECRET not in result.output + json.dumps(report)


# --- statuses the contract does not list ------------------------------------------------------

OUTSIDE = "a status the API contract does not list (creating, success, failed, partial_success)"
METADATA = r"/v0/aois/[^/]+/visualizations/[^/]+/metadata"


def queued_until_seen(times: int) -> Callable[[dict[str, Any]], str | None]:
    """New visualizations (not the demo world's) say ``queued`` the first ``times`` times."""
    seen: Counter[str] = Counter()

    def status(item: dict[str, Any]) -> str | None:
        if item["id"] in (NDVI_BENGALURU_AB, TRUE_COLOR_BENGALURU, NDWI_PUNE):
            return None
        seen[item["id"]] += 1
        return "queued" if seen[item["id"]] <= times else None

    return status


def test_a_create_answered_queued_is_waited_for_until_it_is_usable(
    proxy: ApiProxy, project: Path
) -> None:
    # The create's answer and the first poll say 'queued'; the second poll says 'success'.
    proxy.spoilers.append(statuses(queued_until_seen(2)))
    result = run(proxy, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 0, result.output
    create = items_by_change(report_of(project))["create"]
    assert (create["outcome"], create["status"]) == ("created", "success")
    assert f"waiting for NDVI on Pune-East ({create['visualization_id']}): 'queued', {OUTSIDE}" in (
        result.output
    )


def test_a_create_that_stays_queued_fails_at_the_wait_timeout_saying_what_it_saw(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(statuses(queued_until_seen(1_000)))
    result = run(proxy, "apply", "--yes", "--wait-timeout", "0.2", "--report", "report.json")
    assert result.exit_code == 1, result.output
    create = items_by_change(report_of(project))["create"]
    assert (create["outcome"], create["status"]) == ("failed", "queued")
    assert create["message"] == (
        f"created as {create['visualization_id']}, but it was still 'queued', {OUTSIDE} after "
        "0.2 s (--wait-timeout); run apply again later to finish"
    )


def test_an_archived_visualization_is_warned_about_and_never_patched(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(
        statuses(lambda item: "archived" if item["id"] == NDVI_BENGALURU_AB else None)
    )
    planned = run(proxy, "plan", "--format", "json")
    assert planned.exit_code == 0, planned.output
    [warning] = [w for w in json.loads(planned.stdout)["warnings"] if w["kind"] == "unknown-status"]
    assert warning["visualization_id"] == NDVI_BENGALURU_AB
    assert warning["message"].startswith(
        f"declared visualization 'NDVI' ({NDVI_BENGALURU_AB}) has status 'archived', which the "
        "API contract does not list (creating, success, failed, partial_success): it is neither "
        "usable nor failed"
    )
    result = run(proxy, "apply", "--yes", "--wait-timeout", "0.2", "--report", "report.json")
    assert result.exit_code == 1, result.output
    assert proxy.count("PATCH", METADATA) == 0
    rollback = items_by_change(report_of(project))["rollback"]
    assert rollback["outcome"] == "failed"
    assert rollback["message"] == (
        f"waiting until it is usable: it was still 'archived', {OUTSIDE} after 0.2 s "
        "(--wait-timeout); run apply again later to finish"
    )


# --- an AOI this key may not read ---------------------------------------------------------------

REFUSED = (
    f"could not be read, so nothing is planned for this AOI: GET /v0/aois/{PUNE}/visualizations"
    f"?offset=0&limit=100 failed: 403 forbidden: this key may not access AOI {PUNE} (this API "
    "key may not do this)"
)
FAILED_PLAN = "Error: 1 AOI could not be read, so nothing was planned for it: Pune-East"


def test_a_plan_shows_every_other_aoi_and_fails_naming_the_one_it_may_not_read(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(forbidden(PUNE))
    text = run(proxy, "plan", "--detailed-exitcode")
    assert text.exit_code == 1, text.output
    assert "! roll back NDVI legends to auto-computed" in text.stdout  # Bengaluru-North's
    assert "AOI Pune-East (8ee03236): 1 warning" in text.stdout and REFUSED in " ".join(
        text.stdout.split()
    )
    assert "create NDVI" not in text.stdout
    assert f"{FAILED_PLAN} ({PUNE}): {REFUSED}" in text.stderr

    as_json = run(proxy, "plan", "--format", "json")
    assert as_json.exit_code == 1
    plan = json.loads(as_json.stdout)
    assert plan["format_version"] == 8 and "error" not in plan
    assert plan["summary"]["unreadable"] == 1 and plan["summary"]["rollback"] == 1
    [warning] = [w for w in plan["warnings"] if w["kind"] == "unreadable"]
    assert (warning["aoi_id"], warning["aoi_name"], warning["message"]) == (
        PUNE,
        "Pune-East",
        REFUSED,
    )
    assert warning["where"] == "specs/spec.yaml:8:10"  # the AOI in the spec
    assert [c["aoi_id"] for c in plan["creates"]] == [] and PUNE not in plan["observed"]


def test_apply_carries_out_every_other_aoi_and_reports_the_one_it_may_not_read(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(forbidden(PUNE))
    result = run(proxy, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 1, result.output
    assert proxy.count("PATCH", METADATA) == 1 and proxy.count("POST", VISUALIZATIONS) == 0
    report = report_of(project)
    assert report["ok"] is False and report["error"] is None
    assert [(i["aoi_name"], i["outcome"]) for i in report["items"]] == [
        ("Bengaluru-North", "rolled back")
    ]
    [unreadable] = report["unreadable"]
    assert (unreadable["aoi_id"], unreadable["message"]) == (PUNE, REFUSED)
    assert f"{FAILED_PLAN} ({PUNE}): " in result.output
    assert "apply went ahead with every other AOI" in result.output


def test_a_saved_plan_that_left_an_aoi_out_applies_the_rest_and_says_so(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(forbidden(PUNE))
    assert run(proxy, "plan", "--out", "plan.json").exit_code == 1
    result = run(proxy, "apply", "plan.json", "--yes", "--report", "report.json")
    assert result.exit_code == 1, result.output
    report = report_of(project)
    assert [(i["aoi_name"], i["outcome"]) for i in report["items"]] == [
        ("Bengaluru-North", "rolled back")
    ]
    assert [u["aoi_id"] for u in report["unreadable"]] == [PUNE]


def test_an_aoi_refused_after_its_plan_was_saved_is_reported_not_stale(
    proxy: ApiProxy, project: Path
) -> None:
    assert run(proxy, "plan", "--out", "plan.json").exit_code == 0
    proxy.spoilers.append(forbidden(PUNE))
    result = run(proxy, "apply", "plan.json", "--yes", "--report", "report.json")
    assert result.exit_code == 1, result.output
    report = report_of(project)
    assert report["error"] is None, report["error"]
    assert [(i["aoi_name"], i["outcome"]) for i in report["items"]] == [
        ("Bengaluru-North", "rolled back")
    ]
    assert [u["aoi_id"] for u in report["unreadable"]] == [PUNE]
    assert proxy.count("POST", VISUALIZATIONS) == 0


def test_drift_shows_the_other_aois_and_fails_naming_the_one_it_may_not_read(
    proxy: ApiProxy, project: Path
) -> None:
    proxy.spoilers.append(forbidden(PUNE))
    result = run(proxy, "drift", "--format", "json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["status"] == "pending"  # Bengaluru-North's rollback
    assert f"{FAILED_PLAN} ({PUNE}): " in result.stderr


def test_online_validation_says_what_it_could_not_check(proxy: ApiProxy, project: Path) -> None:
    proxy.spoilers.append(forbidden(PUNE))
    result = run(proxy, "validate", "--online")
    assert result.exit_code == 1, result.output
    assert (
        "the declarations of 1 AOI could not be checked, the API refused to show them: "
        f"Pune-East ({PUNE}): GET /v0/aois/{PUNE}/visualizations"
    ) in result.output


def test_a_rollback_waiting_on_a_visualization_that_ends_failed_is_not_sent(
    proxy: ApiProxy, project: Path
) -> None:
    # Listed as creating when planned and at the first poll, then failed: no legend to roll back.
    seen: Counter[str] = Counter()

    def creating_then_failed(item: dict[str, Any]) -> str | None:
        if item["id"] != NDVI_BENGALURU_AB:
            return None
        seen[item["id"]] += 1
        return "creating" if seen[item["id"]] <= 2 else "failed"

    proxy.spoilers.append(statuses(creating_then_failed))
    result = run(proxy, "apply", "--yes", "--report", "report.json")
    assert result.exit_code == 1, result.output
    assert proxy.count("PATCH", METADATA) == 0
    rollback = items_by_change(report_of(project))["rollback"]
    assert rollback["outcome"] == "failed"
    assert rollback["message"] == (
        f"not sent: visualization {NDVI_BENGALURU_AB} ended failed, with no legends to roll back"
    )
