"""examples/manifest.schema.json describes what the gateway accepts: the
sample packet is valid, and the shapes the parser refuses are refused by
the schema too."""
import copy
import json
import os

import jsonschema
import pytest

from gateway import TOP, sample_manifest

with open(os.path.join(TOP, "examples", "manifest.schema.json")) as f:
    SCHEMA = json.load(f)


def test_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_sample_manifest_is_valid():
    jsonschema.Draft202012Validator(SCHEMA).validate(sample_manifest())


def _set(m, path, value):
    keys = path.split(".")
    for k in keys[:-1]:
        m = m[int(k)] if isinstance(m, list) else m[k]
    if value is None:
        del m[keys[-1]]
    elif isinstance(m, list):
        m[int(keys[-1])] = value
    else:
        m[keys[-1]] = value


@pytest.mark.parametrize("path,value", [
    ("version", 2), ("packet_id", "../x"), ("packet_id", 5), ("colour", "x"),
    ("basis", "curiosity"), ("documents.0.file", "a/b.pdf"),
    ("documents.0.file", ".hidden"), ("documents.0.sha256", "abc"),
    ("documents.0.date", "14/10/2026"), ("documents.0.categories", ["gossip"]),
    ("patient", None), ("documents", []),
    # Issue 18: refused by the parser, so by the schema too.
    ("approval.by", ""), ("approval.by", "   "),
    ("authorization.signed_by", ""),
    ("documents.0.redact", {"patterns": [{"name": "ssn", "expect": -1}]}),
    ("cover_sheet.urgent", "yes"),
    ("patient.name", "Zo\u007fe"), ("patient.name", "Zo\u0085e"),
    ("documents.0.description", "x\u009f"),
    ("documents", {"file": "labs.pdf"}),
    ("documents.0.file", "a" * 252 + ".pdf"),
    ("documents.0.file", "a\\b.pdf"),
])
def test_schema_refuses_what_the_parser_refuses(path, value):
    m = copy.deepcopy(sample_manifest())
    if path == "colour":
        m["colour"] = value
    else:
        _set(m, path, value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(m)


@pytest.mark.parametrize("path,value", [
    ("patient.name", "Zo\u00eb\tTest\u00a0Patient"), ("cover_sheet.urgent", True),
    ("documents.0.file", "a" * 251 + ".pdf"),
    ("documents.0.redact", {"patterns": [{"name": "ssn", "expect": 0}]}),
])
def test_schema_accepts_what_the_parser_accepts(path, value):
    m = copy.deepcopy(sample_manifest())
    _set(m, path, value)
    jsonschema.Draft202012Validator(SCHEMA).validate(m)
