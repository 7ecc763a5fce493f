"""Spool intake: good packets are taken and delivered; bad ones are refused
with a reason a clerk can act on, and nothing is lost."""
import hashlib
import json
import os
import shutil
import time

import pytest

from gateway import Packet, pdf_pages, wait_for, wait_rejected, wait_state, sha256


def test_good_packet_is_delivered_and_logged(gw):
    p = Packet("ROI-T-0001")
    gw.drop(p)
    j = wait_state(gw, "ROI-T-0001", "delivered")
    out = os.path.join(gw.outbox, "records-desk", "ROI-T-0001")
    # One PDF: the cover sheet, then the three documents' pages.
    assert os.listdir(out) == ["ROI-T-0001.pdf"]
    pdf = os.path.join(out, "ROI-T-0001.pdf")
    assert pdf_pages(pdf) == 4
    with open(pdf, "rb") as f:
        output_sha = sha256(f.read())
    show = gw.job(j["id"])
    assert show["job"]["pages"] == 4
    assert show["job"]["output_sha256"] == output_sha
    assert show["job"]["attempts"] == 1
    assert [e["to"] for e in show["events"]] == [
        "accepted", "queued", "rendering", "sending", "delivered"]
    entries = gw.log_entries("--mrn", "TEST-000123")
    assert [e["outcome"] for e in entries] == ["attempt", "delivered"]
    d = entries[-1]
    assert d["packet_id"] == "ROI-T-0001" and d["recipient_id"] == "records-desk"
    assert d["purpose"] == "continuity of care after hospital discharge"
    assert d["basis"] == "authorization" and d["authorization_id"] == "AUTH-2026-0091"
    assert "lab (2026-10-14)" in d["description"]
    assert d["accountable"] is False   # made under the patient's authorization
    assert d["remote_id"] == "records-desk/ROI-T-0001"
    assert d["prev_hash"] == entries[0]["hash"]
    assert d["pages"] == 4 and d["output_sha256"] == output_sha
    # A copy of exactly what was sent, readable by the daemon's user only.
    kept = gw.archived(j["id"], 1)
    assert os.stat(kept).st_mode & 0o777 == 0o600
    with open(kept, "rb") as f:
        assert sha256(f.read()) == output_sha
    # ...and the only one: the job's folder keeps the packet, not the output.
    assert ".output.pdf" not in os.listdir(os.path.join(gw.state, "jobs", str(j["id"])))
    # The spool is empty and the packet lives on in the daemon's jobs/.
    assert gw.incoming_names() == []
    r = gw.roictl("verify-log", check=0)
    assert "intact: 2 entries" in r.stdout


def _symlink(folder):
    os.unlink(os.path.join(folder, "discharge-summary.txt"))
    os.symlink("/etc/passwd", os.path.join(folder, "discharge-summary.txt"))


def _hardlink(folder):
    os.link(os.path.join(folder, "labs-2026-10.pdf"),
            os.path.join(folder, "..", "labs-copy.pdf"))


def _extra_file(folder):
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("synthetic note that is not in the manifest\n")


def _subfolder(folder):
    os.mkdir(os.path.join(folder, "more"))


def _bad_json(folder):
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        f.write('{"version": 1, "packet_id": "ROI-T-BAD",\n  oops }')


def m(path, value):
    """A change to the manifest: set (or with value=None, delete) a path."""
    def change(p):
        obj = p.manifest
        keys = path.split(".")
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        last = keys[-1]
        if isinstance(obj, list):
            obj[int(last)] = value
        elif value is None:
            del obj[last]
        else:
            obj[last] = value
    return change


def files(name, data):
    def change(p):
        p.files[name] = data
    return change


def wrong_hash(p):
    p.fix_hashes = False
    for d in p.manifest["documents"]:
        d["sha256"] = sha256(p.files[d["file"]])
    p.doc("labs-2026-10.pdf")["sha256"] = sha256(b"something else")


def extra(fn):
    def change(p):
        p.extra.append(fn)
    return change


PNG = open(os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                        "sample-packet", "chest-xray.png"), "rb").read()

