/*
 * Plain text typeset into a PDF (worker), so that a text document takes
 * the same path as any PDF: DejaVu Sans Mono, the output paper, 54 pt
 * margins, 80 columns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpdf.h>

#include "pdfout.h"
#include "render.h"
#include "typeset.h"
#include "util.h"

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t	len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		len = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * Typeset UTF-8 text: 80 columns, tabs to 8, a form feed starts a page,
 * control characters and invalid bytes shown as U+FFFD.  The PDF's bytes
 * in *out (malloc'd).
 */
int
typeset_text(const unsigned char *text, size_t len, const struct render_opts *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	struct hpdf_state	 hs = { HPDF_OK, 0 };
	HPDF_Doc		 pdf;
	HPDF_Page		 page = NULL;
	HPDF_Font		 font = NULL;
	struct buf		 line;
	char			 fontpath[4096];
	const char		*fname;
	double			 y = 0;
	int			 col = 0, rows = (int)((o->paper_h - 2 * TYPESET_MARGIN) / TYPESET_LEADING);
	size_t			 i = 0;
	HPDF_UINT32		 size;

	if ((pdf = HPDF_NewEx(pdfout_error, NULL, NULL, 0, &hs)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
	HPDF_UseUTFEncodings(pdf);
	snprintf(fontpath, sizeof(fontpath), "%s/DejaVuSansMono.ttf", o->font_dir);
	if ((fname = HPDF_LoadTTFontFromFile(pdf, fontpath, HPDF_TRUE)) != NULL)
		font = HPDF_GetFont(pdf, fname, "UTF-8");
	if (font == NULL) {
		snprintf(err, errlen, "the font %s cannot be loaded", fontpath);
		HPDF_Free(pdf);
		return -1;
	}
	buf_init(&line);
	for (;;) {
		int	eol = i >= len || text[i] == '\n' || text[i] == '\f' ||
			    col == TYPESET_COLS;
		int	newpage = page == NULL || (i < len && text[i] == '\f');

		if (eol || newpage) {
			if (page && line.len)
				HPDF_Page_TextOut(page, (HPDF_REAL)TYPESET_MARGIN,
				    (HPDF_REAL)(o->paper_h - y), buf_cstr(&line));
			line.len = 0;
			col = 0;
			y += TYPESET_LEADING;
			if (page == NULL || newpage || y > TYPESET_MARGIN + rows * TYPESET_LEADING) {
				if (page)
					HPDF_Page_EndText(page);
				if (i >= len && page != NULL) {
					page = NULL;	/* its text is ended */
					break;
				}
				page = HPDF_AddPage(pdf);
				HPDF_Page_SetWidth(page, (HPDF_REAL)o->paper_w);
				HPDF_Page_SetHeight(page, (HPDF_REAL)o->paper_h);
				HPDF_Page_BeginText(page);
				HPDF_Page_SetFontAndSize(page, font, (HPDF_REAL)TYPESET_SIZE);
				y = TYPESET_MARGIN + TYPESET_SIZE;
			}
			if (i >= len)
				break;
			if (text[i] == '\n' || text[i] == '\f')
				i++;
			continue;
		}
		if (text[i] == '\t') {
			do
				buf_add(&line, " ", 1);
			while (++col % 8 && col < TYPESET_COLS);
			i++;
		} else if (text[i] == '\r') {
			i++;
		} else {
			size_t n = utf8_len(text + i, len - i);

			if (n == 0 || text[i] < 0x20 || text[i] == 0x7f) {
				buf_addstr(&line, "\xef\xbf\xbd");
				n = n ? n : 1;
			} else
				buf_add(&line, text + i, n);
			i += n;
			col++;
		}
	}
	if (page)
		HPDF_Page_EndText(page);
	buf_free(&line);
	if (hs.error == HPDF_OK)
		HPDF_SaveToStream(pdf);
	size = hs.error == HPDF_OK ? HPDF_GetStreamSize(pdf) : 0;
	if (hs.error != HPDF_OK || size == 0) {
		snprintf(err, errlen, "cannot be typeset (libhpdf error 0x%04x)",
		    (unsigned)hs.error);
		HPDF_Free(pdf);
		return -1;
	}
	*out = xmalloc(size);
	*outlen = size;
	HPDF_ReadFromStream(pdf, *out, &size);
	*outlen = size;
	HPDF_Free(pdf);
	return 0;
}

