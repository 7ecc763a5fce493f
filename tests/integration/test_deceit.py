"""Redaction against inputs built to deceive the text layer (issue 16):
each synthetic input hides an SSN or the patient's name from a naive text
search; the output is then checked with extractors that are not ours
(pdftotext, strings over qpdf --qdf, and the tesseract CLI on pages
rendered with pdftoppm).  Either nothing is found, or the leak gate failed
the job and nothing was written.  Pages are small and OCR runs at 150 dpi
where that does not weaken the check."""
import json
import os
import re
import subprocess

import pytest

import docs
from gateway import BUILD
from test_render import RENDER, TEMPLATES, write_packet, qdf_strings, text_of

SSN_DIGITS = "123456789"
NAME = "Testpatient"


def run(folder, *args):
    return subprocess.run([RENDER, "-t", os.path.join(TEMPLATES, "default.tpl"),
                           "--ocr-dpi", "200", *args, folder],
                          capture_output=True, text=True, timeout=300)


def squeeze(text):
    return re.sub(r"[^0-9a-z]", "", text.lower())


def ocr_of(pdf, tmp):
    """The tesseract CLI's reading of every page, rendered by pdftoppm."""
    prefix = os.path.join(tmp, "pg")
    subprocess.run(["pdftoppm", "-r", "200", "-gray", pdf, prefix], check=True)
    out = ""
    for n in sorted(os.listdir(tmp)):
        if n.startswith("pg") and n.endswith(".pgm"):
            out += subprocess.run(["tesseract", os.path.join(tmp, n), "-"],
                                  capture_output=True, text=True,
                                  env=dict(os.environ, OMP_THREAD_LIMIT="1")).stdout
    return out


def assert_gone(r, folder, tmp, secret):
    """Nothing of secret readable in the output, or the job failed with
    nothing written."""
    out = os.path.join(folder, "preview.pdf")
    if r.returncode != 0:
        assert "still readable" in r.stderr or "printed on it" in r.stderr, r.stderr
        assert not os.path.exists(out)
        return
    s = squeeze(secret)
    assert s not in squeeze(text_of(out))
    assert s not in squeeze(qdf_strings(out, tmp))
    assert s not in squeeze(ocr_of(out, tmp))


def lab(ops, **kw):
    return docs.pdf([ops], **kw).data


def tj(text, x=72, y=680, size=14, extra=""):
    esc = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return "BT /F1 %d Tf %s %d %d Td (%s) Tj ET\n" % (size, extra, x, y, esc)


DIGITS_AS_LETTERS = docs.lying_cmap({str(d): chr(ord("A") + d) for d in range(10)})

PDF_CASES = {
    # The text layer says letters where the page shows digits.
    "tounicode_lies": lambda: lab(tj("SSN 123-45-6789"), to_unicode=DIGITS_AS_LETTERS),
    # No Unicode mapping at all: an extractor gets nothing usable.
    "no_unicode": lambda: lab(tj("SSN 123-45-6789"), no_unicode=True),
    # A character of 0.01 pt inside the number.
    "tiny_char": lambda: lab("BT /F1 14 Tf 72 680 Td (SSN 123-4) Tj /F1 0.01 Tf (7) Tj "
                             "/F1 14 Tf (5-6789) Tj ET\n"),
    # Character spacing pulls the digits apart.
    "char_spacing": lambda: lab(tj("SSN 123-45-6789", extra="9 Tc")),
    # The second half drawn first.
    "reversed_halves": lambda: lab(tj("6789", x=172) + tj("SSN 123-45-", x=72)),
    # Glyphs drawn somewhere else than the text's own position says: a
    # text rise moves the ink one line down.
    "glyphs_moved": lambda: lab(tj("SSN 123-45-6789", extra="-30 Ts")),
}


@pytest.mark.parametrize("case", sorted(PDF_CASES))
def test_pdf_text_layer_that_lies(tmp_path, case):
    folder = str(tmp_path / "p")
    write_packet(folder, {"lab.pdf": PDF_CASES[case]()},
                 {"lab.pdf": {"redact": {"patterns": [{"name": "ssn"}]}}})
    r = run(folder)
    assert_gone(r, folder, str(tmp_path), SSN_DIGITS)


TEXT_CASES = {
    "spaces": "SSN 123 45 6789\n",
    "en_dash": "SSN 123\u201345\u20136789\n",
    "nb_hyphen": "SSN 123\u201145\u20116789\n",
    "minus": "SSN 123\u221245\u22126789\n",
    "full_width": "SSN \uff11\uff12\uff13-\uff14\uff15-\uff16\uff17\uff18\uff19\n",
    "zero_width": "SSN 123-4\u200b5-67\u200d89\n",
    "wrapped": "x" * 74 + " 123-45-6789 end\n",
}


