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
};

void	boxes_add(struct boxes *, fz_rect r, double x, double y, double w,
	    double h, const char *pattern);
/* The boxes of page pno (1-based) of document d: its rectangles and what
 * its patterns find; each is recorded in res. */
void	boxes_page(fz_context *, fz_display_list *, fz_rect bounds,
	    enum reader_kind, const struct document *d, int docno, int pno,
	    struct pattern *, const struct render_opts *, struct boxes *,
	    struct render_result *res);

#endif
