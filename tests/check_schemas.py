#!/usr/bin/python3
"""Validate onestop YAML definitions against the JSON Schemas in schemas/.

Usage: /usr/bin/python3 tests/check_schemas.py SCHEMAS_DIR EXAMPLES_DIR

- Every schema in SCHEMAS_DIR must itself be a valid draft 2020-12 schema,
  give every property a `description` (editors show it as help) and close
  every object (`additionalProperties: false`).
- Every document of every *.yaml / *.yml file under EXAMPLES_DIR (recursively)
  must validate against onestop.schema.json, or against the schema of
  SCHEMAS_DIR its modeline (`# yaml-language-server: $schema=...`) names
  (flow tests: flowtest.schema.json). A file whose modeline names a schema
  that is not in SCHEMAS_DIR is skipped.
- Built-in cases: the snippets of docs/yaml-reference.md must validate, and a
  set of broken documents (unknown key, bad node kind, bad time limit, ...)
  must NOT validate, so the check cannot pass vacuously.

YAML is read the way the engine's loader reads it (YAML 1.2 core scalars:
dates, `yes`/`no` and `12:30` stay strings; duplicate keys are errors).

Prints one line per schema, file and built-in case, then `N passed, N failed`.
Exits 1 on any failure. Needs Debian's python3-jsonschema (4.10) and python3-yaml.
"""

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import jsonschema
import yaml
from yaml.constructor import ConstructorError

ROOT_SCHEMA = "onestop.schema.json"
MODELINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")


