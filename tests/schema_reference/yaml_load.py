"""Read YAML files the way the reference readers do, as JSON.

ruamel: exactly as check-jsonschema reads YAML (ruamel.yaml, safe, YAML 1.2,
timestamps kept as text, keys made strings). pyyaml: PyYAML's safe_load
(YAML 1.1). Values JSON cannot hold are tagged: {"$nonfinite": "inf"},
{"$date": "2001-12-14"}.

usage: yaml_load.py ruamel|pyyaml FILE...  ->  [{"ok": VALUE} | {"error": NAME}, ...]
"""

import datetime
import json
import math
import sys

import yaml
from check_jsonschema.parsers.yaml import _normalize, construct_yaml_implementation


def tagged(v):
    if isinstance(v, dict):
        return {str(k): tagged(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return {"$nonfinite": repr(v)}
    if isinstance(v, (datetime.date, datetime.datetime)):
        return {"$date": v.isoformat()}
    if isinstance(v, bytes):
        return {"$bytes": v.hex()}
    return v


def main():
    which, files = sys.argv[1], sys.argv[2:]
    ruamel = construct_yaml_implementation(typ="safe", pure=True)
    out = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            if which == "ruamel":
                value = _normalize(ruamel.load(text))
            else:
                value = yaml.safe_load(text)
            out.append({"ok": tagged(value)})
        except Exception as e:  # the reader's refusal is a result too
            out.append({"error": type(e).__name__})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
