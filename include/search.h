/*
 * Finding the manifest's redaction patterns (worker): named patterns and
 * regular expressions compiled once per document, searched in a page's
 * text layer.  What is found becomes boxes (include/boxes.h).  See
 * src/search.c.
 */
#ifndef SEARCH_H
#define SEARCH_H

#include <regex.h>
#include <stddef.h>

#include <mupdf/fitz.h>

struct boxes;
struct document;
struct manifest;
struct redact_pattern;

struct pattern {
	const struct redact_pattern	*src;
	regex_t				 re;
	int				 found;
};

/* One struct pattern per pattern of d, in *out; 0, or -1 with the reason. */
int	search_compile(const struct manifest *, const struct document *d,
	    struct pattern **out, char *err, size_t errlen);
void	search_free(struct pattern *, size_t n);
/* Every match on the page's text layer as boxes in bx (page space). */
void	search_page(fz_context *, fz_display_list *, fz_rect bounds,
	    struct pattern *, size_t np, struct boxes *bx);

#endif
