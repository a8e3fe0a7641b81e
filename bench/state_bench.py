"""What one state record costs as the state grows: CPU and wall time per ``record_*``.

Apply records every finished change at once, so a crash loses nothing; if a record cost grew
with the number of records already in the state, apply would be quadratic in AOIs. This records
N fresh visualizations and then one rollback on each (what a first apply of N visualizations
with rollbacks does), from ``--threads`` threads like apply's workers, into a local state file
(and, with ``--s3``, a remote one on a moto server on 127.0.0.1), and prints per-record cost at
each size, plus the final write::

    python bench/state_bench.py --records 100 1000 5000

Nothing here asserts: it prints figures (speed goals are read, never timed in tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    from reconciler.state.store import StateStore
except ImportError:  # an older checkout, for a before/after comparison
    from reconciler.state.records import StateStore  # type: ignore[attr-defined,no-redef]

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-02T00:00:00Z"
DATES = ["2024-05-06", "2024-11-20", "2025-02-01", "2025-05-02"]


def _run(records: int, threads: int, make_store: Callable[[], StateStore]) -> tuple[float, ...]:
    store = make_store()
    store.load()

    def one(i: int) -> None:
        vid = f"viz-{i:06d}"
        store.record_fresh(vid, aoi_id=f"aoi-{i}", legends={"dynamic": DATES}, updated_at=T0)
        store.record_rollback(
            vid,
            aoi_id=f"aoi-{i}",
            mode="theoretical",
            dates=DATES[:2],
            revision=1,
            updated_at=T1,
            previous_updated_at=T0,
        )

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(records)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    final_cpu, final_wall = time.process_time(), time.perf_counter()
    flush = getattr(store, "flush", None)
    if flush is not None:  # the old store wrote the whole file in every record_* instead
        flush()
    final_cpu, final_wall = time.process_time() - final_cpu, time.perf_counter() - final_wall
    assert len(make_store().load().visualizations) == records
    n = 2 * records
    return cpu / n * 1e3, wall / n * 1e3, final_cpu * 1e3, final_wall * 1e3


def _print(label: str, sizes: list[int], threads: int, make: Callable[[int], StateStore]) -> None:
    print(f"\n{label} ({threads} threads): per record_* call, then the final full write")
    print(
        f"{'records':>9} {'CPU ms/rec':>11} {'wall ms/rec':>12} {'final CPU ms':>13} "
        f"{'final wall ms':>14}"
    )
    for size in sizes:
        cpu, wall, fcpu, fwall = _run(size, threads, lambda size=size: make(size))
        print(f"{2 * size:>9} {cpu:>11.3f} {wall:>12.3f} {fcpu:>13.1f} {fwall:>14.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        type=int,
        nargs="+",
        default=[100, 1000, 5000],
        help="visualizations recorded per run (each gets 2 records)",
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--s3", action="store_true", help="also a remote state on moto")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _print(
            "local state file",
            args.records,
            args.threads,
            lambda size: StateStore(tmp / f"state-{size}.json"),
        )
        if args.s3:
            _bench_s3(args.records, args.threads, tmp)


def _bench_s3(sizes: list[int], threads: int, tmp: Path) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=f"http://{host}:{port}",
    )
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import fsspec

    fsspec.filesystem("s3").mkdir("bench")
    try:
        _print(
            "remote state on moto (uploaded once, at the end)",
            sizes,
            threads,
            lambda size: StateStore(f"s3://bench/state-{size}.json", journal_dir=tmp / "j"),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
