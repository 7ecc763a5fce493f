"""Synthetic documents for the pipeline's tests: PDFs written object by
object (so that a test decides exactly what hides where), and images made
with PIL.  Every patient, number and name here is invented."""
import io
import os
import zlib

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"


class PdfWriter:
    """A PDF built from numbered objects; save() writes the xref.  An
    incremental update appends objects and a second xref (/Prev)."""

    def __init__(self):
        self.objs = {}          # number -> bytes (the object's body)
        self.trailer_extra = b""

    def add(self, body, num=None):
        if isinstance(body, str):
            body = body.encode("latin-1")
        if num is None:
            num = max(self.objs, default=0) + 1
        self.objs[num] = body
        return num

    def stream(self, data, extra=b"", num=None, compress=False):
        if isinstance(data, str):
            data = data.encode("latin-1")
        if compress:
            data = zlib.compress(data)
            extra += b" /Filter /FlateDecode"
        body = (b"<< /Length %d " % len(data) + extra + b" >>\nstream\n" +
                data + b"\nendstream")
        return self.add(body, num)

    @staticmethod
    def _section(objs, start):
        out = b""
        offsets = {}
        for num in sorted(objs):
            offsets[num] = start + len(out)
            out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
        return out, offsets

    @staticmethod
    def _xref(offsets, full):
        xref = b"xref\n"
        if full:
            xref += b"0 %d\n0000000000 65535 f \n" % (max(offsets) + 1)
            for num in range(1, max(offsets) + 1):
                if num in offsets:
                    xref += b"%010d 00000 n \n" % offsets[num]
                else:
                    xref += b"0000000000 65535 f \n"
        else:
            for num in sorted(offsets):
                xref += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
        return xref

    def save(self, root, info=None):
        head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        body, offsets = self._section(self.objs, len(head))
        xref_at = len(head) + len(body)
        trailer = b"trailer\n<< /Size %d /Root %d 0 R" % (max(offsets) + 1, root)
        if info:
            trailer += b" /Info %d 0 R" % info
        trailer += self.trailer_extra + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        self.data = head + body + self._xref(offsets, True) + trailer
        self.root, self.info, self.last_xref = root, info, xref_at
        return self.data

    def update(self, objs):
        """Append an incremental update replacing/adding objects."""
        size = max(max(self.objs), max(objs)) + 1
        body, offsets = self._section(objs, len(self.data))
        xref_at = len(self.data) + len(body)
        trailer = (b"trailer\n<< /Size %d /Root %d 0 R /Prev %d" %
                   (size, self.root, self.last_xref))
        if self.info:
            trailer += b" /Info %d 0 R" % self.info
        trailer += b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        self.objs.update(objs)
        self.data += body + self._xref(offsets, False) + trailer
        self.last_xref = xref_at
        return self.data


def text_ops(lines, x=72, top=100, size=12, leading=16, color=None):
    """Content-stream operators showing lines of text; top is the first
    baseline in points from the page's top (letter)."""
    ops = "BT /F1 %d Tf " % size
    if color:
        ops += "%s %s %s rg " % color
    ops += "%d %d Td %d TL " % (x, 792 - top, leading)
    for line in lines:
        esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops += "(%s) Tj T* " % esc
    return ops + "ET\n"


def lying_cmap(mapping):
    """A ToUnicode CMap stream body mapping single-byte codes to other
    characters ({"0": "A", ...}): what a text extractor will believe."""
    pairs = "".join("<%02X> <%04X>\n" % (ord(k), ord(v)) for k, v in mapping.items())
    return ("/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
            "/CMapName /Lie def 1 begincodespacerange <00> <FF> endcodespacerange "
            "%d beginbfchar\n%sendbfchar endcmap CMapName currentdict /CMap "
            "defineresource pop end end" % (len(mapping), pairs))


