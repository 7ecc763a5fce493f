/*
 * The leak gate (worker).  Redaction is checked on what leaves, not on
 * what the renderer believes it did: the finished output is opened again,
 * each page drawn to pixels and read by OCR, and searched
 *   - on a document's pages, for every pattern asked for there (the site's
 *     protected ones included) and for every string those patterns found
 *     before redaction;
 *   - on the cover sheet, for the patient's name, MRN and date of birth
 *     (they never belong there) and the site's protected patterns.
 * The cover is roigate's own typesetting (src/cover.c), which says where
 * it put what a packet or its recipient filled in: its text layer, which
 * holds every character it drew, is searched whole (the template's own
 * words are read there only), and OCR reads the fields' regions, so that
 * a look-alike letter in a note or a purpose is read as the page shows it.
 * Where the regions are not known, OCR reads the whole cover.
 * One hit fails the job before the transport is called: nothing is sent.
 * Pages are read one at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mupdf/fitz.h>

#include "cover.h"
#include "gate.h"
#include "manifest.h"
#include "ocr.h"
#include "raster.h"
#include "reader.h"
#include "render.h"
#include "search.h"
#include "util.h"

/* What a pattern is, in the clerk's words. */
static const char *
gate_what(const struct pattern *p)
{
	static const struct {
		const char *name, *words;
	} w[] = {
		{ "ssn", "the SSN" }, { "phone", "a phone number" },
		{ "email", "an e-mail address" }, { "mrn", "the MRN" },
		{ "dob", "the date of birth" }, { "patient_name", "the patient's name" },
	};

	for (size_t i = 0; p->src->name && i < sizeof(w) / sizeof(w[0]); i++)
		if (strcmp(p->src->name, w[i].name) == 0)
			return w[i].words;
	return "text matching a redaction pattern (regular expression)";
}

/* The cover's patterns: the patient's identifiers the manifest has, and
 * the site's protected ones. */
static int
gate_cover(const struct gate *g, struct redact_pattern *rp, struct pattern **p,
    size_t *n)
{
	static char	 pn[] = "patient_name", mrn[] = "mrn", dob[] = "dob";
	char		 err[200], *list, *save = NULL, *name;
	struct document	 d;

	*n = 0;
	if (g->mf->patient_name && g->mf->patient_name[0])
		rp[(*n)++].name = pn;
	if (g->mf->patient_mrn && g->mf->patient_mrn[0])
		rp[(*n)++].name = mrn;
	if (g->mf->patient_dob && g->mf->patient_dob[0])
		rp[(*n)++].name = dob;
	list = xstrdup(g->o->protect ? g->o->protect : "");
	/* The patient's own are there already (mrn, dob, patient_name). */
	for (name = strtok_r(list, ", ", &save); name && *n < 8;
	    name = strtok_r(NULL, ", ", &save))
		if (strcmp(name, "ssn") == 0 || strcmp(name, "phone") == 0 ||
		    strcmp(name, "email") == 0)
			rp[(*n)++].name = strcmp(name, "ssn") == 0 ? "ssn" :
			    strcmp(name, "phone") == 0 ? "phone" : "email";
	free(list);
	for (size_t i = 0; i < *n; i++)
		rp[i].expect = -1;
	memset(&d, 0, sizeof(d));
	d.patterns = rp;
	d.npatterns = *n;
	return search_compile(g->mf, &d, p, err, sizeof(err));
}

/* The output's pages are drawn again for OCR at [render] ocr_dpi, and
 * never below the output's own resolution: at 150 dpi (the document
 * profile) or fax's 204x196, text of 6 pt and less is too few pixels for
 * Tesseract, and what it cannot read it cannot find either. */
static int
gate_dpi(const struct render_opts *o)
{
	int	dpi = o->ocr_dpi > 0 ? o->ocr_dpi : 300;

	if (o->xdpi > dpi)
		dpi = o->xdpi;
	return o->ydpi > dpi ? o->ydpi : dpi;
}

/* Page pno of the output, read by OCR: the index of the first pattern it
 * still shows, or -1. */
static int
gate_page(fz_context *ctx, fz_document *doc, int pno, const struct pattern *p,
    size_t np, int dpi)
{
	fz_page			*page = fz_load_page(ctx, doc, pno - 1);
	fz_display_list		*list = NULL;
	fz_pixmap		*pix = NULL;
	struct ocr_page		 op;
	struct page_text	 t;
	fz_rect			 bounds;
	int			 hit, rv = 0;

	fz_var(list);
	fz_var(pix);
	fz_try(ctx) {
		bounds = fz_bound_page(ctx, page);
		list = reader_record_page(ctx, page, bounds);
		pix = raster_gray(ctx, list, bounds, dpi);
		rv = ocr_read(pix->samples, pix->w, pix->h, (int)pix->stride, dpi, &op);
	}
	fz_always(ctx) {
		fz_drop_pixmap(ctx, pix);
		fz_drop_display_list(ctx, list);
		fz_drop_page(ctx, page);
	}
	fz_catch(ctx)
		fz_rethrow(ctx);
	if (rv == -1)
		fz_throw(ctx, FZ_ERROR_GENERIC, "OCR failed");
	search_text_init(&t);
	search_text_from_ocr(&op, bounds, dpi, &t);
	ocr_page_free(&op);
	hit = search_leak(&t, p, np);
	search_text_free(&t);
	return hit;
}

