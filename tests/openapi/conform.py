"""Checks real answers of the JSON API against the OpenAPI document the server serves.

Usage: conform.py DOCUMENT.json < ANSWERS.json
ANSWERS is a list of {"method", "path" (the document's template), "status", "body"}.
Each answer's status must be documented for the operation, and its body must match the
schema documented for that status (JSON Schema 2020-12, references into the document's
components). Prints one line per answer that does not, and exits 1 if any did not.
"""
import json
import sys

from jsonschema import Draft202012Validator


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    answers = json.load(sys.stdin)
    failures = []
    for a in answers:
        where = f"{a['method'].upper()} {a['path']} -> {a['status']}"
        op = doc["paths"].get(a["path"], {}).get(a["method"].lower())
        if op is None:
            failures.append(f"{where}: no such operation in the document")
            continue
        response = op["responses"].get(str(a["status"]))
        if response is None:
            failures.append(f"{where}: status not documented ({', '.join(op['responses'])})")
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            failures.append(f"{where}: no JSON schema documented")
            continue
        # The schema with the document's components beside it, so its references resolve.
        root = dict(schema)
        root["components"] = doc["components"]
        errors = sorted(Draft202012Validator(root).iter_errors(a["body"]), key=str)
        for e in errors[:3]:
            path = "/".join(str(p) for p in e.absolute_path)
            failures.append(f"{where}: at /{path}: {e.message[:300]}")
    for f in failures:
        print(f)
    print(f"{len(answers)} answers checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


main()
