"""The document pipeline: one PDF per packet, cover sheet first, every page
re-rendered with its redactions burned in, nothing recoverable left.

Outputs are checked with the tools a privacy officer would reach for:
pdftotext, strings over `qpdf --qdf --object-streams=disable`, pdfimages,
pdfinfo and qpdf --check.  Most cases run roigate-render (the same code the
worker runs, without the daemon); the daemon cases show the job's record.
All patients, numbers and names are invented."""
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest
from PIL import Image

import docs
from gateway import (BUILD, TEMPLATES, Packet, pdf_pages, sample_manifest,
                     wait_for, wait_rejected, wait_state)

RENDER = os.path.join(BUILD, "roigate-render")
SECRET = "ZQ-HIDDEN-55172"          # must never appear in an output
SSN = "123-45-6789"


# --- helpers -------------------------------------------------------------

def write_packet(folder, files, docs_meta=None):
    """A packet folder: files (name -> bytes) described in a manifest made
    from the sample; docs_meta maps names to extra document fields."""
    os.makedirs(folder, exist_ok=True)
    m = sample_manifest()
    base = m["documents"][0]
    m["documents"] = []
    for name, data in files.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        d = dict(base, file=name, sha256=hashlib.sha256(data).hexdigest())
        d.update((docs_meta or {}).get(name, {}))
        m["documents"].append(d)
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(m, f, ensure_ascii=False)
    return m


def render(folder, *args, ok=True):
    r = subprocess.run([RENDER, "-t", os.path.join(TEMPLATES, "default.tpl"),
                        *args, folder], capture_output=True, text=True,
                       timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
        qpdf_check(os.path.join(folder, "preview.pdf"))     # every output
    return r


def text_of(pdf):
    return subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True,
                          text=True, check=True).stdout


def qdf_strings(pdf, tmp):
    """Every string in the output once all its streams are uncompressed."""
    out = os.path.join(tmp, "qdf.pdf")
    subprocess.run(["qpdf", "--qdf", "--object-streams=disable", pdf, out],
                   check=True)
    return subprocess.run(["strings", "-n", "4", out], capture_output=True,
                          text=True, check=True).stdout


def images(pdf):
    """pdfimages -list rows: (page, width, height, color, bpc, encoding)."""
    out = subprocess.run(["pdfimages", "-list", pdf], capture_output=True,
                         text=True, check=True).stdout.splitlines()[2:]
    rows = []
    for line in out:
        f = line.split()
        rows.append((int(f[0]), int(f[3]), int(f[4]), f[5], int(f[7]), f[8]))
    return rows


def page_image(pdf, page, tmp):
    """Page page's image, as pdfimages extracts it, in PIL."""
    prefix = os.path.join(tmp, f"img{page}")
    subprocess.run(["pdfimages", "-png", "-f", str(page), "-l", str(page), pdf,
                    prefix], check=True)
    name = sorted(n for n in os.listdir(tmp) if n.startswith(f"img{page}-"))[0]
    return Image.open(os.path.join(tmp, name)).convert("L")


def qpdf_check(pdf):
    r = subprocess.run(["qpdf", "--check", pdf], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def dark(im, box):
    """Mean gray of a box (x0, y0, x1, y1) of the image."""
    region = im.crop(box)
    data = region.getdata()
    return sum(data) / len(data)


# --- inputs with something hidden in them ----------------------------------

def leaky_pdf():
    """A PDF hiding SECRET everywhere a PDF can: white text, text under an
    image, the document information, XMP metadata, annotations, a form
    field, an attachment, JavaScript, a layer that is off.  Its visible
    text carries an SSN that the manifest redacts."""
    return docs.pdf(
        [docs.text_ops(["Synthetic progress note", f"SSN {SSN} on file"]) +
         docs.text_ops([SECRET], top=200, color=(1, 1, 1)) +
         docs.text_ops([SECRET], top=300),
         docs.text_ops(["Page two of the note"])],
        info={"Title": SECRET, "Author": SECRET, "Subject": SECRET},
        xmp=SECRET, annots=SECRET, attachment=(f"{SECRET}.txt", SECRET.encode()),
        javascript=f"app.alert('{SECRET}')", image_over=(60, 285, 320, 24),
        hidden=SECRET, form_field=SECRET).data


def leaky_inputs():
    """(file name, bytes, redact spec) per input type; each hides SECRET
    where that type can, and shows an SSN that is redacted."""
    page = docs.scan(["Synthetic scanned letter", "Patient Zoe Testpatient"])
    png_meta = {"pnginfo": _pnginfo()}
    tiff = io.BytesIO()
    page.convert("1").save(tiff, "TIFF", compression="group4", dpi=(200, 200),
                           save_all=True, append_images=[page.convert("1")],
                           tiffinfo={270: SECRET, 315: SECRET})
    jpeg = docs.image_bytes(page.convert("RGB"), "JPEG", comment=SECRET.encode())
    text = (f"Discharge summary (synthetic)\nSSN {SSN}\n{SECRET}\n"
            "Zoë Testpatient, Nguyễn Văn An\n\fsecond page\n").encode()
    rect = {"rects": [{"page": 1, "x": 150, "y": 190, "w": 700, "h": 50}]}
    return [
        ("note.pdf", leaky_pdf(),
         {"patterns": [{"name": "ssn", "expect": 1}]}),
        ("scan.tif", tiff.getvalue(), rect),
        ("scan.png", docs.image_bytes(page, "PNG", **png_meta), rect),
        ("scan.jpg", jpeg, rect),
        ("summary.txt", text,
         {"patterns": [{"name": "ssn", "expect": 1},
                       {"regex": "ZQ-HIDDEN-[0-9]+", "expect": 1}]}),
    ]


def _pnginfo():
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET)
    info.add_text("Author", SECRET)
    return info


# --- what every output must be -------------------------------------------

