/*
 * OCR (worker): Tesseract 5 through tesseract/capi.h.  The page is read
 * from the same pixels the output shows, so that a text layer that lies
 * (glyphs drawn away from where the font says, a ToUnicode map that turns
 * digits into letters, a scan with no text at all) cannot hide what a
 * reader of the page would see.
 *
 * One handle per process, made and loaded by ocr_init before any document
 * is opened; pages are read one at a time and the handle is cleared after
 * each, so memory stays that of one page.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <tesseract/capi.h>

#include "ocr.h"
#include "util.h"

static TessBaseAPI	*ocr_api;

int
ocr_init(const char *datadir, char *err, size_t errlen)
{
	if (ocr_api != NULL)
		return 0;
	/* One thread: the worker shares the cores with the daemon and the
	 * other workers, and Tesseract's OpenMP teams of four spin on two
	 * cores (four times slower here).  OMP_THREAD_LIMIT is read when the
	 * library loads, too early; no active parallel level does the same
	 * at run time. */
	omp_set_max_active_levels(0);
	if ((ocr_api = TessBaseAPICreate()) == NULL) {
		snprintf(err, errlen, "cannot start OCR (out of memory)");
		return -1;
	}
	if (TessBaseAPIInit3(ocr_api, datadir ? datadir : OCR_DATA_DIR,
	    "eng") != 0) {
		snprintf(err, errlen, "cannot start OCR: the English data "
		    "(eng.traineddata) is not in %s; install tesseract-ocr-eng",
		    datadir ? datadir : OCR_DATA_DIR);
		TessBaseAPIDelete(ocr_api);
		ocr_api = NULL;
		return -1;
	}
	/* Fully automatic page segmentation: columns, tables and forms. */
	TessBaseAPISetVariable(ocr_api, "tessedit_pageseg_mode", "3");
	TessBaseAPISetVariable(ocr_api, "debug_file", "/dev/null");
	return 0;
}

/* Tesseract opens its debug_file for writing at its first message, which
 * the sandbox forbids: its messages go to stderr instead (a sandboxed
 * renderer's stderr is /dev/null). */
void
ocr_sandboxed(void)
{
	if (ocr_api != NULL)
		TessBaseAPISetVariable(ocr_api, "debug_file", "");
}

int
ocr_ready(void)
{
	return ocr_api != NULL;
}

static void
ocr_add(struct ocr_page *p, char *text, int x0, int y0, int x1, int y1,
    int line)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->w = xreallocarray(p->w, p->cap, sizeof(*p->w));
	}
	p->w[p->n].text = xstrdup(text);
	p->w[p->n].x0 = x0;
	p->w[p->n].y0 = y0;
	p->w[p->n].x1 = x1;
	p->w[p->n].y1 = y1;
	p->w[p->n].line = line;
	p->n++;
}

/* Each word with its box, in reading order. */
static void
ocr_collect(TessResultIterator *it, struct ocr_page *out)
{
	const TessPageIterator	*pit = TessResultIteratorGetPageIterator(it);
	char			*text;
	int			 x0, y0, x1, y1, lx0, ly0, lx1, ly1;

	do {
		if ((text = TessResultIteratorGetUTF8Text(it, RIL_WORD)) == NULL)
			continue;
		/* A word's height is its line's: the ink of "ap" and "AB"
		 * differ, and a box must not say which it covered. */
		if (TessPageIteratorBoundingBox(pit, RIL_WORD, &x0, &y0, &x1, &y1) &&
		    TessPageIteratorBoundingBox(pit, RIL_TEXTLINE, &lx0, &ly0, &lx1,
		    &ly1))
			ocr_add(out, text, x0, ly0 < y0 ? ly0 : y0, x1,
			    ly1 > y1 ? ly1 : y1,
			    TessPageIteratorIsAtBeginningOf(pit, RIL_TEXTLINE));
		TessDeleteText(text);
	} while (TessResultIteratorNext(it, RIL_WORD));
}

