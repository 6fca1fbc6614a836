#!/usr/bin/env python3
"""Generate a large envgate project for the validate benchmark.

usage: gen_project.py DIR [ENVS] [KEYS] [RULES]

ENVS environments, each overlay setting every one of KEYS keys (spread over
tables of 50), a schema declaring all of them (a quarter with units), and
RULES CEL rules plus isolation for every environment when RULES > 0.
"""
import json
import os
import sys

out = sys.argv[1]
envs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
keys = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
rules = int(sys.argv[4]) if len(sys.argv) > 4 else 0
tables = max(1, keys // 50)

os.makedirs(f"{out}/environments", exist_ok=True)
os.makedirs(f"{out}/schemas", exist_ok=True)
os.makedirs(f"{out}/checks", exist_ok=True)

props = {}
for t in range(tables):
    tp = {}
    for k in range(50):
        i = t * 50 + k
        if i >= keys:
            break
        kind = i % 4
        if kind == 0:
            tp[f"k{k}"] = {"type": "string", "x-unit": "duration", "x-minimum": "1ms", "x-maximum": "1h"}
        elif kind == 1:
            tp[f"k{k}"] = {"type": "integer", "minimum": 0, "maximum": 1000000}
        elif kind == 2:
            tp[f"k{k}"] = {"type": "string", "maxLength": 200}
        else:
            tp[f"k{k}"] = {"type": "boolean"}
    props[f"t{t}"] = {"type": "object", "properties": tp}
schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": props}
with open(f"{out}/schemas/big.schema.json", "w") as f:
    json.dump(schema, f, indent=1)


def value(i, e):
    kind = i % 4
    if kind == 0:
        return f'"{(i % 50) + 1}s"'
    if kind == 1:
        return str(i + e)
    if kind == 2:
        return f'"https://svc{i}.env{e}.example.com/v1"'
    return "true" if (i + e) % 2 else "false"


names = [f"env{e}" for e in range(envs)]
# base uses env0's values; every overlay sets all its keys with its own hosts.
for e, name in [(0, "base")] + list(enumerate(names)):
    lines = []
    for t in range(tables):
        lines.append(f"[t{t}]")
        for k in range(50):
            i = t * 50 + k
            if i >= keys:
                break
            lines.append(f"k{k} = {value(i, e)}")
        lines.append("")
    with open(f"{out}/environments/{name}.toml", "w") as f:
        f.write("\n".join(lines))

manifest = ['[project]', 'name = "big"', 'schema = "schemas/big.schema.json"', ""]
if rules:
    for e, name in enumerate(names):
        manifest += [f"[isolation.{name}]", f'hosts = ["*.env{e}.example.com"]', ""]
with open(f"{out}/envgate.toml", "w") as f:
    f.write("\n".join(manifest))

if rules:
    lines = []
    for r in range(rules):
        t = r % tables
        d = (4 - (t * 50) % 4) % 4  # a duration key of table t; d + 1 is an integer key
        lines += [
            "[[rule]]",
            f'id = "rule-{r}"',
            'severity = "error"',
            f'message = "t{t}.k{d + 1} must stay positive and t{t}.k{d} within an hour"',
            f"assert = \"config.t{t}.k{d + 1} >= 0 && config.t{t}.k{d} <= duration('1h')\"",
            "",
        ]
    with open(f"{out}/checks/rules.toml", "w") as f:
        f.write("\n".join(lines))
