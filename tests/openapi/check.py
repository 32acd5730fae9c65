"""Checks real API answers against the served OpenAPI document (tests/api: OpenApiCheck).

Reads {"document": {...}, "answers": [{"method","path","status","body"}]} on stdin and
prints one line per problem; exits 1 if there is any. Checked:
- the document is valid OpenAPI 3.1 (openapi-spec-validator);
- each answer's status is documented for its operation, and its body matches that
  status's JSON schema (jsonschema, draft 2020-12, refs resolved in the document);
- every member of a body is declared by its schema (so the document shows all of it);
- an error answer's code is one the operation lists for that status (x-error-codes).
"""
import json
import sys

try:
    from openapi_spec_validator import validate
    from jsonschema import Draft202012Validator
except ImportError as e:  # the Rust side names .ci/install-deps
    print(f"missing python module: {e.name}")
    sys.exit(3)


def resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def declared(doc, schema, value, where, problems):
    """Reports members of `value` that `schema` does not declare."""
    schema = resolve(doc, schema)
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props, open_ended = {}, False
        stack = [schema]
        while stack:
            s = resolve(doc, stack.pop())
            props.update(s.get("properties", {}))
            if s.get("additionalProperties") not in (None, False):
                open_ended = True
            stack.extend(s.get("allOf", []))
            stack.extend(s.get("oneOf", []))
            stack.extend(s.get("anyOf", []))
        for key, member in value.items():
            if key in props:
                declared(doc, props[key], member, f"{where}.{key}", problems)
            elif not open_ended:
                problems.append(f"{where}.{key} is not in the document's schema")
    elif isinstance(value, list):
        items = schema.get("items")
        for sub in ([schema] + schema.get("oneOf", []) + schema.get("anyOf", [])):
            items = items or resolve(doc, sub).get("items")
        if items is not None:
            for i, member in enumerate(value):
                declared(doc, items, member, f"{where}[{i}]", problems)


def main():
    given = json.load(sys.stdin)
    doc, problems = given["document"], []
    try:
        validate(doc)
    except Exception as e:  # the validator's own error says what is wrong
        problems.append(f"the document is not valid OpenAPI 3.1: {e}")
    for a in given["answers"]:
        what = f'{a["method"].upper()} {a["path"]} -> {a["status"]}'
        op = doc.get("paths", {}).get(a["path"], {}).get(a["method"].lower())
        if op is None:
            problems.append(f"{what}: the operation is not in the document")
            continue
        answer = op.get("responses", {}).get(str(a["status"]))
        if answer is None:
            problems.append(f"{what}: this status is not documented")
            continue
        answer = resolve(doc, answer)
        content = answer.get("content", {})
        media = content.get("application/json")
        body = a["body"]
        if media is None:
            if body is not None:
                problems.append(f"{what}: a JSON body, but none is documented")
            continue
        schema = dict(media.get("schema", {}))
        schema["components"] = doc.get("components", {})
        for err in Draft202012Validator(schema).iter_errors(body):
            path = "".join(f"[{p!r}]" for p in err.absolute_path)
            problems.append(f"{what}: body{path}: {err.message}")
        declared(doc, media.get("schema", {}), body, "body", problems)
        if a["status"] >= 400:
            code = (body or {}).get("error", {}).get("code")
            listed = answer.get("x-error-codes", [])
            if code not in listed:
                problems.append(f"{what}: error code {code!r} is not documented (listed: {listed})")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


main()
