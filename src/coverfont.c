/*
 * Cover sheet fonts.  A sheet with text outside Windows-1252 embeds its
 * fonts, cut by HarfBuzz to the characters it draws: DejaVu Sans whole is
 * 183 KB in the PDF, the glyphs of a sheet a few KB.  The cut drops the hinting too (instructions
 * for screens at small sizes; half of the cut's bytes) and the layout
 * tables, which libhpdf, setting one glyph per character, never reads.
 *
 * The text is not given to libhpdf as UTF-8: its UTF-8 encoding maps all
 * 65,536 code points for each font, which is 65,536 glyph look-ups and a
 * 128 KB CIDToGIDMap to deflate, most of the 6 ms a sheet took.  The sheet
 * has an encoding of its own instead, a libhpdf CMap encoder (the kind its
 * CJK encodings are) that knows only the characters the sheet draws: the
 * k-th of them in code point order (from 0) is CID k + 1 and the byte
 * k + 1, or where a sheet draws more than 254 characters the two bytes
 * 1 + k / 255, 1 + k % 255.  Never a NUL, so libhpdf's C strings carry it.
 * One code more than the sheet has, drawing nothing, is there for
 * libhpdf's sake: its CIDToGIDMap stops short of its last CID.
 * A ToUnicode map says which character each code is, so the text can be
 * searched and copied.
 *
 * The subset is read by libhpdf from memory.  The parsed faces are kept
 * for the process, and cover_load() parses them, so a renderer forked
 * after it has them.  When anything here fails, src/cover.c embeds the
 * whole font with libhpdf's UTF-8 encoding.
 *
 * Run by the renderer (and roigated, for the accounting report).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <harfbuzz/hb-subset.h>
#include <hpdf.h>
#include <hpdf_conf.h>
#include <hpdf_doc.h>
#include <hpdf_encoder.h>
#include <hpdf_fontdef.h>
#include <hpdf_objects.h>

#include "coverfont.h"
#include "util.h"

#define COVER_FACES		8
/* A subset this small (a sheet's worth of glyphs) is stored as it is:
 * deflate would take a third off its bytes, for a third of the sheet's
 * time.  A larger one is deflated. */
#define COVER_RAW_FONT		(8 * 1024)

static struct {
	char		*path;
	hb_face_t	*face;
} cover_faces[COVER_FACES];

/* Every table of face libhpdf does not embed (its 13: the layout tables,
 * kerning, MATH and the like are cut for nothing), into drop. */
static void
drop_tables(hb_face_t *face, hb_set_t *drop)
{
	static const char	 keep[] = "OS/2cmapcvt fpgmglyfheadhheahmtxlocamaxp"
	    "namepostprep";
	hb_tag_t		 tags[64];
	unsigned int		 n = sizeof(tags) / sizeof(tags[0]);

	hb_face_get_table_tags(face, 0, &n, tags);
	for (unsigned int i = 0; i < n; i++) {
		int	 kept = 0;

		for (size_t k = 0; k + 4 < sizeof(keep); k += 4)
			kept |= tags[i] == hb_tag_from_string(keep + k, 4);
		if (!kept)
			hb_set_add(drop, tags[i]);
	}
}


static hb_face_t *
cover_face(const char *path)
{
	hb_subset_input_t	*in;
	hb_blob_t		*blob;
	hb_face_t		*face;
	size_t			 i;

	for (i = 0; i < COVER_FACES && cover_faces[i].path; i++)
		if (strcmp(cover_faces[i].path, path) == 0)
			return cover_faces[i].face;
	if (i == COVER_FACES ||
	    (blob = hb_blob_create_from_file_or_fail(path)) == NULL)
		return NULL;
	face = hb_face_create(blob, 0);
	hb_blob_destroy(blob);
	if (hb_face_get_glyph_count(face) == 0) {
		hb_face_destroy(face);
		return NULL;
	}
	cover_faces[i].path = xstrdup(path);
	cover_faces[i].face = face;
	/* Cut it once now, which builds HarfBuzz's tables of it: a renderer
	 * forked after cover_load() finds them made. */
	if ((in = hb_subset_input_create_or_fail()) != NULL) {
		hb_set_add(hb_subset_input_unicode_set(in), ' ');
		drop_tables(face, hb_subset_input_set(in, HB_SUBSET_SETS_DROP_TABLE_TAG));
		hb_subset_input_set_flags(in, HB_SUBSET_FLAGS_NO_HINTING);
		hb_face_destroy(hb_subset_or_fail(face, in));
		hb_subset_input_destroy(in);
	}
	return face;
}

