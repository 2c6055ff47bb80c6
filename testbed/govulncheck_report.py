#!/usr/bin/env python3
"""Reads govulncheck's JSON output (one file per scanned target), prints what was found and
decides what fails `make supply-chain`. Called by testbed/govulncheck.sh.

Policy (why: docs/reliability.md, "Supply chain"):
- FAILS: vulnerable code that is called (source mode) or linked in (binary mode) from a
  third-party Go module, unless the vulnerability is listed in ACCEPTED for the test bed's
  upstream tools. The probe (testbed/probe) is this project's own module: nothing is
  accepted there, the fix is a bump in its go.mod.
- REPORTED: the standard library's findings (they belong to the machine's Go toolchain,
  which the project does not pin: the fix is a newer Go, then `make tools` rebuilds), the
  accepted ones, and vulnerabilities in modules that are required or imported but whose
  vulnerable code is not called. Entries in ACCEPTED that no scan found any more are
  named so that the list shrinks when a tool is bumped.

ACCEPTED: one `GO-YYYY-NNNN module` per line; `#` starts a comment (the reason).

Usage: govulncheck_report.py ACCEPTED PROBE_TARGET NAME=FILE...
"""

import json
import sys
from pathlib import Path

STDLIB = {"stdlib", "toolchain"}


def read_stream(path: Path):
    """govulncheck -format json writes a stream of JSON objects, not one document."""
    text = path.read_text()
    decoder = json.JSONDecoder()
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        obj, i = decoder.raw_decode(text, i)
        yield obj


def read_accepted(path: Path) -> set[tuple[str, str]]:
    accepted = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"{path}: expected 'ID module', got {line!r}")
        accepted.add((parts[0], parts[1]))
    return accepted


def main() -> int:
    if len(sys.argv) < 4:
        print("usage: govulncheck_report.py ACCEPTED PROBE_TARGET NAME=FILE...", file=sys.stderr)
        return 2
    accepted = read_accepted(Path(sys.argv[1]))
    probe = sys.argv[2]
    summaries: dict[str, str] = {}
    # (id, module) -> {"versions": set, "fixed", "targets": set}
    called: dict[tuple[str, str], dict] = {}
    counts = []
    for arg in sys.argv[3:]:
        name, _, file = arg.partition("=")
        # The strongest level per vulnerability and target: symbol > package > module.
        level: dict[tuple[str, str], int] = {}
        meta: dict[tuple[str, str], tuple[str, str]] = {}
        go_version = "?"
        for obj in read_stream(Path(file)):
            if "SBOM" in obj:
                go_version = obj["SBOM"].get("go_version", go_version)
            if "osv" in obj:
                osv = obj["osv"]
                summaries[osv["id"]] = osv.get("summary") or osv.get("details", "")[:80]
            finding = obj.get("finding")
            if not finding or not finding.get("trace"):
                continue
            top = finding["trace"][0]
            key = (finding["osv"], top.get("module", "?"))
            lvl = 2 if top.get("function") else 1 if top.get("package") else 0
            level[key] = max(level.get(key, 0), lvl)
            meta[key] = (top.get("version", "?"), finding.get("fixed_version", "none"))
        by_level = [[k for k, v in level.items() if v == n] for n in (2, 1, 0)]
        std = sum(1 for k in by_level[0] if k[1] in STDLIB)
        counts.append(
            f"  {name:<24} {go_version:<10} called {len(by_level[0]):>3} "
            f"(stdlib {std:>2})  imported-only {len(by_level[1]):>3}  "
            f"required-only {len(by_level[2]):>3}"
        )
        for key in by_level[0]:
            entry = called.setdefault(
                key, {"versions": set(), "fixed": meta[key][1], "targets": set()}
            )
            entry["versions"].add(meta[key][0])
            entry["targets"].add(name)

    print("govulncheck: vulnerabilities per target (called = vulnerable symbols reached)")
    print("\n".join(counts))
    failed = []
    rows = []
    for (vid, module), entry in sorted(called.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        targets = entry["targets"]
        if module in STDLIB:
            status = "stdlib: upgrade Go, then make tools"
        elif probe in targets:
            status = "FAIL: the probe is ours, bump testbed/probe/go.mod"
            failed.append(vid)
        elif (vid, module) in accepted:
            status = "accepted (test-bed tool)"
        else:
            status = "FAIL: new, not in the accepted list"
            failed.append(vid)
        rows.append(
            f"  {vid}  {module}@{','.join(sorted(entry['versions']))} (fixed {entry['fixed']})  "
            f"in {','.join(sorted(targets))}\n      {summaries.get(vid, '')}  [{status}]"
        )
    if rows:
        print("called vulnerable code:")
        print("\n".join(rows))
    stale = sorted(accepted - set(called))
    if stale:
        print("accepted but no longer found (remove from the list):")
        for vid, module in stale:
            print(f"  {vid} {module}")
    if failed:
        print(
            f"govulncheck: FAILED: {len(failed)} called vulnerabilities not accepted: "
            f"{' '.join(sorted(set(failed)))}\n"
            f"  fix: bump the module (the probe's go.mod, or the tool in versions.env), or, "
            f"for an upstream test-bed tool, add 'ID module' with the reason to {sys.argv[1]}"
        )
        return 1
    print(f"govulncheck: ok ({len(called)} called vulnerabilities, all stdlib or accepted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
