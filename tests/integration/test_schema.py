"""examples/manifest.schema.json describes what the gateway accepts: the
sample packet is valid, and the shapes the parser refuses are refused by
the schema too.  The parser is the real one (src/manifest.c), run by
roigate-render on a packet folder: it parses manifest.json before anything
else and exits 65 with each reason on a "manifest.json: " line."""
import copy
import json
import os
import shutil
import subprocess

import jsonschema
import pytest

from gateway import BUILD, EX_DATAERR, SAMPLE, TEMPLATES, TOP, sample_manifest

with open(os.path.join(TOP, "examples", "manifest.schema.json")) as f:
    SCHEMA = json.load(f)


def test_schema_is_valid_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


PARSER_SAYS = "roigate-render: manifest.json: "


def parse(folder, manifest):
    """The sample packet with this manifest, through the daemon's parser:
    roigate-render's exit status and the parser's reasons."""
    shutil.copytree(SAMPLE, folder)
    with open(os.path.join(folder, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False)
    r = subprocess.run([os.path.join(BUILD, "roigate-render"), "-t",
                        os.path.join(TEMPLATES, "default.tpl"), folder],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, [line[len(PARSER_SAYS):] for line in
                          r.stderr.splitlines() if line.startswith(PARSER_SAYS)]


def test_sample_manifest_is_valid(tmp_path):
    jsonschema.Draft202012Validator(SCHEMA).validate(sample_manifest())
    assert parse(str(tmp_path / "p"), sample_manifest()) == (0, [])


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


# (change, what the parser's reason says)
@pytest.mark.parametrize("path,value,reason", [
    ("version", 2, "version: 2 is not supported"),
    ("packet_id", "../x", 'packet_id: "../x" must be 1 to 64 letters'),
    ("packet_id", 5, "packet_id: must be a string"),
    ("colour", "x", "colour: unknown field"),
    ("basis", "curiosity", 'basis: "curiosity" is not a legal basis'),
    ("documents.0.file", "a/b.pdf",
     'documents[0].file: "a/b.pdf" must be a plain file name'),
    ("documents.0.file", ".hidden",
     'documents[0].file: ".hidden" must be a plain file name'),
    ("documents.0.sha256", "abc",
     "documents[0].sha256: must be 64 hexadecimal characters"),
    ("documents.0.date", "14/10/2026",
     'documents[0].date: "14/10/2026" is not a date'),
    ("documents.0.categories", ["gossip"],
     'documents[0].categories[0]: "gossip" is not a special category'),
    ("patient", None, "patient: missing"),
    ("documents", [], "documents: must list at least one document"),
    # Issue 18: refused by the parser, so by the schema too.
    ("approval.by", "", "approval.by:"), ("approval.by", "   ", "approval.by:"),
    ("authorization.signed_by", "", "authorization.signed_by:"),
    ("documents.0.redact", {"patterns": [{"name": "ssn", "expect": -1}]},
     "documents[0].redact.patterns[0].expect:"),
    ("cover_sheet.urgent", "yes", "cover_sheet.urgent:"),
    ("patient.name", "Zo\u007fe", "patient.name: contains an invisible control"),
    ("patient.name", "Zo\u0085e", "patient.name: contains an invisible control"),
    ("documents.0.description", "x\u009f", "documents[0].description:"),
    ("documents", {"file": "labs.pdf"}, "documents: must be a list"),
    ("documents.0.file", "a" * 252 + ".pdf",
     "documents[0].file: is longer than 255 bytes"),
    ("documents.0.file", "a\\b.pdf", "documents[0].file:"),
])
def test_schema_refuses_what_the_parser_refuses(tmp_path, path, value, reason):
    m = copy.deepcopy(sample_manifest())
    if path == "colour":
        m["colour"] = value
    else:
        _set(m, path, value)
    rc, reasons = parse(str(tmp_path / "p"), m)
    assert rc == EX_DATAERR, (rc, reasons)
    assert any(reason in r for r in reasons), reasons
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