void
coverfont_warm(const char *path)
{
	(void)cover_face(path);
}

/* The character drawn for u: libhpdf reads only the Basic Multilingual
 * Plane of a font, and U+FFFF ends its tables. */
static hb_codepoint_t
sheet_char(hb_codepoint_t u)
{
	return u > 0xfffd ? 0xfffd : u;
}

/* The character at *p in UTF-8, and *p past it; U+FFFD for a byte that
 * starts none, an overlong form or a surrogate. */
static hb_codepoint_t
utf8_next(const unsigned char **p)
{
	const unsigned char	*s = *p;
	hb_codepoint_t		 c, min;
	int			 n;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 1, c = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 2, c = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 3, c = s[0] & 0x07, min = 0x10000;
	else {
		*p = s + 1;
		return 0xfffd;
	}
	for (int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80) {	/* a NUL too: it ends here */
			*p = s + i;
			return 0xfffd;
		}
		c = c << 6 | (s[i] & 0x3f);
	}
	*p = s + n + 1;
	if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0xfffd;
	return c;
}

/* The characters s draws, each once, into u. */
static void
text_chars(const char *s, hb_set_t *u)
{
	const unsigned char	*p = (const unsigned char *)s;

	while (*p)
		hb_set_add(u, sheet_char(utf8_next(&p)));
}

static HPDF_UINT16
sheet_code(const struct coverfont *sh, size_t k)
{
	return (HPDF_UINT16)(sh->wide ? (1 + k / 255) << 8 | (1 + k % 255) : k + 1);
}

/* With two-byte codes every byte is half of one. */
static HPDF_BOOL
sheet_byte_wide(HPDF_Encoder e, HPDF_BYTE b)
{
	(void)e;
	(void)b;
	return HPDF_TRUE;
}

static HPDF_BOOL
sheet_byte_narrow(HPDF_Encoder e, HPDF_BYTE b)
{
	(void)e;
	(void)b;
	return HPDF_FALSE;
}

/* Never called: the encoder is filled as soon as it is made. */
static HPDF_STATUS
sheet_encoder_init(HPDF_Encoder e)
{
	(void)e;
	return HPDF_INVALID_ENCODER;
}

/* What HPDF_CMapEncoder_InitAttr() does, but with libc's memset: libhpdf's
 * clears the 256 KB of code tables a byte at a time, a tenth of the
 * sheet's time. */
static HPDF_STATUS
sheet_encoder_attr(HPDF_Encoder e)
{
	HPDF_CMapEncoderAttr	a;

	if ((a = HPDF_GetMem(e->mmgr, sizeof(*a))) == NULL)
		return e->error->error_no;
	memset(a, 0, sizeof(*a));
	e->attr = a;
	a->writing_mode = HPDF_WMODE_HORIZONTAL;
	for (size_t i = 0; i < 256; i++)
		for (size_t j = 0; j < 256; j++)
			a->unicode_map[i][j] = 0x25a1;	/* undefined: a square */
	if ((a->cmap_range = HPDF_List_New(e->mmgr, HPDF_DEF_RANGE_TBL_NUM)) ==
	    NULL || (a->notdef_range = HPDF_List_New(e->mmgr,
	    HPDF_DEF_ITEMS_PER_BLOCK)) == NULL || (a->code_space_range =
	    HPDF_List_New(e->mmgr, HPDF_DEF_ITEMS_PER_BLOCK)) == NULL)
		return e->error->error_no;
	return HPDF_OK;
}

