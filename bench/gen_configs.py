#!/usr/bin/env python3
"""Generate N JSON configurations (54 to 200 keys each) and one JSON Schema,
as an envgate project (one environment per document, read through a `file`
source) and as plain files for ajv-cli: the same documents, the same schema.

usage: gen_configs.py DIR [N] [INVALID_EVERY]

Every INVALID_EVERY-th document breaks the schema (a wrong type, a value out
of range, a missing required key or an unknown key, in turn), so both tools
must find the same failures.
"""
import json
import os
import random
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
invalid_every = int(sys.argv[3]) if len(sys.argv) > 3 else 10
rng = random.Random(42)

os.makedirs(f"{out}/environments", exist_ok=True)
os.makedirs(f"{out}/configs", exist_ok=True)

# 20 tables of 10 keys: strings, integers, booleans, enums, URLs.
tables = {}
for t in range(20):
    props = {}
    for k in range(10):
        kind = (t * 10 + k) % 5
        if kind == 0:
            props[f"k{k}"] = {"type": "string", "maxLength": 120}
        elif kind == 1:
            props[f"k{k}"] = {"type": "integer", "minimum": 0, "maximum": 100000}
        elif kind == 2:
            props[f"k{k}"] = {"type": "boolean"}
        elif kind == 3:
            props[f"k{k}"] = {"enum": ["debug", "info", "warn", "error"]}
        else:
            props[f"k{k}"] = {"type": "string", "pattern": "^https?://"}
    tables[f"t{t}"] = {
        "type": "object",
        "properties": props,
        "required": ["k0"],
        "additionalProperties": False,
    }
schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": tables,
    "required": ["t0"],
    "additionalProperties": False,
}
with open(f"{out}/schema.json", "w") as f:
    json.dump(schema, f, indent=1)


def value(kind, i):
    return [f"value-{i}", i % 100000, i % 2 == 0, ["debug", "info", "warn", "error"][i % 4], f"https://svc{i}.example.com/v1"][kind]


for e in range(n):
    keys = rng.randint(54, 200)
    doc = {}
    count = 0
    for t in range(20):
        if count >= keys:
            break
        table = {}
        for k in range(10):
            if count >= keys:
                break
            table[f"k{k}"] = value((t * 10 + k) % 5, e * 1000 + count)
            count += 1
        doc[f"t{t}"] = table
    if invalid_every and e % invalid_every == invalid_every - 1:
        mistake = (e // invalid_every) % 4
        if mistake == 0:
            doc["t0"]["k1"] = "not a number"
        elif mistake == 1:
            doc["t0"]["k1"] = 1000001
        elif mistake == 2:
            del doc["t0"]["k0"]
        else:
            doc["t0"]["bogus"] = 1
    with open(f"{out}/configs/env{e}.json", "w") as f:
        json.dump(doc, f)
    open(f"{out}/environments/env{e}.toml", "w").close()

open(f"{out}/environments/base.toml", "w").close()
with open(f"{out}/envgate.toml", "w") as f:
    f.write(
        '[project]\nname = "configs"\nschema = "schema.json"\n\n'
        '[[source]]\nname = "config"\nkind = "file"\npath = "configs/{env}.json"\n'
    )
