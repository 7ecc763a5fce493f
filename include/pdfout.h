/*
 * The output PDF (worker): libhpdf, one image per page behind the cover
 * sheet, saved, fsynced and hashed.  See src/pdfout.c.
 */
#ifndef PDFOUT_H
#define PDFOUT_H

#include <hpdf.h>
#include <mupdf/fitz.h>

struct render_opts;

/* libhpdf's first error, kept by pdfout_error. */
struct hpdf_state {
	HPDF_STATUS	error;
	HPDF_STATUS	detail;
};

struct out {
	HPDF_Doc		 pdf;
	struct hpdf_state	 hs;
	const struct render_opts *o;
	int			 pages;
	unsigned char		*bits;		/* fax: one 1-bit page */
};

/* libhpdf's error handler; user is a struct hpdf_state. */
void	pdfout_error(HPDF_STATUS error, HPDF_STATUS detail, void *user);
/* Add the rendered pixmap as the next output page; 0 / -1. */
int	pdfout_page(struct out *, fz_pixmap *);
/* Write the document to fd (open for reading and writing; emptied
 * first), fsync it, hash it into sha256; 0, or -1 with the reason in err. */
int	pdfout_save(struct out *, int fd, char sha256[65], char *err,
	    size_t errlen);

#endif