static HPDF_STATUS
sheet_encoder_fill(HPDF_Encoder e, const struct coverfont *sh)
{
	HPDF_CidRange_Rec		 space = { 0x01, 0xff, 0 };
	HPDF_CidRange_Rec		 r[COVER_MAX_CHARS / 255 + 2];
	HPDF_UnicodeMap_Rec		 u[COVER_MAX_CHARS + 1];
	HPDF_CMapEncoderAttr		 a;
	HPDF_STATUS			 ret;
	size_t				 k, nr = 0;

	if ((ret = sheet_encoder_attr(e)) != HPDF_OK)
		return ret;
	/* A block of up to 255 codes runs on with consecutive CIDs; the
	 * one after the last character's is unused. */
	for (k = 0; k <= sh->ncp; k += 255, nr++) {
		r[nr].from = sheet_code(sh, k);
		r[nr].to = sheet_code(sh, k + (sh->ncp + 1 - k < 255 ? sh->ncp + 1 - k :
		    255) - 1);
		r[nr].cid = (HPDF_UINT16)(k + 1);
	}
	r[nr].from = r[nr].to = 0xffff;
	r[nr].cid = 0;
	for (k = 0; k < sh->ncp; k++) {
		u[k].code = sheet_code(sh, k);
		u[k].unicode = (HPDF_UINT16)sh->cp[k];
	}
	u[k].code = 0;
	u[k].unicode = 0xffff;
	if (sh->wide) {
		space.from = 0x0101;
		space.to = 0xffff;
	}
	if ((ret = HPDF_CMapEncoder_AddCodeSpaceRange(e, space)) != HPDF_OK ||
	    (ret = HPDF_CMapEncoder_AddCMap(e, r)) != HPDF_OK)
		return ret;
	HPDF_CMapEncoder_SetUnicodeArray(e, u);
	a = (HPDF_CMapEncoderAttr)e->attr;
	a->is_lead_byte_fn = sh->wide ? sheet_byte_wide : sheet_byte_narrow;
	a->is_trial_byte_fn = sheet_byte_wide;
	strlcpy_(a->registry, "Adobe", sizeof(a->registry));
	strlcpy_(a->ordering, "Identity", sizeof(a->ordering));
	a->suppliment = 0;
	a->writing_mode = HPDF_WMODE_HORIZONTAL;
	e->type = HPDF_ENCODER_TYPE_DOUBLE_BYTE;
	return HPDF_OK;
}

void
coverfont_add(struct coverfont *sh, int fi, const char *s)
{
	if (sh->chars[fi] == NULL) {
		sh->chars[fi] = hb_set_create();
		hb_set_add(sh->chars[fi], ' ');	/* between its words */
	}
	text_chars(s, sh->chars[fi]);
}

int
coverfont_begin(struct coverfont *sh, HPDF_Doc pdf)
{
	hb_set_t	*all = hb_set_create();
	hb_codepoint_t	 c = HB_SET_VALUE_INVALID;
	HPDF_Encoder	 e;
	int		 n = 0;

	for (size_t i = 0; i < COVER_MAX_FONTS; i++)
		if (sh->chars[i])
			hb_set_union(all, sh->chars[i]);
	if (!hb_set_allocation_successful(all) ||
	    hb_set_get_population(all) > COVER_MAX_CHARS) {
		hb_set_destroy(all);
		return -1;
	}
	while (hb_set_next(all, &c)) {
		if (c < COVER_LOW_CHARS)
			sh->low[c] = (uint16_t)(sh->ncp + 1);
		sh->cp[sh->ncp++] = c;
	}
	hb_set_destroy(all);
	sh->wide = sh->ncp + 1 > 255;
	/* A name no other sheet of this document has (the accounting report
	 * draws one for each disclosure). */
	do
		snprintf(sh->enc, sizeof(sh->enc), "RoigateSheet%d", n++);
	while (HPDF_Doc_FindEncoder(pdf, sh->enc) != NULL);
	if ((e = HPDF_CMapEncoder_New(pdf->mmgr, sh->enc,
	    sheet_encoder_init)) == NULL)
		goto fail;
	if (sheet_encoder_fill(e, sh) != HPDF_OK) {
		HPDF_Encoder_Free(e);
		goto fail;
	}
	if (HPDF_Doc_RegisterEncoder(pdf, e) != HPDF_OK)
		goto fail;		/* libhpdf has freed it */
	return 0;
fail:
	HPDF_ResetError(pdf);
	sh->enc[0] = '\0';
	return -1;
}

void
coverfont_end(struct coverfont *sh)
{
	for (size_t i = 0; i < COVER_MAX_FONTS; i++) {
		hb_set_destroy(sh->chars[i]);
		free(sh->width[i]);
	}
}