def text_case(tmp_path, text, pattern, secret):
    """A plain-text note with one secret the pattern must find."""
    folder = str(tmp_path / "p")
    write_packet(folder, {"note.txt": text.encode()},
                 {"note.txt": {"redact": {"patterns": [{"name": pattern,
                                                         "expect": 1}]}}})
    r = run(folder)
    assert r.returncode == 0, r.stderr
    assert_gone(r, folder, str(tmp_path), secret)


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_separators_and_wraps_in_text(tmp_path, case):
    text_case(tmp_path, TEXT_CASES[case], "ssn", SSN_DIGITS)


NAME_CASES = {
    "line_break": "Patient: Zo\u00eb\nTestpatient seen\n",
    "two_spaces": "Patient: Zo\u00eb  Testpatient seen\n",
    "tab": "Patient: Zo\u00eb\tTestpatient seen\n",
    "upper_case": "Patient: ZO\u00cb TESTPATIENT seen\n",
    "hyphenated": "Patient: Zo\u00eb Test-\npatient seen\n",
}


@pytest.mark.parametrize("case", sorted(NAME_CASES))
def test_names_however_spaced(tmp_path, case):
    text_case(tmp_path, NAME_CASES[case], "patient_name", NAME)


def test_scan_gets_patterns(tmp_path):
    folder = str(tmp_path / "p")
    page = docs.scan(["Synthetic scan", "SSN 123-45-6789"], size=(1275, 600))
    write_packet(folder, {"scan.png": docs.image_bytes(page, "PNG")},
                 {"scan.png": {"redact": {"patterns": [{"name": "ssn", "expect": 1}]}}})
    r = run(folder)
    assert r.returncode == 0, r.stderr
    assert " ssn" in r.stdout
    assert_gone(r, folder, str(tmp_path), SSN_DIGITS)


def test_gate_fails_a_rectangle_in_the_wrong_place(tmp_path):
    """OCR of the input off, the text layer lying: the search finds
    nothing, the clerk's rectangle misses; the gate reads the SSN on the
    output and fails the job with nothing written.  The rectangle in the
    right place passes."""
    folder = str(tmp_path / "p")
    doc = lab(tj("SSN 123-45-6789", y=680), to_unicode=DIGITS_AS_LETTERS)
    for rect, ok in (({"page": 1, "x": 300, "y": 400, "w": 100, "h": 20}, False),
                     ({"page": 1, "x": 100, "y": 95, "w": 130, "h": 25}, True)):
        write_packet(folder, {"lab.pdf": doc}, {"lab.pdf": {"redact": {
            "rects": [rect], "patterns": [{"name": "ssn"}]}}})
        r = run(folder, "--ocr", "off")
        out = os.path.join(folder, "preview.pdf")
        if ok:
            assert r.returncode == 0, r.stderr
            assert "gate [ocr" in r.stdout
        else:
            assert r.returncode == 65
            assert "page 2: the SSN is still readable after redaction" in r.stderr
            assert not os.path.exists(out)