def pdf(pages, info=None, xmp=None, annots=None, attachment=None,
        javascript=None, image_over=None, hidden=None, form_field=None,
        to_unicode=None, no_unicode=False):
    """A letter-size PDF of pages (each a content-stream string) in
    Helvetica.  The options hide things where a leak test looks:
    info (dict for the document information), xmp (text in an XMP packet),
    annots (a text annotation's contents, on page 1), attachment
    ((name, bytes) as an embedded file), javascript (an OpenAction),
    image_over ((x, top, w, h): an opaque gray image drawn over that
    area of page 1, after its text), hidden (text in an optional-content
    layer that is off), form_field (a filled-in text field's value);
    to_unicode (a CMap body: the text layer says other characters than the
    page shows), no_unicode (a font with a private encoding and no Unicode
    mapping at all)."""
    w = PdfWriter()
    if to_unicode is not None:
        cmap = w.stream(to_unicode)
        font = w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                     "/Encoding /WinAnsiEncoding /ToUnicode %d 0 R >>" % cmap)
    elif no_unicode:
        diffs = " ".join("%d /g%d" % (c, c) for c in range(32, 127))
        font = w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                     "/Encoding << /Type /Encoding /Differences [%s] >> >>" % diffs)
    else:
        font = w.add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                     "/Encoding /WinAnsiEncoding >>")
    catalog_extra = ""
    ocg = None
    if hidden is not None:
        ocg = w.add("<< /Type /OCG /Name (Hidden layer) >>")
        catalog_extra += (" /OCProperties << /OCGs [%d 0 R] /D << /OFF [%d 0 R] "
                          "/Order [%d 0 R] >> >>" % (ocg, ocg, ocg))
    img = None
    if image_over is not None:
        # 8-bit gray, light: the text under it must not show through.
        iw, ih = 40, 10
        img = w.stream(bytes([200]) * (iw * ih), b"/Type /XObject /Subtype "
                       b"/Image /Width %d /Height %d /ColorSpace /DeviceGray "
                       b"/BitsPerComponent 8" % (iw, ih))
    page_nums = []
    kids_placeholder = []
    for i, ops in enumerate(pages):
        if i == 0 and image_over is not None:
            x, top, iw, ih = image_over
            ops += "q %d 0 0 %d %d %d cm /Im1 Do Q\n" % (iw, ih, x, 792 - top - ih)
        if i == 0 and hidden is not None:
            ops += "/OC /L1 BDC " + text_ops([hidden], top=400) + "EMC\n"
        content = w.stream(ops)
        res = "<< /Font << /F1 %d 0 R >>" % font
        if img and i == 0:
            res += " /XObject << /Im1 %d 0 R >>" % img
        if ocg and i == 0:
            res += " /Properties << /L1 %d 0 R >>" % ocg
        res += " >>"
        page_nums.append((content, res))
    pages_num = max(w.objs) + 1 + len(pages) + 10
    annot_nums = []
    if annots is not None:
        annot_nums.append(w.add("<< /Type /Annot /Subtype /Text /Rect [300 600 320 620] "
                                "/Contents (%s) /Open true >>" % annots))
        annot_nums.append(w.add("<< /Type /Annot /Subtype /FreeText /Rect [300 500 560 540] "
                                "/Contents (%s) /DA (/Helv 12 Tf 0 g) >>" % annots))
    field = None
    if form_field is not None:
        ap = w.stream("/Tx BMC BT /F1 12 Tf 2 6 Td (%s) Tj ET EMC" % form_field,
                      b"/Type /XObject /Subtype /Form /BBox [0 0 250 24] "
                      b"/Resources << /Font << /F1 %d 0 R >> >>" % font)
        field = w.add("<< /Type /Annot /Subtype /Widget /FT /Tx /T (note) "
                      "/V (%s) /Rect [72 300 322 324] /AP << /N %d 0 R >> "
                      "/DA (/F1 12 Tf 0 g) >>" % (form_field, ap))
        annot_nums.append(field)
        catalog_extra += " /AcroForm << /Fields [%d 0 R] >>" % field
    kids = []
    for i, (content, res) in enumerate(page_nums):
        extra = ""
        if i == 0 and annot_nums:
            extra = " /Annots [%s]" % " ".join("%d 0 R" % a for a in annot_nums)
        kids.append(w.add("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                          "/Contents %d 0 R /Resources %s%s >>" %
                          (pages_num, content, res, extra)))
    w.add("<< /Type /Pages /Kids [%s] /Count %d >>" %
          (" ".join("%d 0 R" % k for k in kids), len(kids)), num=pages_num)
    if xmp is not None:
        packet = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
                  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
                  'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                  '<dc:description>%s</dc:description></rdf:Description>'
                  '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>' % xmp)
        meta = w.stream(packet, b"/Type /Metadata /Subtype /XML")
        catalog_extra += " /Metadata %d 0 R" % meta
    if attachment is not None:
        name, data = attachment
        ef = w.stream(data, b"/Type /EmbeddedFile")
        spec = w.add("<< /Type /Filespec /F (%s) /UF (%s) /EF << /F %d 0 R >> >>"
                     % (name, name, ef))
        catalog_extra += " /Names << /EmbeddedFiles << /Names [(%s) %d 0 R] >> >>" % (
            name, spec)
    if javascript is not None:
        js = w.add("<< /S /JavaScript /JS (%s) >>" % javascript)
        catalog_extra += " /OpenAction %d 0 R" % js
    root = w.add("<< /Type /Catalog /Pages %d 0 R%s >>" % (pages_num, catalog_extra))
    info_num = None
    if info:
        info_num = w.add("<< %s >>" % " ".join(
            "/%s (%s)" % (k, v) for k, v in info.items()))
    w.save(root, info_num)
    return w