static int
sheet_cmp(const void *a, const void *b)
{
	hb_codepoint_t	x = *(const hb_codepoint_t *)a, y = *(const hb_codepoint_t *)b;

	return x < y ? -1 : x > y;
}

char *
coverfont_encode(const struct coverfont *sh, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			*out, *o;

	/* No more codes than bytes, each at most two bytes. */
	o = out = xreallocarray(NULL, strlen(s) + 1, 2);
	while (*p) {
		hb_codepoint_t	 u = sheet_char(utf8_next(&p)), *c;
		size_t		 k;
		HPDF_UINT16	 code;

		if (u < COVER_LOW_CHARS && sh->low[u])
			k = sh->low[u] - 1u;
		else if ((c = bsearch(&u, sh->cp, sh->ncp, sizeof(u), sheet_cmp)) != NULL)
			k = (size_t)(c - sh->cp);
		else
			continue;	/* not possible: coverfont_begin() saw it all */
		code = sheet_code(sh, k);
		if (sh->wide)
			*o++ = (char)(code >> 8);
		*o++ = (char)(code & 0xff);
	}
	*o = '\0';
	return out;
}

/* What each code of the sheet means (PDF 32000 9.10.3), for pdf's fonts
 * drawn with it. */
static HPDF_Dict
sheet_tounicode(struct coverfont *sh, HPDF_Doc pdf, HPDF_Font font)
{
	struct buf	b;
	HPDF_Dict	d;

	if (sh->tounicode)
		return sh->tounicode;
	if ((d = HPDF_DictStream_New(pdf->mmgr, pdf->xref)) == NULL)
		return NULL;
	buf_init(&b);
	buf_addstr(&b, "/CIDInit /ProcSet findresource begin\n12 dict begin\n"
	    "begincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) "
	    "/Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n"
	    "/CMapType 2 def\n1 begincodespacerange\n");
	buf_addstr(&b, sh->wide ? "<0101> <FFFF>\n" : "<01> <FF>\n");
	buf_addstr(&b, "endcodespacerange\n");
	for (size_t k = 0; k < sh->ncp; k += 100) {
		size_t	m = sh->ncp - k < 100 ? sh->ncp - k : 100;	/* the most a block may have */
		char	line[32];

		snprintf(line, sizeof(line), "%zu beginbfchar\n", m);
		buf_addstr(&b, line);
		for (size_t j = k; j < k + m; j++) {
			snprintf(line, sizeof(line), sh->wide ? "<%04X> <%04X>\n" :
			    "<%02X> <%04X>\n", (unsigned int)sheet_code(sh, j),
			    (unsigned int)sh->cp[j]);
			buf_addstr(&b, line);
		}
		buf_addstr(&b, "endbfchar\n");
	}
	buf_addstr(&b, "endcmap\nCMapName currentdict /CMap defineresource pop\n"
	    "end\nend\n");
	d->filter = font->filter;	/* compressed as the font is */
	if (HPDF_Stream_Write(d->stream, (const HPDF_BYTE *)b.data, (HPDF_UINT)b.len) ==
	    HPDF_OK)
		sh->tounicode = d;
	buf_free(&b);
	return sh->tounicode;
}

