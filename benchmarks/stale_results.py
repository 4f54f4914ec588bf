"""Which benchmark results the working tree has outrun: for every benchmarks/results_*.json, each
"provenance" record in it (benchmarks/provenance.py) is checked against the hash of the same
source paths now. Run it before a stop; re-measure or remove what it lists as stale.

Prints a line per stale results file (the commit measured, the files changed since; --all also
lists the current and the unrecorded ones, measured before the record existed), then the counts.
Exit status 1 when any result is stale.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provenance import ROOT, source_hash


def provenance_records(node: Any) -> Iterator[dict]:
    """Every dict stored under a "provenance" key, at any depth (a curves file has one per run)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "provenance" and isinstance(value, dict) and "source" in value:
                yield value
            else:
                yield from provenance_records(value)
    elif isinstance(node, list):
        for item in node:
            yield from provenance_records(item)


def changed_since(commit: str, paths: list[str], root: Path) -> list[str]:
    """Files of `paths` that differ between `commit` and the working tree ([] if git cannot say)."""
    proc = subprocess.run(
        ["git", "diff", "--name-only", commit, "--", *paths], cwd=root, capture_output=True, text=True
    )
    return proc.stdout.split() if proc.returncode == 0 else []


def check(path: Path, root: Path = ROOT) -> tuple[str, str]:
    """(status, detail) of one results file: "current", "stale" or "unrecorded"."""
    records = list(provenance_records(json.loads(path.read_text())))
    if not records:
        return "unrecorded", "no provenance"
    stale = [r for r in records if source_hash(r["source"]["paths"], root) != r["source"]["sha256"]]
    commits = sorted({r["commit"] for r in records})
    if not stale:
        return "current", f"measured on {', '.join(commits)}"
    changed = sorted({f for r in stale for f in changed_since(r["commit"], r["source"]["paths"], root)})
    first = stale[0]
    return "stale", (
        f"{len(stale)} of {len(records)} records measured on {', '.join(sorted({r['commit'] for r in stale}))}; "
        f"{' '.join(first['source']['paths'])} changed since" + (f": {' '.join(changed)}" if changed else "")
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="results files (default: benchmarks/results_*.json)")
    ap.add_argument("--all", action="store_true", help="also list current and unrecorded results")
    args = ap.parse_args()
    files = [Path(f) for f in args.files] or sorted((ROOT / "benchmarks").glob("results_*.json"))
    counts = {"current": 0, "stale": 0, "unrecorded": 0}
    for f in files:
        status, detail = check(f)
        counts[status] += 1
        if status == "stale" or args.all:
            shown = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
            print(f"{status:10} {shown}: {detail}")
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return 1 if counts["stale"] else 0


if __name__ == "__main__":
    sys.exit(main())
