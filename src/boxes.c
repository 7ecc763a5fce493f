/*
 * Redaction boxes (worker): for one page, the rectangles the manifest
 * marks and the boxes the searches find (text layer and OCR), in page
 * space for the rasterizer and in input units for the job's record.
 *
 * A box must not tell what it hides.  A box that fits its text gives the
 * text's width, and widths alone pick a surname out of thousands (Bland,
 * Iyer and Levchenko, PoPETs 2023, even after rasterizing).  So a found
 * box is as tall as its line (the font's full height, whatever letters
 * it covers, and no taller, so that it never cuts the lines around it)
 * and its width is rounded up to a multiple of [render] redact_quantum,
 * grown on both sides and kept on the page; "mode": "line" takes the
 * whole width of the page.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mupdf/fitz.h>

#include "boxes.h"
#include "manifest.h"
#include "ocr.h"
#include "raster.h"
#include "reader.h"
#include "render.h"
#include "search.h"
#include "util.h"

void
boxes_add(struct boxes *bx, fz_rect r, double x, double y, double w, double h,
    const char *pattern)
{
	if (bx->n == bx->cap) {
		bx->cap = bx->cap ? bx->cap * 2 : 16;
		bx->b = xreallocarray(bx->b, bx->cap, sizeof(*bx->b));
	}
	bx->b[bx->n].r = r;
	bx->b[bx->n].x = x;
	bx->b[bx->n].y = y;
	bx->b[bx->n].w = w;
	bx->b[bx->n].h = h;
	strlcpy_(bx->b[bx->n].pattern, pattern, sizeof(bx->b[0].pattern));
	bx->n++;
}

/* Does an earlier box of the same pattern already cover most of r? */
static int
covered(const struct boxes *bx, fz_rect r, const char *name)
{
	double	area = (r.x1 - r.x0) * (r.y1 - r.y0);

	for (size_t i = 0; i < bx->n; i++) {
		fz_rect in = fz_intersect_rect(bx->b[i].r, r);

		if (strcmp(bx->b[i].pattern, name) == 0 && !fz_is_empty_rect(in) &&
		    (in.x1 - in.x0) * (in.y1 - in.y0) >= 0.8 * area)
			return 1;
	}
	return 0;
}

/* Width w rounded up to the quantum, centred on r, kept on the page. */
static fz_rect
quantize(fz_rect r, fz_rect bounds, double q)
{
	double	w = r.x1 - r.x0, pw = bounds.x1 - bounds.x0, x0;

	if (q <= 0)
		return r;
	w = ceil(w / q) * q;
	if (w > pw)
		w = pw;
	x0 = (r.x0 + r.x1) / 2 - w / 2;
	if (x0 + w > bounds.x1)
		x0 = bounds.x1 - w;
	if (x0 < bounds.x0)
		x0 = bounds.x0;
	r.x0 = (float)x0;
	r.x1 = (float)(x0 + w);
	return r;
}

void
boxes_add_found(struct boxes *bx, fz_rect r, fz_rect bounds, const char *name,
    int line)
{
	/* A point each side covers the glyphs' side bearings; the height is
	 * the line's own and grows nothing. */
	r.x0 -= 1.0f;
	r.x1 += 1.0f;
	if (line) {
		r.x0 = bounds.x0;
		r.x1 = bounds.x1;
	} else
		r = quantize(r, bounds, bx->quantum);
	if (covered(bx, r, name))
		return;
	boxes_add(bx, r, (r.x0 - bounds.x0) / bx->sx, (r.y0 - bounds.y0) / bx->sy,
	    (r.x1 - r.x0) / bx->sx, (r.y1 - r.y0) / bx->sy, name);
}

static void
record(struct render_result *res, int doc, int page, const struct box *b)
{
	struct store_redaction *r;

	res->red = xreallocarray(res->red, res->nred + 1, sizeof(*res->red));
	r = &res->red[res->nred++];
	r->doc = doc;
	r->page = page;
	r->x = b->x;
	r->y = b->y;
	r->w = b->w;
	r->h = b->h;
	strlcpy_(r->pattern, b->pattern, sizeof(r->pattern));
}