@pytest.mark.parametrize("profile", ["fax", "document"])
@pytest.mark.parametrize("case", [c[0] for c in leaky_inputs()])
def test_nothing_hidden_reaches_the_output(tmp_path, profile, case):
    name, data, redact = [c for c in leaky_inputs() if c[0] == case][0]
    folder = str(tmp_path / "p")
    write_packet(folder, {name: data}, {name: {"redact": redact}})
    # The input does carry the secret (the test would prove nothing if not).
    assert SECRET.encode() in data or SECRET.encode() in zlib_all(data)
    r = render(folder, "-p", profile)
    out = os.path.join(folder, "preview.pdf")
    qpdf_check(out)
    assert SECRET not in text_of(out)
    assert SSN not in text_of(out)
    s = qdf_strings(out, str(tmp_path))
    assert SECRET not in s and SSN not in s
    assert "JavaScript" not in s and "EmbeddedFile" not in s
    assert "/Annots" not in s and "/AcroForm" not in s and "/OCProperties" not in s
    # Every page after the cover is one image: fax CCITT 1-bit, document JPEG.
    n = pdf_pages(out)
    rows = images(out)
    assert [row[0] for row in rows] == list(range(2, n + 1))
    for row in rows:
        if profile == "fax":
            assert row[3:] == ("gray", 1, "ccitt")
        else:
            assert row[3:] == ("gray", 8, "jpeg")
    assert "redaction document 1 page 1" in r.stdout


def zlib_all(data):
    """The input's Flate streams inflated (to find what they hide)."""
    import zlib
    out = b""
    for m in re.finditer(rb"stream\r?\n", data):
        try:
            out += zlib.decompressobj().decompress(data[m.end():])
        except zlib.error:
            pass
    return out


def test_earlier_revision_does_not_survive(tmp_path):
    data = docs.pdf_with_old_revision(SECRET, "Current text of the record")
    assert SECRET.encode() in data
    folder = str(tmp_path / "p")
    write_packet(folder, {"revised.pdf": data})
    render(folder)
    out = os.path.join(folder, "preview.pdf")
    assert SECRET not in qdf_strings(out, str(tmp_path))
    assert pdf_pages(out) == 2


@pytest.mark.parametrize("profile,dpi", [("fax", (204, 196)), ("document", (150, 150))])
def test_redaction_boxes_are_black_pixels(tmp_path, profile, dpi):
    """A rectangle on a PDF page (points) and on a scan (pixels), and the
    SSN the ssn pattern finds: each box is solid black in the output's
    page image, and what is around it is not."""
    page = docs.scan(["Synthetic scan", "Account 4417-22 (synthetic)"])
    folder = str(tmp_path / "p")
    pdf_doc = docs.pdf([docs.text_ops(["Synthetic lab report",
                                       f"SSN {SSN} recorded"], top=100)]).data
    write_packet(folder, {"lab.pdf": pdf_doc,
                          "scan.png": docs.image_bytes(page, "PNG")},
                 {"lab.pdf": {"redact": {
                     "rects": [{"page": 1, "x": 300, "y": 400, "w": 144, "h": 72}],
                     "patterns": [{"name": "ssn", "expect": 1}]}},
                  "scan.png": {"redact": {"rects": [
                      {"page": 1, "x": 150, "y": 200, "w": 600, "h": 40}]}}})
    r = render(folder, "-p", profile)
    out = os.path.join(folder, "preview.pdf")
    sx, sy = dpi[0] / 72, dpi[1] / 72
    im = page_image(out, 2, str(tmp_path))
    assert im.size == (round(612 * sx), round(792 * sy))
    # The rectangle, 300,400 144x72 points (inset by two pixels).
    box = (int(300 * sx) + 2, int(400 * sy) + 2, int(444 * sx) - 2, int(472 * sy) - 2)
    assert dark(im, box) < 10
    assert dark(im, (box[0], box[3] + 10, box[2], box[3] + 40)) > 240
    # The SSN found in the text layer: its box is listed and black.
    ssn = [l for l in r.stdout.splitlines() if l.endswith(" ssn")]
    assert len(ssn) == 1
    x, y, w, h = map(float, ssn[0].split()[6:10])
    assert 90 < x < 110 and y < 116 < y + h   # after "SSN ", on the baseline of line 2
    assert dark(im, (int(x * sx) + 2, int(y * sy) + 2, int((x + w) * sx) - 2,
                     int((y + h) * sy) - 2)) < 10
    # The scan's pixel rectangle (150,200 600x40 of 1275x1650 pixels).
    im = page_image(out, 3, str(tmp_path))
    kx, ky = im.size[0] / 1275, im.size[1] / 1650
    box = (int(150 * kx) + 2, int(200 * ky) + 2, int(750 * kx) - 2, int(240 * ky) - 2)
    assert dark(im, box) < 10
    assert dark(im, (box[0], box[3] + 30, box[2], box[3] + 60)) > 200
    assert "redaction document 2 page 1 box 150.0 200.0 600.0 40.0 rect" in r.stdout


def test_patient_identifiers_and_regex_are_found_in_text(tmp_path):
    folder = str(tmp_path / "p")
    text = ("Patient: Zoë Testpatient (Testpatient, Zoë)\n"
            "MRN TEST-000123, born 03/09/1984, call 555-010-4477\n"
            "mail zoe.testpatient@example.test\n"
            "Claim CLM-88123\n").encode()
    write_packet(folder, {"note.txt": text}, {"note.txt": {"redact": {"patterns": [
        {"name": "patient_name", "expect": 2}, {"name": "mrn", "expect": 1},
        {"name": "dob", "expect": 1}, {"name": "phone", "expect": 1},
        {"name": "email", "expect": 1}, {"regex": "CLM-[0-9]+", "expect": 1}]}}})
    r = render(folder)
    found = [l.split()[-1] for l in r.stdout.splitlines() if l.startswith("redaction")]
    assert sorted(found) == sorted(["patient_name", "patient_name", "mrn", "dob",
                                    "phone", "email", "regex"])