# ------------------------------------------------------------------ YAML loading


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and duplicate-key errors."""


Loader.yaml_implicit_resolvers = {}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0x"):
        return int(text[2:], 16)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 10)


def _construct_float(loader, node):
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _construct_mapping(loader, node, deep=False):
    if not isinstance(node, yaml.MappingNode):
        raise ConstructorError(None, None, "expected a mapping", node.start_mark)
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise ConstructorError("while constructing a mapping", node.start_mark,
                                   "found an unhashable key", key_node.start_mark)
        if key in mapping:
            raise ConstructorError("while constructing a mapping", node.start_mark,
                                   f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


def _construct_yaml_map(loader, node):
    data = {}
    yield data
    data.update(_construct_mapping(loader, node))


Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
Loader.add_constructor("tag:yaml.org,2002:map", _construct_yaml_map)


def load_documents(text):
    """Returns [(node, data)] for every document of a YAML stream."""
    loader = Loader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            documents.append((node, loader.construct_document(node)))
        return documents
    finally:
        loader.dispose()


def locate(node, path):
    """line:column (1-based) of the YAML node at a JSON-Schema error path."""
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if getattr(key_node, "value", None) == step:
                    node = value_node
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


# ------------------------------------------------------------------ schemas


def lint_schema(name, schema):
    """Every property has a description; every object with properties is closed."""
    problems = []

    def walk(value, where):
        if isinstance(value, dict):
            props = value.get("properties")
            if isinstance(props, dict) and not where.endswith("/properties"):
                for key, sub in props.items():
                    if not isinstance(sub, dict) or "description" not in sub:
                        problems.append(f"{where}/properties/{key}: no description")
                closed = (value.get("additionalProperties") is False
                          or value.get("unevaluatedProperties") is False
                          or "allOf" in value)  # closed per branch (node kinds)
                if not closed:
                    problems.append(f"{where}: object not closed (additionalProperties: false)")
            for key, sub in value.items():
                if key != "if":  # conditions, not definitions
                    walk(sub, f"{where}/{key}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                walk(sub, f"{where}/{i}")

    walk(schema, name + "#")
    return problems


def load_schemas(schemas_dir, report):
    store = {}
    for path in sorted(Path(schemas_dir).glob("*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            jsonschema.Draft202012Validator.check_schema(schema)
        except (ValueError, jsonschema.exceptions.SchemaError) as e:
            report(False, f"schema {path.name}: {str(e).splitlines()[0]}")
            continue
        problems = lint_schema(path.name, schema)
        if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
            problems.append("$schema is not draft 2020-12")
        report(not problems, f"schema {path.name}" + ("" if not problems else ": " + "; ".join(problems)))
        store[path.name] = schema
        store[path.resolve().as_uri()] = schema
        if "$id" in schema:
            store[schema["$id"]] = schema
    return store


def refuse_remote(uri):
    raise jsonschema.exceptions.RefResolutionError(f"$ref to {uri} is not among the schemas in the schemas directory")


def make_validator(schemas_dir, store, name=ROOT_SCHEMA):
    root = store[name]
    base = (Path(schemas_dir) / name).resolve().as_uri()
    resolver = jsonschema.RefResolver(
        base_uri=base, referrer=root, store=store,
        handlers={"http": refuse_remote, "https": refuse_remote, "file": refuse_remote})
    return jsonschema.Draft202012Validator(root, resolver=resolver)


def best_message(error):
    """The most specific message of an error (descending into anyOf/oneOf)."""
    best = jsonschema.exceptions.best_match([error])
    return best.message if best is not None else error.message


def document_errors(validator, node, data):
    """A list of 'line:col: at /path: message' for one document ([] when valid)."""
    if data is None:
        return []  # an empty document (e.g. a trailing '---') defines nothing
    out = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        pointer = "/" + "/".join(str(p) for p in path)
        out.append(f"{locate(node, path)}: at {pointer}: {best_message(error)}")
    return out


def text_errors(validator, text):
    try:
        documents = load_documents(text)
    except yaml.YAMLError as e:
        return [f"YAML: {' '.join(str(e).split())}"]
    errors = []
    for node, data in documents:
        errors += document_errors(validator, node, data)
    return errors


# ------------------------------------------------------------------ built-in cases

# The snippets of docs/yaml-reference.md, and a few more documented forms.
POSITIVE = {
    "reference: organisation": """
        departments:
          - { id: service_hall, name: Government Service Hall }
          - { id: planning_bureau, name: Natural Resources and Planning Bureau, parent: city_government,
              credit_code: "11330100002491834U" }
        roles:
          - { id: theme_lead, name: Theme lead, department: service_hall }
          - { id: supervisor, name: Supervision officer }
        """,
    "reference: item": """
        item:
          code: XK-PLAN-0012
          name: Construction project planning permit
          type: administrative_licence
          department: planning_bureau
          applicants: [legal_person]
          time_limit: { statutory: 20 working days, promised: 10 working days }
          max_visits: 0
          online_depth: 4
          legal_basis: ["Urban and Rural Planning Law, art. 40"]
          fees: [{ name: none, amount: 0 }]
          result: { name: Construction project planning permit, licence_type: planning_permit }
          materials:
            - { id: application_form, name: Application form, form: electronic }
            - id: business_licence
              name: Business licence
              source: certificate_library
              licence_type: business_licence
            - id: eia_report
              name: Environmental impact report
              required_if: form.investment >= 50000000 and form.industry in ["chemical", "steel"]
              file_types: [pdf]
              max_size: 20 MB
          flow: single_department_review
        """,
    "reference: flow": """
        flow:
          id: investment_project
          version: 3
          name: Enterprise investment project
          time_limit: { statutory: 45 working days, promised: 15 working days }
          nodes:
            start:       { kind: start }
            accept:      { kind: task, name: One-window acceptance, assignees: { department: service_hall }, time_limit: 1 working day }
            fan_out:     { kind: parallel }
            planning:    { kind: subflow, item: XK-PLAN-0012, time_limit: 10 working days, on_timeout: deem_consent }
            land:        { kind: subflow, item: XK-LAND-0003, time_limit: 10 working days }
            join:        { kind: join }
            decide:      { kind: countersign, assignees: { role: theme_lead }, complete_when: all }
            approved:    { kind: end, outcome: approved }
            rejected:    { kind: end, outcome: rejected }
          edges:
            - start -> accept
            - accept -> fan_out
            - fan_out -> planning, land
            - planning, land -> join
            - join -> decide
            - decide -> approved: { when: all_approved }
            - decide -> rejected: { otherwise: true }
          returns:
            decide: [accept]
        """,
    "reference: edge forms, returns, node kinds": """
        flows:
          - id: forms
            time_limit: 20个工作日
            nodes:
              start: { kind: start }
              check: { kind: automatic, handler: licence_lookup, time_limit: 4 working hours }
              route: { kind: exclusive }
              review: { kind: task, assignees: { user: [u1, u2], role: reviewer }, time_limit: 5工作日,
                        on_timeout: escalate, escalate_to: supervisor }
              sign: { kind: countersign, assignees: { department: [a, b] }, complete_when: "60%", signers: [u1, u2, u3] }
              sign2: { kind: countersign, assignees: { role: r }, complete_when: 2, signers: [u1, u2] }
              wait: { kind: timer, wait: 5自然日 }
              opt: { kind: inclusive }
              j: { kind: join }
              sub: { kind: subflow, flow: other_flow, time_limit: 8工作小时 }
              done: { kind: end }
            edges:
              - start -> check
              - check -> route
              - { from: route, to: review, when: "form.amount > 100" }
              - route -> sign: { otherwise: true }
              - { from: review, to: check, loop: true }
              - review, sign -> sign2
              - sign2 -> opt
              - opt -> wait: { when: 'has(extra) and applicant.kind == "legal_person"' }
              - opt -> sub: { when: "not any_rejected" }
              - opt -> j: { otherwise: true }
              - wait, sub -> j
              - j -> done
            returns:
              review: { to: [check], siblings: keep }
              sign2: [review, sign]
        """,
    "reference: theme": """
        theme:
          id: enterprise_investment
          name: Enterprise investment project approval
          lead_department: development_reform
          flow: investment_project
          time_limit: { statutory: 45 working days, promised: 15 working days }
        """,
    "reference: calendars (two documents)": """
        calendar:
          id: cn
          name: Mainland China
          utc_offset: "+08:00"
          rest_days: [saturday, sunday]
          working_hours: ["09:00-12:00", "13:30-17:30"]
          holidays: [2026-01-01, "2026-02-15..2026-02-23"]
          workdays: [2026-02-14, 2026-02-28]          # make-up working days
        ---
        calendar:
          id: hangzhou
          extends: cn
          holidays: [2026-09-10]
        default_calendar: cn
        """,
    "reference: rules": """
        rules:
          - { id: yellow_80, when: "used >= 80%", warn: yellow, notify: [assignee, department_head] }
          - { id: yellow_1d, when: "remaining <= 1 working day", warn: yellow, applies_to: step }
          - { id: red, when: "used >= 100%", warn: red, escalate: supervision_office }
        """,
    "time limits in every documented form": """
        items:
          - { code: A1, name: a, type: public_service, department: d, applicants: [natural_person], flow: f,
              time_limit: 0 working days }
          - { code: A2, name: a, type: other_power, department: d, applicants: [natural_person], flow: f,
              time_limit: { statutory: 5 calendar days, promised: 5 days } }
          - { code: A3, name: a, type: other_power, department: d, applicants: [natural_person], flow: f,
              time_limit: { statutory: 36 hours, promised: 36小时 } }
          - { code: A4, name: a, type: other_power, department: d, applicants: [natural_person], flow: f,
              time_limit: { statutory: 5 natural days, promised: 8 working hours } }
        """,
}

# Broken documents: each must be rejected (by the schema, or by the YAML reader),
# with an error that mentions the given text (so it fails for the right reason).
NEGATIVE = {
    "item with an unknown key": ("'materails' was unexpected", """
        item: { code: A, name: a, type: public_service, department: d, applicants: [natural_person],
                time_limit: 1 working day, flow: f, materails: [] }
        """),
    "unknown top-level key": ("'itme' was unexpected", """
        itme: { code: A }
        """),
    "node with a bad kind": ("'fork' is not one of", """
        flow:
          id: f
          nodes: { start: { kind: start }, split: { kind: fork }, done: { kind: end } }
          edges: [start -> split, split -> done]
        """),
    "bad time limit": ('/item/time_limit', """
        item: { code: A, name: a, type: public_service, department: d, applicants: [natural_person],
                time_limit: { statutory: 20 work days }, flow: f }
        """),
    "bad step time limit": ('/flow/nodes/t/time_limit', """
        flow:
          id: f
          nodes: { start: { kind: start }, t: { kind: task, assignees: { role: r }, time_limit: "two days" }, done: { kind: end } }
          edges: [start -> t, t -> done]
        """),
    "task without assignees": ("'assignees' is a required property", """
        flow:
          id: f
          nodes: { start: { kind: start }, t: { kind: task }, done: { kind: end } }
          edges: [start -> t, t -> done]
        """),
    "unknown key in a node (assignee)": ("'assignee' was unexpected", """
        flow:
          id: f
          nodes: { start: { kind: start }, t: { kind: task, assignee: { role: r } }, done: { kind: end } }
          edges: [start -> t, t -> done]
        """),
    "key of another node kind (handler on a task)": ("'handler' was unexpected", """
        flow:
          id: f
          nodes: { start: { kind: start }, t: { kind: task, assignees: { role: r }, handler: h }, done: { kind: end } }
          edges: [start -> t, t -> done]
        """),
    "edge with a bad arrow": ('/flow/edges/0', """
        flow:
          id: f
          nodes: { start: { kind: start }, done: { kind: end } }
          edges: [start => done]
        """),
    "guarded edge with an unknown attribute": ("'if' was unexpected", """
        flow:
          id: f
          nodes: { start: { kind: start }, done: { kind: end } }
          edges: [start -> done: { if: approved }]
        """),
    "subflow naming both item and flow": ('/flow/nodes/s', """
        flow:
          id: f
          nodes: { start: { kind: start }, s: { kind: subflow, item: A, flow: g }, done: { kind: end } }
          edges: [start -> s, s -> done]
        """),
    "escalate without escalate_to": ("'escalate_to' is a required property", """
        flow:
          id: f
          nodes: { start: { kind: start }, t: { kind: task, assignees: { role: r }, on_timeout: escalate }, done: { kind: end } }
          edges: [start -> t, t -> done]
        """),
    "countersign share of 0%": ('/flow/nodes/c/complete_when', """
        flow:
          id: f
          nodes: { start: { kind: start }, c: { kind: countersign, assignees: { role: r }, complete_when: "0%" }, done: { kind: end } }
          edges: [start -> c, c -> done]
        """),
    "countersign quota of 0": ('/flow/nodes/c/complete_when', """
        flow:
          id: f
          nodes: { start: { kind: start }, c: { kind: countersign, assignees: { role: r }, complete_when: 0 }, done: { kind: end } }
          edges: [start -> c, c -> done]
        """),
    "end with an unknown outcome": ("'granted' is not one of", """
        flow:
          id: f
          nodes: { start: { kind: start }, done: { kind: end, outcome: granted } }
          edges: [start -> done]
        """),
    "certificate_library material without licence_type": ("'licence_type' is a required property", """
        item: { code: A, name: a, type: public_service, department: d, applicants: [legal_person],
                time_limit: 1 working day, flow: f,
                materials: [{ id: bl, name: Business licence, source: certificate_library }] }
        """),
    "material size in words": ('/item/materials/0/max_size', """
        item: { code: A, name: a, type: public_service, department: d, applicants: [legal_person],
                time_limit: 1 working day, flow: f, materials: [{ id: m, name: m, max_size: 20 megabytes }] }
        """),
    "bad item type": ("'licence' is not one of", """
        item: { code: A, name: a, type: licence, department: d, applicants: [legal_person], time_limit: 1 working day, flow: f }
        """),
    "bad identifier": ('/item/code', """
        item: { code: "-A B", name: a, type: public_service, department: d, applicants: [legal_person],
                time_limit: 1 working day, flow: f }
        """),
    "calendar offset without leading zero": ('/calendar/utc_offset', """
        calendar: { id: c, utc_offset: "+8:00" }
        """),
    "calendar working hours without leading zero": ('/calendar/working_hours/0', """
        calendar: { id: c, working_hours: ["9:00-12:00"] }
        """),
    "calendar with an impossible month": ('/calendar/holidays/0', """
        calendar: { id: c, holidays: [2026-13-01] }
        """),
    "rule with an unknown colour": ("'orange' is not one of", """
        rules: [{ when: "used >= 80%", warn: orange }]
        """),
    "rule with a bad condition": ('/rules/0/when', """
        rules: [{ when: "used > 80 percent", warn: yellow }]
        """),
    "credit code with a letter O": ('/departments/0/credit_code', """
        departments: [{ id: d, name: D, credit_code: "9111000060003734OL" }]
        """),
    "theme without lead department": ("'lead_department' is a required property", """
        theme: { id: t, name: T, flow: f }
        """),
    "duplicate key": ("duplicate key 'code'", """
        item:
          code: A
          code: B
        """),
}


# Broken scenarios (scenario.schema.json): each must be rejected, mentioning the text.
SCENARIO_NEGATIVE = {
    "scenario with an unknown key": ("'arrival' was unexpected", """
        scenario: { start: 2025-01-01, arrival: [], staff: [] }
        """),
    "scenario distribution with an unknown family": ("'poisson' is not one of", """
        scenario:
          start: 2025-01-01
          arrivals: [{ target: A, rate: 1 }]
          defaults: { service: { dist: poisson, mean: 1 h } }
          staff: [{ department: d }]
        """),
    "scenario duration without a unit": ("/scenario/horizon", """
        scenario: { start: 2025-01-01, horizon: "30", arrivals: [{ target: A, rate: 1 }], staff: [{ department: d }] }
        """),
    "arrival stream with both rate and trace": ("/scenario/arrivals/0", """
        scenario: { start: 2025-01-01, arrivals: [{ target: A, rate: 1, trace: ["2025-01-01T09:00"] }], staff: [] }
        """),
}


def run_builtin(validator, report):
    for name, text in POSITIVE.items():
        errors = text_errors(validator, textwrap.dedent(text))
        report(not errors, f"builtin valid: {name}" + ("" if not errors else ": unexpectedly rejected"))
        for e in errors:
            print(f"    {e}")
    for name, (expected, text) in NEGATIVE.items():
        errors = text_errors(validator, textwrap.dedent(text))
        if not errors:
            report(False, f"builtin invalid: {name}: unexpectedly ACCEPTED")
        elif not any(expected in e for e in errors):
            report(False, f"builtin invalid: {name}: rejected, but not for {expected!r}")
            for e in errors:
                print(f"    {e}")
        else:
            report(True, f"builtin invalid: {name}: rejected ({next(e for e in errors if expected in e)})")


# ------------------------------------------------------------------ main


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schemas_dir, examples_dir = argv[1], argv[2]
    counts = {"passed": 0, "failed": 0, "skipped": 0}

    def report(ok, line):
        counts["passed" if ok else "failed"] += 1
        print(("PASS " if ok else "FAIL ") + line)

    store = load_schemas(schemas_dir, report)
    if ROOT_SCHEMA not in store:
        report(False, f"{ROOT_SCHEMA} missing or invalid in {schemas_dir}")
        print(f"{counts['passed']} passed, {counts['failed']} failed")
        return 1
    validator = make_validator(schemas_dir, store)

    files = sorted(p for p in Path(examples_dir).rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    if not files:
        report(False, f"no *.yaml or *.yml files under {examples_dir}")
    for path in files:
        shown = os.path.relpath(path, examples_dir)
        text = path.read_text(encoding="utf-8")
        modeline = next((m.group(1) for m in map(MODELINE.search, text.splitlines()[:5]) if m), None)
        file_validator = validator
        if modeline is not None and os.path.basename(modeline) != ROOT_SCHEMA:
            if os.path.basename(modeline) not in store:
                counts["skipped"] += 1
                print(f"SKIP {shown} (declares schema {modeline})")
                continue
            # Another format of ours (flow tests, scenarios): its own schema.
            file_validator = make_validator(schemas_dir, store, os.path.basename(modeline))
        try:
            documents = load_documents(text)
        except yaml.YAMLError as e:
            report(False, f"{shown}: YAML: {' '.join(str(e).split())}")
            continue
        errors = []
        for node, data in documents:
            errors += document_errors(file_validator, node, data)
        n = sum(1 for _, data in documents if data is not None)
        report(not errors and n > 0,
               f"{shown} ({n} document{'s' if n != 1 else ''})" + ("" if n else ": no documents"))
        for e in errors:
            print(f"    {shown}:{e}")

    run_builtin(validator, report)
    if "scenario.schema.json" in store:
        scenario_validator = make_validator(schemas_dir, store, "scenario.schema.json")
        for name, (expected, text) in SCENARIO_NEGATIVE.items():
            errors = text_errors(scenario_validator, textwrap.dedent(text))
            ok = any(expected in e for e in errors)
            report(ok, f"builtin invalid: {name}: " + ("rejected" if ok else "not rejected for " + repr(expected)))
            if not ok:
                for e in errors:
                    print(f"    {e}")

    if counts["skipped"]:
        print(f"{counts['skipped']} skipped")
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
