"""Parse a JUnit XML file with junitparser and print what it understood as
JSON, for tests/report_formats.rs to check against the fixture."""
import json
import sys

from junitparser import JUnitXml

xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        cases.append({
            "classname": case.classname,
            "name": case.name,
            "time": case.time,
            "results": [{"tag": r._tag, "message": r.message, "type": r.type, "text": r.text} for r in case.result],
            "system_out": case.system_out,
        })
    suites.append({
        "name": suite.name,
        "tests": suite.tests,
        "failures": suite.failures,
        "errors": suite.errors,
        "skipped": suite.skipped,
        "cases": cases,
    })
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "suites": suites}))
