"""The long fuzz profile: many mutated files per format, outcome counts printed per format.

    PYTHONPATH=src:. python benchmarks/fuzz_long.py --cases 100000 --workers 2

Cases are spread evenly over the formats (``--format`` picks some) and drawn from
``random.Random(--seed)``, so a run is repeatable. Every failing case is printed
with its mutations and traceback (and written, one JSON object a line, to
``--failures``); the exit status is 1 if there was any. See `properties.fuzz`.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from properties import fuzz


def main() -> int:
    """Run the long profile; 0 when no case failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--format", action="append", choices=fuzz.FORMATS, dest="formats")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", type=Path, default=Path("fuzz-failures.jsonl"))
    args = parser.parse_args()
    formats = args.formats or list(fuzz.FORMATS)
    rng = random.Random(args.seed)
    counts: dict[str, collections.Counter[str]] = {f: collections.Counter() for f in formats}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vz-fuzz-") as folder:
        seeds = fuzz.make_seeds(Path(folder) / "seeds", formats)
        cases = (
            (fmt, fuzz.draw_ops(rng.randint, seeds[fmt]))
            for n in range(args.cases)
            for fmt in [formats[n % len(formats)]]
        )
        with (
            fuzz.WorkerPool(seeds, Path(folder) / "work", args.workers) as pool,
            args.failures.open("w") as failures,
        ):
            for done, ((fmt, ops), (outcome, detail)) in enumerate(pool.map(cases), 1):
                counts[fmt][outcome] += 1
                if outcome in fuzz.FAILURES:
                    print(f"FAILURE {outcome}: {fuzz.describe(seeds[fmt], ops)}\n{detail}")
                    record = {"format": fmt, "ops": ops, "outcome": outcome, "detail": detail}
                    failures.write(json.dumps(record) + "\n")
                if done % 5000 == 0:
                    print(f"{done} cases, {time.monotonic() - started:.0f} s", flush=True)
    total = sum(sum(c.values()) for c in counts.values())
    failed = sum(n for c in counts.values() for o, n in c.items() if o in fuzz.FAILURES)
    seen = [o for o in fuzz.OUTCOMES if any(c[o] for c in counts.values())]
    print(f"\n{total} cases in {time.monotonic() - started:.0f} s, {failed} failures")
    print("format".ljust(18) + "".join(o.rjust(18) for o in ["cases", *seen]))
    for fmt, c in counts.items():
        row = [sum(c.values()), *(c[o] for o in seen)]
        print(fmt.ljust(18) + "".join(str(n).rjust(18) for n in row))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
