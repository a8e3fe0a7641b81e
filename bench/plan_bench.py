"""Benchmark: how many requests a plan issues, and how wall time scales with --parallelism.

Generates a world of N AOIs (each with paging-sized asset and visualization listings), starts
the emulator on 127.0.0.1 with a fixed added latency, and plans a spec that declares something
on every AOI. Prints, per parallelism: requests, wall time, and the ideal
``requests x latency / parallelism`` the design aims for. Bounded: a few plans, then it stops.

    python bench/plan_bench.py                 # defaults: 40 AOIs, 50 ms latency
    python bench/plan_bench.py --aois 100 --latency-ms 100 --parallelism 1 8 32
    python bench/plan_bench.py --selector      # one selector over every AOI, `assets: any`
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from reconciler.emulator import Emulator, FaultConfig, World
from reconciler.run.engine import Engine
from reconciler.run.settings import Settings

KEY = "bench-key"


def make_world(aois: int, assets: int) -> dict[str, object]:
    ndvi = str(uuid.uuid4())
    world_aois, visualizations = [], []
    for n in range(aois):
        name = f"AOI-{n:04d}"
        dated = [
            {
                "id": str(uuid.uuid4()),
                "name": f"{name}-{k:02d}",
                "date": f"2024-{1 + k % 12:02d}-{1 + k // 12:02d}",
            }
            for k in range(assets)
        ]
        world_aois.append({"id": str(uuid.uuid4()), "name": name, "assets": dated})
        for k in range(assets - 1):  # paging-sized visualization listings too
            visualizations.append(
                {
                    "id": str(uuid.uuid4()),
                    "aoi": name,
                    "index": "NDVI",
                    "assets": [dated[k]["name"]],
                }
            )
    return {
        "indices": [
            {
                "id": ndvi,
                "name": "NDVI",
                "type": "preset",
                "expression_type": "index",
                "expression": "x",
            }
        ],
        "aois": world_aois,
        "visualizations": visualizations,
    }


def make_spec(aois: int) -> dict[str, object]:
    return {
        "aois": [
            {
                "aoi": {"name": f"AOI-{n:04d}"},
                "visualizations": [
                    {
                        "index": "NDVI",
                        "assets": [f"AOI-{n:04d}-00"],
                        "rollback": [{"mode": "dynamic", "dates": ["2024-01-01"]}],
                    }
                ],
            }
            for n in range(aois)
        ]
    }


def make_selector_spec() -> dict[str, object]:
    """One declaration for every AOI: an NDVI exists on each, so no asset listing is needed."""
    return {
        "selectors": [
            {
                "match": {"names": ["AOI-*"]},
                "visualizations": [{"index": "NDVI", "assets": "any"}],
            }
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aois", type=int, default=40)
    parser.add_argument("--assets", type=int, default=12)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument(
        "--selector", action="store_true", help="plan one selector instead of per-AOI entries"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        world_path = Path(tmp, "world.yaml")
        world_path.write_text(yaml.safe_dump(make_world(args.aois, args.assets)))
        spec_dir = Path(tmp, "specs")
        spec_dir.mkdir()
        spec = make_selector_spec() if args.selector else make_spec(args.aois)
        (spec_dir / "bench.yaml").write_text(yaml.safe_dump(spec))

        emulator = Emulator(
            World.from_yaml(world_path),
            api_keys=(KEY,),
            faults=FaultConfig(latency_ms=args.latency_ms),
        )
        with emulator:
            print(f"{args.aois} AOIs x {args.assets} assets, {args.latency_ms:g} ms per request")
            print(f"{'parallelism':>11} {'requests':>9} {'wall s':>8} {'ideal s':>8} {'ratio':>6}")
            for parallelism in args.parallelism:
                emulator.counter.reset()
                settings = Settings(
                    api_url=emulator.url,
                    parallelism=parallelism,
                    state=Path(tmp, "no-state.json"),
                    environ={"PIXXEL_API_KEY": KEY},
                )
                started = time.perf_counter()
                Engine(settings).plan([str(spec_dir)])
                wall = time.perf_counter() - started
                requests = emulator.counter.total
                ideal = requests * args.latency_ms / 1000 / parallelism
                ratio = wall / ideal
                print(f"{parallelism:>11} {requests:>9} {wall:>8.2f} {ideal:>8.2f} {ratio:>6.2f}")
            # AOIs + indices, then per AOI its visualizations (and assets, unless `any` settles)
            lower = 2 + (1 if args.selector else 2) * args.aois
            print(f"lower bound on requests for this spec: {lower}")


if __name__ == "__main__":
    main()
