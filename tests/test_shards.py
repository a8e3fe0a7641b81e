"""Shards (``--shard I/N``): one estate over several CI jobs, each with its own state and lock.

Against the emulator and, for remote states, a real S3-protocol server. The demo world's AOIs
fall into 4 shards as: Pune-East 1, Kochi-Coast 2, Bengaluru-North and Nagpur-Farms 3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from reconciler.core.shards import Shard, parse_shard, shard_of
from reconciler.emulator import Emulator
from reconciler.errors import ConfigError
from reconciler.state.family import family_key, sharded
from reconciler.state.store import StateStore
from tests.conftest import S3
from tests.planning import BENGALURU, KOCHI, NAGPUR, PUNE, SECRET, SPEC, aoi, run_cli, spec, viz

#: Bengaluru-North (shard 3 of 4) and Pune-East (shard 1 of 4), as in ``SPEC``, and Kochi-Coast
#: (shard 2 of 4) by a selector.
SELECTOR_SPEC = """\
selectors:
  - match: {names: [Kochi-*, Pune-*]}
    visualizations:
      - index: NDWI
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """A spec repository's checkout as the working directory (states go under it)."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "spec.yaml").write_text(SPEC, encoding="utf-8")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _cli(world: Emulator, *args: str) -> Result:
    return run_cli(*args, url=world.url, key=SECRET)


def _plan_json(world: Emulator, *args: str) -> Any:
    done = _cli(world, "plan", "--format", "json", *args)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _records(path: Path) -> set[str]:
    """The AOI ids a state file has records of."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {rec["aoi_id"] for rec in data["visualizations"].values()}


# ---- which shard an AOI is in -----------------------------------------------------------------


def test_an_aois_shard_depends_on_its_id_alone() -> None:
    assert {a: shard_of(a, 4) for a in (PUNE, KOCHI, BENGALURU, NAGPUR)} == {
        PUNE: 1,
        KOCHI: 2,
        BENGALURU: 3,
        NAGPUR: 3,
    }
    ids = [f"aoi-{n}" for n in range(4000)]
    before = {a: shard_of(a, 8) for a in ids[:3000]}
    # Adding AOIs moves none of the others; and the shards share the AOIs about evenly.
    assert {a: shard_of(a, 8) for a in ids[:3000]} == before
    sizes = [sum(shard_of(a, 8) == s for a in ids) for s in range(1, 9)]
    assert min(sizes) > 400 and max(sizes) < 600


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2/4", Shard(2, 4)), (" 1 / 1 ", Shard(1, 1)), ("4/4", Shard(4, 4))],
)
def test_shards_are_written_i_of_n(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/4", "I must be 1 to 4"),
        ("5/4", "I must be 1 to 4"),
        ("1/0", "must be 1 to 1000"),
        ("2", "expected I/N"),
        ("a/b", "expected I/N"),
    ],
)
def test_a_wrong_shard_says_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_a_shards_state_is_beside_the_unsharded_one() -> None:
    assert sharded(Path(".reconciler/state.json"), 2, 4) == Path(
        ".reconciler/state.shard-2-of-4.json"
    )
    assert sharded("s3://b/team/state.json", 1, 2) == "s3://b/team/state.shard-1-of-2.json"
    assert sharded("s3://b/team/state", 1, 2) == "s3://b/team/state.shard-1-of-2"
    with pytest.raises(ConfigError, match="already names a shard's state"):
        sharded("s3://b/state.shard-1-of-2.json", 1, 2)
    assert family_key("state.shard-3-of-8.json") == family_key("state.json") == ("state", ".json")
    assert family_key("state.json.lock") != family_key("state.json")
    assert family_key("other.json") != family_key("state.json")


# ---- planning and applying by shard -------------------------------------------------------------


