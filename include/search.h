/*
 * Finding the manifest's redaction patterns (worker): named patterns and
 * regular expressions compiled once per document, searched in a page's
 * text layer and in what OCR reads from its pixels, both normalized.
 * What is found becomes boxes (include/boxes.h); what a match spelled is
 * kept for the leak gate (include/gate.h).  See src/search.c.
 */
#ifndef SEARCH_H
#define SEARCH_H

#include <regex.h>
#include <stddef.h>

#include <mupdf/fitz.h>

#include "util.h"

struct boxes;
struct document;
struct manifest;
struct ocr_page;
struct redact_pattern;

#define SEARCH_SEEN_MAX	64	/* distinct strings a pattern remembers */

struct pattern {
	const struct redact_pattern	*src;
	regex_t				 re;
	int				 digits;	/* a number: no digit beside it */
	int				 found;		/* over the document */
	int				 hits_text, hits_ocr;	/* this page */
	char				**seen;		/* what matches spelled */
	size_t				 nseen;
};

/* A page's text, normalized, with each character's box in page space. */
struct page_text {
	struct buf	 s;
	int		*map;		/* byte -> char (-1: a break) */
	fz_rect		*rect;		/* char -> its box */
	size_t		 nchars, mapcap, rectcap;
};

/* One struct pattern per pattern of d, in *out; 0, or -1 with the reason. */
int	search_compile(const struct manifest *, const struct document *d,
	    struct pattern **out, char *err, size_t errlen);
void	search_free(struct pattern *, size_t n);
/* Every match on the page's text layer as boxes in bx (page space). */
void	search_page(fz_context *, fz_display_list *, fz_rect bounds,
	    struct pattern *, size_t np, struct boxes *bx);
/* A page's matches counted once (the more of text layer and OCR). */
void	search_page_done(struct pattern *, size_t n);

void	search_text_init(struct page_text *);
void	search_text_free(struct page_text *);
/* The page's text layer, as drawn from list (the page's contents, no
 * annotations); throws on error, with t left empty. */
void	search_text_from_list(fz_context *, fz_display_list *, fz_rect bounds,
	    struct page_text *);
/* The words OCR read from an image of the page at dpi. */
void	search_text_from_ocr(const struct ocr_page *, fz_rect bounds,
	    double dpi, struct page_text *);
/* Every match in t as boxes in bx. */
void	search_text(struct page_text *, fz_rect bounds, struct pattern *,
	    size_t np, int from_ocr, struct boxes *bx);
/* Does t show every line of lines (its letters and digits, normalized,
 * one after the other), where those drew t?  1 or 0. */
int	search_text_shows(const struct page_text *, const char *lines);
/* The first pattern that t still shows (its expression, or a string one
 * of its matches spelled before redaction): its index, or -1. */
int	search_leak(const struct page_text *, const struct pattern *, size_t np);

#endif