/* Around a field's region, in points: ink a little outside the font's
 * boxes, and room for Tesseract to see each line's edges. */
#define GATE_MARGIN	4.0

/* The cover's regions in the pixels of its image at dpi (w x h), each
 * with its margin and on the page, those that overlap merged (a block of
 * lines is read as one); how many in r. */
static size_t
gate_rects(const struct cover_regions *reg, fz_rect bounds, int dpi, int w,
    int h, struct ocr_rect *r)
{
	double	k = dpi / 72.0;
	size_t	n = 0;
	int	merged = 1;

	for (size_t i = 0; i < reg->n; i++) {
		const struct cover_region *c = &reg->r[i];
		int x0 = (int)((c->x0 - GATE_MARGIN - bounds.x0) * k);
		int y0 = (int)((c->y0 - GATE_MARGIN - bounds.y0) * k);
		int x1 = (int)((c->x1 + GATE_MARGIN - bounds.x0) * k + 1);
		int y1 = (int)((c->y1 + GATE_MARGIN - bounds.y0) * k + 1);

		x0 = x0 < 0 ? 0 : x0;
		y0 = y0 < 0 ? 0 : y0;
		x1 = x1 > w ? w : x1;
		y1 = y1 > h ? h : y1;
		if (x1 > x0 && y1 > y0)
			r[n++] = (struct ocr_rect){ x0, y0, x1 - x0, y1 - y0 };
	}
	while (merged) {
		merged = 0;
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++) {
				struct ocr_rect	*a = &r[i], *b = &r[j];
				int		 ax1 = a->x + a->w, ay1 = a->y + a->h;
				int		 bx1 = b->x + b->w, by1 = b->y + b->h;

				if (b->x > ax1 || a->x > bx1 || b->y > ay1 ||
				    a->y > by1)
					continue;
				a->x = a->x < b->x ? a->x : b->x;
				a->y = a->y < b->y ? a->y : b->y;
				a->w = (ax1 > bx1 ? ax1 : bx1) - a->x;
				a->h = (ay1 > by1 ? ay1 : by1) - a->y;
				r[j--] = r[--n];
				merged = 1;
			}
	}
	return n;
}

/* The cover, its regions known: the index of the first pattern its text
 * layer or the OCR of its regions shows, or -1; -2 if its text layer does
 * not hold every line the sheet drew (then it cannot stand in for OCR). */
static int
gate_cover_page(fz_context *ctx, fz_document *doc, const struct pattern *p,
    size_t np, int dpi, const struct cover_regions *reg)
{
	fz_page			*page = fz_load_page(ctx, doc, 0);
	fz_display_list		*list = NULL;
	fz_pixmap		*pix = NULL;
	struct ocr_rect		 r[COVER_MAX_REGIONS];
	struct ocr_page		 op;
	struct page_text	 t;
	fz_rect			 bounds;
	int			 hit = -1, rv = 0;

	memset(&op, 0, sizeof(op));
	search_text_init(&t);
	fz_var(list);
	fz_var(pix);
	fz_var(hit);
	fz_var(rv);
	fz_try(ctx) {
		bounds = fz_bound_page(ctx, page);
		list = reader_record_page(ctx, page, bounds);
		search_text_from_list(ctx, list, bounds, &t);
		if (!search_text_shows(&t, reg->drawn.data ? reg->drawn.data : ""))
			hit = -2;
		else
			hit = search_leak(&t, p, np);
		if (hit == -1 && reg->n > 0) {
			pix = raster_gray(ctx, list, bounds, dpi);
			rv = ocr_read_rects(pix->samples, pix->w, pix->h,
			    (int)pix->stride, dpi, r, gate_rects(reg, bounds, dpi,
			    pix->w, pix->h, r), &op);
		}
	}
	fz_always(ctx) {
		fz_drop_pixmap(ctx, pix);
		fz_drop_display_list(ctx, list);
		fz_drop_page(ctx, page);
	}
	fz_catch(ctx) {
		search_text_free(&t);
		ocr_page_free(&op);
		fz_rethrow(ctx);
	}
	search_text_free(&t);
	if (rv == -1) {
		ocr_page_free(&op);
		fz_throw(ctx, FZ_ERROR_GENERIC, "OCR failed");
	}
	if (hit == -1 && op.n > 0) {
		search_text_init(&t);
		search_text_from_ocr(&op, bounds, dpi, &t);
		hit = search_leak(&t, p, np);
		search_text_free(&t);
	}
	ocr_page_free(&op);
	return hit;
}