def pdf_with_old_revision(old_text, new_text):
    """A one-page PDF whose first revision showed old_text; an incremental
    update replaced the page's content with new_text.  Viewers show only
    new_text, but old_text is still in the file's bytes."""
    w = pdf([text_ops([old_text])])
    content_num = None
    for num, body in w.objs.items():
        if body.startswith(b"<< /Length") and b"BT /F1" in body:
            content_num = num
            break
    ops = text_ops([new_text]).encode()
    w.update({content_num: b"<< /Length %d >>\nstream\n" % len(ops) + ops +
              b"\nendstream"})
    return w.data


def _font(size, mono=False):
    return ImageFont.truetype(os.path.join(
        FONT_DIR, "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"), size)


def scan(lines, size=(1275, 1650), mode="L", dpi=150, font_px=28, top=150):
    """A page 'scanned' at dpi: black text on white, each line at
    (150, top + 50 n) pixels."""
    im = Image.new(mode, size, 255 if mode in ("L", "1") else "white")
    d = ImageDraw.Draw(im)
    for n, line in enumerate(lines):
        d.text((150, top + 50 * n), line, fill=0 if mode in ("L", "1") else "black",
               font=_font(font_px))
    return im


def image_bytes(im, fmt, dpi=150, **kw):
    b = io.BytesIO()
    im.save(b, fmt, dpi=(dpi, dpi), **kw)
    return b.getvalue()


def tiff_g4(pages, dpi=200, compression="group4"):
    """A multi-page 1-bit TIFF, CCITT G4 (or G3), as fax servers write them."""
    ims = [p.convert("1") for p in pages]
    b = io.BytesIO()
    ims[0].save(b, "TIFF", compression=compression, dpi=(dpi, dpi), save_all=True,
                append_images=ims[1:])
    return b.getvalue()


def noise_png(w, h):
    """Gray noise: a scan that compresses badly (large outputs)."""
    return image_bytes(Image.frombytes("L", (w, h), os.urandom(w * h)), "PNG")


def noise_packet(packet_id, recipient, pages):
    """A packet of pages of noise 'scanned' at 300 dpi: rendered with the
    document profile at 300 dpi and JPEG quality 95, about 5 MB a page."""
    from gateway import Packet
    p = Packet(packet_id, recipient=recipient)
    scan_png = noise_png(2550, 3300)
    p.files = {f"scan{i}.png": scan_png for i in range(pages)}
    p.manifest["documents"] = [dict(p.manifest["documents"][2], file=f"scan{i}.png")
                               for i in range(pages)]
    return p