def test_gate_reads_small_text_at_ocr_dpi(tmp_path):
    """A 4 pt SSN behind a lying text layer, OCR of the input off: at the
    output's own 150 dpi it is 8 pixels tall and the gate's OCR misses it
    (the job would pass); read back at [render] ocr_dpi (300) it is caught
    and nothing is written."""
    folder = str(tmp_path / "p")
    doc = lab(tj("SSN 123-45-6789", size=4), to_unicode=DIGITS_AS_LETTERS)
    write_packet(folder, {"lab.pdf": doc},
                 {"lab.pdf": {"redact": {"patterns": [{"name": "ssn"}]}}})
    args = [RENDER, "-t", os.path.join(TEMPLATES, "default.tpl"), "--ocr", "off"]
    r = subprocess.run(args + ["--ocr-dpi", "150", folder], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "gate [ocr 150 dpi" in r.stdout, r.stderr
    os.unlink(os.path.join(folder, "preview.pdf"))
    r = subprocess.run(args + [folder], capture_output=True, text=True, timeout=300)
    assert r.returncode == 65, r.stdout
    assert "page 2: the SSN is still readable after redaction" in r.stderr
    assert not os.path.exists(os.path.join(folder, "preview.pdf"))


def test_gate_off_says_so(tmp_path):
    folder = str(tmp_path / "p")
    write_packet(folder, {"note.txt": b"nothing here\n"})
    r = run(folder, "--verify", "off")
    assert r.returncode == 0, r.stderr
    assert "gate [off: the output was not read back" in r.stdout


def test_cover_note_naming_the_patient_is_refused(tmp_path):
    folder = str(tmp_path / "p")
    m = write_packet(folder, {"note.txt": b"nothing here\n"})
    m["cover_sheet"]["note"] = "Records of %s enclosed" % m["patient"]["name"]
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(m, f, ensure_ascii=False)
    r = run(folder)
    assert r.returncode == 65, r.stdout + r.stderr
    assert ("cover_sheet.note: it is printed on the cover sheet and holds the "
            "patient's name, which never belongs there") in r.stderr


# --- the gate on the cover sheet ---------------------------------------------
#
# The cover is roigate's own typesetting: its text layer is searched whole
# and OCR reads only where the template put what the packet or its
# recipient filled in (src/cover.c records those regions as it draws).

# Zoë Testpatient with Cyrillic о, е, Т, р, а: the text layer holds
# other letters, the page shows the same name.
LOOK_ALIKE = "Z\u043e\u0435 \u0422\u0435st\u0440\u0430ti\u0435nt"
COVER_GATE = re.compile(r"gate \[ocr \d+ dpi, 1 of 2 pages read back; cover: "
                        r"text layer \+ OCR of (\d+) field regions for "
                        r"patient_name,mrn,dob; documents: no patterns\]")


def cover_packet(folder, purpose=None, **cover):
    m = write_packet(folder, {"note.txt": b"nothing here\n"})
    m["cover_sheet"].update(cover)
    if purpose:
        m["request"]["purpose"] = purpose
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(m, f, ensure_ascii=False)
    return m


def assert_cover_refused(r, folder, what):
    assert r.returncode == 65, r.stdout + r.stderr
    assert ("page 1 (the cover sheet): %s is printed on it, where it never "
            "belongs" % what) in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(folder, "preview.pdf"))


@pytest.mark.parametrize("profile", ["document", "fax"])
def test_cover_gate_reads_the_text_layer_and_the_field_regions(tmp_path, profile):
    folder = str(tmp_path / "p")
    cover_packet(folder)
    r = run(folder, "-p", profile)
    assert r.returncode == 0, r.stderr
    m = COVER_GATE.search(r.stdout)
    assert m, r.stdout
    # The recipient's name and address, From, Date, Pages, Request,
    # Purpose and the note (the organization line is empty: not drawn).
    assert int(m.group(1)) == 8, r.stdout


@pytest.mark.parametrize("profile", ["document", "fax"])
@pytest.mark.parametrize("field", ["note", "purpose"])
def test_cover_look_alike_letters_are_read_by_ocr(tmp_path, field, profile):
    """Intake compares letters; a name spelled with Cyrillic look-alikes
    passes it and the text layer, but OCR of the field's region reads
    what the page shows."""
    folder = str(tmp_path / "p")
    cover_packet(folder, **{field: "Records of %s enclosed" % LOOK_ALIKE})
    r = run(folder, "-p", profile)
    assert_cover_refused(r, folder, "the patient's name")


def test_cover_recipient_named_like_the_patient_is_refused(tmp_path):
    folder = str(tmp_path / "p")
    m = cover_packet(folder)
    r = run(folder, "--to", m["patient"]["name"])
    assert_cover_refused(r, folder, "the patient's name")


def render_with_template(tmp_path, text, *args, **cover):
    """The cover packet rendered with a template of text (appended to the
    default template's if it starts with "+")."""
    tpl = tmp_path / "t.tpl"
    if text.startswith("+"):
        with open(os.path.join(TEMPLATES, "default.tpl")) as f:
            text = f.read() + text[1:]
    tpl.write_text(text)
    folder = str(tmp_path / "p")
    if os.path.exists(os.path.join(folder, "preview.pdf")):
        os.unlink(os.path.join(folder, "preview.pdf"))
    cover_packet(folder, **cover)
    return folder, subprocess.run([RENDER, "-t", str(tpl), *args, folder],
                                  capture_output=True, text=True, timeout=300)


WHOLE_COVER = "cover: OCR of the whole page for patient_name,mrn,dob;"


def test_cover_template_literal_is_read_by_the_text_layer(tmp_path):
    """An administrator's mistake: an SSN typed into the template itself,
    outside every field region, is found in the cover's text layer."""
    folder, r = render_with_template(
        tmp_path, "+text 54 700 10 regular Billing: 123-45-6789\n",
        "--protect", "ssn")
    assert_cover_refused(r, folder, "the SSN")


