/*
 * Redaction boxes (worker): the rectangles a manifest marks and the boxes
 * the searches find, for one page, in page space and as the job records
 * them.  See src/boxes.c.
 */
#ifndef BOXES_H
#define BOXES_H

#include <stddef.h>

#include <mupdf/fitz.h>

#include "reader.h"

struct document;
struct pattern;
struct render_opts;
struct render_result;

struct box {
	fz_rect	r;		/* page space */
	double	x, y, w, h;	/* as recorded: input units from the top-left */
	char	pattern[24];
};

struct boxes {
	struct box	*b;
	size_t		 n, cap;
	double		 quantum;	/* found boxes' widths: a multiple of it */
	double		 sx, sy;	/* recorded units per point (images: pixels) */
};

void	boxes_add(struct boxes *, fz_rect r, double x, double y, double w,
	    double h, const char *pattern);
/* A box over what a search found in r (page space): as tall as r, its
 * width quantized, or the whole line's. */
void	boxes_add_found(struct boxes *, fz_rect r, fz_rect bounds,
	    const char *pattern, int line);
/* The boxes of page pno (1-based) of document d: its rectangles and what
 * its np patterns find in the text layer and by OCR; each is recorded in
 * res. */
void	boxes_page(fz_context *, fz_display_list *, fz_rect bounds,
	    enum reader_kind, const struct document *d, int docno, int pno,
	    struct pattern *, size_t np, const struct render_opts *,
	    struct boxes *, struct render_result *res);

#endif
