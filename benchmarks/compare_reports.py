"""Compare two folders of ``hamfeat cv`` reports (``cv_report.json`` / ``cv_report.md``, per
sub-folder), ignoring only timings and dates: the equality proof of issue #19's refactor.

    python benchmarks/compare_reports.py OLD_DIR NEW_DIR

Exit status 0 when every report pair is equal apart from those, 1 otherwise (the differences
are printed, one per line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: JSON keys whose values are wall times, fit times or dates (compared nowhere).
IGNORED_KEYS = frozenset({"timings", "date", "created_utc", "seconds", "fit_seconds"})


def diff_json(a, b, path: str = "") -> list[str]:
    """Every difference between two JSON values, ignoring :data:`IGNORED_KEYS`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        if list(a) != list(b):
            out.append(f"{path}: keys {list(a)} != {list(b)}")
        for k in a:
            if k in IGNORED_KEYS or k not in b:
                continue
            out += diff_json(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in diff_json(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def _md_lines(text: str, timing_rows: bool) -> list[str]:
    lines = text.split("\n")
    keep = []
    section = ""
    for line in lines:
        if line.startswith("#"):
            section = line
        if line.startswith("- wall time: ") or line.startswith("- hamfeat "):
            continue
        if line.startswith("Made by `"):
            continue
        if section == "## Timings" and line.startswith("| ") and not line.startswith("| model"):
            continue
        if timing_rows and section == "## Summary" and line.startswith("| "):
            line = line.rsplit("|", 2)[0]  # the fit-seconds column
        keep.append(line)
    return keep


def diff_markdown(a: str, b: str) -> list[str]:
    """Differing lines of two reports, timing and date lines left out."""
    la, lb = _md_lines(a, True), _md_lines(b, True)
    if len(la) != len(lb):
        return [f"markdown: {len(la)} lines != {len(lb)} lines"]
    return [f"markdown: {x!r} != {y!r}" for x, y in zip(la, lb, strict=True) if x != y]


def compare(old: Path, new: Path) -> list[str]:
    """Differences of every ``cv_report.json`` / ``.md`` under ``old`` and its twin in ``new``."""
    out = []
    reports = sorted(old.rglob("cv_report.json"))
    if not reports:
        return [f"{old}: no cv_report.json"]
    for jo in reports:
        rel = jo.parent.relative_to(old)
        jn = new / rel / "cv_report.json"
        if not jn.is_file():
            out.append(f"{rel}: missing in {new}")
            continue
        out += [f"{rel}: {d}" for d in diff_json(json.loads(jo.read_text()),
                                                  json.loads(jn.read_text()))]
        out += [f"{rel}: {d}" for d in diff_markdown((jo.parent / "cv_report.md").read_text(),
                                                      (new / rel / "cv_report.md").read_text())]
        pngs = sorted(p.name for p in jo.parent.glob("*.png"))
        if pngs != sorted(p.name for p in (new / rel).glob("*.png")):
            out.append(f"{rel}: plot files differ")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    args = ap.parse_args(argv)
    diffs = compare(args.old, args.new)
    for d in diffs:
        print(d)
    n = len(list(args.old.rglob("cv_report.json")))
    print(f"{n} report(s) compared: {len(diffs)} difference(s)", file=sys.stderr)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