def test_cover_of_too_many_fields_is_read_whole_by_ocr(tmp_path):
    """Regions the gate cannot account for (more than it keeps): the whole
    cover is read by OCR, as it always was, and a look-alike name is
    still found."""
    many = ("".join("text 54 %d 8 regular {request_id}\n" % (60 + 10 * i)
                    for i in range(65))
            + "wrap 54 720 480 11 regular {note}\n")
    folder, r = render_with_template(tmp_path, many)
    assert r.returncode == 0, r.stderr
    assert WHOLE_COVER in r.stdout, r.stdout
    folder, r = render_with_template(
        tmp_path, many, note="Records of %s enclosed" % LOOK_ALIKE)
    assert_cover_refused(r, folder, "the patient's name")


def test_cover_text_layer_short_of_what_was_drawn_is_read_whole(tmp_path):
    """A line under 1 pt is left out of the text layer's search: the text
    layer no longer holds all the sheet drew, and OCR reads the whole
    cover."""
    folder, r = render_with_template(
        tmp_path, "+text 54 700 0.5 regular Fine print\n")
    assert r.returncode == 0, r.stderr
    assert WHOLE_COVER in r.stdout, r.stdout


def test_box_widths_are_quantized_and_lines_intact(tmp_path):
    """Boxes over names are a multiple of 72 pt wide, and no taller than
    the 12 pt line (they never cut the lines around them)."""
    folder = str(tmp_path / "p")
    text = "Ann Li\nBartholomew Featherstonehaugh\n".encode()
    write_packet(folder, {"n.txt": text}, {"n.txt": {"redact": {"patterns": [
        {"regex": "Ann Li|Bartholomew Featherstonehaugh", "expect": 2}]}}})
    r = run(folder, "--ocr", "off")
    assert r.returncode == 0, r.stderr
    boxes = [l.split()[6:10] for l in r.stdout.splitlines() if l.startswith("redaction")]
    widths = {float(b[2]) for b in boxes}
    assert all(w % 72 == 0 for w in widths), widths
    assert all(float(b[3]) <= 12.0 for b in boxes), boxes


# --- [render] protect --------------------------------------------------------

def _check_conf(tmp_path, protect):
    from gateway import Gateway
    g = Gateway(str(tmp_path / ("g-" + re.sub(r"\W", "_", protect))),
                render={"protect": protect})
    return subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", g.conf],
                          capture_output=True, text=True, timeout=30)


def test_protect_takes_every_named_pattern(tmp_path):
    r = _check_conf(tmp_path, "ssn, phone, email, mrn, dob, patient_name")
    assert r.returncode == 0, r.stderr
    for bad in ("zip", "CLM-[0-9]{6}"):
        r = _check_conf(tmp_path, "ssn, " + bad)
        assert r.returncode == 1
        assert ('[render] protect: "%s" is not a named pattern; protect takes '
                "ssn, phone, email, mrn, dob and patient_name (a regular "
                "expression goes in a packet's manifest)" % bad) in r.stderr, r.stderr


def test_protect_finds_the_packets_own_patient(tmp_path):
    """patient_name, mrn and dob protected by the site: the packet's own
    patient is found and boxed though the clerk asked for nothing; a
    packet without a date of birth is rendered (dob not looked for)."""
    folder = str(tmp_path / "p")
    text = b"Patient Zoe Testpatient  MRN TEST-000123  born 1984-03-09\n"
    m = write_packet(folder, {"n.txt": text})
    r = run(folder, "--protect", "patient_name,mrn,dob")
    assert r.returncode == 0, r.stderr
    found = sorted(l.split()[-1] for l in r.stdout.splitlines()
                   if l.startswith("redaction"))
    assert found == ["dob", "mrn", "patient_name"], r.stdout
    assert "documents: patient_name,mrn,dob" in r.stdout
    assert_gone(r, folder, str(tmp_path), "TEST000123")
    del m["patient"]["dob"]
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(m, f, ensure_ascii=False)
    os.unlink(os.path.join(folder, "preview.pdf"))
    r = run(folder, "--protect", "patient_name,mrn,dob")
    assert r.returncode == 0, r.stderr
    assert "documents: patient_name,mrn;" not in r.stdout
    assert "dob" not in r.stdout.split("documents:")[1]


# --- the gate through the daemon -----------------------------------------------

