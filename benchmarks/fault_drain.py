"""The write-back fault run with 100 screenings through the real sandbox (EHR 500s, lost answers past the client's
timeout, the registry store and Redis stopped and restarted mid-run), drained by a real `tandem worker`; counts
by reading the EHR and the registry, and prints lost / duplicated / unconfirmed / time to drain first.

python3 benchmarks/fault_drain.py [--count 100]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.fault_run import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    counts = run(args.count, log=lambda text: sys.stdout.write(text + "\n"))
    sys.stdout.write(json.dumps(counts, indent=2) + "\n")


if __name__ == "__main__":
    main()