def test_the_shards_plans_are_the_whole_plan_split(world: Emulator, checkout: Path) -> None:
    whole = _plan_json(world)
    shards = [_plan_json(world, "--shard", f"{i}/4") for i in range(1, 5)]

    def creates(plan: Any) -> list[tuple[str, str]]:
        return sorted((c["aoi_id"], c["index_name"]) for c in plan["creates"])

    assert sorted(c for p in shards for c in creates(p)) == creates(whole)
    assert [sorted(p["observed"]) for p in shards] == [[PUNE], [], [BENGALURU], []]
    assert shards[0]["shard"] == {"count": 4, "shards": [1]}
    assert whole["shard"] is None


def test_each_shard_applies_with_its_own_state_and_lock(world: Emulator, checkout: Path) -> None:
    for i in (1, 3):
        done = _cli(world, "apply", "--yes", "--shard", f"{i}/4")
        assert done.exit_code == 0, done.output
    states = checkout / ".reconciler"
    assert sorted(p.name for p in states.iterdir()) == [
        "state.shard-1-of-4.json",
        "state.shard-3-of-4.json",
    ]
    assert _records(states / "state.shard-3-of-4.json") == {BENGALURU}
    # Each shard is up to date, and so is a plan of every AOI reading the shards' records:
    # nothing to roll back again; but it warns that its apply would be refused.
    for i in range(1, 5):
        assert _cli(world, "plan", "--shard", f"{i}/4", "--detailed-exitcode").exit_code == 0
    whole = _plan_json(world)
    assert whole["rollbacks"] == [] and whole["creates"] == []
    (owned,) = [w for w in whole["warnings"] if w["kind"] == "owned"]
    assert "2 AOIs of this plan are owned by other states" in owned["message"]
    assert "refuses them unless 'apply --take-over'" in owned["message"]


def test_a_saved_shard_plan_applies_with_that_shards_state(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "plan", "--shard", "3/4", "--out", "p3.json").exit_code == 0
    wrong = _cli(world, "apply", "p3.json", "--yes", "--shard", "1/4")
    assert wrong.exit_code == 1
    assert "the plan is shard 3/4's, and this apply has --shard 1/4" in wrong.output
    done = _cli(world, "apply", "p3.json", "--yes")
    assert done.exit_code == 0, done.output
    assert _records(checkout / ".reconciler" / "state.shard-3-of-4.json") == {BENGALURU}
    assert not (checkout / ".reconciler" / "state.json").exists()


def test_target_and_shard_are_refused_together(world: Emulator, checkout: Path) -> None:
    done = _cli(world, "plan", "--shard", "1/4", "--target", "Pune-East")
    assert done.exit_code == 1
    assert "--target and --shard cannot be used together" in done.output


def test_a_selector_matching_only_other_shards_aois_is_no_warning(
    world: Emulator, checkout: Path
) -> None:
    (checkout / "specs" / "spec.yaml").write_text(SELECTOR_SPEC, encoding="utf-8")
    kochi_shard = _plan_json(world, "--shard", "2/4")
    (summary,) = kochi_shard["selectors"]
    assert [a["name"] for a in summary["matched"]] == ["Kochi-Coast"]
    assert summary["elsewhere"] == 1  # Pune-East, in shard 1
    empty = _plan_json(world, "--shard", "4/4")
    assert not [w for w in empty["warnings"] if w["kind"] == "no-match"]
    text = _cli(world, "plan", "--shard", "4/4").output
    assert "no AOI (and 2 in other shards)" in text
    # Every shard's plan, shown together, is the selector's whole match once.
    for i in range(1, 5):
        assert _cli(world, "plan", "--shard", f"{i}/4", "--out", f"p{i}.json").exit_code == 0
    merged = _cli(world, "show", *(f"p{i}.json" for i in range(1, 5)), "--format", "json")
    assert merged.exit_code == 0, merged.output
    (summary,) = json.loads(merged.stdout)["selectors"]
    assert [a["name"] for a in summary["matched"]] == ["Kochi-Coast", "Pune-East"]
    assert summary["elsewhere"] == 0