/* What OCR reads on the page's own raster, searched like its text layer. */
static void
boxes_ocr(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    struct pattern *pat, size_t np, int dpi, struct boxes *bx)
{
	fz_pixmap		*pix = raster_gray(ctx, list, bounds, dpi);
	struct ocr_page		 op;
	struct page_text	 t;
	int			 rv;

	rv = ocr_read(pix->samples, pix->w, pix->h, (int)pix->stride, dpi, &op);
	fz_drop_pixmap(ctx, pix);
	if (rv == -1)
		fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: OCR failed on the page");
	search_text_init(&t);
	search_text_from_ocr(&op, bounds, dpi, &t);
	ocr_page_free(&op);
	search_text(&t, bounds, pat, np, 1, bx);
	search_text_free(&t);
}

/* The boxes of page pno (1-based) of document d: its rectangles and what
 * its patterns find. */
void
boxes_page(fz_context *ctx, fz_display_list *list, fz_rect bounds, enum reader_kind kind,
    const struct document *d, int docno, int pno, struct pattern *pat,
    size_t np, const struct render_opts *o, struct boxes *bx,
    struct render_result *res)
{
	double	sx = 1, sy = 1;

	bx->n = 0;
	bx->quantum = o->redact_quantum;
	if (kind != READER_TEXT) {
		int	w, h;

		/* A scan's size in pixels (rectangles on images are in pixels),
		 * and the decompression bomb's: an image of billions of pixels
		 * in a few megabytes of file is refused before it is decoded. */
		reader_largest_image(ctx, list, &w, &h);
		if (o->max_pixels > 0 && (int64_t)w * h > o->max_pixels) {
			char why[160];	/* fz_throw knows no %lld */

			snprintf(why, sizeof(why), "roigate: it holds an image of %d "
			    "x %d pixels, over the limit of %lld pixels", w, h,
			    (long long)o->max_pixels);
			fz_throw(ctx, FZ_ERROR_GENERIC, "%s", why);
		}
		if (kind == READER_IMAGE && w > 0 && h > 0) {
			/* A picture shown turned a quarter (EXIF, TIFF
			 * orientation): its rows run down the page. */
			if ((w > h) != (bounds.x1 - bounds.x0 > bounds.y1 - bounds.y0)) {
				int t = w;

				w = h;
				h = t;
			}
			sx = (bounds.x1 - bounds.x0) / w;
			sy = (bounds.y1 - bounds.y0) / h;
		}
	}
	for (size_t i = 0; i < d->nrects; i++) {
		const struct redact_rect *rr = &d->rects[i];
		fz_rect r;

		if (rr->page != pno)
			continue;
		/* Wholly off the page it covers nothing: pixels given for a
		 * PDF's points, say.  As for a page it does not have, the job
		 * fails rather than send what the clerk meant to black out. */
		if (bounds.x0 + rr->x * sx >= bounds.x1 ||
		    bounds.y0 + rr->y * sy >= bounds.y1) {
			char why[240];	/* fz_throw knows no %g */

			snprintf(why, sizeof(why), "roigate: a redaction rectangle on "
			    "page %d starts at x %g, y %g, outside the page (%g x %g "
			    "%s): check the redactions marked for it", pno, rr->x,
			    rr->y, (bounds.x1 - bounds.x0) / sx,
			    (bounds.y1 - bounds.y0) / sy, kind == READER_IMAGE ?
			    "pixels" : "points");
			fz_throw(ctx, FZ_ERROR_GENERIC, "%s", why);
		}
		r.x0 = (float)(bounds.x0 + rr->x * sx);
		r.y0 = (float)(bounds.y0 + rr->y * sy);
		r.x1 = (float)(r.x0 + rr->w * sx);
		r.y1 = (float)(r.y0 + rr->h * sy);
		boxes_add(bx, r, rr->x, rr->y, rr->w, rr->h, "rect");
	}
	bx->sx = sx;
	bx->sy = sy;
	if (np > 0 && kind != READER_IMAGE)
		search_page(ctx, list, bounds, pat, np, bx);
	if (np > 0 && o->ocr != RENDER_OCR_OFF)
		boxes_ocr(ctx, list, bounds, pat, np, o->ocr_dpi, bx);
	search_page_done(pat, np);
	for (size_t i = 0; i < bx->n; i++)
		record(res, docno, pno, &bx->b[i]);
}

