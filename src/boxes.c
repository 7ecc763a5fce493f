/*
 * Redaction boxes (worker): for one page, the rectangles the manifest
 * marks and the boxes the searches find, in page space for the rasterizer
 * and in input units for the job's record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mupdf/fitz.h>

#include "boxes.h"
#include "manifest.h"
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

/* A page's text, one byte per character index (-1: line break). */
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

/* The boxes of page pno (1-based) of document d: its rectangles and what
 * its patterns find. */
void
boxes_page(fz_context *ctx, fz_display_list *list, fz_rect bounds, enum reader_kind kind,
    const struct document *d, int docno, int pno, struct pattern *pat,
    const struct render_opts *o, struct boxes *bx, struct render_result *res)
{
	double	sx = 1, sy = 1;

	bx->n = 0;
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
			sx = (bounds.x1 - bounds.x0) / w;
			sy = (bounds.y1 - bounds.y0) / h;
		}
	}
	for (size_t i = 0; i < d->nrects; i++) {
		const struct redact_rect *rr = &d->rects[i];
		fz_rect r;

		if (rr->page != pno)
			continue;
		r.x0 = (float)(bounds.x0 + rr->x * sx);
		r.y0 = (float)(bounds.y0 + rr->y * sy);
		r.x1 = (float)(r.x0 + rr->w * sx);
		r.y1 = (float)(r.y0 + rr->h * sy);
		boxes_add(bx, r, rr->x, rr->y, rr->w, rr->h, "rect");
	}
	if (d->npatterns > 0 && kind != READER_IMAGE)
		search_page(ctx, list, bounds, pat, d->npatterns, bx);
	for (size_t i = 0; i < bx->n; i++)
		record(res, docno, pno, &bx->b[i]);
}

