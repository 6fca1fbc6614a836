"""Reads what `envgate render` prints with the ecosystem's own readers.

One request per line on stdin, a JSON object {"format": ..., "text": ...};
one answer per line on stdout: {"value": ...} for yaml/toml/json, and for
env {"dotenv": {...}, "docker": {...}}, or {"error": "..."}.

- yaml: PyYAML's safe loader (YAML 1.1, the strictest common reader);
- toml: Python's tomllib;
- json: Python's json;
- env: python-dotenv (with its default `${...}` interpolation) and the
  rules of `docker --env-file` (docker CLI's key/value file reader: lines
  split on "\n" with a trailing "\r" dropped, a BOM on the first line
  removed, leading blanks trimmed, `#` lines and empty lines skipped, the
  key up to the first `=` with no blanks in it, the value taken as is with
  one pair of matching outer quotes removed, lines of 64 KiB or more
  refused).
"""
import io
import json
import sys
import tomllib

import dotenv
import dotenv.parser
import yaml

GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def docker_env_file(text):
    out = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if len(raw.encode()) + 1 > 64 * 1024:
            raise ValueError(f"line {number}: token too long")
        if raw.endswith("\r"):
            raw = raw[:-1]
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        line = raw.lstrip(GO_SPACE)
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition("=")
        if not key:
            raise ValueError(f"line {number}: no variable name")
        if " " in key or "\t" in key:
            raise ValueError(f"line {number}: variable contains whitespaces")
        if not sep:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def python_dotenv(text):
    for binding in dotenv.parser.parse_stream(io.StringIO(text)):
        if binding.error:
            raise ValueError(f"python-dotenv cannot parse line {binding.original.line}")
    return dict(dotenv.dotenv_values(stream=io.StringIO(text)))


def answer(request):
    fmt, text = request["format"], request["text"]
    if fmt == "yaml":
        return {"value": yaml.safe_load(text)}
    if fmt == "toml":
        return {"value": tomllib.loads(text)}
    if fmt == "json":
        return {"value": json.loads(text)}
    if fmt == "env":
        return {"dotenv": python_dotenv(text), "docker": docker_env_file(text)}
    raise ValueError(f"unknown format {fmt}")


for line in sys.stdin:
    try:
        reply = answer(json.loads(line))
    except Exception as e:  # every failure is an answer, not a crash
        reply = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