/* Are the cover's regions known, so that it is read by them? */
static int
gate_by_regions(const struct gate *g)
{
	return g->cover != NULL && g->cover->known;
}

/* Which patterns were looked for, for the record: names only, each once
 * in the list that starts at byte from of b. */
static void
gate_names(struct buf *b, size_t from, const struct pattern *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char	*name = p[i].src->name ? p[i].src->name : "regex";
		const char	*s = buf_cstr(b) + from, *at;
		size_t		 len = strlen(name);
		int		 have = 0;

		for (at = s; !have && (at = strstr(at, name)) != NULL; at += len)
			have = (at == s || at[-1] == ',') &&
			    (at[len] == '\0' || at[len] == ',');
		if (!have)
			buf_printf(b, "%s%s", b->len > from ? "," : "", name);
	}
}

/* "ocr 300 dpi, 3 of 5 pages read back; cover: text layer + OCR of 4
 * field regions for patient_name,...; documents: ssn": a page of a
 * document with no pattern has nothing to be looked for and is not read,
 * and the record says so. */
static void
gate_summary(const struct gate *g, const struct pattern *cp, size_t ncp,
    int read, int whole, char *summary, size_t slen)
{
	struct buf	b;
	size_t		mark;

	buf_init(&b);
	buf_printf(&b, "ocr %d dpi, %d of %d pages read back; cover: ",
	    gate_dpi(g->o), read, g->pages);
	if (ncp == 0)
		buf_addstr(&b, "no patterns");
	else if (!whole)
		buf_printf(&b, "text layer + OCR of %zu field region%s for ",
		    g->cover->n, g->cover->n == 1 ? "" : "s");
	else
		buf_addstr(&b, "OCR of the whole page for ");
	gate_names(&b, b.len, cp, ncp);
	buf_addstr(&b, "; documents: ");
	mark = b.len;
	for (size_t i = 0; i < g->mf->ndocs; i++)
		gate_names(&b, mark, g->docs[i].p, g->docs[i].n);
	if (b.len == mark)
		buf_addstr(&b, "no patterns");
	snprintf(summary, slen, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* Every page, one at a time; -1 with err at the first that still shows
 * something. */
static int
gate_pages(fz_context *ctx, fz_document *doc, const struct gate *g,
    const struct pattern *cp, size_t ncp, int *read, int *whole, char *err,
    size_t errlen)
{
	volatile int	pno = 1, hit = -1, nread = 0, all = !gate_by_regions(g);

	fz_try(ctx) {
		for (pno = 1; pno <= g->pages && hit == -1; pno++) {
			int			 dn = pno == 1 ? 0 : g->page_doc[pno];
			const struct pattern	*p = dn ? g->docs[dn - 1].p : cp;
			size_t			 n = dn ? g->docs[dn - 1].n : ncp;

			if (n == 0)
				continue;
			nread++;
			hit = pno == 1 && !all ? gate_cover_page(ctx, doc, p, n,
			    gate_dpi(g->o), g->cover) : -2;
			if (hit == -2) {
				all |= pno == 1;
				hit = gate_page(ctx, doc, pno, p, n, gate_dpi(g->o));
			}
			if (hit >= 0)
				snprintf(err, errlen, dn ? "page %d: %s is still "
				    "readable after redaction: check the redactions "
				    "marked for it" : "page %d (the cover sheet): %s is "
				    "printed on it, where it never belongs: check the "
				    "cover note, purpose and template", pno,
				    gate_what(&p[hit]));
		}
	}
	fz_catch(ctx) {
		snprintf(err, errlen, "the output cannot be checked before sending "
		    "(page %d: %.200s)", pno, fz_caught_message(ctx));
		return -1;
	}
	*read = nread;
	*whole = all;
	return hit == -1 ? 0 : -1;
}

int
gate_check(fz_context *ctx, int fd, const struct gate *g,
    char *summary, size_t slen, char *err, size_t errlen)
{
	struct redact_pattern	 rp[8];
	struct reader_doc	 rd;
	struct pattern		*cp = NULL;
	size_t			 ncp;
	int			 rv, read = 0, whole = 1;

	memset(rp, 0, sizeof(rp));
	if (gate_cover(g, rp, &cp, &ncp) == -1)
		cp = NULL, ncp = 0;
	rv = reader_open(ctx, fd, "application/pdf", g->o, &rd, err, errlen);
	if (rv == 0) {
		rv = gate_pages(ctx, rd.doc, g, cp, ncp, &read, &whole, err,
		    errlen);
		reader_close(ctx, &rd);
	}
	if (rv == 0)
		gate_summary(g, cp, ncp, read, whole, summary, slen);
	search_free(cp, ncp);
	return rv;
}