def test_expectation_not_met_fails_with_a_reason(tmp_path):
    folder = str(tmp_path / "p")
    pdf_doc = docs.pdf([docs.text_ops([f"SSN {SSN}"])]).data
    write_packet(folder, {"lab.pdf": pdf_doc}, {"lab.pdf": {"redact": {
        "patterns": [{"name": "ssn", "expect": 2}]}}})
    r = render(folder, ok=False)
    assert r.returncode == 65
    assert ("document lab.pdf: pattern ssn was expected 2 times and found 1 "
            "time: check the redactions marked for it") in r.stderr
    assert SSN not in r.stderr
    assert not os.path.exists(os.path.join(folder, "preview.pdf"))


def test_rectangle_past_the_last_page_fails_with_a_reason(tmp_path):
    folder = str(tmp_path / "p")
    write_packet(folder, {"lab.pdf": docs.pdf([docs.text_ops(["one page"])]).data},
                 {"lab.pdf": {"redact": {"rects": [
                     {"page": 3, "x": 10, "y": 10, "w": 50, "h": 10}]}}})
    r = render(folder, ok=False)
    assert r.returncode == 65
    assert ("document lab.pdf: a redaction rectangle is on page 3 but it has 1 "
            "page: check the redactions marked for it") in r.stderr


def test_text_is_typeset_in_utf8_with_page_breaks(tmp_path):
    folder = str(tmp_path / "p")
    lines = "".join(f"line {i} Zoë Nguyễn\n" for i in range(100))
    write_packet(folder, {"long.txt": (lines + "\fafter a form feed\n").encode()})
    render(folder)
    # 100 lines at 57 a letter page: 2 pages, the form feed a third; + cover.
    assert pdf_pages(os.path.join(folder, "preview.pdf")) == 4


@pytest.mark.parametrize("compression", ["group4", "group3"])
def test_multipage_fax_tiff_keeps_every_page(tmp_path, compression):
    folder = str(tmp_path / "p")
    pages = [docs.scan([f"Fax page {i} (synthetic)"]) for i in range(3)]
    write_packet(folder, {"fax.tif": docs.tiff_g4(pages, compression=compression)})
    render(folder, "-p", "fax", "-P", "a4")
    out = os.path.join(folder, "preview.pdf")
    assert pdf_pages(out) == 4
    info = subprocess.run(["pdfinfo", out], capture_output=True, text=True).stdout
    assert "595 x 842 pts (A4)" in info


# --- the cover sheet --------------------------------------------------------

def cover_packet(folder, part2=False, urgent=True):
    m = write_packet(folder, {"lab.pdf": docs.pdf([docs.text_ops(["Lab (synthetic)"])]).data},
                     {"lab.pdf": {"categories": ["substance_use_part2"]} if part2 else {}})
    m["cover_sheet"] = {"template": "default", "note": "Call Dana at extension 4410.",
                        "urgent": urgent}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(m, f, ensure_ascii=False)


@pytest.mark.parametrize("profile", ["document", "fax"])
def test_urgent_mark_is_readable_on_the_page(tmp_path, profile):
    """"URGENT" is for the person at the fax machine: it must be seen on
    the page (OCR of the pixels), not only be in the text layer, and stay
    clear of the title."""
    folder = str(tmp_path / "p")
    cover_packet(folder)
    render(folder, "-p", profile, "--to", "Dr. Zoë Example")
    out = os.path.join(folder, "preview.pdf")
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "200", "-gray",
                    "-png", out, str(tmp_path / "pg")], check=True)
    seen = subprocess.run(["tesseract", str(tmp_path / "pg-1.png"), "-"],
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, OMP_THREAD_LIMIT="1")).stdout
    assert "URGENT" in seen, seen
    assert "Fax / Records Transmittal" in seen, seen


def test_cover_sheet_shows_every_field(tmp_path):
    folder = str(tmp_path / "p")
    cover_packet(folder, part2=True)
    logo = str(tmp_path / "logo.png")
    Image.new("RGB", (200, 60), "navy").save(logo)
    render(folder, "--org", "Example Hospital HIM", "--org-address",
           "1 Synthetic Way, Springfield", "--org-phone", "+1 555 010 2000",
           "--org-fax", "+1 555 010 2001", "--logo", logo,
           "--to", "Dr. Nguyễn Thị Zoë", "--to-address", "+1 555 000 1001",
           "--time", "1795000000")
    out = os.path.join(folder, "preview.pdf")
    cover = subprocess.run(["pdftotext", "-f", "1", "-l", "1", out, "-"],
                           capture_output=True, text=True).stdout
    for words in ["Example Hospital HIM", "1 Synthetic Way, Springfield",
                  "+1 555 010 2000", "+1 555 010 2001", "Dr. Nguyễn Thị Zoë",
                  "Example Family Practice", "+1 555 000 1001", "J. Clerk (HIM)",
                  "2026-11-18", "2 including this cover sheet", "REQ-2026-0457",
                  "ROI-2026-000123", "continuity of care after hospital discharge",
                  "URGENT", "Call Dana at extension 4410.", "CONFIDENTIALITY NOTICE",
                  "If you received this in error", "42 CFR PART 2",
                  "prohibit you from making any other use or disclosure"]:
        assert words in " ".join(cover.split()), words
    # Never the patient on the cover.
    assert "Testpatient" not in cover and "TEST-000123" not in cover
    # Nguyễn needs more than Windows-1252: DejaVu is embedded, only the
    # glyphs the sheet uses (a subset: pdffonts' "sub" column, and the
    # cover far smaller than DejaVu Sans whole, 183 KB).
    fonts = subprocess.run(["pdffonts", "-f", "1", "-l", "1", out],
                           capture_output=True, text=True, check=True).stdout
    assert "DejaVuSans" in fonts and "Helvetica" not in fonts
    for row in fonts.splitlines()[2:]:
        assert row.split()[-5:-2] == ["yes", "yes", "yes"], fonts  # emb sub uni
    assert os.path.getsize(out) < 100_000, os.path.getsize(out)
    info = subprocess.run(["pdfinfo", out], capture_output=True, text=True).stdout
    assert "612 x 792 pts (letter)" in info and "Pages:           2" in info
    assert images(out)[0][:3] == (1, 200, 60)        # the logo
    qpdf_check(out)