# ---- shard plans merged in one review ----------------------------------------------------------


def test_show_merges_the_shards_plans_into_one_comment(world: Emulator, checkout: Path) -> None:
    whole = _cli(world, "plan", "--out", "whole.json")
    assert whole.exit_code == 0
    for i in range(1, 5):
        assert _cli(world, "plan", "--shard", f"{i}/4", "--out", f"p{i}.json").exit_code == 0
    every = [f"p{i}.json" for i in range(1, 5)]
    merged = json.loads(_cli(world, "show", *every, "--format", "json").stdout)
    alone = json.loads(_cli(world, "show", "whole.json", "--format", "json").stdout)
    for part in ("creates", "rollbacks", "legends", "indices"):
        assert merged[part] == alone[part], part
    assert merged["shard"] == {"count": 4, "shards": [1, 2, 3, 4]}

    comment = _cli(world, "show", "p1.json", "p3.json", "--format", "markdown").stdout
    assert "The plans of shards 1, 3 of 4, merged: 2 AOIs." in comment
    assert "Missing: the plan of shards 2, 4, whose AOIs are not shown." in comment
    assert comment.count("<!-- reconciler-plan -->") == 1


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ("whole.json", "it was made without --shard"),
        ("p1of2.json", "it is a plan of 2 shards, and p1.json of 4"),
        ("p1.json", "shard 1 is also in p1.json"),
    ],
)
def test_show_refuses_plans_that_are_not_one_estates_shards(
    world: Emulator, checkout: Path, other: str, message: str
) -> None:
    assert _cli(world, "plan", "--shard", "1/4", "--out", "p1.json").exit_code == 0
    assert _cli(world, "plan", "--shard", "1/2", "--out", "p1of2.json").exit_code == 0
    assert _cli(world, "plan", "--out", "whole.json").exit_code == 0
    done = _cli(world, "show", "p1.json", other)
    assert done.exit_code == 1
    assert f"{other}: cannot be shown with the other plans: {message}" in done.output


# ---- a state owns the AOIs it applied ---------------------------------------------------------


def test_a_shard_refuses_aois_another_state_owns_until_it_takes_them_over(
    world: Emulator, checkout: Path
) -> None:
    # The estate was applied unsharded: state.json owns Bengaluru-North and Pune-East.
    assert _cli(world, "apply", "--yes").exit_code == 0
    states = checkout / ".reconciler"
    assert _records(states / "state.json") == {BENGALURU, PUNE}

    # A shard's plan uses the owner's records (nothing to roll back again) and says whose.
    plan = _cli(world, "plan", "--shard", "3/4")
    assert plan.exit_code == 0
    assert "No changes" in plan.output
    assert "1 AOI of this plan is owned by another state" in " ".join(plan.output.split())
    # A scheduled drift job does not stay green on it: apply would refuse, so it is pending.
    assert _cli(world, "drift", "--shard", "3/4").exit_code == 2

    refused = _cli(world, "apply", "--yes", "--shard", "3/4")
    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert ".reconciler/state.json has records of 1 (Bengaluru-North)" in said
    assert "nothing was applied" in said and "--take-over" in said
    assert not (states / "state.shard-3-of-4.json").exists()
    # Both AOIs were left unfinished by an apply with state.json (a kill, say).
    owner = StateStore(states / "state.json")
    with owner.lock():
        owner.mark_pending({BENGALURU: "Bengaluru-North", PUNE: "Pune-East"})

    taken = _cli(world, "apply", "--yes", "--shard", "3/4", "--take-over")
    assert taken.exit_code == 0, taken.output
    assert _records(states / "state.shard-3-of-4.json") == {BENGALURU}
    assert _records(states / "state.json") == {PUNE}  # its other AOI stays its own
    # What was pending moved with the records, and the shard found nothing left to do there.
    assert StateStore(states / "state.json").load().pending == {PUNE: "Pune-East"}
    assert StateStore(states / "state.shard-3-of-4.json").load().pending == {}
    # Moved, not copied: no more warning, and both states plan nothing.
    assert _cli(world, "drift", "--shard", "3/4").exit_code == 0
    after = _cli(world, "plan", "--shard", "3/4", "--detailed-exitcode")
    assert after.exit_code == 0 and "owned by" not in after.output
    assert _cli(world, "plan", "--detailed-exitcode").exit_code == 0