# (case id, changes to the good packet, what REASON.txt must say)
BAD = [
    ("hash-mismatch", [wrong_hash],
     "document labs-2026-10.pdf: SHA-256 does not match the manifest"),
    ("expired", [m("authorization.expires_on", "2026-10-01")],
     "authorization AUTH-2026-0091 expired on 2026-10-01"),
    ("not-yet-valid", [m("authorization.effective_on", "2099-01-01")],
     "authorization AUTH-2026-0091 is not valid yet (effective on 2099-01-01)"),
    ("unsigned", [m("authorization.signed_by", None)],
     "authorization AUTH-2026-0091 is not signed"),
    ("no-authorization", [m("authorization", None)],
     "authorization: missing; basis authorization"),
    ("no-approval", [m("approval", None)], "the packet has no approval"),
    ("type-out-of-scope", [m("documents.0.type", "progress_note")],
     'document labs-2026-10.pdf: type "progress_note" is not covered'),
    ("date-out-of-scope", [m("documents.0.date", "2026-09-02")],
     "document labs-2026-10.pdf: dated 2026-09-02, before the authorized period"),
    ("special-category", [m("documents.1.categories", ["hiv"])],
     "document discharge-summary.txt carries hiv"),
    ("psychotherapy", [m("documents.1.categories", ["psychotherapy_notes"])],
     "document discharge-summary.txt carries psychotherapy_notes"),
    ("unknown-recipient", [m("recipient", "nobody-here")],
     'recipient "nobody-here" is not in the verified recipient'),
    ("unverified-recipient", [m("recipient", "unverified-desk")],
     'recipient "unverified-desk" has not been verified yet'),
    ("magic-mismatch", [files("labs-2026-10.pdf", PNG)],
     "document labs-2026-10.pdf: content is"),
    ("type-not-allowed", [m("documents.1.file", "run.sh"),
                          lambda p: p.files.update(
                              {"run.sh": b"#!/bin/sh\necho hi\n"}),
                          lambda p: p.files.pop("discharge-summary.txt")],
     "document run.sh: is not a PDF, TIFF, PNG, JPEG or text file: it looks "
     "like a script (a program's text)"),
    ("path-escape", [m("documents.1.file", "../discharge-summary.txt")],
     'documents[1].file: "../discharge-summary.txt" must be a plain file name'),
    ("absolute-path", [m("documents.1.file", "/etc/passwd")],
     'documents[1].file: "/etc/passwd" must be a plain file name'),
    ("symlink", [extra(_symlink)],
     "discharge-summary.txt is a symbolic link"),
    ("hardlink", [extra(_hardlink)], "labs-2026-10.pdf has other hard links"),
    ("extra-file", [extra(_extra_file)],
     "file notes.txt is not listed in the manifest"),
    ("subfolder", [extra(_subfolder)], "more is a folder"),
    ("too-big", [files("discharge-summary.txt", b"synthetic text\n" * 80000)],
     "discharge-summary.txt is 1200000 bytes, over the limit of 1048576 bytes"),
    ("bad-json", [extra(_bad_json)], "manifest.json, line 2, column 6: a field "
     "name in double quotes is expected here"),
    ("wrong-type", [m("packet_id", 12345)], "packet_id: must be a string"),
    ("wrong-version", [m("version", 2)], "version: 2 is not supported"),
    ("bad-date", [m("documents.0.date", "14/10/2026")],
     '"14/10/2026" is not a date (use YYYY-MM-DD)'),
    ("unknown-field", [m("colour", "blue")], "colour: unknown field"),
]


