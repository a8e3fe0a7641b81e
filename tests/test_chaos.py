"""bench/chaos.py, bounded: apply under faults and SIGKILLs loses nothing and duplicates nothing.

The script itself runs (a real emulator, real ``reconciler apply`` processes killed with
SIGKILL), on a small world so it takes seconds; ``python bench/chaos.py`` is the full size.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CHAOS = Path(__file__).resolve().parents[1] / "bench" / "chaos.py"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_chaos_loses_nothing_and_duplicates_nothing() -> None:
    args = ["--aois", "6", "--kills", "2", "--retry-after", "0", "--seed", "3"]
    done = subprocess.run(
        [sys.executable, str(CHAOS), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^faults injected: [1-9]\d* ", out, re.M), out
    assert re.search(r"^SIGKILLs:        [12] of 2 landed mid-apply$", out, re.M), out
    assert re.search(
        r"^duplicates:      0 \(\d+ creates? answered 409, \d+ adopted by apply\)$", out, re.M
    ), out
    assert re.search(r"^rollbacks lost:  0 of 90 declared", out, re.M), out
    assert re.search(r"^legends lost:    0 of 36 declared custom legends$", out, re.M), out
    assert re.search(r"^indices twice:   0 ", out, re.M), out
    assert re.search(r"^final plan:      empty \(no changes\)$", out, re.M), out
    assert "Traceback" not in done.stderr