def test_an_unsharded_apply_refuses_aois_a_shard_owns(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "apply", "--yes", "--shard", "1/4").exit_code == 0
    # Back to one job: its state holds nothing yet, so its first apply must take over.
    refused = _cli(world, "apply", "--yes")
    assert refused.exit_code == 1
    assert "state.shard-1-of-4.json has records of 1 (Pune-East)" in " ".join(
        refused.output.split()
    )
    assert _cli(world, "apply", "--yes", "--take-over").exit_code == 0
    # Pune-East's records moved; Bengaluru-North, nobody's yet, was applied into it too.
    assert _records(checkout / ".reconciler" / "state.json") == {PUNE, BENGALURU}
    assert _records(checkout / ".reconciler" / "state.shard-1-of-4.json") == set()


def test_a_remote_shard_finds_and_takes_over_from_its_family(
    world: Emulator, checkout: Path, s3: S3
) -> None:
    base = s3.url("team/state.json")
    assert _cli(world, "apply", "--yes", "--state", base).exit_code == 0
    refused = _cli(world, "apply", "--yes", "--state", base, "--shard", "1/4")
    assert refused.exit_code == 1
    assert "team/state.json has records of 1 (Pune-East)" in " ".join(refused.output.split())
    done = _cli(world, "apply", "--yes", "--state", base, "--shard", "1/4", "--take-over")
    assert done.exit_code == 0, done.output
    fs = s3.fs()
    shard_state = json.loads(fs.cat_file(f"{s3.bucket}/team/state.shard-1-of-4.json"))
    assert {r["aoi_id"] for r in shard_state["visualizations"].values()} == {PUNE}
    whole = json.loads(fs.cat_file(f"{s3.bucket}/team/state.json"))
    assert {r["aoi_id"] for r in whole["visualizations"].values()} == {BENGALURU}


def test_a_custom_index_is_created_by_the_first_shard_unless_another_needs_it(
    world: Emulator, checkout: Path
) -> None:
    declared = (
        "indices:\n  - {name: Shard-Index, expression: (B08-B05)/(B08+B05), "
        "expression_type: index,\n     rescale: [-1, 1], colormap: rdylgn,\n"
        "     satellite: 0005c5bb-0bd2-4c80-9393-4a808341c54c}\n"
    )
    (checkout / "specs" / "spec.yaml").write_text(
        declared
        + spec(aoi("Bengaluru-North", viz("Shard-Index")), aoi("Kochi-Coast", viz("NDVI"))),
        encoding="utf-8",
    )
    plans = [_plan_json(world, "--shard", f"{i}/4") for i in range(1, 5)]
    # The first shard creates every custom index; Bengaluru-North's shard (3) the one its
    # create needs, which is the same index: one create, adopted (409) by the later one.
    assert [len(p["indices"]) for p in plans] == [1, 0, 1, 0]


def test_a_refused_or_cancelled_take_over_moves_nothing(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "apply", "--yes", "--shard", "3/4").exit_code == 0
    states = checkout / ".reconciler"
    before = _records(states / "state.shard-3-of-4.json")
    # Back to one job, which has changes to make (Pune-East's): over --max-changes, refused.
    refused = _cli(world, "apply", "--yes", "--take-over", "--max-changes", "0")
    assert refused.exit_code == 1 and "nothing was applied" in refused.output
    assert _records(states / "state.shard-3-of-4.json") == before == {BENGALURU}
    assert not (states / "state.json").exists()
    # Asked, and not approved: nothing moves either.
    declined = run_cli("apply", "--take-over", url=world.url, key=SECRET, input="no\n")
    assert declined.exit_code == 1
    assert _records(states / "state.shard-3-of-4.json") == {BENGALURU}


