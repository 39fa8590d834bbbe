"""Fuzz every reader of outside data (tests/fuzz_readers.py: EHR and registry resources, discovery, token
answers, Bulk manifests, CDS prefetch, the stored snapshot, the registration file) with a large budget
(≥ 100,000 examples in all) and print the count and any failure.

python3 scripts/fuzz_readers.py [--examples-per-reader N]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.fuzz_readers import READERS, mutated  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples-per-reader", type=int, default=5_000)
    args = parser.parse_args()
    total, failures = 0, 0
    started = time.monotonic()
    for kind in sorted(READERS):
        count = 0

        @settings(max_examples=args.examples_per_reader, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(mutated(kind))
        def check(resource: Any) -> None:
            nonlocal count
            count += 1
            for reader in READERS[kind]:  # noqa: B023 - run at once, inside this iteration
                reader(resource)

        try:
            check()
            status = "ok"
        except Exception:  # noqa: BLE001 - report every failure and go on
            failures += 1
            status = "FAILED\n" + traceback.format_exc(limit=-3)
        total += count
        sys.stdout.write(f"{kind:<20} {count:>7} examples  {status}\n")
    sys.stdout.write(
        f"total {total} examples in {time.monotonic() - started:.0f} s, {failures} failing reader group(s)\n"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
