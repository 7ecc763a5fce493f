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
])
def test_schema_refuses_what_the_parser_refuses(path, value):
    m = copy.deepcopy(sample_manifest())
    if path == "colour":
        m["colour"] = value
    else:
        _set(m, path, value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(m)
