"""Run fault cases and print what each measured, as a Markdown table (for issue notes).

    python -m tests.faults.report [--cases api_stop,pg_restart] [--parallel 2] [--json out.json]

``VIGIL_FAULTS_TREE=/path/to/checkout`` runs the processes of another checkout (its ``.venv``):
the same cases measure "before" on an older commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from tests.faults.analysis import Report
from tests.faults.cases import CASES, run_case

COLUMNS = (
    "case",
    "slots",
    "gaps",
    "max_probes",
    "slots_probed_twice",
    "probe_bursts",
    "missed",
    "missed_unexplained",
    "late",
    "worst_late_secs",
    "rollup_mismatches",
    "false_incidents",
    "recovery_secs",
)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " | notes |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [str(row[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | {row['notes']} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--keep", action="store_true", help="keep each case's database folder (named in notes)"
    )
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n]
    gate = asyncio.Semaphore(args.parallel)

    async def one(name: str) -> Report | None:
        async with gate:
            workdir = Path(tempfile.mkdtemp(prefix=f"fault-{name}-"))
            try:
                report, _ = await run_case(name, workdir, keep=args.keep)
            except Exception as exc:  # one case failing to run does not end the others
                failed = {"case": name, "failed": repr(exc), "workdir": str(workdir)}
                print(json.dumps(failed), flush=True)
                return None
            print(json.dumps(report.row(), default=str), flush=True)
            return report

    reports = await asyncio.gather(*(one(n) for n in names))
    rows = [r.row() for r in reports if r is not None]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
