"""Shards: one estate split over several CI jobs (``--shard I/N``), each with its own state.

Pure, and light (``hashlib`` only): the command line parses ``--shard`` without the engine.

An AOI belongs to shard ``1 + (h mod N)``, where ``h`` is the first 8 bytes of the SHA-256 of
its id. The id, not the name: renaming an AOI does not move it, and neither does adding or
removing other AOIs (each AOI's shard depends on its own id only), so a shard's state keeps
the records of the AOIs it applied. Changing N moves most AOIs; their records move with
``apply --take-over`` (docs/sharding.md).

Each shard keeps its state beside the unsharded one (``state.family``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SPEC = re.compile(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*")
#: More shards than any CI matrix runs (GitHub allows 256 jobs per matrix).
MAX_SHARDS = 1000


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (from 1) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"the number of shards must be 1 to {MAX_SHARDS}, got {self.count}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index} of {self.count}: I must be 1 to {self.count}")

    def owns(self, aoi_id: str) -> bool:
        """Whether the AOI with this id is this shard's."""
        return shard_of(aoi_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(aoi_id: str, count: int) -> int:
    """The shard (1 to ``count``) the AOI with this id belongs to; the same on every machine."""
    digest = hashlib.sha256(aoi_id.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """'2/4' as ``Shard(2, 4)``; ``ValueError`` saying what was expected otherwise."""
    found = _SPEC.fullmatch(text)
    if found is None:
        raise ValueError(f"expected I/N, such as 2/4 (shard 2 of 4), got {text!r}")
    return Shard(int(found.group(1)), int(found.group(2)))
