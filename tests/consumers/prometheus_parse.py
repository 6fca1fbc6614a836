"""Parse Prometheus text exposition with prometheus_client's own parser and
print the families as JSON, for tests/report_formats.rs."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
families = {}
for fam in text_string_to_metric_families(text):
    families[fam.name] = {
        "type": fam.type,
        "help": fam.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in fam.samples],
    }
print(json.dumps(families))