/* The subset's data as a font of pdf, tagged; its libhpdf name, or NULL. */
static const char *
sheet_fontdef(HPDF_Doc pdf, const char *data, unsigned int len,
    const hb_set_t *chars)
{
	HPDF_Stream		 s;
	HPDF_FontDef		 def;
	HPDF_TTFontDefAttr	 attr;
	char			 tag[HPDF_TTF_FONT_TAG_LEN + 1];
	char			 name[HPDF_LIMIT_MAX_NAME_LEN + 1];
	uint32_t		 h = 2166136261u;
	hb_codepoint_t		 c = HB_SET_VALUE_INVALID;

	if ((s = HPDF_MemStream_New(pdf->mmgr, len)) == NULL)
		return NULL;
	if (HPDF_Stream_Write(s, (const HPDF_BYTE *)data, len) != HPDF_OK) {
		HPDF_Stream_Free(s);
		return NULL;
	}
	if ((def = HPDF_TTFontDef_Load(pdf->mmgr, s, HPDF_TRUE)) == NULL)
		return NULL;		/* s freed with it */
	/* The subset's tag (PDF 32000 9.6.4): six capitals from the characters
	 * it holds, so a sheet drawn again is the same bytes; another where
	 * this document has that one. */
	while (hb_set_next(chars, &c))
		h = (h ^ c) * 16777619u;
	for (;; h = h * 16777619u + 1) {
		uint32_t x = h;

		for (int i = 0; i < HPDF_TTF_FONT_TAG_LEN; i++, x /= 26)
			tag[i] = (char)('A' + x % 26);
		tag[HPDF_TTF_FONT_TAG_LEN] = '\0';
		if (bsnprintf(name, sizeof(name), "%s+%s", tag, def->base_font) == -1) {
			HPDF_FontDef_Free(def);
			return NULL;
		}
		if (HPDF_Doc_FindFontDef(pdf, name) == NULL)
			break;
	}
	HPDF_TTFontDef_SetTagName(def, tag);
	/* Every glyph of the subset is drawn or part of one drawn.  libhpdf
	 * would embed only those it saw drawn and their parts, but not the
	 * parts of parts: the circumflex and tilde of U+1EC5 (Nguyễn). */
	attr = (HPDF_TTFontDefAttr)def->attr;
	memset(attr->glyph_tbl.flgs, 1, attr->num_glyphs);
	/* The name libhpdf finds it by, which would otherwise be the whole
	 * font's: one sheet's subset is not another's. */
	strlcpy_(def->base_font, name, sizeof(def->base_font));
	if (HPDF_Doc_RegisterFontDef(pdf, def) != HPDF_OK)
		return NULL;		/* freed by libhpdf */
	return def->base_font;
}

/* How wide each code is in font fi: a wrapped line is measured a word at
 * a time, which libhpdf does with a glyph look-up for each character. */
static void
sheet_widths(struct coverfont *sh, int fi, HPDF_Font font)
{
	sh->width[fi] = xreallocarray(NULL, sh->ncp, sizeof(*sh->width[fi]));
	for (size_t k = 0; k < sh->ncp; k++) {
		HPDF_UINT16	code = sheet_code(sh, k);
		HPDF_BYTE	b[2] = { (HPDF_BYTE)(code >> 8), (HPDF_BYTE)code };

		sh->width[fi][k] = sh->wide ? HPDF_Font_TextWidth(font, b, 2).width :
		    HPDF_Font_TextWidth(font, b + 1, 1).width;
	}
}

HPDF_Font
coverfont_load(struct coverfont *sh, int fi, const char *path, HPDF_Doc pdf)
{
	hb_face_t		*face = cover_face(path), *sub = NULL;
	hb_subset_input_t	*in;
	hb_blob_t		*blob = NULL;
	HPDF_Font		 font = NULL;
	HPDF_Dict		 tu;
	const char		*data, *name;
	unsigned int		 len;

	if (face == NULL || sh->enc[0] == '\0' || sh->chars[fi] == NULL ||
	    (in = hb_subset_input_create_or_fail()) == NULL)
		return NULL;
	hb_set_union(hb_subset_input_unicode_set(in), sh->chars[fi]);
	drop_tables(face, hb_subset_input_set(in, HB_SUBSET_SETS_DROP_TABLE_TAG));
	hb_subset_input_set_flags(in, HB_SUBSET_FLAGS_NO_HINTING);
	if ((sub = hb_subset_or_fail(face, in)) != NULL &&
	    (blob = hb_face_reference_blob(sub)) != NULL &&
	    (data = hb_blob_get_data(blob, &len)) != NULL && len > 0 &&
	    (name = sheet_fontdef(pdf, data, len, sh->chars[fi])) != NULL &&
	    (font = HPDF_GetFont(pdf, name, sh->enc)) != NULL) {
		/* Its file, CIDToGIDMap and CMaps take the font's filter. */
		if (len <= COVER_RAW_FONT)
			font->filter = HPDF_STREAM_FILTER_NONE;
		if ((tu = sheet_tounicode(sh, pdf, font)) == NULL ||
		    HPDF_Dict_Add(font, "ToUnicode", tu) != HPDF_OK)
			font = NULL;
		else
			sheet_widths(sh, fi, font);
	}
	if (font == NULL)
		HPDF_ResetError(pdf);
	hb_blob_destroy(blob);
	hb_face_destroy(sub);
	hb_subset_input_destroy(in);
	return font;
}

