/*
 * Opening documents (worker and intake probe): MuPDF with a memory cap
 * and a time limit, the document types roigate takes, and a page's own
 * contents recorded once into a display list.  See src/reader.c.
 */
#ifndef READER_H
#define READER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <mupdf/fitz.h>

struct render_opts;

/* What MuPDF may allocate; exceeded says the cap, not the machine, said no. */
struct reader_cap {
	size_t	used, cap;
	int	exceeded;
};

enum reader_kind { READER_PDF, READER_IMAGE, READER_TEXT, READER_UNKNOWN };

struct reader_doc {
	fz_document		*doc;
	FILE			*fp;
	unsigned char		*mem;		/* typeset text */
	enum reader_kind	 kind;
};

/* The time limit: the cookie every MuPDF run takes, and its flag. */
extern fz_cookie		reader_cookie;
extern volatile sig_atomic_t	reader_timed_out;

fz_context	*reader_new_ctx(struct reader_cap *, fz_alloc_context *,
		    int64_t max_memory);
void		 reader_limit_start(int seconds, struct sigaction *old);
void		 reader_limit_stop(const struct sigaction *old);
/* The kind of a file by its MIME type or name; *mime is set to the type. */
enum reader_kind reader_kind(const char *mime_or_name, const char **mime);
/* Open fd as a document; 0, or -1 with the reason (prefixed by nothing). */
int		 reader_open(fz_context *, int fd, const char *mime_or_name,
		    const struct render_opts *, struct reader_doc *, char *err,
		    size_t errlen);
void		 reader_close(fz_context *, struct reader_doc *);
/* The page's own contents (no annotations, no form fields) as a list. */
fz_display_list	*reader_record_page(fz_context *, fz_page *, fz_rect bounds);
/* The largest image the list draws, in pixels (0 x 0: none). */
void		 reader_largest_image(fz_context *, fz_display_list *, int *w,
		    int *h);

#endif
