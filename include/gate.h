/*
 * The leak gate (worker): after the output is written and before any
 * transport sees it, every page of it, cover sheet included, is read back
 * (by OCR from its own pixels; the cover by its text layer and OCR of
 * where its fields are) and searched for what must not be there.  See
 * src/gate.c.
 */
#ifndef GATE_H
#define GATE_H

#include <stddef.h>

#include <mupdf/fitz.h>

struct cover_regions;
struct manifest;
struct pattern;
struct render_opts;

/* What one document's pages must not show: its patterns (with what they
 * matched before redaction). */
struct gate_doc {
	const struct pattern	*p;
	size_t			 n;
};

struct gate {
	const struct render_opts *o;
	const struct manifest	*mf;
	const struct gate_doc	*docs;		/* one per document */
	const int		*page_doc;	/* output page -> document, 1-based;
						 * page 1 (the cover) is 0 */
	int			 pages;
	/* Where the cover shows what a packet put there (src/cover.c):
	 * the cover's text layer is searched whole and these regions read
	 * by OCR; NULL or not known, the whole cover is read by OCR. */
	const struct cover_regions *cover;
};

/*
 * Read the output (fd, read from its start) back.  0 with what was checked in summary (for the
 * job's record), or -1 with the page and what it still shows in err
 * (never the text itself).
 */
int	gate_check(fz_context *, int fd, const struct gate *,
	    char *summary, size_t slen, char *err, size_t errlen);

#endif
