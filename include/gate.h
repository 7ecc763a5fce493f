/*
 * The leak gate (worker): after the output is written and before any
 * transport sees it, every page of it, cover sheet included, is read back
 * by OCR from its own pixels and searched for what must not be there.
 * See src/gate.c.
 */
#ifndef GATE_H
#define GATE_H

#include <stddef.h>

#include <mupdf/fitz.h>

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
};

/*
 * Read the output (fd, read from its start) back.  0 with what was checked in summary (for the
 * job's record), or -1 with the page and what it still shows in err
 * (never the text itself).
 */
int	gate_check(fz_context *, int fd, const struct gate *,
	    char *summary, size_t slen, char *err, size_t errlen);

#endif