def test_an_unreadable_state_beside_this_one_refuses_apply(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "apply", "--yes", "--shard", "3/4").exit_code == 0
    shard_state = checkout / ".reconciler" / "state.shard-3-of-4.json"
    kept = shard_state.read_bytes()
    shard_state.write_text('{"version": 99')
    # A plan still plans (and says why in the log); an apply cannot tell who owns what.
    assert _cli(world, "plan").exit_code == 0
    refused = _cli(world, "apply", "--yes")
    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert "cannot tell which AOIs the other states beside this one own" in said
    assert "state.shard-3-of-4.json" in said and "nothing was applied" in said
    assert not (checkout / ".reconciler" / "state.json").exists()
    shard_state.write_bytes(kept)


def test_a_stale_shard_plan_says_to_plan_that_shard_again(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "plan", "--shard", "3/4", "--out", "p3.json").exit_code == 0
    assert _cli(world, "apply", "--yes", "--shard", "3/4").exit_code == 0
    stale = _cli(world, "apply", "p3.json", "--yes")
    assert stale.exit_code == 1
    assert "reconciler plan --shard 3/4 --out p3.json" in " ".join(stale.output.split())


def test_an_empty_shard_is_refused_on_the_command_line_only(
    world: Emulator, checkout: Path
) -> None:
    empty = _cli(world, "plan", "--shard", "")
    assert empty.exit_code == 1 and "expected I/N" in empty.output
    unset = run_cli("plan", url=world.url, key=SECRET, env={"RECONCILER_SHARD": ""})
    assert unset.exit_code == 0, unset.output
    # A wrong value in the variable is told as the variable: nobody typed --shard.
    wrong = run_cli("plan", url=world.url, key=SECRET, env={"RECONCILER_SHARD": "5/4"})
    assert wrong.exit_code == 1
    assert "Invalid value for RECONCILER_SHARD: shard 5 of 4: I must be 1 to 4" in wrong.output


def test_one_shard_of_one_is_the_whole_estate(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "apply", "--yes", "--shard", "1/1").exit_code == 0
    assert [p.name for p in (checkout / ".reconciler").iterdir()] == ["state.json"]
    assert _cli(world, "apply", "--yes").exit_code == 0  # the same state: nothing refused


def test_a_take_over_alone_is_asked_for_too(world: Emulator, checkout: Path) -> None:
    for i in (1, 3):
        assert _cli(world, "apply", "--yes", "--shard", f"{i}/4").exit_code == 0
    states = checkout / ".reconciler"
    before = {p.name: p.read_bytes() for p in states.iterdir()}
    # Nothing to change, only records to move: still not without --yes (or a 'yes').
    asked = run_cli("apply", "--take-over", url=world.url, key=SECRET, input="yes\n")
    assert asked.exit_code == 1
    assert "refusing to apply without confirmation" in asked.output
    assert {p.name: p.read_bytes() for p in states.iterdir()} == before
    done = _cli(world, "apply", "--take-over", "--yes")
    assert done.exit_code == 0, done.output
    assert _records(states / "state.json") == {PUNE, BENGALURU}


def test_a_shards_state_without_its_shard_is_refused(world: Emulator, checkout: Path) -> None:
    assert _cli(world, "apply", "--yes", "--shard", "1/4").exit_code == 0
    shard_state = str(checkout / ".reconciler" / "state.shard-1-of-4.json")
    for command in ("plan", "apply", "drift"):
        done = _cli(world, command, "--state", shard_state, *(["--yes"] * (command == "apply")))
        assert done.exit_code == 1, command
        assert "is a shard's state: give --shard I/N with the unsharded --state" in " ".join(
            done.output.split()
        )
    # The state commands take it as it is.
    assert run_cli("state", "show", "--state", shard_state).exit_code == 0