def cover_only(folder, tmp_path, name):
    """The cover (page 1) of a preview rendered for recipient name, on its
    own: qpdf copies its streams as they are, so its size is the cover's."""
    render(folder, "--to", name, "--time", "1795000000")
    cover = str(tmp_path / "cover.pdf")
    subprocess.run(["qpdf", "--empty", "--pages",
                    os.path.join(folder, "preview.pdf"), "1", "--", cover],
                   check=True)
    return cover


def cover_pixels(pdf):
    return subprocess.run(["pdftoppm", "-r", "100", "-gray", pdf],
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize("name", [
    "Dr. Nguyễn Thị Minh Khai", "Ελένη Παπαδοπούλου", "Łukasz Żółć",
    "Зоя Иванова", "Անի Սարգսյան", "Zoë Ωmega – Ἀθηνᾶ"])
def test_cover_for_any_name_embeds_a_small_subset_that_reads_back(tmp_path, name):
    folder = str(tmp_path / "p")
    cover_packet(folder)
    cover = cover_only(folder, tmp_path, name)
    # Under 30 KB, the fonts embedded as subsets (a tag: ABCDEF+DejaVuSans).
    assert os.path.getsize(cover) < 30_000, os.path.getsize(cover)
    fonts = subprocess.run(["pdffonts", cover], capture_output=True, text=True,
                           check=True).stdout
    rows = fonts.splitlines()[2:]
    assert len(rows) == 2, fonts            # regular and bold
    for row in rows:
        assert re.match(r"[A-Z]{6}\+DejaVuSans", row), fonts
        assert row.split()[-5:-2] == ["yes", "yes", "yes"], fonts  # emb sub uni
    text = subprocess.run(["pdftotext", cover, "-"], capture_output=True,
                          text=True, check=True).stdout
    assert name in text and "Example Family Practice" in text
    qpdf_check(cover)
    # The same sheet again is the same bytes.
    again = str(tmp_path / "again")
    shutil.copytree(folder, again)
    os.unlink(os.path.join(again, "preview.pdf"))
    with open(cover, "rb") as a, open(cover_only(again, tmp_path, name), "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("one,other", [
    ("Nguyễn Ω", "Nguyen Ω"),      # ễ is e, a circumflex and a tilde: all drawn
    ("Zoë Ω –", "Zoë Ω —"),        # the sheet's last character is its own
])
def test_cover_draws_each_character_with_its_own_glyph(tmp_path, one, other):
    shown = []
    for i, name in enumerate((one, other)):
        folder = str(tmp_path / f"p{i}")
        cover_packet(folder)
        os.makedirs(tmp_path / f"c{i}")
        shown.append(cover_pixels(cover_only(folder, tmp_path / f"c{i}", name)))
    assert shown[0] != shown[1]


def test_cover_without_part2_or_urgency_leaves_them_out(tmp_path):
    folder = str(tmp_path / "p")
    cover_packet(folder, part2=False, urgent=False)
    render(folder, "--to", "Dr. Zoë Example")
    cover = subprocess.run(["pdftotext", "-f", "1", "-l", "1",
                            os.path.join(folder, "preview.pdf"), "-"],
                           capture_output=True, text=True).stdout
    assert "42 CFR" not in cover and "URGENT" not in cover
    assert "CONFIDENTIALITY NOTICE" in cover and "Dr. Zoë Example" in cover
    # Every word fits Windows-1252 ("Zoë" too): the standard fonts, nothing
    # embedded.
    fonts = subprocess.run(["pdffonts", os.path.join(folder, "preview.pdf")],
                           capture_output=True, text=True, check=True).stdout
    assert "Helvetica" in fonts and "DejaVu" not in fonts


@pytest.mark.parametrize("line,words", [
    ("text 54 100 12 regular {patient_name}", "line 2: unknown field {patient_name}"),
    ("text 54 100 12 fancy hello", "line 2: unknown font \"fancy\""),
    ("text 54 x 12 regular hello", "line 2: \"x\" is not a number"),
    ("circle 1 2 3", "line 2: unknown directive \"circle\""),
    ("if urgent", "line 2: if without end"),
])
def test_template_errors_name_file_line_and_field(tmp_path, line, words):
    folder = str(tmp_path / "p")
    cover_packet(folder)
    tpl = str(tmp_path / "bad.tpl")
    with open(tpl, "w") as f:
        f.write("# an administrator's copy\n" + line + "\n")
    r = subprocess.run([RENDER, "-t", tpl, folder], capture_output=True, text=True)
    assert r.returncode != 0
    assert f"template {tpl} {words}" in r.stderr


# --- bad documents: a clear reason, bounded time and memory -----------------

def _deflated(chunk, times):
    import zlib
    c = zlib.compressobj(9)
    return b"".join(c.compress(chunk) for _ in range(times)) + c.flush()