def _daemon(gateway_factory, **render):
    g = gateway_factory(queue={"job_timeout": "120s"}, render=render)
    g.start()
    g.add_recipient("records-desk")
    return g


def _lying_packet(packet_id, rect):
    from gateway import Packet
    p = Packet(packet_id)
    doc = lab(tj("SSN 123-45-6789", y=680), to_unicode=DIGITS_AS_LETTERS)
    p.files = {"lab.pdf": doc}
    p.manifest["documents"] = [dict(p.manifest["documents"][0], file="lab.pdf",
                                    redact={"rects": [rect],
                                            "patterns": [{"name": "ssn"}]})]
    return p


GOOD_RECT = {"page": 1, "x": 100, "y": 95, "w": 130, "h": 25}
BAD_RECT = {"page": 1, "x": 300, "y": 400, "w": 100, "h": 20}


def test_daemon_records_what_the_gate_checked(gateway_factory):
    from gateway import wait_state
    gw = _daemon(gateway_factory, ocr="off")
    gw.drop(_lying_packet("ROI-GATE-OK", GOOD_RECT))
    j = wait_state(gw, "ROI-GATE-OK", "delivered", timeout=120)
    show = gw.job(j["id"])
    sending = [e for e in show["events"] if e["to"] == "sending"]
    assert len(sending) == 1
    gate = ("leak gate: ocr 300 dpi, 2 of 2 pages read back; cover: text "
            "layer + OCR of 9 field regions for patient_name,mrn,dob; "
            "documents: ssn")
    assert sending[0]["reason"] == "attempt 1 by local; " + gate, sending[0]
    entries = gw.log_entries("--job", str(j["id"]))
    assert [e["outcome"] for e in entries] == ["attempt", "delivered"]
    assert entries[0]["detail"] == gate
    text = gw.roictl("log", "--job", str(j["id"])).stdout
    assert gate in text
    assert "123-45-6789" not in json.dumps(show) + text


def test_daemon_sends_nothing_the_gate_failed(gateway_factory):
    from gateway import wait_state
    gw = _daemon(gateway_factory, ocr="off")
    gw.drop(_lying_packet("ROI-GATE-BAD", BAD_RECT))
    j = wait_state(gw, "ROI-GATE-BAD", ("failed", "held", "delivered"), timeout=120)
    assert j["state"] == "failed"
    show = gw.job(j["id"])
    assert ("page 2: the SSN is still readable after redaction: check the "
            "redactions marked for it") in show["job"]["last_error"]
    assert show["disclosures"] == []
    assert gw.log_entries("--job", str(j["id"])) == []
    assert "delivered" not in gw.roictl("log", "--job", str(j["id"])).stdout
    # The local transport's outbox holds nothing, for this or any packet.
    assert not os.path.exists(gw.outbox) or all(
        not files for _, _, files in os.walk(gw.outbox)), list(os.walk(gw.outbox))


def test_daemon_verify_off_is_a_problem_in_status(gateway_factory):
    from gateway import Packet, wait_state
    gw = _daemon(gateway_factory, verify="off")
    gw.drop(Packet("ROI-GATE-OFF"))
    j = wait_state(gw, "ROI-GATE-OFF", "delivered", timeout=120)
    assert any(e["reason"].endswith("leak gate: off: the output was not read "
                                    "back before sending ([render] verify = off)")
               for e in gw.job(j["id"])["events"])
    status = gw.roictl("status").stdout
    assert "[render] verify = off: outputs are sent unchecked (no leak gate)" in status
    assert "verify = off" in json.dumps(gw.json("status"))


def test_expect_counts_the_larger_of_text_layer_and_ocr(tmp_path):
    """One SSN in the text layer that OCR reads too is one match (not two);
    a regular expression's mismatch is named by its place, not its text."""
    folder = str(tmp_path / "p")
    write_packet(folder, {"lab.pdf": lab(tj("SSN 123-45-6789"))}, {"lab.pdf": {
        "redact": {"patterns": [{"name": "ssn", "expect": 1},
                                {"regex": "CLM-[0-9]{6}", "expect": 1}]}}})
    r = run(folder)
    assert r.returncode == 65
    assert ("document lab.pdf: pattern 2 (a regular expression) was expected 1 "
            "time and found 0 times: check the redactions marked for it") in r.stderr
    assert "CLM" not in r.stderr
    write_packet(folder, {"lab.pdf": lab(tj("SSN 123-45-6789"))}, {"lab.pdf": {
        "redact": {"patterns": [{"name": "ssn", "expect": 1}]}}})
    r = run(folder)
    assert r.returncode == 0, r.stderr
