/*
 * Plain text typeset into a PDF (worker): DejaVu Sans Mono on the output
 * paper, so that a text document takes the same path as a PDF.  See
 * src/typeset.c.
 */
#ifndef TYPESET_H
#define TYPESET_H

#include <stddef.h>

struct render_opts;

#define TYPESET_MARGIN	54.0	/* points around a typeset text page */
#define TYPESET_SIZE	10.0
#define TYPESET_LEADING	12.0
#define TYPESET_COLS	80

/* The PDF's bytes in *out (malloc'd); 0, or -1 with the reason in err. */
int	typeset_text(const unsigned char *text, size_t len,
	    const struct render_opts *, unsigned char **out, size_t *outlen,
	    char *err, size_t errlen);

#endif