@pytest.mark.parametrize("case,changes,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_packet_is_rejected_with_reason(gw, case, changes, reason):
    gw.add_recipient("unverified-desk", verify=False)
    p = Packet("ROI-T-" + case.upper())
    for change in changes:
        change(p)
    name = gw.drop(p, name="packet-" + case)
    wait_rejected(gw, name)
    text = gw.reason(name)
    assert reason in text, text
    assert text.startswith("roigate did not accept this packet")
    assert "Fix the packet and copy the folder into incoming/ again." in text
    # Nothing lost: every file the clerk dropped is there, unchanged.
    kept = os.path.join(gw.rejected, name)
    for fname, data in p.files.items():
        if fname in ("discharge-summary.txt",) and case == "symlink":
            assert os.path.islink(os.path.join(kept, fname))
            continue
        with open(os.path.join(kept, fname), "rb") as f:
            assert f.read() == data, fname
    assert os.path.exists(os.path.join(kept, "manifest.json"))
    # No job, no disclosure, and the daemon keeps serving everyone else.
    assert gw.jobs() == []
    assert gw.log_entries() == []
    good = Packet("ROI-T-AFTER-" + case.upper())
    gw.drop(good)
    wait_state(gw, good.packet_id, "delivered")
    assert gw.proc.poll() is None


def test_all_reasons_are_given_at_once(gw):
    p = Packet("ROI-T-MANY")
    m("authorization.expires_on", "2026-10-01")(p)
    m("documents.0.type", "progress_note")(p)
    extra(_extra_file)(p)
    gw.drop(p)
    wait_rejected(gw, "ROI-T-MANY")
    text = gw.reason("ROI-T-MANY")
    assert "expired on 2026-10-01" in text
    assert 'type "progress_note" is not covered' in text
    assert "file notes.txt is not listed" in text


def test_same_packet_id_twice_is_refused(gw):
    gw.drop(Packet("ROI-T-TWICE"), name="first")
    j = wait_state(gw, "ROI-T-TWICE", "delivered")
    gw.drop(Packet("ROI-T-TWICE"), name="second")
    wait_rejected(gw, "second")
    assert (f"packet_id ROI-T-TWICE was already accepted as job {j['id']}"
            in gw.reason("second"))
    assert len(gw.jobs()) == 1
    assert len(gw.log_entries()) == 2


def test_plain_file_in_incoming_is_moved_aside_with_reason(gw):
    with open(os.path.join(gw.spool, ".stray"), "w") as f:
        f.write("synthetic stray file\n")
    os.rename(os.path.join(gw.spool, ".stray"),
              os.path.join(gw.incoming, "scan-0001.pdf"))
    # The file is moved first, then its reason written beside it.
    wait_rejected(gw, "scan-0001.pdf.REASON.txt")
    # It went to rejected/ under its own name, its reason beside it, and
    # nothing is left in incoming/.
    assert gw.rejected_names() == ["scan-0001.pdf", "scan-0001.pdf.REASON.txt"]
    assert gw.incoming_names() == []
    assert not os.path.isdir(os.path.join(gw.rejected, "scan-0001.pdf"))
    with open(os.path.join(gw.rejected, "scan-0001.pdf")) as f:
        assert f.read() == "synthetic stray file\n"
    # The reason says what is wrong with it: a single file, not a folder.
    text = gw.reason("scan-0001.pdf")
    assert ("- scan-0001.pdf is a single file, not a packet folder: drop a "
            "folder holding manifest.json and its documents\n") in text, text
    # Nothing else happened: no job, no disclosure.
    assert gw.jobs() == []
    assert gw.log_entries() == []


def test_slow_copy_is_taken_only_when_complete(gw):
    """A clerk's copy that arrives file by file, with pauses longer than
    settle_ms between files, and a manifest that itself arrives in two
    parts: the packet must not be taken (or refused) before its last
    document is there."""
    p = Packet("ROI-T-SLOW")
    staging = os.path.join(gw.root, "staging")
    p.write(staging)
    folder = os.path.join(gw.incoming, "ROI-T-SLOW")
    os.mkdir(folder)

    def pause():
        # The slow copy itself (not synchronisation): longer than settle_ms
        # (150 ms), so the daemon looks at the folder in between.
        time.sleep(0.4)
        assert gw.jobs() == [], "taken before the copy was complete"
        assert gw.rejected_names() == [], gw.log()

    with open(os.path.join(staging, "manifest.json"), "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "manifest.json"), "wb") as f:
        f.write(data[:len(data) // 2])
        f.flush()
        pause()
        f.write(data[len(data) // 2:])
    for name in ["labs-2026-10.pdf", "discharge-summary.txt", "chest-xray.png"]:
        pause()
        shutil.copy(os.path.join(staging, name), os.path.join(folder, name))
    wait_state(gw, "ROI-T-SLOW", "delivered")


def test_incomplete_packet_is_rejected_after_timeout(gateway_factory):
    gw = gateway_factory(spool={"incomplete_timeout": "1s"})
    gw.start()
    gw.add_recipient("records-desk")
    p = Packet("ROI-T-HALF")
    del p.files["chest-xray.png"]
    p.fix_hashes = False
    for d in p.manifest["documents"]:
        if d["file"] in p.files:
            d["sha256"] = sha256(p.files[d["file"]])
    gw.drop(p)
    wait_rejected(gw, "ROI-T-HALF")
    assert "document chest-xray.png has not arrived" in gw.reason("ROI-T-HALF")
    assert gw.jobs() == []
