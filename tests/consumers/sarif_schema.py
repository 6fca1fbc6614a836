"""Validate a SARIF file against the official SARIF 2.1.0 JSON schema (the
copy shipped inside the @microsoft/sarif-multitool npm package) and print
every violation; exit 1 when there is one."""
import json
import sys

import jsonschema

with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
with open(sys.argv[2], encoding="utf-8") as f:
    log = json.load(f)
validator = jsonschema.validators.validator_for(schema)(schema)
errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]
print("\n".join(errors))
sys.exit(1 if errors else 0)
