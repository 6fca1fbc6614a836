"""The oracle for "no subschema at that location declares this name".

Written apart from envgate's own schema walk (another language, the Python
`referencing` resolver that jsonschema and check-jsonschema use), so the
strictness test does not grade envgate with envgate's own code.

stdin: {"schema": PATH, "queries": [{"parent": [[SEG, IS_INDEX], ...], "name": NAME}]}
stdout: [true|false, ...]: whether each name is declared (or admitted) where it is.
"""

import json
import re
import sys

import referencing
import referencing.jsonschema

try:
    import regress
except ImportError:  # pragma: no cover
    regress = None

DRAFTS = {
    referencing.jsonschema.DRAFT4: 4,
    referencing.jsonschema.DRAFT6: 6,
    referencing.jsonschema.DRAFT7: 7,
    referencing.jsonschema.DRAFT201909: 2019,
    referencing.jsonschema.DRAFT202012: 2020,
}
OPEN = object()


def matches(pattern, name):
    if regress is not None:
        try:
            return regress.Regex(pattern).find(name) is not None
        except Exception:
            pass
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return None


def expand(entries):
    """Every subschema at the same location: $ref, allOf, anyOf, oneOf,
    if/then/else, dependent schemas. An unresolvable $ref is OPEN."""
    out, seen, stack = [], set(), list(entries)
    while stack:
        schema, resolver, spec = stack.pop()
        key = (id(schema), str(resolver._base_uri))
        if key in seen:
            continue
        seen.add(key)
        if not isinstance(schema, dict):
            out.append((schema, resolver, spec))
            continue
        if "$schema" in schema:
            try:
                spec = referencing.jsonschema.specification_with(schema["$schema"])
            except Exception:
                pass
        resolver = resolver.in_subresource(spec.create_resource(schema))
        out.append((schema, resolver, spec))
        draft = DRAFTS.get(spec, 2020)
        refs = []
        if isinstance(schema.get("$ref"), str):
            refs.append(schema["$ref"])
        if draft == 2020 and isinstance(schema.get("$dynamicRef"), str):
            refs.append(schema["$dynamicRef"])
        if draft == 2019 and isinstance(schema.get("$recursiveRef"), str):
            refs.append("#")
        for ref in refs:
            try:
                resolved = resolver.lookup(ref)
            except Exception:
                out.append((OPEN, resolver, spec))
                continue
            stack.append((resolved.contents, resolved.resolver, spec))
        if draft <= 7 and "$ref" in schema:
            continue
        for kw in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(kw, []) if isinstance(schema.get(kw), list) else []:
                stack.append((sub, resolver, spec))
        if draft >= 7:
            for kw in ("if", "then", "else"):
                if kw in schema:
                    stack.append((schema[kw], resolver, spec))
        deps = schema.get("dependentSchemas" if draft >= 2019 else "dependencies")
        if isinstance(deps, dict):
            for sub in deps.values():
                if isinstance(sub, (dict, bool)):
                    stack.append((sub, resolver, spec))
    return out


def child(entries, seg, is_index):
    nxt = []
    for schema, resolver, spec in entries:
        if schema is OPEN or not isinstance(schema, dict):
            continue
        draft = DRAFTS.get(spec, 2020)
        if is_index:
            i = int(seg)
            tuple_kw = "prefixItems" if draft == 2020 else "items"
            tup = schema.get(tuple_kw)
            if isinstance(tup, list):
                if i < len(tup):
                    nxt.append((tup[i], resolver, spec))
                elif draft != 2020 and "additionalItems" in schema:
                    nxt.append((schema["additionalItems"], resolver, spec))
            if isinstance(schema.get("items"), (dict, bool)):
                nxt.append((schema["items"], resolver, spec))
            for kw in ("contains", "unevaluatedItems"):
                if isinstance(schema.get(kw), (dict, bool)):
                    nxt.append((schema[kw], resolver, spec))
        else:
            matched = False
            props = schema.get("properties")
            if isinstance(props, dict) and seg in props:
                nxt.append((props[seg], resolver, spec))
                matched = True
            for pattern, sub in (schema.get("patternProperties") or {}).items():
                if matches(pattern, seg):
                    nxt.append((sub, resolver, spec))
                    matched = True
            if not matched and isinstance(schema.get("additionalProperties"), (dict, bool)):
                nxt.append((schema["additionalProperties"], resolver, spec))
            if isinstance(schema.get("unevaluatedProperties"), dict):
                nxt.append((schema["unevaluatedProperties"], resolver, spec))
    return expand(nxt)


def declared(entries, name):
    for schema, resolver, spec in entries:
        if schema is OPEN:
            return True
        if not isinstance(schema, dict):
            continue
        for kw in ("additionalProperties", "unevaluatedProperties"):
            if kw in schema and schema[kw] is not False:
                return True
        if name in (schema.get("properties") or {}):
            return True
        if name in (schema.get("required") or []):
            return True
        for kw in ("dependentRequired", "dependencies"):
            deps = schema.get(kw)
            if isinstance(deps, dict):
                if name in deps:
                    return True
                if any(isinstance(v, list) and name in v for v in deps.values()):
                    return True
        names = schema.get("propertyNames")
        if isinstance(names, dict) and (name in (names.get("enum") or []) or names.get("const") == name):
            return True
        for pattern in schema.get("patternProperties") or {}:
            if matches(pattern, name) is not False:
                return True
    return False


def main():
    request = json.load(sys.stdin)
    with open(request["schema"]) as f:
        schema = json.load(f)
    spec = referencing.jsonschema.specification_with(
        schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    )
    uri = schema.get("$id") or schema.get("id") or "urn:envgate:root"
    registry = referencing.Registry().with_resource(uri, spec.create_resource(schema))
    resolver = registry.resolver(base_uri=uri)
    answers = []
    for q in request["queries"]:
        entries = expand([(schema, resolver, spec)])
        for seg, is_index in q["parent"]:
            entries = child(entries, seg, is_index)
        answers.append(declared(entries, q["name"]))
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