def _one_page(w, content, resources=""):
    w.add("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R%s >>"
          % (content + 2, content, resources))
    w.add("<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (content + 1))
    return w.save(w.add("<< /Type /Catalog /Pages %d 0 R >>" % (content + 2)))


def bomb_pdf(second_page=False):
    """A page drawing a 40,000 x 40,000 gray image: 1.6 GB once inflated,
    1.6 MB in the file.  With second_page, an ordinary page comes first
    (intake opens only the first page: this one gets to the worker)."""
    z = _deflated(b"\0" * (1 << 24), 96)
    w = docs.PdfWriter()
    w.add(b"<< /Type /XObject /Subtype /Image /Width 40000 /Height 40000 "
          b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d "
          b"/Filter /FlateDecode >>\nstream\n" % len(z) + z + b"\nendstream")
    ops = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    w.add(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
    if not second_page:
        return _one_page(w, 2, " /Resources << /XObject << /Im1 1 0 R >> >>")
    plain = docs.text_ops(["An ordinary first page"]).encode()
    w.add(b"<< /Length %d >>\nstream\n" % len(plain) + plain + b"\nendstream")
    w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    w.add("<< /Type /Page /Parent 7 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
          "/Resources << /Font << /F1 4 0 R >> >> >>")
    w.add("<< /Type /Page /Parent 7 0 R /MediaBox [0 0 612 792] /Contents 2 0 R "
          "/Resources << /XObject << /Im1 1 0 R >> >> >>")
    w.add("<< /Type /Pages /Kids [5 0 R 6 0 R] /Count 2 >>")
    return w.save(w.add("<< /Type /Catalog /Pages 7 0 R >>"))


def slow_pdf():
    """A page whose content stream inflates to 2 GB of operators that only
    change the transformation: endless work for the reader, and nothing
    for it to keep (paths would reach the memory limit first)."""
    z = _deflated(b"1 0 0 1 0 0 cm " * (1 << 20), 128)
    w = docs.PdfWriter()
    w.add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(z) + z +
          b"\nendstream")
    return _one_page(w, 1)


def many_pages_pdf(n=100000):
    w = docs.PdfWriter()
    w.add(b"<< /Length 0 >>\nstream\n\nendstream")
    w.add("<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] /Contents 1 0 R >>")
    w.add("<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(["2 0 R"] * n), n))
    root = w.add("<< /Type /Catalog /Pages 3 0 R >>")
    return w.save(root)


def huge_png():
    b = io.BytesIO()
    Image.new("1", (30000, 30000), 1).save(b, "PNG")
    return b.getvalue()


def encrypted_pdf(tmp_path, user_password="user-pw"):
    """Encrypted with qpdf: with a password to open it, or (user_password
    "") readable by anyone but restricted by an owner password."""
    plain = str(tmp_path / "plain.pdf")
    locked = str(tmp_path / "locked.pdf")
    with open(plain, "wb") as f:
        f.write(docs.pdf([docs.text_ops(["Locked (synthetic)"])]).data)
    subprocess.run(["qpdf", "--encrypt", user_password, "owner-pw", "256", "--",
                    plain, locked], check=True)
    return open(locked, "rb").read()


BAD = {
    # MuPDF repairs what it can of a cut-off file: here, no page survives.
    "truncated.pdf": (lambda t: leaky_pdf()[:600], "has no pages"),
    # Fixed bytes: random ones could, once in a while, hold something a
    # repairing reader takes for an object.
    "garbage.pdf": (lambda t: b"%PDF-1.4\n" + random.Random(4417).randbytes(4000),
                    "cannot be opened as application/pdf"),
    "locked.pdf": (encrypted_pdf, "is encrypted or password-protected"),
    "restricted.pdf": (lambda t: encrypted_pdf(t, ""), "is encrypted or password-protected"),
    "many.pdf": (lambda t: many_pages_pdf(), "has 100000 pages, over the limit of 2000"),
    "huge.png": (lambda t: huge_png(), "holds an image of 30000 x 30000 pixels, over the limit"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_document_fails_with_a_reason(tmp_path, name):
    make, words = BAD[name]
    folder = str(tmp_path / "p")
    write_packet(folder, {name: make(tmp_path)})
    r = render(folder, ok=False)
    assert r.returncode == 65, r.stderr
    assert f"document {name}" in r.stderr
    assert words.split(" over")[0].split(",")[0] in r.stderr.replace(
        "it has", "has"), r.stderr


def test_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    folder = str(tmp_path / "p")
    write_packet(folder, {"bomb.pdf": bomb_pdf()})
    r = render(folder, ok=False)
    assert r.returncode == 65
    assert ("document bomb.pdf page 1: it holds an image of 40000 x 40000 "
            "pixels, over the limit of 100000000 pixels") in r.stderr


def test_memory_limit_stops_a_page_too_big_to_render(tmp_path):
    folder = str(tmp_path / "p")
    write_packet(folder, {"scan.png": docs.noise_png(1275, 1650)})
    r = render(folder, "-r", "600", "--color", "--max-memory", "16", ok=False)
    assert r.returncode == 65
    assert ("document scan.png page 1: needs more than 16 MB to render; the "
            "document may be damaged or built to exhaust the reader") in r.stderr


def test_endless_page_is_stopped_by_the_time_limit(tmp_path):
    folder = str(tmp_path / "p")
    write_packet(folder, {"slow.pdf": slow_pdf()})
    r = render(folder, "--timeout", "2", ok=False)
    assert r.returncode == 65
    assert ("document slow.pdf page 1: rendering the packet took longer than 2 "
            "seconds") in r.stderr


# --- through the daemon -------------------------------------------------------

def started(factory, **overrides):
    g = factory(**overrides)
    g.start()
    g.add_recipient("records-desk")
    return g


def test_refused_at_intake_when_the_reader_cannot_open_it(gw, tmp_path):
    for name in ("garbage.pdf", "locked.pdf", "huge.png"):
        p = Packet(f"ROI-BAD-{name.split('.')[0].upper()}")
        p.files[name] = BAD[name][0](tmp_path)
        p.manifest["documents"].append(dict(p.manifest["documents"][0], file=name))
        gw.drop(p)
        wait_rejected(gw, p.packet_id)
        reason = gw.reason(p.packet_id)
        assert f"document {name}" in reason, reason
        assert BAD[name][1].split(" over")[0] in reason, reason
    # The daemon goes on serving everyone else.
    gw.drop(Packet("ROI-GOOD-AFTER"))
    wait_state(gw, "ROI-GOOD-AFTER", "delivered")


def test_socket_submission_is_refused_the_same_way(gw, tmp_path):
    p = Packet("ROI-BAD-SOCKET")
    p.files["locked.pdf"] = encrypted_pdf(tmp_path)
    p.manifest["documents"].append(dict(p.manifest["documents"][0], file="locked.pdf"))
    folder = str(tmp_path / "packet")
    p.write(folder)
    r = gw.roictl("submit", folder)
    assert r.returncode != 0
    assert ("document locked.pdf is encrypted or password-protected: ask for an "
            "unprotected copy") in r.stderr + r.stdout
    assert gw.job_by_packet("ROI-BAD-SOCKET") is None


def test_template_error_stops_the_daemon_from_starting(gateway_factory, tmp_path):
    tpl = tmp_path / "templates"
    tpl.mkdir()
    shutil.copy(os.path.join(TEMPLATES, "default.tpl"), tpl / "default.tpl")
    (tpl / "clinic.tpl").write_text("text 54 72 12 bold {org_name}\n"
                                    "text 54 90 12 regular {patient_name}\n")
    gw = gateway_factory(daemon={"template_dir": str(tpl)})
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert (f"template {tpl}/clinic.tpl line 2: unknown field {{patient_name}}"
            in r.stderr), r.stderr
    (tpl / "clinic.tpl").write_text("text 54 72 12 bold {org_name}\n")
    r = subprocess.run([os.path.join(BUILD, "roigated"), "-n", "-f", gw.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_bad_redaction_pattern_is_refused_at_intake(gw):
    """A regex that does not compile, or a dob pattern with no date of birth
    to look for, is refused before the packet is taken: found only by the
    worker, it would fail the job and use up the packet_id."""
    p = Packet("ROI-BAD-REGEX")
    p.manifest["documents"][0]["redact"] = {"patterns": [{"regex": "CLM-[0-9"}]}
    p.manifest["documents"][1]["redact"] = {"patterns": [{"name": "dob"}]}
    del p.manifest["patient"]["dob"]
    gw.drop(p)
    wait_rejected(gw, p.packet_id)
    reason = gw.reason(p.packet_id)
    assert ('documents[0].redact.patterns[0].regex: "CLM-[0-9" is not a valid regular '
            'expression') in reason
    assert ("documents[1].redact.patterns[0].name: dob looks for the patient's date of "
            "birth: give patient.dob") in reason
    assert gw.job_by_packet(p.packet_id) is None


def test_unknown_template_is_refused_at_intake(gw):
    p = Packet("ROI-TPL-UNKNOWN")
    p.manifest["cover_sheet"]["template"] = "fancy"
    gw.drop(p)
    wait_rejected(gw, p.packet_id)
    assert ('cover_sheet.template "fancy": there is no such cover sheet template'
            in gw.reason(p.packet_id))


def test_template_gone_after_acceptance_holds_the_job(gateway_factory, tmp_path):
    """The packet is fine; the administrator's template is not: the job is
    held (not failed, which would lose the packet_id) and goes once the
    template is back and the job released."""
    tpl = tmp_path / "templates"
    tpl.mkdir()
    shutil.copy(os.path.join(TEMPLATES, "default.tpl"), tpl / "default.tpl")
    shutil.copy(os.path.join(TEMPLATES, "default.tpl"), tpl / "clinic.tpl")
    gw = started(gateway_factory, daemon={"template_dir": str(tpl)})
    gw.stop()
    # Accepted (committed), then the daemon dies before the job is rendered.
    gw.start(env={"ROIGATE_TEST_CRASH": "intake_after_commit"})
    p = Packet("ROI-TPL-GONE")
    p.manifest["cover_sheet"]["template"] = "clinic"
    gw.drop(p)
    assert gw.wait_exit() == -9
    os.unlink(tpl / "clinic.tpl")
    gw.start()
    j = wait_state(gw, "ROI-TPL-GONE", ("held", "delivered", "failed"))
    assert j["state"] == "held"
    err = gw.job(j["id"])["job"]["last_error"]
    assert f"template {tpl}/clinic.tpl: cannot be read" in err
    assert "held until an administrator fixes it" in err
    shutil.copy(os.path.join(TEMPLATES, "default.tpl"), tpl / "clinic.tpl")
    gw.roictl("release", str(j["id"]), check=0)
    wait_state(gw, "ROI-TPL-GONE", "delivered")


def test_bomb_fails_in_the_worker_and_others_are_delivered(gateway_factory):
    gw = started(gateway_factory, render={"max_image_pixels": "50000000", "timeout": "20s"},
                 queue={"job_timeout": "60s"},
                 spool={"max_file_size": "8M", "max_packet_size": "16M"})
    p = Packet("ROI-BOMB")
    p.files = {"bomb.pdf": bomb_pdf(second_page=True)}
    p.manifest["documents"] = [dict(p.manifest["documents"][0], file="bomb.pdf")]
    gw.drop(p)
    gw.drop(Packet("ROI-NEXT-TO-BOMB"))
    wait_state(gw, "ROI-NEXT-TO-BOMB", "delivered")
    j = wait_state(gw, "ROI-BOMB", ("failed", "held"), timeout=60)
    err = gw.job(j["id"])["job"]["last_error"]
    assert ("document bomb.pdf page 2: it holds an image of 40000 x 40000 pixels, "
            "over the limit of 50000000 pixels") in err
    assert gw.job(j["id"])["disclosures"] == []          # nothing was sent


def test_redactions_are_listed_on_the_job_without_the_text(gw):
    p = Packet("ROI-REDACT-1")
    p.files["note.pdf"] = docs.pdf([docs.text_ops([f"SSN {SSN}", "MRN TEST-000123"])]).data
    p.manifest["documents"].append(dict(p.manifest["documents"][0], file="note.pdf",
                                        redact={"patterns": [
                                            {"name": "ssn", "expect": 1},
                                            {"name": "mrn", "expect": 1}],
                                            "rects": [{"page": 1, "x": 10, "y": 10,
                                                       "w": 20, "h": 20}]}))
    gw.drop(p)
    j = wait_state(gw, "ROI-REDACT-1", "delivered")
    show = gw.job(j["id"])
    red = show["redactions"]
    assert sorted(r["pattern"] for r in red) == ["mrn", "rect", "ssn"]
    assert all(r["document"] == 4 and r["page"] == 1 and r["attempt"] == 1
               for r in red)
    assert [10.0, 10.0, 20.0, 20.0] in [r["box"] for r in red]
    text = gw.roictl("show", str(j["id"]), check=0).stdout
    assert "Redactions" in text and "ssn" in text
    assert SSN not in json.dumps(show) and SSN not in text
    out = os.path.join(gw.outbox, "records-desk", "ROI-REDACT-1", "ROI-REDACT-1.pdf")
    assert pdf_pages(out) == 5


def test_expectation_not_met_fails_the_job(gw):
    p = Packet("ROI-REDACT-2")
    p.files["note.pdf"] = docs.pdf([docs.text_ops(["nothing to see"])]).data
    p.manifest["documents"].append(dict(p.manifest["documents"][0], file="note.pdf",
                                        redact={"patterns": [
                                            {"name": "ssn", "expect": 1}]}))
    gw.drop(p)
    j = wait_state(gw, "ROI-REDACT-2", ("failed", "held", "delivered"))
    assert j["state"] == "failed"
    err = gw.job(j["id"])["job"]["last_error"]
    assert "pattern ssn was expected 1 time and found 0 times" in err
    # What the clerk does next.
    assert ("Nothing was sent: correct the packet (or get a good copy of the "
            "document) and send it again under a new packet_id") in err
    assert not os.path.exists(os.path.join(gw.outbox, "records-desk", "ROI-REDACT-2"))


def test_archived_copies_expire_after_the_retention(gateway_factory):
    gw = started(gateway_factory, retention={"archive": "30d"})
    gw.drop(Packet("ROI-ARCHIVE-1"))
    j = wait_state(gw, "ROI-ARCHIVE-1", "delivered")
    kept = gw.archived(j["id"], 1)
    assert os.path.exists(kept)
    gw.stop()
    old = os.path.getmtime(kept) - 31 * 86400         # as if sent a month ago
    os.utime(kept, (old, old))
    gw.start()
    wait_for("the expired copy to be removed", lambda: not os.path.exists(kept))
    assert "removed 1 archived output older than [retention] archive" in gw.log()
    # The job, its log entries and its recorded hash stay.
    assert gw.job(j["id"])["job"]["output_sha256"]


def test_profile_can_be_set_per_transport(gateway_factory):
    gw = started(gateway_factory, transport_local={"profile": "fax"})
    gw.drop(Packet("ROI-PROFILE-1"))
    wait_state(gw, "ROI-PROFILE-1", "delivered")
    out = os.path.join(gw.outbox, "records-desk", "ROI-PROFILE-1", "ROI-PROFILE-1.pdf")
    assert {r[5] for r in images(out)} == {"ccitt"}


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


def test_a_document_that_exhausts_the_reader_holds_up_no_one(gateway_factory,
                                                            tmp_path):
    """The reader of a document built to exhaust it works for its whole
    time limit (10 s): the daemon does not wait for it.  Meanwhile status
    answers at once, a packet dropped beside it is taken and delivered, and
    in the end it is refused with the reader's reason, from the spool and
    from the socket alike."""
    gw = started(gateway_factory, spool={"max_file_size": "8M",
                                         "max_packet_size": "8M"})
    folder = os.path.join(gw.incoming, ".slow")
    write_packet(folder, {"slow.pdf": slow_pdf()})
    os.rename(folder, os.path.join(gw.incoming, "slow"))
    wait_for("the document reader", lambda: _children(gw.proc.pid), timeout=20)
    t0 = time.monotonic()
    r = gw.roictl("status")
    assert r.returncode == 0 and time.monotonic() - t0 < 1, r.stderr
    gw.drop(Packet("ROI-BESIDE-SLOW"))
    wait_state(gw, "ROI-BESIDE-SLOW", "delivered", timeout=30)
    # Delivered while the slow one was still being read.
    assert gw.rejected_names() == [] and "slow" in gw.incoming_names()
    wait_rejected(gw, "slow", timeout=60)
    assert "the reader ran out of time on it" in gw.reason("slow")
    # Over the socket: the answer waits for the reader, no one else does.
    sub = str(tmp_path / "slow-sub")
    # Other bytes (the same would find the verdict already given).
    write_packet(sub, {"slow.pdf": slow_pdf() + b"% another copy\n"})
    with open(os.path.join(sub, "manifest.json")) as f:
        m = json.load(f)
    m["packet_id"] = "ROI-SLOW-SOCKET"
    with open(os.path.join(sub, "manifest.json"), "w") as f:
        json.dump(m, f)
    waiting = subprocess.Popen([os.path.join(BUILD, "roictl"), "-s", gw.sock,
                                "submit", sub], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for("its reader", lambda: _children(gw.proc.pid), timeout=20)
    t0 = time.monotonic()
    assert gw.roictl("status").returncode == 0
    assert time.monotonic() - t0 < 1
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 65, (waiting.returncode, out, err)
    assert "the reader ran out of time on it" in err
    assert gw.job_by_packet("ROI-SLOW-SOCKET") is None


def test_reader_killed_from_outside_means_try_again(gateway_factory):
    """A document reader SIGKILLed by someone else (the OOM killer, an
    administrator) says nothing of the document: the packet waits and is
    read again; only the reader's own limit refuses it."""
    gw = started(gateway_factory, spool={"max_file_size": "8M",
                                         "max_packet_size": "8M"})
    folder = os.path.join(gw.incoming, ".slow")
    m = write_packet(folder, {"slow.pdf": slow_pdf()})
    os.rename(folder, os.path.join(gw.incoming, "slow"))
    probe = wait_for("the document reader", lambda: _children(gw.proc.pid),
                     timeout=20)[0]
    os.kill(probe, signal.SIGKILL)
    wait_for("the wait to be said", lambda: "was killed from outside" in
             gw.log())
    assert gw.incoming_names() == ["slow"] and gw.rejected_names() == []
    assert any("waits" in p and "killed from outside" in p
               for p in gw.json("status")["problems"])
    # Read again: this time the reader's own time limit refuses it.
    wait_rejected(gw, "slow", timeout=60)
    reason = gw.reason("slow")
    assert "the reader ran out of time on it" in reason, reason
    assert "killed" not in reason
    assert gw.jobs() == []
    assert m["packet_id"]


# --- pages turned by their file: upright in the output --------------------

def _sideways_pdf(rotate):
    """A portrait page stored sideways (landscape MediaBox) with /Rotate
    making it upright, as scanners write it: a 100 pt black square at the
    top-left of the page as shown and a line of text under it."""
    if rotate == 90:    # shown = user space turned clockwise
        ops = "0 g 0 0 100 100 re f BT /F1 28 Tf 0 1 -1 0 300 72 Tm (UPRIGHT LINE) Tj ET\n"
    else:               # 270: turned counter-clockwise
        ops = ("0 g 692 512 100 100 re f BT /F1 28 Tf 0 -1 1 0 492 540 Tm "
               "(UPRIGHT LINE) Tj ET\n")
    data = docs.pdf([ops]).data
    return data.replace(b"/MediaBox [0 0 612 792]",
                        b"/MediaBox [0 0 792 612] /Rotate %d" % rotate)


def _shown(pdf, page, tmp, name):
    """Page page of pdf as poppler shows it, 50 dpi gray."""
    prefix = os.path.join(tmp, name)
    subprocess.run(["pdftoppm", "-r", "50", "-gray", "-singlefile", "-f", str(page),
                    "-l", str(page), pdf, prefix], check=True)
    return Image.open(prefix + ".pgm").convert("L")


def _mark_top_left(im):
    """The black square is in the top-left corner and nowhere else."""
    w, h = im.size
    assert dark(im, (5, 5, 60, 60)) < 60, "no mark at the top-left"
    for corner in ((w - 60, 5, w - 5, 60), (5, h - 60, 60, h - 5),
                   (w - 60, h - 60, w - 5, h - 5)):
        assert dark(im, corner) > 200, corner


def _tesseract(im, tmp):
    path = os.path.join(tmp, "read.png")
    im.save(path)
    return subprocess.run(["tesseract", path, "-"], capture_output=True, text=True,
                          env=dict(os.environ, OMP_THREAD_LIMIT="1")).stdout


@pytest.mark.parametrize("rotate", [90, 270])
def test_rotated_pdf_page_comes_out_upright(tmp_path, rotate):
    folder = str(tmp_path / "p")
    data = _sideways_pdf(rotate)
    write_packet(folder, {"scan.pdf": data})
    _mark_top_left(_shown(os.path.join(folder, "scan.pdf"), 1, str(tmp_path), "in"))
    render(folder, "--ocr", "off")
    out = os.path.join(folder, "preview.pdf")
    im = _shown(out, 2, str(tmp_path), "out")
    assert im.size[1] > im.size[0]                  # portrait, as the page shows
    _mark_top_left(im)
    hi = Image.open(subprocess.run(
        ["pdftoppm", "-r", "150", "-gray", "-singlefile", "-f", "2", "-l", "2", out,
         os.path.join(str(tmp_path), "hi")], check=True) and
        os.path.join(str(tmp_path), "hi.pgm"))
    assert "UPRIGHT LINE" in _tesseract(hi, str(tmp_path))


def _upright_scan():
    from PIL import ImageDraw
    im = docs.scan(["UPRIGHT SCAN LINE"], size=(1275, 1650), font_px=40)
    ImageDraw.Draw(im).rectangle((0, 0, 150, 150), fill=0)
    return im


# EXIF/TIFF orientation -> the stored picture a viewer turns upright.
STORED = {3: lambda im: im.rotate(180), 6: lambda im: im.rotate(90, expand=True),
          8: lambda im: im.rotate(-90, expand=True)}


@pytest.mark.parametrize("fmt", ["tif", "jpg"])
@pytest.mark.parametrize("tag", sorted(STORED))
def test_image_orientation_tag_comes_out_upright(tmp_path, fmt, tag):
    """A TIFF's Orientation tag (MuPDF ignores it: roigate reads it) and a
    JPEG's EXIF one (MuPDF honours it); a rectangle is in pixels of the
    picture as shown."""
    folder = str(tmp_path / "p")
    stored = STORED[tag](_upright_scan())
    b = io.BytesIO()
    if fmt == "tif":
        stored.save(b, "TIFF", dpi=(150, 150), tiffinfo={274: tag})
    else:
        exif = Image.Exif()
        exif[0x0112] = tag
        stored.save(b, "JPEG", dpi=(150, 150), exif=exif.tobytes())
    # The rectangle blacks out the right half of the page as shown.
    write_packet(folder, {"scan." + fmt: b.getvalue()}, {"scan." + fmt: {"redact": {
        "rects": [{"page": 1, "x": 700, "y": 0, "w": 575, "h": 1650}]}}})
    r = render(folder, "--ocr", "off")
    assert "box 700.0 0.0 575.0 1650.0 rect" in r.stdout
    im = _shown(os.path.join(folder, "preview.pdf"), 2, str(tmp_path), "out")
    w, h = im.size
    assert dark(im, (5, 5, 45, 45)) < 60                    # the mark, 1 inch
    assert dark(im, (5, h - 60, 60, h - 5)) > 200
    assert dark(im, (w * 6 // 10, 20, w - 5, h - 20)) < 30     # the rectangle
    assert dark(im, (80, h // 2, w // 2 - 20, h - 20)) > 200
