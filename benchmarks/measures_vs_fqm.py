"""Benchmark and agreement report: Tandem's CMS2 and CMS159 against the official eCQM engine (issue 29).

    python3 benchmarks/measures_vs_fqm.py [--size 2000] [--seed 29] [--spark-sample 0] [--show 10]
                                          [--official-valuesets] [--keep DIR]

Builds the seeded synthetic population (tests/measures/synthetic.py: every population path and boundary of both
measures), runs it through fqm-execution 1.8.6 with the official measure bundles (both measures in one Node
process) and through Tandem (flatten to Parquet, then the measures on DuckDB; `--spark-sample N` also runs N
patients on Spark), then prints:
- the agreement per measure and population (initial population, denominator, exclusion, numerator, exception),
  patients agreeing / patients compared, with fqm-execution's proportion semantics applied to both sides;
- the disagreements grouped by kind (which populations differ, which way) with the paths they were built for,
  and the first `--show` disagreements in full (the patient, its path, both results);
- with `--official-valuesets`, the same for Tandem given the bundles' expansions in place of its shipped value
  sets (a diagnostic: what is left is the logic's);
- Tandem's patients per second against fqm-execution's on the same patients (fqm-execution: ~25–35 per second
  on this machine), Tandem's with and without the flattening.
Needs fqm-execution (scripts/test.sh installs it into ~/.cache/tandem/fqm) and the measure bundles
(../shared/reference/ecqm). Exits 1 when any patient disagrees.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.measures import fqm, synthetic  # noqa: E402


def print(*parts: object) -> None:
    """The report goes to stdout (as in benchmarks/measures.py)."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="patients at least (every path equally often)")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--spark-sample", type=int, default=0, help="also run this many patients on Spark")
    parser.add_argument("--show", type=int, default=10, help="disagreements to print in full")
    parser.add_argument(
        "--official-valuesets",
        action="store_true",
        help="also run Tandem with the bundles' expansions (tells value-set gaps from logic gaps)",
    )
    parser.add_argument(
        "--keep", type=Path, help="write the population and tables here (default: a temp dir)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tandem-vs-fqm-") as scratch:
        folder = args.keep or Path(scratch)
        people = synthetic.population(fqm.valueset_codes(), size=args.size, seed=args.seed)
        paths = {p.pid: p.path for p in people}
        bundles, ndjson = synthetic.write(people, folder)
        resources = sum(len(p.resources) for p in people)
        print(f"population: {len(people)} patients, {resources} resources, {len(set(paths.values()))} paths, "
              f"seed {args.seed}")  # fmt: skip

        official, fqm_timings = fqm.run_fqm(bundles)
        missing = fqm.missing_from_official(official, paths)
        if missing:
            print(f"fqm-execution gave no result for {len(missing)} patients, e.g. {missing[:5]}")
            return 2

        started = time.perf_counter()
        tables = fqm.flatten(ndjson, folder / "tables")
        flatten_seconds = time.perf_counter() - started
        tandem, tandem_seconds = fqm.run_tandem(tables, engine="duckdb")
        agreement, disagreements = fqm.compare(official, tandem, paths)
        report("DuckDB", agreement, disagreements, args.show)
        if args.official_valuesets:
            from fhir_mappings.measures.valuesets import VALUESETS

            with_official, _ = fqm.run_tandem(
                tables, engine="duckdb", valuesets=fqm.official_valuesets(VALUESETS)
            )
            official_agreement, official_disagreements = fqm.compare(official, with_official, paths)
            report("DuckDB with the bundles' value-set expansions (diagnostic)", official_agreement,
                   official_disagreements, args.show)  # fmt: skip

        print("\nspeed (patients per second, the same patients)")
        print(f"  Tandem flatten (NDJSON -> Parquet): {flatten_seconds:.2f} s for {len(people)} patients")
        for measure, timing in fqm_timings.items():
            ours = tandem_seconds[measure]
            print(f"  {measure:7s} fqm-execution {timing.per_second:8.1f}/s ({timing.seconds:.1f} s)   "
                  f"Tandem DuckDB {len(people) / ours:8.1f}/s ({ours:.2f} s), "
                  f"with the flattening {len(people) / (ours + flatten_seconds):8.1f}/s   "
                  f"ratio {timing.seconds / ours:.0f}x")  # fmt: skip

        spark_disagreements: list[fqm.Disagreement] = []
        if args.spark_sample:
            sample = sorted(
                random.Random(args.seed).sample(  # noqa: S311 - a seeded sample, not a secret
                    sorted(paths), min(args.spark_sample, len(paths))
                )
            )
            spark, spark_seconds = fqm.run_tandem(tables, engine="spark", patients=sample)
            spark_agreement, spark_disagreements = fqm.compare(official, spark, paths, patients=sample)
            report(f"Spark (sample of {len(sample)})", spark_agreement, spark_disagreements, args.show)
            for measure, seconds in spark_seconds.items():
                print(f"  {measure:7s} Tandem Spark {len(sample) / seconds:8.1f}/s ({seconds:.2f} s)")
    return 1 if disagreements or spark_disagreements else 0


def report(engine: str, agreement: dict[str, dict[str, tuple[int, int]]], disagreements: list[fqm.Disagreement],
           show: int) -> None:  # fmt: skip
    print(f"\nagreement with fqm-execution, Tandem on {engine} (patients agreeing / compared)")
    print(
        "  measure  " + "  ".join(f"{short:>16s}" for short in fqm.POPULATIONS.values()) + "  all populations"
    )
    for measure, counts in agreement.items():
        total = counts["initial-population"][1]
        whole = total - len({d.patient for d in disagreements if d.measure == measure})
        cells = "  ".join(f"{ok:5d}/{n:<5d} {100 * ok / n:5.1f}%" for ok, n in counts.values())
        print(f"  {measure:7s}  {cells}  {whole:5d}/{total} {100 * whole / total:5.1f}%")
    if not disagreements:
        print("  every patient agrees on every population")
        return
    kinds: Counter[str] = Counter(d.kind for d in disagreements)
    examples: dict[str, Counter[str]] = defaultdict(Counter)
    for d in disagreements:
        examples[d.kind][d.path] += 1
    print(f"\n{len(disagreements)} disagreements by kind (patients; the paths they were built for)")
    for kind, n in kinds.most_common():
        built = ", ".join(f"{path} ({k})" for path, k in examples[kind].most_common(6))
        more = len(examples[kind]) - 6
        print(f"  {n:5d}  {kind}\n         {built}{f', and {more} more paths' if more > 0 else ''}")
    print(f"\nthe first {min(show, len(disagreements))} in full:")
    for d in disagreements[:show]:
        print(f"  {d}")


if __name__ == "__main__":
    raise SystemExit(main())
