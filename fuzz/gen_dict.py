#!/usr/bin/env python3
"""Writes fuzz/spec_pipeline.dict, libFuzzer's dictionary for the spec_pipeline target: the
field names (as JSON keys) and string enum values of the GrafanaCluster CRD's spec, so
that mutations of the seed specs produce JSON that parses and reaches resolve/build.
Run after `make crds` changed the schema: python3 fuzz/gen_dict.py
"""

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def walk(schema, keys, enums):
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        keys.add(name)
        walk(sub, keys, enums)
    enums.update(e for e in schema.get("enum") or [] if isinstance(e, str))
    for k in ("items", "additionalProperties"):
        walk(schema.get(k), keys, enums)
    for k in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(k) or []:
            walk(sub, keys, enums)


def main():
    crd = yaml.safe_load((ROOT / "crds/grafanacluster.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    keys, enums = set(), set()
    walk(spec, keys, enums)
    lines = [
        "# libFuzzer dictionary for spec_pipeline: the CRD spec's field names (as JSON keys) and",
        "# enum values, generated from crds/grafanacluster.yaml by fuzz/gen_dict.py; JSON last.",
    ]
    lines += [json.dumps(f'"{k}":') for k in sorted(keys)]
    lines += [json.dumps(f'"{e}"') for e in sorted(enums)]
    for token in ["{", "}", "[", "]", ":", ",", "true", "false", "null", '""', '"0"', "-1",
                  "0", "1", "2", "65535", "1e309", '"1Gi"', '"100m"', '"us-east-1"']:
        lines.append(json.dumps(token))
    (ROOT / "fuzz/spec_pipeline.dict").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