/* Is row y of the image white (255) from x0 to x1 (excluded)? */
static int
ocr_row_white(const unsigned char *row, int x0, int x1)
{
	uint64_t	v;
	int		x = x0;

	for (; x < x1 && (x & 7); x++)
		if (row[x] != 255)
			return 0;
	for (; x + 8 <= x1; x += 8) {
		memcpy(&v, row + x, 8);
		if (v != UINT64_MAX)
			return 0;
	}
	for (; x < x1; x++)
		if (row[x] != 255)
			return 0;
	return 1;
}

/*
 * The smallest rectangle that holds every pixel that is not pure white,
 * grown by pad pixels on each side (within the image): what Tesseract has
 * to read.  Paper where nothing was drawn holds no word, and a page's
 * margins and blank half cost Tesseract as much as its text (it
 * thresholds and segments every pixel it is given).  0 for an image that
 * is white all over.
 */
static int
ocr_ink(const unsigned char *gray, int w, int h, int stride, int pad,
    struct ocr_rect *r)
{
	int	top = 0, bottom = h, left = w, right = 0, x;

	while (top < h && ocr_row_white(gray + (size_t)top * stride, 0, w))
		top++;
	if (top == h)
		return 0;
	while (ocr_row_white(gray + (size_t)(bottom - 1) * stride, 0, w))
		bottom--;
	for (int y = top; y < bottom; y++) {
		const unsigned char *row = gray + (size_t)y * stride;

		/* Only what could widen the box is looked at. */
		for (x = 0; x < left && row[x] == 255; x++)
			;
		left = x < left ? x : left;
		for (x = w - 1; x >= right && row[x] == 255; x--)
			;
		right = x + 1 > right ? x + 1 : right;
	}
	r->x = left > pad ? left - pad : 0;
	r->y = top > pad ? top - pad : 0;
	r->w = (right + pad < w ? right + pad : w) - r->x;
	r->h = (bottom + pad < h ? bottom + pad : h) - r->y;
	return 1;
}

int
ocr_read(const unsigned char *gray, int w, int h, int stride, int dpi,
    struct ocr_page *out)
{
	struct ocr_rect	r;

	memset(out, 0, sizeof(*out));
	if (ocr_api == NULL)
		return -1;
	/* A sixth of an inch of paper around the ink: room for Tesseract to
	 * see each line's edges, as on the page. */
	if (!ocr_ink(gray, w, h, stride, dpi / 6, &r))
		return 0;
	return ocr_read_rects(gray, w, h, stride, dpi, &r, 1, out);
}

int
ocr_read_rects(const unsigned char *gray, int w, int h, int stride, int dpi,
    const struct ocr_rect *r, size_t n, struct ocr_page *out)
{
	TessResultIterator	*it;
	int			 rv = 0;

	memset(out, 0, sizeof(*out));
	if (ocr_api == NULL)
		return -1;
	TessBaseAPISetImage(ocr_api, gray, w, h, 1, stride);
	TessBaseAPISetSourceResolution(ocr_api, dpi);
	/* Each rectangle is read on its own (SetRectangle drops the last
	 * one's results); the boxes come in the whole image's pixels. */
	for (size_t i = 0; rv == 0 && i < n; i++) {
		TessBaseAPISetRectangle(ocr_api, r[i].x, r[i].y, r[i].w, r[i].h);
		if (TessBaseAPIRecognize(ocr_api, NULL) != 0)
			rv = -1;
		else if ((it = TessBaseAPIGetIterator(ocr_api)) != NULL) {
			ocr_collect(it, out);
			TessResultIteratorDelete(it);
		}
	}
	TessBaseAPIClear(ocr_api);
	return rv;
}

void
ocr_page_free(struct ocr_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->w[i].text);
	free(p->w);
	memset(p, 0, sizeof(*p));
}
