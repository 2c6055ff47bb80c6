#!/usr/bin/env python3
"""Lays out a Go vulnerability database that `govulncheck -db file://DIR` reads, from the
OSV files of the golang.org/x/vulndb module (data/osv/GO-*.json).

vuln.go.dev is not reachable from this project's machines, but the Go module proxy serves
golang.org/x/vulndb, whose data/osv/ holds every report as an OSV entry. govulncheck's
local database is the v1 schema (https://go.dev/security/vuln/database#api), as read by
golang.org/x/vuln/internal/client:
  index/db.json       {"modified": T}: the newest entry's time
  index/modules.json  [{"path": M, "vulns": [{"id", "modified", "fixed"?}]}], sorted by path
  index/vulns.json    [{"id", "modified", "aliases"}]
  ID/<id>.json        the OSV entry itself

In the repository the entries' "modified" is the zero time (the deploy step stamps it from
git history), so the module's own commit time (from its pseudo-version) stands in for it.
"fixed" is left out of modules.json: it is only a hint that lets the client skip entries
fixed before the version in use, and without it the client reads every entry of the
module and decides from its ranges, which is the same answer.

Usage: vulndb_index.py OSV_DIR OUT_DIR MODIFIED   (MODIFIED like 2026-11-05T23:49:57Z)
Writes OUT_DIR.tmp, then renames it to OUT_DIR, so a half-written database is never used.
"""

import json
import os
import shutil
import sys
from pathlib import Path

ZERO = "0001-01-01T00:00:00Z"


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    osv_dir, out_dir, stamp = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "ID").mkdir(parents=True)
    (tmp / "index").mkdir()

    modules: dict[str, list[dict]] = {}
    vulns = []
    newest = stamp
    files = sorted(osv_dir.glob("GO-*.json"))
    if not files:
        print(f"no GO-*.json OSV entries in {osv_dir}", file=sys.stderr)
        return 1
    for path in files:
        entry = json.loads(path.read_text())
        entry_id = entry["id"]
        if path.name != f"{entry_id}.json":
            print(f"{path}: id {entry_id} does not match the file name", file=sys.stderr)
            return 1
        if entry.get("modified", ZERO) == ZERO:
            entry["modified"] = stamp
        newest = max(newest, entry["modified"])
        (tmp / "ID" / f"{entry_id}.json").write_text(json.dumps(entry))
        vulns.append(
            {"id": entry_id, "modified": entry["modified"], "aliases": entry.get("aliases", [])}
        )
        seen = set()
        for affected in entry.get("affected", []):
            module = affected["package"]["name"]
            if module in seen:
                continue
            seen.add(module)
            modules.setdefault(module, []).append(
                {"id": entry_id, "modified": entry["modified"]}
            )

    index = [
        {"path": path, "vulns": sorted(v, key=lambda x: x["id"])}
        for path, v in sorted(modules.items())
    ]
    (tmp / "index" / "db.json").write_text(json.dumps({"modified": newest}))
    (tmp / "index" / "modules.json").write_text(json.dumps(index))
    (tmp / "index" / "vulns.json").write_text(json.dumps(vulns))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    print(f"{len(vulns)} entries for {len(index)} modules in {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
