"""Chaos: apply under injected faults and SIGKILLs, then prove nothing was duplicated or lost.

Builds a world of N AOIs (3 dated assets each) where every AOI declares 3 visualizations with
rollbacks of both legend modes on every date: one exists with hand-edited legends, one exists
untouched, one must be created; the untouched one also gets a custom theoretical legend of
its own on every date instead of a rollback. The specs also declare a custom index, and every
AOI a visualization over it with a custom dynamic legend (3 bins, colours and labels). The
emulator (on 127.0.0.1, in this process) injects latency, 10% 5xx, 5% 429 with Retry-After,
3% dropped connections and 3% lost create responses. Then:

1. ``reconciler apply`` (a real subprocess) is SIGKILLed at random moments, several times;
2. apply is re-run until it succeeds (bounded), and a final ``reconciler plan`` must be empty.

It prints the faults injected, the retries the client logged, the applies needed, duplicates
(visualizations with the same AOI, index and asset set: must be 0; the emulator, like the API,
answers 409 to a create of one that exists, so it also prints how many creates were answered
409 and how many of them apply adopted: a re-sent create must be taken as "already present",
never as a failure) and rollbacks lost (declared
(mode, date) legends that are not the auto-computed one in the emulator: must be 0), custom
legends lost (declared ones that the emulator does not show as declared: must be 0) and custom
indices made more than once (must be 0), and exits non-zero if any is not 0 or the final plan is
not empty. Bounded: a fixed number of kills
and applies, each with a timeout; then it stops.

    python bench/chaos.py                      # 50 AOIs, 4 kills
    python bench/chaos.py --aois 100 --kills 8 --seed 7
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from reconciler.emulator import Emulator, FaultConfig, World
from reconciler.emulator.world import SATELLITE_ID
from reconciler.text import plural

KEY = "chaos-key-5b1e"
INDICES = ("NDVI", "NDWI", "SAVI")  # edited by hand, untouched, missing
DATES = ("2024-03-01", "2024-07-15", "2024-11-30")
RETRY_LINE = re.compile(r"; retry \d+ of ")
#: Seconds any one reconciler process may run before the benchmark gives up on it.
PROCESS_TIMEOUT = 300.0


def make_world(aois: int) -> dict[str, Any]:
    indices = [
        {"name": name, "type": "preset", "expression_type": "index", "expression": "x"}
        for name in INDICES
    ]
    world_aois = [
        {
            "name": f"Chaos-{n:03d}",
            "assets": [
                {"name": f"Chaos-{n:03d}-{k}", "date": date} for k, date in enumerate(DATES)
            ],
        }
        for n in range(aois)
    ]
    existing = [
        {"aoi": f"Chaos-{n:03d}", "index": index} for n in range(aois) for index in INDICES[:2]
    ]
    return {"indices": indices, "aois": world_aois, "visualizations": existing}


CUSTOM_INDEX = "Chaos-Red-Edge"
#: The custom legends: NDWI's theoretical legend of every date, and the custom index's dynamic
#: one (mode -> items, bins).
THEORETICAL = [
    {"min": -1.0, "max": 0.0, "color": "#d7191c", "label": "Dry"},
    {"min": 0.0, "max": 1.0, "color": "#2b83ba", "label": "Wet"},
]
DYNAMIC = [
    {"color": c, "label": f"Bin {n}"} for n, c in enumerate(("#d7191c", "#ffffbf", "#1a9641"))
]


def make_spec(aois: int) -> dict[str, Any]:
    both = [{"mode": mode, "dates": list(DATES)} for mode in ("dynamic", "theoretical")]

    def declared(index: str) -> dict[str, Any]:
        if index != "NDWI":
            return {"index": index, "rollback": both}
        return {
            "index": index,
            "rollback": both[:1],
            "legend": [{"mode": "theoretical", "dates": list(DATES), "items": THEORETICAL}],
        }

    custom = {
        "index": CUSTOM_INDEX,
        "legend": [{"mode": "dynamic", "dates": list(DATES), "bins": 3, "items": DYNAMIC}],
    }
    return {
        "indices": [
            {
                "name": CUSTOM_INDEX,
                "description": "made by chaos",
                "expression": "(B08-B05)/(B08+B05)",
                "expression_type": "index",
                "rescale": [-1, 1],
                "colormap": "rdylgn",
                "satellite": SATELLITE_ID,
            }
        ],
        "aois": [
            {
                "aoi": {"name": f"Chaos-{n:03d}"},
                "visualizations": [*(declared(index) for index in INDICES), custom],
            }
            for n in range(aois)
        ],
    }


def edit_legends_by_hand(emulator: Emulator) -> int:
    """Replace every legend of every NDVI visualization, as a person would; return how many."""
    edited = 0
    with emulator.lock:
        world = emulator.world
        ndvi = world.index_by_ref("NDVI")
        assert ndvi is not None
        for viz in world.visualizations:
            if viz.index_id != ndvi.id:
                continue
            for mode in ndvi.modes:
                legends = {key: [{"label": "by hand"}] for key in world.dates_of(viz)}
                world.set_legend(viz, mode, legends, emulator.clock())
                edited += len(legends)
    return edited


def duplicates(emulator: Emulator) -> int:
    """Visualizations beyond the first with the same AOI, index and set of assets."""
    with emulator.lock:
        seen: dict[tuple[str, str, frozenset[str]], int] = {}
        for viz in emulator.world.visualizations:
            key = (viz.aoi_id, viz.index_id, frozenset(viz.asset_ids))
            seen[key] = seen.get(key, 0) + 1
    return sum(count - 1 for count in seen.values())


def rollbacks_lost(emulator: Emulator, spec: dict[str, Any]) -> tuple[int, int]:
    """(declared (mode, date) legends not auto-computed in the emulator, declared in total)."""
    lost = total = 0
    with emulator.lock:
        world = emulator.world
        for entry in spec["aois"]:
            aoi = world.aoi_by_name(entry["aoi"]["name"])
            assert aoi is not None
            for declared in entry["visualizations"]:
                index = world.index_by_ref(declared["index"])
                assert index is not None
                viz = world.find_same(aoi.id, index.id, [a.id for a in aoi.assets])
                for rollback in declared.get("rollback", ()):
                    for date in rollback["dates"]:
                        total += 1
                        key = date.replace("-", "_")
                        if viz is None or viz.status != "success":
                            lost += 1
                            continue
                        wanted = world.auto_legend(viz, rollback["mode"], key)
                        if viz.legend.get(key, {}).get(rollback["mode"]) != wanted:
                            lost += 1
    return lost, total


def legends_lost(emulator: Emulator, spec: dict[str, Any]) -> tuple[int, int]:
    """(declared custom (mode, date) legends the emulator does not show as declared, declared
    in total): the colours and labels of every range, and the bounds declared."""
    lost = total = 0
    with emulator.lock:
        world = emulator.world
        for entry in spec["aois"]:
            aoi = world.aoi_by_name(entry["aoi"]["name"])
            assert aoi is not None
            for declared in entry["visualizations"]:
                index = world.index_by_ref(declared["index"])
                for legend in declared.get("legend", ()):
                    for date in legend["dates"]:
                        total += 1
                        viz = None
                        if index is not None:
                            viz = world.find_same(aoi.id, index.id, [a.id for a in aoi.assets])
                        if viz is None or viz.status != "success":
                            lost += 1
                            continue
                        shown = world.legend_of(viz, legend["mode"], date.replace("-", "_"))
                        if not _as_declared(shown, legend["items"]):
                            lost += 1
    return lost, total


def _as_declared(shown: list[dict[str, Any]], items: list[dict[str, Any]]) -> bool:
    return len(shown) == len(items) and all(
        all(got.get(k) == v for k, v in want.items())
        for got, want in zip(shown, items, strict=True)
    )


def indices_made_twice(emulator: Emulator) -> int:
    """Custom indices beyond the first of the same name."""
    with emulator.lock:
        names = [i.name for i in emulator.world.indices if i.name == CUSTOM_INDEX]
    return max(0, len(names) - 1)


ITEM_LINE = re.compile(r"\b(created|adopted|rolled back|legend set|failed|skipped): ")
# Logged (-v) when a create meets a 409 and the existing one is taken: counted even when the
# apply is killed before its summary.
ADOPTED_LINE = re.compile(r" already exists as \S+: adopting it")


class Apply:
    """One ``reconciler apply`` process, its output read as it comes (so a kill can follow it)."""

    def __init__(self, command: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.items = 0
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)
                if ITEM_LINE.search(line):
                    self.items += 1

    def kill_after(self, *, seconds: float | None = None, items: int | None = None) -> bool:
        """SIGKILL after ``seconds`` or ``items`` finished changes; False if it ended first."""
        deadline = time.monotonic() + (seconds if seconds is not None else PROCESS_TIMEOUT)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if items is not None and self.items >= items:
                break
            time.sleep(0.01)
        self.process.send_signal(signal.SIGKILL)
        return True

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> tuple[int, str]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        return self.process.returncode, "".join(self.lines)


class Runner:
    """Runs reconciler commands as real processes against the emulator; counts their retries."""

    def __init__(self, workdir: Path, url: str) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "PIXXEL_API_KEY": KEY, "PIXXEL_API_URL": url}
        self.retries = 0
        self.adopted = 0

    def start(self, *args: str) -> Apply:
        command = [sys.executable, "-m", "reconciler", "-v", *args]
        return Apply(command, self.workdir, self.env)

    def start_apply(self) -> Apply:
        return self.start("apply", "specs", "--yes", "--state", "state.json")

    def finish(self, process: Apply) -> tuple[int, str]:
        code, output = process.finish()
        self.retries += len(RETRY_LINE.findall(output))
        self.adopted += len(ADOPTED_LINE.findall(output))
        return code, output

    def run(self, *args: str) -> tuple[int, str]:
        return self.finish(self.start(*args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aois", type=int, default=50, help="AOIs in the world (default 50)")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLed applies (default 4)")
    parser.add_argument("--max-applies", type=int, default=6, help="full applies at most")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--creation-delay", type=float, default=0.3)
    parser.add_argument("--retry-after", type=int, default=1, help="429s ask for this (s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="reconciler-chaos-") as tmp:
        workdir = Path(tmp)
        world_file = workdir / "world.yaml"
        world_file.write_text(yaml.safe_dump(make_world(args.aois)))
        spec = make_spec(args.aois)
        (workdir / "specs").mkdir()
        (workdir / "specs" / "chaos.yaml").write_text(yaml.safe_dump(spec))

        faults = FaultConfig(
            seed=args.seed,
            latency_ms=args.latency_ms,
            error_rate=0.10,
            rate_limit_rate=0.05,
            retry_after=args.retry_after,
            drop_rate=0.03,
            lost_response_rate=0.03,
        )
        emulator = Emulator(
            World.from_yaml(world_file),
            api_keys=(KEY,),
            creation_delay=args.creation_delay,
            faults=faults,
        )
        with emulator:
            edited = edit_legends_by_hand(emulator)
            runner = Runner(workdir, emulator.url)
            print(
                f"world: {args.aois} AOIs x {len(INDICES) + 1} visualizations "
                f"({2 * args.aois} to create, half over a custom index to create), "
                f"{edited} legends edited by hand; faults: "
                f"{args.latency_ms:g} ms latency, 10% 5xx, 5% 429, 3% drops, 3% lost creates"
            )
            started = time.monotonic()

            landed = 0
            for kill in range(1, args.kills + 1):
                process = runner.start_apply()
                # Half the kills at a random time (often while planning), half after a random
                # number of finished changes (while creating, waiting or rolling back).
                if kill % 2:
                    seconds = rng.uniform(0.3, 3.0)
                    moment, killed = f"after {seconds:.1f} s", process.kill_after(seconds=seconds)
                else:
                    items = rng.randint(1, 2 * args.aois)
                    moment, killed = f"after {items} changes", process.kill_after(items=items)
                landed += killed
                done = "SIGKILLed apply" if killed else "apply finished before the SIGKILL"
                runner.finish(process)
                print(f"kill {kill}: {done} {moment}")

            applies, converged = 0, False
            while applies < args.max_applies and not converged:
                applies += 1
                code, output = runner.finish(runner.start_apply())
                summary = [line for line in output.splitlines() if line.startswith("Apply ")]
                print(f"apply {applies}: exit {code}; {summary[-1] if summary else 'no changes'}")
                if code != 0 and "lock" in output:
                    time.sleep(2)  # a lock file from a killed apply being taken over
                converged = code == 0

            plan_code, plan_output = runner.run(
                "plan", "specs", "--state", "state.json", "--detailed-exitcode"
            )
            lost, declared = rollbacks_lost(emulator, spec)
            legends_missing, legends_declared = legends_lost(emulator, spec)
            twice = indices_made_twice(emulator)
            dupes = duplicates(emulator)
            conflicts = emulator.counter.conflicts
            elapsed = time.monotonic() - started
            injected = emulator.faults_injected
            requests = emulator.counter.total

        final = "empty (no changes)" if plan_code == 0 else f"NOT empty (exit {plan_code})"
        print()
        print(f"faults injected: {sum(injected.values())} {dict(sorted(injected.items()))}")
        print(f"retries:         {runner.retries} (logged by the client, {requests} requests)")
        print(f"SIGKILLs:        {landed} of {args.kills} landed mid-apply")
        outcome = "converged" if converged else "NOT converged"
        print(f"applies needed:  {applies} after the kills ({outcome})")
        print(
            f"duplicates:      {dupes} ({plural(conflicts, 'create')} answered 409, "
            f"{runner.adopted} adopted by apply)"
        )
        print(f"rollbacks lost:  {lost} of {declared} declared (mode, date) legends")
        print(f"legends lost:    {legends_missing} of {legends_declared} declared custom legends")
        print(f"indices twice:   {twice} (custom index {CUSTOM_INDEX})")
        print(f"final plan:      {final}")
        print(f"wall time:       {elapsed:.1f} s")
        if plan_code != 0:
            print(plan_output)
        clean = dupes == 0 and lost == 0 and legends_missing == 0 and twice == 0
        return 0 if clean and plan_code == 0 and converged else 1


if __name__ == "__main__":
    sys.exit(main())
