"""42 CFR Part 2 (2024 final rule): a packet with substance-use-disorder
records carries the 2024 notice of 2.32(a)(1) on its cover sheet and a copy
of the signed consent, sent right after the cover; without the consent it
is refused at intake with a reason a clerk can act on."""
import io
import os
import subprocess

from PIL import Image, ImageDraw

from gateway import BUILD, TEMPLATES, Packet, wait_rejected, wait_state


def consent_png():
    """The signed consent, as a scan: a page mostly black (so that its
    place in the output can be told from the white lab pages)."""
    im = Image.new("L", (1275, 1650), 255)
    ImageDraw.Draw(im).rectangle((60, 200, 1215, 1500), fill=0)
    b = io.BytesIO()
    im.save(b, "PNG", dpi=(150, 150))
    return b.getvalue()


def part2_packet(pid, consent=True, file=None):
    p = Packet(pid)
    p.manifest["authorization"]["scope"]["categories"] = ["substance_use_part2"]
    p.manifest["documents"][0]["categories"] = ["substance_use_part2"]
    if consent:
        p.files["consent.png"] = consent_png()
        # Listed last: the renderer still sends it first after the cover.
        p.manifest["documents"].append({
            "file": "consent.png", "sha256": "", "type": "consent",
            "date": "2026-11-01", "description": "signed Part 2 consent"})
    if file or consent:
        p.manifest["authorization"]["file"] = file or "consent.png"
    return p


def page_darkness(pdf, page):
    root = f"{pdf}-page{page}"
    subprocess.run(["pdftoppm", "-r", "20", "-gray", "-f", str(page), "-l",
                    str(page), "-singlefile", pdf, root], check=True)
    with Image.open(root + ".pgm") as im:
        return 255 - sum(im.getdata()) / (im.width * im.height)


def test_part2_without_consent_is_refused(gw):
    gw.drop(part2_packet("P2-NOCONSENT", consent=False))
    wait_rejected(gw, "P2-NOCONSENT")
    why = gw.reason("P2-NOCONSENT")
    assert "substance_use_part2" in why and "signed consent" in why
    assert "authorization.file" in why


def test_consent_file_must_be_in_the_packet(gw):
    gw.drop(part2_packet("P2-NOFILE", consent=False, file="elsewhere.pdf"))
    wait_rejected(gw, "P2-NOFILE")
    assert "is not one of the packet's documents" in gw.reason("P2-NOFILE")


def test_consent_goes_right_after_the_cover_with_the_2024_notice(gw):
    p = part2_packet("P2-OK")
    gw.drop(p)
    wait_state(gw, "P2-OK", "delivered")
    pdf = os.path.join(gw.outbox, "records-desk", "P2-OK", "P2-OK.pdf")
    n = int([l for l in subprocess.run(["pdfinfo", pdf], capture_output=True,
             text=True, check=True).stdout.splitlines()
             if l.startswith("Pages:")][0].split()[1])
    assert n == 5
    # Page 2 is the consent (mostly black); the lab pages are mostly white.
    assert page_darkness(pdf, 2) > 120
    assert all(page_darkness(pdf, k) < 60 for k in (3, 4, 5))


def test_cover_notice_is_the_2024_text_and_the_short_form_exists(tmp_path):
    # The default template, rendered without a daemon.
    p = part2_packet("P2-RENDER")
    folder = str(tmp_path / "p")
    p.write(folder)
    subprocess.run([os.path.join(BUILD, "roigate-render"), "-t",
                    os.path.join(TEMPLATES, "default.tpl"), folder],
                   check=True, capture_output=True)
    cover = " ".join(subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", os.path.join(folder, "preview.pdf"),
         "-"], capture_output=True, text=True, check=True).stdout.split())
    for words in ("protected by Federal confidentiality rules (42 CFR part 2)",
                  "civil, criminal, administrative, or legislative proceedings",
                  "42 CFR 2.12(c)(5)", "2.64 or 2.65",
                  "(ii) You are a covered entity or business associate",
                  "45 CFR part 164, subparts A and E",
                  "NOT sufficient to meet the required elements of written "
                  "consent to further use or redisclose the record (see 42 CFR "
                  "2.31)"):
        assert words in cover, words
    # A template of its own may print the short statement of 2.32(a)(2).
    tpl = str(tmp_path / "short.tpl")
    with open(tpl, "w") as f:
        f.write("if part2\ntext 54 100 10 regular {part2_short}\nend\n")
    subprocess.run([os.path.join(BUILD, "roigate-render"), "-t", tpl, folder],
                   check=True, capture_output=True)
    cover = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", os.path.join(folder, "preview.pdf"),
         "-"], capture_output=True, text=True, check=True).stdout
    assert "42 CFR part 2 prohibits unauthorized use or disclosure of these " \
        "records." in cover
