"""The figure of `make mutate`: killed/total per module and overall, then every mutant not killed.

Run in the directory mutmut ran in (it reads mutants/**/*.py.meta). A mutant counts as killed when a test
failed (or timed out) with it, or when mypy rejected it (it could not pass `make lint`); "no tests" and
"survived" both count as not killed. See docs/mutation.md.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 24, 36, 37, 152, 255, -24}
STATUS = {0: "survived", 5: "no tests", 33: "no tests"}


def main(root: Path) -> int:
    per_module: dict[str, Counter[str]] = {}
    left: list[tuple[str, str]] = []
    unchecked = 0
    for meta in sorted(root.glob("mutants/**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to(root / "mutants" / "src"))[: -len(".py.meta")].replace("/", ".")
        tally: Counter[str] = Counter()
        for name, code in sorted(codes.items(), key=lambda item: _order(item[0])):
            if code is None:  # outside the mutants asked for (make mutate MUTANTS=...)
                unchecked += 1
                continue
            tally["total"] += 1
            if code in KILLED:
                tally["killed"] += 1
                tally["by mypy"] += code == 37
            else:
                left.append((STATUS.get(code, f"exit {code}"), name))
        if tally["total"]:
            per_module[module] = tally
    if not per_module:
        print("no mutation results: run `mutmut run` first")
        return 1
    width = max(len(module) for module in per_module)
    print(f"{'module':<{width}}  killed/total  (of them by mypy)")
    for module, tally in per_module.items():
        print(f"{module:<{width}}  {tally['killed']:>4}/{tally['total']:<4}  {_ratio(tally)}  ({tally['by mypy']})")
    total = sum((tally for tally in per_module.values()), Counter())
    print(f"{'all':<{width}}  {total['killed']:>4}/{total['total']:<4}  {_ratio(total)}  ({total['by mypy']})")
    if unchecked:
        print(f"({unchecked} mutants of other modules not run)")
    print(f"\nnot killed ({len(left)}; `mutmut show NAME` in build/mutation gives the change):")
    for status, name in left:
        print(f"  {status:<10} {name}")
    return 0


def _order(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def _ratio(tally: Counter[str]) -> str:
    return f"{100 * tally['killed'] / tally['total']:.1f} %" if tally["total"] else "-"


if __name__ == "__main__":
    sys.exit(main(Path.cwd()))
