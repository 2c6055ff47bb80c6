#!/usr/bin/env python3
"""Helpers of testbed/chart/chart-test.sh (standard library only).

  chart_tool.py env IDENTITY < deployment.json
      The environment the chart's Deployment gives the operator container, one NAME=VALUE
      a line: literal values as they are, fieldRef metadata.name as IDENTITY (the pod
      name) and metadata.namespace as the Deployment's namespace. Any other source is an
      error: the operator run outside a pod would silently miss it.
  chart_tool.py free-port
      A free TCP port on 127.0.0.1.
  chart_tool.py check-rbac < list.json
      Fails when a Role or ClusterRole in the List (kubectl ... -o json) has a wildcard
      in apiGroups, resources, verbs, resourceNames or nonResourceURLs; prints every rule.
"""

import json
import socket
import sys


def container_env(deployment, identity):
    namespace = deployment["metadata"]["namespace"]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    operator = next((c for c in containers if c["name"] == "operator"), None)
    if operator is None:
        raise SystemExit("the Deployment has no container named operator")
    if operator.get("envFrom"):
        raise SystemExit("envFrom is not supported here: %r" % operator["envFrom"])
    lines = []
    for var in operator.get("env", []):
        name = var["name"]
        if "valueFrom" in var:
            field = var["valueFrom"].get("fieldRef", {}).get("fieldPath")
            if field == "metadata.name":
                value = identity
            elif field == "metadata.namespace":
                value = namespace
            else:
                raise SystemExit("%s: unsupported valueFrom %r" % (name, var["valueFrom"]))
        else:
            value = var.get("value", "")
        if "\n" in value or "\0" in value:
            raise SystemExit("%s: multi-line values are not supported" % name)
        lines.append("%s=%s" % (name, value))
    return lines


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_rbac(items):
    wildcards = []
    roles = 0
    for item in items:
        if item.get("kind") not in ("Role", "ClusterRole"):
            continue
        roles += 1
        where = "%s %s" % (item["kind"], item["metadata"]["name"])
        if item["metadata"].get("namespace"):
            where += " (ns %s)" % item["metadata"]["namespace"]
        for rule in item.get("rules") or []:
            print("%s: %s" % (where, json.dumps(rule, sort_keys=True)))
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                for value in rule.get(key) or []:
                    if "*" in value:
                        wildcards.append("%s: %s contains %r" % (where, key, value))
    if roles == 0:
        raise SystemExit("no Role or ClusterRole found")
    for w in wildcards:
        print("WILDCARD " + w)
    return not wildcards


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command = argv[1]
    if command == "env" and len(argv) == 3:
        print("\n".join(container_env(json.load(sys.stdin), argv[2])))
    elif command == "free-port":
        print(free_port())
    elif command == "check-rbac":
        document = json.load(sys.stdin)
        items = document.get("items", [document])
        return 0 if check_rbac(items) else 1
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
