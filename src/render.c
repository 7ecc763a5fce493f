/*
 * The document pipeline: MuPDF reads, searches and rasterizes; libhpdf
 * writes.  See include/render.h.
 *
 * True redaction here is done on pixels: each input page is rendered to a
 * bitmap, the redaction boxes are painted black into that bitmap, and only
 * the bitmap goes into the output.  Whatever an input PDF carried besides
 * what its page shows (text layer, metadata, annotations, forms, scripts,
 * attachments, optional content, earlier revisions) has no way into the
 * output, and text under a box is gone with the pixels that showed it.
 * Only a page's own contents are drawn (and searched): annotations and
 * form fields are left out.
 *
 * Plain text documents are first typeset into a PDF (DejaVu Sans Mono,
 * the output paper, 54 pt margins) so that they take the same path.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hpdf.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <jpeglib.h>
#include <mupdf/fitz.h>

#include "config.h"
#include "cover.h"
#include "manifest.h"
#include "render.h"
#include "util.h"

extern fz_document_handler pdf_document_handler;
extern fz_document_handler img_document_handler;

#define TEXT_MARGIN	54.0	/* points around a typeset text page */
#define TEXT_SIZE	10.0
#define TEXT_LEADING	12.0
#define TEXT_COLS	80
#define FAX_THRESHOLD	160	/* gray below this is black */
/* Opening a document at intake takes milliseconds; the daemon waits for it,
 * so a file built to take longer is cut off (and refused) after this. */
#define RENDER_PROBE_SECONDS	10

/* ---- MuPDF with a memory cap ------------------------------------------ */

struct capped {
	size_t	used, cap;
	int	exceeded;
};

static void *
cap_malloc(void *u, size_t n)
{
	struct capped	*c = u;
	size_t		*p;

	if (n > c->cap || c->used + n > c->cap) {
		c->exceeded = 1;
		return NULL;
	}
	if ((p = malloc(n + 16)) == NULL)
		return NULL;
	p[0] = n;
	c->used += n;
	return (char *)p + 16;
}

static void
cap_free(void *u, void *ptr)
{
	struct capped	*c = u;
	size_t		*p;

	if (ptr == NULL)
		return;
	p = (size_t *)((char *)ptr - 16);
	c->used -= p[0];
	free(p);
}

static void *
cap_realloc(void *u, void *ptr, size_t n)
{
	struct capped	*c = u;
	size_t		*p, old;

	if (ptr == NULL)
		return cap_malloc(u, n);
	if (n == 0) {
		cap_free(u, ptr);
		return NULL;
	}
	p = (size_t *)((char *)ptr - 16);
	old = p[0];
	if (n > old && (n - old > c->cap || c->used + (n - old) > c->cap)) {
		c->exceeded = 1;
		return NULL;
	}
	if ((p = realloc(p, n + 16)) == NULL)
		return NULL;
	c->used = c->used - old + n;
	p[0] = n;
	return (char *)p + 16;
}

static void
quiet(void *user, const char *msg)
{
	(void)user;
	(void)msg;	/* MuPDF's warnings may quote document text: not logged */
}

static fz_context *
new_ctx(struct capped *cap, fz_alloc_context *alloc, int64_t max_memory)
{
	fz_context	*ctx;

	memset(cap, 0, sizeof(*cap));
	cap->cap = max_memory > 0 ? (size_t)max_memory : SIZE_MAX / 2;
	alloc->user = cap;
	alloc->malloc = cap_malloc;
	alloc->realloc = cap_realloc;
	alloc->free = cap_free;
	if ((ctx = fz_new_context(alloc, NULL, (size_t)32 << 20)) == NULL)
		return NULL;
	fz_set_warning_callback(ctx, quiet, NULL);
	fz_set_error_callback(ctx, quiet, NULL);
	fz_try(ctx) {
		fz_register_document_handler(ctx, &pdf_document_handler);
		fz_register_document_handler(ctx, &img_document_handler);
	}
	fz_catch(ctx) {
		fz_drop_context(ctx);
		return NULL;
	}
	return ctx;
}

/* ---- time limit ---------------------------------------------------------- */

static fz_cookie		 render_cookie;
static volatile sig_atomic_t	 render_timed_out;

static void
on_alarm(int sig)
{
	(void)sig;
	render_timed_out = 1;
	render_cookie.abort = 1;
}

static void
limit_start(int seconds, struct sigaction *old)
{
	struct sigaction sa;

	memset(&render_cookie, 0, sizeof(render_cookie));
	render_timed_out = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, old);
	alarm(seconds > 0 ? (unsigned)seconds : 0);
}

static void
limit_stop(const struct sigaction *old)
{
	alarm(0);
	sigaction(SIGALRM, old, NULL);
}

/* ---- document types -------------------------------------------------------- */

enum doc_kind { KIND_PDF, KIND_IMAGE, KIND_TEXT, KIND_UNKNOWN };

static enum doc_kind
kind_of(const char *mime_or_name, const char **mime)
{
	static const struct {
		const char	*ext, *mime;
		enum doc_kind	 kind;
	} kinds[] = {
		{ ".pdf", "application/pdf", KIND_PDF },
		{ ".tif", "image/tiff", KIND_IMAGE },
		{ ".tiff", "image/tiff", KIND_IMAGE },
		{ ".png", "image/png", KIND_IMAGE },
		{ ".jpg", "image/jpeg", KIND_IMAGE },
		{ ".jpeg", "image/jpeg", KIND_IMAGE },
		{ ".txt", "text/plain", KIND_TEXT },
	};
	const char	*dot = strrchr(mime_or_name, '.');

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(mime_or_name, kinds[i].mime) == 0 ||
		    (dot && strcasecmp(dot, kinds[i].ext) == 0)) {
			*mime = kinds[i].mime;
			return kinds[i].kind;
		}
	*mime = NULL;
	return KIND_UNKNOWN;
}

/* ---- plain text typeset into a PDF --------------------------------------- */

struct hpdf_state {
	HPDF_STATUS	error;
	HPDF_STATUS	detail;
};

static void
hpdf_error(HPDF_STATUS error, HPDF_STATUS detail, void *user)
{
	struct hpdf_state *s = user;

	if (s->error == HPDF_OK) {
		s->error = error;
		s->detail = detail;
	}
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t	len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		len = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * Typeset UTF-8 text: 80 columns, tabs to 8, a form feed starts a page,
 * control characters and invalid bytes shown as U+FFFD.  The PDF's bytes
 * in *out (malloc'd).
 */
static int
text_to_pdf(const unsigned char *text, size_t len, const struct render_opts *o,
    unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	struct hpdf_state	 hs = { HPDF_OK, 0 };
	HPDF_Doc		 pdf;
	HPDF_Page		 page = NULL;
	HPDF_Font		 font = NULL;
	struct buf		 line;
	char			 fontpath[4096];
	const char		*fname;
	double			 y = 0;
	int			 col = 0, rows = (int)((o->paper_h - 2 * TEXT_MARGIN) / TEXT_LEADING);
	size_t			 i = 0;
	HPDF_UINT32		 size;

	if ((pdf = HPDF_NewEx(hpdf_error, NULL, NULL, 0, &hs)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
	HPDF_UseUTFEncodings(pdf);
	snprintf(fontpath, sizeof(fontpath), "%s/DejaVuSansMono.ttf", o->font_dir);
	if ((fname = HPDF_LoadTTFontFromFile(pdf, fontpath, HPDF_TRUE)) != NULL)
		font = HPDF_GetFont(pdf, fname, "UTF-8");
	if (font == NULL) {
		snprintf(err, errlen, "the font %s cannot be loaded", fontpath);
		HPDF_Free(pdf);
		return -1;
	}
	buf_init(&line);
	for (;;) {
		int	eol = i >= len || text[i] == '\n' || text[i] == '\f' ||
			    col == TEXT_COLS;
		int	newpage = page == NULL || (i < len && text[i] == '\f');

		if (eol || newpage) {
			if (page && line.len)
				HPDF_Page_TextOut(page, (HPDF_REAL)TEXT_MARGIN,
				    (HPDF_REAL)(o->paper_h - y), buf_cstr(&line));
			line.len = 0;
			col = 0;
			y += TEXT_LEADING;
			if (page == NULL || newpage || y > TEXT_MARGIN + rows * TEXT_LEADING) {
				if (page)
					HPDF_Page_EndText(page);
				if (i >= len && page != NULL) {
					page = NULL;	/* its text is ended */
					break;
				}
				page = HPDF_AddPage(pdf);
				HPDF_Page_SetWidth(page, (HPDF_REAL)o->paper_w);
				HPDF_Page_SetHeight(page, (HPDF_REAL)o->paper_h);
				HPDF_Page_BeginText(page);
				HPDF_Page_SetFontAndSize(page, font, (HPDF_REAL)TEXT_SIZE);
				y = TEXT_MARGIN + TEXT_SIZE;
			}
			if (i >= len)
				break;
			if (text[i] == '\n' || text[i] == '\f')
				i++;
			continue;
		}
		if (text[i] == '\t') {
			do
				buf_add(&line, " ", 1);
			while (++col % 8 && col < TEXT_COLS);
			i++;
		} else if (text[i] == '\r') {
			i++;
		} else {
			size_t n = utf8_len(text + i, len - i);

			if (n == 0 || text[i] < 0x20 || text[i] == 0x7f) {
				buf_addstr(&line, "\xef\xbf\xbd");
				n = n ? n : 1;
			} else
				buf_add(&line, text + i, n);
			i += n;
			col++;
		}
	}
	if (page)
		HPDF_Page_EndText(page);
	buf_free(&line);
	if (hs.error == HPDF_OK)
		HPDF_SaveToStream(pdf);
	size = hs.error == HPDF_OK ? HPDF_GetStreamSize(pdf) : 0;
	if (hs.error != HPDF_OK || size == 0) {
		snprintf(err, errlen, "cannot be typeset (libhpdf error 0x%04x)",
		    (unsigned)hs.error);
		HPDF_Free(pdf);
		return -1;
	}
	*out = xmalloc(size);
	*outlen = size;
	HPDF_ReadFromStream(pdf, *out, &size);
	*outlen = size;
	HPDF_Free(pdf);
	return 0;
}

/* ---- opening ---------------------------------------------------------------- */

struct opened {
	fz_document	*doc;
	FILE		*fp;
	unsigned char	*mem;		/* typeset text */
	enum doc_kind	 kind;
};

static void
opened_close(fz_context *ctx, struct opened *op)
{
	fz_drop_document(ctx, op->doc);
	if (op->fp)
		fclose(op->fp);
	free(op->mem);
	memset(op, 0, sizeof(*op));
}

/* Encrypted even without a password to open it (an owner password only):
 * such a file says the sender restricted it, and it is refused too. */
static int
encrypted(fz_context *ctx, fz_document *doc)
{
	char		buf[64] = "";
	volatile int	n = -1;

	fz_try(ctx)
		n = fz_lookup_metadata(ctx, doc, FZ_META_ENCRYPTION, buf, sizeof(buf));
	fz_catch(ctx)
		return 1;
	return n > 0 && strcmp(buf, "None") != 0;
}

/* Open fd as a document; 0, or -1 with the reason (prefixed by nothing). */
static int
open_doc(fz_context *ctx, int fd, const char *mime_or_name,
    const struct render_opts *o, struct opened *op, char *err, size_t errlen)
{
	const char	*mime;
	fz_stream	*stm = NULL;
	int		 dfd;

	memset(op, 0, sizeof(*op));
	if ((op->kind = kind_of(mime_or_name, &mime)) == KIND_UNKNOWN) {
		snprintf(err, errlen, "is not a PDF, TIFF, PNG, JPEG or text file");
		return -1;
	}
	if (op->kind == KIND_TEXT) {
		struct buf	b;
		size_t		n;

		buf_init(&b);
		if (lseek(fd, 0, SEEK_SET) == -1 ||
		    read_file_fd(fd, SIZE_MAX / 4, &b) == -1) {
			snprintf(err, errlen, "cannot be read: %s", strerror(errno));
			buf_free(&b);
			return -1;
		}
		if (text_to_pdf((unsigned char *)b.data, b.len, o, &op->mem, &n, err,
		    errlen) == -1) {
			buf_free(&b);
			return -1;
		}
		buf_free(&b);
		fz_var(stm);
		fz_try(ctx) {
			stm = fz_open_memory(ctx, op->mem, n);
			op->doc = fz_open_document_with_stream(ctx, "application/pdf", stm);
		}
		fz_always(ctx)
			fz_drop_stream(ctx, stm);
		fz_catch(ctx) {
			snprintf(err, errlen, "cannot be typeset: %s", fz_caught_message(ctx));
			opened_close(ctx, op);
			return -1;
		}
		return 0;
	}
	if ((dfd = dup(fd)) == -1 || lseek(dfd, 0, SEEK_SET) == -1 ||
	    (op->fp = fdopen(dfd, "rb")) == NULL) {
		snprintf(err, errlen, "cannot be read: %s", strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	fz_var(stm);
	fz_try(ctx) {
		stm = fz_open_file_ptr_no_close(ctx, op->fp);
		op->doc = fz_open_document_with_stream(ctx, mime, stm);
	}
	fz_always(ctx)
		fz_drop_stream(ctx, stm);
	fz_catch(ctx) {
		snprintf(err, errlen, "cannot be opened as %s: it is damaged or not "
		    "what its name says (%.200s)", mime, fz_caught_message(ctx));
		opened_close(ctx, op);
		return -1;
	}
	if (fz_needs_password(ctx, op->doc) || encrypted(ctx, op->doc)) {
		snprintf(err, errlen, "is encrypted or password-protected: ask for an "
		    "unprotected copy");
		opened_close(ctx, op);
		return -1;
	}
	return 0;
}

/* ---- image size: a device that notes the images a page draws ------------ */

struct image_dev {
	fz_device	super;
	int		w, h;		/* the largest image, in pixels */
};

static void
note_image(fz_context *ctx, fz_device *dev, fz_image *img, fz_matrix ctm,
    float alpha, fz_color_params cp)
{
	struct image_dev *d = (struct image_dev *)dev;

	(void)ctx, (void)alpha, (void)cp;
	if ((int64_t)img->w * img->h > (int64_t)d->w * d->h) {
		d->w = img->w;
		d->h = img->h;
	}
}

static void
largest_image(fz_context *ctx, fz_display_list *list, int *w, int *h)
{
	struct image_dev *d = fz_new_derived_device(ctx, struct image_dev);

	d->super.fill_image = note_image;
	fz_try(ctx) {
		fz_run_display_list(ctx, list, &d->super, fz_identity, fz_infinite_rect,
		    &render_cookie);
		fz_close_device(ctx, &d->super);
	}
	fz_always(ctx) {
		*w = d->w;
		*h = d->h;
		fz_drop_device(ctx, &d->super);
	}
	fz_catch(ctx)
		fz_rethrow(ctx);
}

/*
 * The page's own contents, interpreted once into a display list that the
 * image check, the text search and the rasterizer then replay.  Only the
 * contents: annotations and form fields (a sticky note, a filled-in
 * field) are not the record.  The cookie lets the time limit stop a page
 * that never ends.
 */
static fz_display_list *
record_page(fz_context *ctx, fz_page *page, fz_rect bounds)
{
	fz_display_list	*list = fz_new_display_list(ctx, bounds);
	fz_device	*dev = NULL;

	fz_var(dev);
	fz_try(ctx) {
		dev = fz_new_list_device(ctx, list);
		fz_run_page_contents(ctx, page, dev, fz_identity, &render_cookie);
		fz_close_device(ctx, dev);
	}
	fz_always(ctx)
		fz_drop_device(ctx, dev);
	fz_catch(ctx) {
		fz_drop_display_list(ctx, list);
		fz_rethrow(ctx);
	}
	return list;
}

/* ---- text search ------------------------------------------------------------ */

struct pattern {
	const struct redact_pattern	*src;
	regex_t				 re;
	int				 found;
};

/* Regular-expression text that matches s literally. */
static void
add_literal(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr(".[]{}()\\*+?^$|", *s))
			buf_add(b, "\\", 1);
		buf_add(b, s, 1);
	}
}

static const char *const month_names[] = { "January", "February", "March",
	"April", "May", "June", "July", "August", "September", "October",
	"November", "December" };

/* A named pattern's regular expression.  -1 if it needs what is missing. */
static int
named_regex(const struct manifest *mf, const char *name, struct buf *b,
    int *icase)
{
	*icase = 0;
	if (strcmp(name, "ssn") == 0)
		buf_addstr(b, "[0-9]{3}-[0-9]{2}-[0-9]{4}");
	else if (strcmp(name, "phone") == 0)
		buf_addstr(b, "(\\+?1[-. ]?)?(\\([0-9]{3}\\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}");
	else if (strcmp(name, "email") == 0)
		buf_addstr(b, "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}");
	else if (strcmp(name, "mrn") == 0) {
		if (mf->patient_mrn == NULL || mf->patient_mrn[0] == '\0')
			return -1;
		add_literal(b, mf->patient_mrn);
		*icase = 1;
	} else if (strcmp(name, "patient_name") == 0) {
		const char *sp;

		if (mf->patient_name == NULL || mf->patient_name[0] == '\0')
			return -1;
		/* "Zoë Testpatient" and "Testpatient, Zoë" */
		add_literal(b, mf->patient_name);
		if ((sp = strrchr(mf->patient_name, ' ')) != NULL) {
			char *first = xstrdup(mf->patient_name);

			first[sp - mf->patient_name] = '\0';
			buf_addstr(b, "|");
			add_literal(b, sp + 1);
			buf_addstr(b, ", ?");
			add_literal(b, first);
			free(first);
		}
		*icase = 1;
	} else if (strcmp(name, "dob") == 0) {
		int y, m, d;

		if (mf->patient_dob == NULL ||
		    sscanf(mf->patient_dob, "%4d-%2d-%2d", &y, &m, &d) != 3 ||
		    m < 1 || m > 12)
			return -1;
		/* 1984-03-09, 03/09/1984, 3/9/1984, 03-09-1984, March 9, 1984, Mar 9 1984 */
		buf_printf(b, "%04d-%02d-%02d|0?%d[/-]0?%d[/-]%04d|(%s|%.3s)\\.? 0?%d,? %04d",
		    y, m, d, m, d, y, month_names[m - 1], month_names[m - 1], d, y);
		*icase = 1;
	} else
		return -1;
	return 0;
}

static int
patterns_compile(const struct manifest *mf, const struct document *d,
    struct pattern **out, char *err, size_t errlen)
{
	struct pattern	*p = xcalloc(d->npatterns + 1, sizeof(*p));
	struct buf	 b;
	int		 icase, rc;

	for (size_t i = 0; i < d->npatterns; i++) {
		const struct redact_pattern *rp = &d->patterns[i];

		buf_init(&b);
		icase = 0;
		if (rp->name) {
			if (named_regex(mf, rp->name, &b, &icase) == -1) {
				snprintf(err, errlen, "pattern %s needs the patient's %s "
				    "in the manifest", rp->name, rp->name);
				buf_free(&b);
				goto fail;
			}
		} else
			buf_addstr(&b, rp->regex);
		rc = regcomp(&p[i].re, buf_cstr(&b), REDACT_REGEX_FLAGS |
		    (icase ? REG_ICASE : 0));
		buf_free(&b);
		if (rc != 0) {
			snprintf(err, errlen, "pattern %zu is not a valid regular "
			    "expression", i + 1);
			goto fail;
		}
		p[i].src = rp;
	}
	*out = p;
	return 0;
fail:
	for (size_t i = 0; i < d->npatterns; i++)
		if (p[i].src)
			regfree(&p[i].re);
	free(p);
	return -1;
}

static void
patterns_free(struct pattern *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		regfree(&p[i].re);
	free(p);
}

/* ---- boxes -------------------------------------------------------------------- */

struct box {
	fz_rect	r;		/* page space */
	double	x, y, w, h;	/* as recorded: input units from the top-left */
	char	pattern[24];
};

struct boxes {
	struct box	*b;
	size_t		 n, cap;
};

static void
box_add(struct boxes *bx, fz_rect r, double x, double y, double w, double h,
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
struct page_text {
	struct buf	 s;
	int		*map;		/* byte -> char */
	fz_quad		*quad;		/* char -> quad */
	size_t		 nchars, mapcap, quadcap;
};

static void
text_add(struct page_text *t, const char *bytes, size_t n, int ch)
{
	if (t->s.len + n > t->mapcap) {
		t->mapcap = (t->s.len + n) * 2 + 64;
		t->map = xreallocarray(t->map, t->mapcap, sizeof(*t->map));
	}
	for (size_t i = 0; i < n; i++)
		t->map[t->s.len + i] = ch;
	buf_add(&t->s, bytes, n);
}

static void
page_text_build(fz_context *ctx, fz_stext_page *sp, struct page_text *t)
{
	for (fz_stext_block *b = sp->first_block; b; b = b->next) {
		if (b->type != FZ_STEXT_BLOCK_TEXT)
			continue;
		for (fz_stext_line *l = b->u.t.first_line; l; l = l->next) {
			for (fz_stext_char *c = l->first_char; c; c = c->next) {
				char	utf[8];
				int	n = fz_runetochar(utf, c->c);

				if (t->nchars == t->quadcap) {
					t->quadcap = t->quadcap ? t->quadcap * 2 : 256;
					t->quad = xreallocarray(t->quad, t->quadcap,
					    sizeof(*t->quad));
				}
				t->quad[t->nchars] = c->quad;
				text_add(t, utf, (size_t)n, (int)t->nchars);
				t->nchars++;
			}
			text_add(t, "\n", 1, -1);
		}
	}
}

/* Boxes over the characters of bytes [so, eo), one per line. */
static void
match_boxes(const struct page_text *t, size_t so, size_t eo, fz_rect bounds,
    const char *name, struct boxes *bx)
{
	fz_rect	r = fz_empty_rect;
	int	last = -1;

	for (size_t i = so; i <= eo; i++) {
		int ch = i < eo ? t->map[i] : -1;

		if (ch >= 0 && ch != last) {
			r = fz_union_rect(r, fz_rect_from_quad(t->quad[ch]));
			last = ch;
		} else if (ch < 0 && !fz_is_empty_rect(r)) {
			r = fz_expand_rect(r, 1.0f);
			box_add(bx, r, r.x0 - bounds.x0, r.y0 - bounds.y0, r.x1 - r.x0,
			    r.y1 - r.y0, name);
			r = fz_empty_rect;
		}
	}
}

static void
search_page(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    struct pattern *p, size_t np, struct boxes *bx)
{
	fz_stext_page		*sp = NULL;
	fz_device		*dev = NULL;
	struct page_text	 t;

	memset(&t, 0, sizeof(t));
	buf_init(&t.s);
	fz_var(sp);
	fz_var(dev);
	fz_try(ctx) {
		/* The same contents raster() draws, with no annotations. */
		sp = fz_new_stext_page(ctx, bounds);
		dev = fz_new_stext_device(ctx, sp, NULL);
		fz_run_display_list(ctx, list, dev, fz_identity, fz_infinite_rect,
		    &render_cookie);
		fz_close_device(ctx, dev);
		page_text_build(ctx, sp, &t);
	}
	fz_always(ctx) {
		fz_drop_device(ctx, dev);
		fz_drop_stext_page(ctx, sp);
	}
	fz_catch(ctx) {
		buf_free(&t.s);
		free(t.map);
		free(t.quad);
		fz_rethrow(ctx);
	}
	for (size_t k = 0; k < np; k++) {
		const char	*s = buf_cstr(&t.s);
		size_t		 off = 0;
		regmatch_t	 m;

		while (off < t.s.len && regexec(&p[k].re, s + off, 1, &m,
		    off ? REG_NOTBOL : 0) == 0) {
			if (m.rm_eo == m.rm_so) {
				off += (size_t)m.rm_so + 1;
				continue;
			}
			match_boxes(&t, off + (size_t)m.rm_so, off + (size_t)m.rm_eo,
			    bounds, p[k].src->name ? p[k].src->name : "regex", bx);
			p[k].found++;
			off += (size_t)m.rm_eo;
		}
	}
	buf_free(&t.s);
	free(t.map);
	free(t.quad);
}

/* ---- output ------------------------------------------------------------------ */

struct out {
	HPDF_Doc		 pdf;
	struct hpdf_state	 hs;
	const struct render_opts *o;
	int			 pages;
	unsigned char		*bits;		/* fax: one 1-bit page */
};

/* Gray or RGB pixmap as baseline JPEG, in memory. */
static int
jpeg_encode(fz_pixmap *pix, int quality, int xdpi, int ydpi,
    unsigned char **buf, unsigned long *len)
{
	struct jpeg_compress_struct	cinfo;
	struct jpeg_error_mgr		jerr;
	int				n = pix->n;

	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	*buf = NULL;
	*len = 0;
	jpeg_mem_dest(&cinfo, buf, len);
	cinfo.image_width = (JDIMENSION)pix->w;
	cinfo.image_height = (JDIMENSION)pix->h;
	cinfo.input_components = n;
	cinfo.in_color_space = n == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, quality, TRUE);
	cinfo.density_unit = 1;
	cinfo.X_density = (UINT16)xdpi;
	cinfo.Y_density = (UINT16)ydpi;
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		JSAMPROW row = pix->samples + (size_t)cinfo.next_scanline * pix->stride;
		jpeg_write_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	return *len > 0 ? 0 : -1;
}

/* Gray to 1-bit, 1 = black, eight pixels a byte, without branches. */
static void
pack_row(const unsigned char *s, unsigned char *d, int w)
{
	int	x = 0;

#ifdef __SSE2__
	/* Sixteen pixels at a time: a signed compare after flipping the top
	 * bit is an unsigned one; movemask puts pixel 0 in bit 0, so each
	 * byte's bits are reversed (pixel 0 is the most significant bit). */
	static unsigned char	rev[256];
	const __m128i		flip = _mm_set1_epi8((char)0x80);
	const __m128i		t = _mm_set1_epi8((char)(FAX_THRESHOLD ^ 0x80));

	if (rev[1] == 0)
		for (int i = 0; i < 256; i++)
			for (int b = 0; b < 8; b++)
				rev[i] |= (unsigned char)(((i >> b) & 1) << (7 - b));
	for (; x + 16 <= w; x += 16, s += 16) {
		__m128i	v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s), flip);
		int	m = _mm_movemask_epi8(_mm_cmplt_epi8(v, t));

		*d++ = rev[m & 0xff];
		*d++ = rev[(m >> 8) & 0xff];
	}
#endif
	for (; x + 8 <= w; x += 8, s += 8)
		*d++ = (unsigned char)((s[0] < FAX_THRESHOLD) << 7 |
		    (s[1] < FAX_THRESHOLD) << 6 | (s[2] < FAX_THRESHOLD) << 5 |
		    (s[3] < FAX_THRESHOLD) << 4 | (s[4] < FAX_THRESHOLD) << 3 |
		    (s[5] < FAX_THRESHOLD) << 2 | (s[6] < FAX_THRESHOLD) << 1 |
		    (s[7] < FAX_THRESHOLD));
	if (x < w) {
		unsigned char b = 0;

		for (int i = 0; x + i < w; i++)
			b |= (unsigned char)((s[i] < FAX_THRESHOLD) << (7 - i));
		*d = b;
	}
}

/* Add the rendered pixmap as the next output page. */
static int
out_page(struct out *w, fz_pixmap *pix)
{
	HPDF_Page	page;
	HPDF_Image	img = NULL;

	page = HPDF_AddPage(w->pdf);
	HPDF_Page_SetWidth(page, (HPDF_REAL)w->o->paper_w);
	HPDF_Page_SetHeight(page, (HPDF_REAL)w->o->paper_h);
	if (w->o->profile == RENDER_FAX) {
		size_t	stride = ((size_t)pix->w + 7) / 8;

		for (int y = 0; y < pix->h; y++)
			pack_row(pix->samples + (size_t)y * pix->stride,
			    w->bits + (size_t)y * stride, pix->w);
		/* 1 = black: libhpdf wants HPDF_FALSE for that (DESIGN.md). */
		img = HPDF_Image_LoadRaw1BitImageFromMem(w->pdf, w->bits,
		    (HPDF_UINT)pix->w, (HPDF_UINT)pix->h, (HPDF_UINT)stride,
		    HPDF_FALSE, HPDF_TRUE);
	} else {
		unsigned char	*jpg;
		unsigned long	 len;

		if (jpeg_encode(pix, w->o->jpeg_quality, w->o->xdpi, w->o->ydpi,
		    &jpg, &len) == 0)
			img = HPDF_LoadJpegImageFromMem(w->pdf, jpg, (HPDF_UINT)len);
		free(jpg);
	}
	if (img == NULL || w->hs.error != HPDF_OK)
		return -1;
	HPDF_Page_DrawImage(page, img, 0, 0, (HPDF_REAL)w->o->paper_w,
	    (HPDF_REAL)w->o->paper_h);
	w->pages++;
	return w->hs.error == HPDF_OK ? 0 : -1;
}

/* ---- one page ------------------------------------------------------------- */

static int
fail(struct render_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
fail(struct render_result *res, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Render page into a fresh pixmap of the paper at the profile's
 * resolution, scaled to fit and centred; paint the boxes black. */
static fz_pixmap *
raster(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    const struct boxes *bx, const struct render_opts *o)
{
	fz_pixmap	*pix;
	fz_device	*dev = NULL;
	fz_colorspace	*cs = o->profile == RENDER_DOCUMENT && o->color ?
			    fz_device_rgb(ctx) : fz_device_gray(ctx);
	int		 pw = (int)(o->paper_w / 72.0 * o->xdpi + 0.5);
	int		 ph = (int)(o->paper_h / 72.0 * o->ydpi + 0.5);
	double		 bw = bounds.x1 - bounds.x0, bh = bounds.y1 - bounds.y0;
	double		 s = fz_min(o->paper_w / bw, o->paper_h / bh);
	double		 ox = (o->paper_w - bw * s) / 2, oy = (o->paper_h - bh * s) / 2;
	fz_matrix	 ctm;

	ctm = fz_translate(-bounds.x0, -bounds.y0);
	ctm = fz_concat(ctm, fz_scale((float)s, (float)s));
	ctm = fz_concat(ctm, fz_translate((float)ox, (float)oy));
	ctm = fz_concat(ctm, fz_scale((float)(o->xdpi / 72.0), (float)(o->ydpi / 72.0)));

	pix = fz_new_pixmap(ctx, cs, pw, ph, NULL, 0);
	fz_var(dev);
	fz_try(ctx) {
		fz_clear_pixmap_with_value(ctx, pix, 255);
		dev = fz_new_draw_device(ctx, fz_identity, pix);
		/* Going to 1 bit, smoothing a scan's pixels costs three
		 * quarters of the time and shows nothing. */
		if (o->profile == RENDER_FAX)
			fz_enable_device_hints(ctx, dev, FZ_DONT_INTERPOLATE_IMAGES);
		fz_run_display_list(ctx, list, dev, ctm, fz_infinite_rect,
		    &render_cookie);
		fz_close_device(ctx, dev);
	}
	fz_always(ctx)
		fz_drop_device(ctx, dev);
	fz_catch(ctx) {
		fz_drop_pixmap(ctx, pix);
		fz_rethrow(ctx);
	}
	for (size_t i = 0; i < bx->n; i++) {
		fz_irect ir = fz_round_rect(fz_transform_rect(bx->b[i].r, ctm));

		ir = fz_intersect_irect(ir, fz_pixmap_bbox(ctx, pix));
		if (ir.x1 <= ir.x0 || ir.y1 <= ir.y0)
			continue;	/* off the page */
		for (int y = ir.y0; y < ir.y1; y++)
			memset(pix->samples + (size_t)y * pix->stride +
			    (size_t)ir.x0 * pix->n, 0, (size_t)(ir.x1 - ir.x0) * pix->n);
	}
	return pix;
}

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
static void
page_boxes(fz_context *ctx, fz_display_list *list, fz_rect bounds, enum doc_kind kind,
    const struct document *d, int docno, int pno, struct pattern *pat,
    const struct render_opts *o, struct boxes *bx, struct render_result *res)
{
	double	sx = 1, sy = 1;

	bx->n = 0;
	if (kind != KIND_TEXT) {
		int	w, h;

		/* A scan's size in pixels (rectangles on images are in pixels),
		 * and the decompression bomb's: an image of billions of pixels
		 * in a few megabytes of file is refused before it is decoded. */
		largest_image(ctx, list, &w, &h);
		if (o->max_pixels > 0 && (int64_t)w * h > o->max_pixels) {
			char why[160];	/* fz_throw knows no %lld */

			snprintf(why, sizeof(why), "roigate: it holds an image of %d "
			    "x %d pixels, over the limit of %lld pixels", w, h,
			    (long long)o->max_pixels);
			fz_throw(ctx, FZ_ERROR_GENERIC, "%s", why);
		}
		if (kind == KIND_IMAGE && w > 0 && h > 0) {
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
		box_add(bx, r, rr->x, rr->y, rr->w, rr->h, "rect");
	}
	if (d->npatterns > 0 && kind != KIND_IMAGE)
		search_page(ctx, list, bounds, pat, d->npatterns, bx);
	for (size_t i = 0; i < bx->n; i++)
		record(res, docno, pno, &bx->b[i]);
}

/* ---- the packet -------------------------------------------------------------- */

struct doc_run {
	fz_context		*ctx;
	struct capped		*cap;
	struct out		*w;
	const struct manifest	*mf;
	const struct render_opts *o;
	struct render_result	*res;
	struct boxes		 bx;
};

/* The reason a MuPDF error gives, in words for the clerk. */
static void
caught(struct doc_run *r, const struct document *d, int pno)
{
	char	where[160];

	if (pno > 0)
		snprintf(where, sizeof(where), "document %.100s page %d", d->file, pno);
	else
		snprintf(where, sizeof(where), "document %.100s", d->file);
	if (render_timed_out)
		fail(r->res, "%s: rendering the packet took longer than %d seconds; "
		    "the document may be damaged or built to exhaust the reader",
		    where, r->o->time_limit);
	else if (r->cap->exceeded)
		fail(r->res, "%s: needs more than %lld MB to render; the document may "
		    "be damaged or built to exhaust the reader", where,
		    (long long)(r->o->max_memory >> 20));
	else if (strncmp(fz_caught_message(r->ctx), "roigate: ", 9) == 0)
		fail(r->res, "%s: %s", where, fz_caught_message(r->ctx) + 9);
	else
		fail(r->res, "%s: cannot be rendered: it is damaged (%.200s)", where,
		    fz_caught_message(r->ctx));
}

/* Every page of an opened document into the output. */
static int
render_pages(struct doc_run *r, const struct document *d, int docno,
    struct opened *op, struct pattern *pat)
{
	fz_context	*ctx = r->ctx;
	fz_page		*page = NULL;
	fz_display_list	*list = NULL;
	fz_pixmap	*pix = NULL;
	int		 n, pno = 0, rv = 0;

	fz_var(page);
	fz_var(list);
	fz_var(pix);
	fz_var(pno);
	fz_try(ctx) {
		n = fz_count_pages(ctx, op->doc);
		if (n < 1)
			fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: it has no pages");
		if (r->o->max_pages > 0 && n > r->o->max_pages - r->w->pages)
			fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: it has %d pages; "
			    "with the rest of the packet that is over the limit of "
			    "%d pages", n, r->o->max_pages);
		for (size_t i = 0; i < d->nrects; i++)
			if (d->rects[i].page > n)
				fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: a redaction "
				    "rectangle is on page %d but it has %d page%s: check "
				    "the redactions marked for it", d->rects[i].page, n,
				    n == 1 ? "" : "s");
		for (pno = 1; pno <= n; pno++) {
			fz_rect bounds;

			if (render_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			page = fz_load_page(ctx, op->doc, pno - 1);
			bounds = fz_bound_page(ctx, page);
			if (fz_is_empty_rect(bounds) || bounds.x1 - bounds.x0 < 1 ||
			    bounds.y1 - bounds.y0 < 1)
				fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: the page has no size");
			list = record_page(ctx, page, bounds);
			if (render_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			page_boxes(ctx, list, bounds, op->kind, d, docno, pno, pat,
			    r->o, &r->bx, r->res);
			pix = raster(ctx, list, bounds, &r->bx, r->o);
			if (render_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			fz_drop_display_list(ctx, list);
			list = NULL;
			fz_drop_page(ctx, page);
			page = NULL;
			if (out_page(r->w, pix) == -1)
				fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: the output page "
				    "cannot be written (libhpdf error 0x%04x)",
				    (unsigned)r->w->hs.error);
			fz_drop_pixmap(ctx, pix);
			pix = NULL;
		}
	}
	fz_always(ctx) {
		fz_drop_pixmap(ctx, pix);
		fz_drop_display_list(ctx, list);
		fz_drop_page(ctx, page);
	}
	fz_catch(ctx) {
		caught(r, d, pno);
		rv = -1;
	}
	return rv;
}

static int
render_doc(struct doc_run *r, const struct document *d, int docno, int fd)
{
	struct opened	 op;
	struct pattern	*pat = NULL;
	int		 rv;
	char		 why[400];

	if (patterns_compile(r->mf, d, &pat, why, sizeof(why)) == -1)
		return fail(r->res, "document %.100s: %s", d->file, why);
	if (open_doc(r->ctx, fd, d->file, r->o, &op, why, sizeof(why)) == -1) {
		patterns_free(pat, d->npatterns);
		return fail(r->res, "document %.100s %s", d->file, why);
	}
	rv = render_pages(r, d, docno, &op, pat);
	opened_close(r->ctx, &op);
	for (size_t i = 0; rv == 0 && i < d->npatterns; i++) {
		const struct redact_pattern *rp = pat[i].src;

		if (rp->expect >= 0 && pat[i].found != rp->expect)
			rv = fail(r->res, "document %.100s: pattern %s was expected %d "
			    "time%s and found %d time%s: check the redactions marked for it",
			    d->file, rp->name ? rp->name : "(regex)", rp->expect,
			    rp->expect == 1 ? "" : "s", pat[i].found,
			    pat[i].found == 1 ? "" : "s");
	}
	patterns_free(pat, d->npatterns);
	return rv;
}

void
render_defaults(struct render_opts *o, enum render_profile p)
{
	memset(o, 0, sizeof(*o));
	o->profile = p;
	o->paper_w = 612;
	o->paper_h = 792;
	if (p == RENDER_FAX) {
		o->xdpi = 204;
		o->ydpi = 196;
	} else {
		o->xdpi = o->ydpi = 150;
	}
	o->jpeg_quality = 75;
	o->max_pages = 2000;
	o->max_memory = (int64_t)512 << 20;
	o->max_pixels = (int64_t)100 * 1000 * 1000;
	o->time_limit = 300;
	o->font_dir = "/usr/share/fonts/truetype/dejavu";
}

void
render_opts_from_config(const struct config *c, int profile, struct render_opts *o)
{
	render_defaults(o, (enum render_profile)profile);
	if (c->paper == 1) {
		o->paper_w = 595;
		o->paper_h = 842;
	}
	if (profile == RENDER_FAX) {
		o->xdpi = c->fax_fine ? 204 : 200;
		o->ydpi = c->fax_fine ? 196 : 200;
	} else {
		o->xdpi = o->ydpi = c->document_dpi;
		o->color = c->document_color;
	}
	o->jpeg_quality = c->jpeg_quality;
	o->max_pages = c->max_pages;
	o->max_memory = c->render_memory;
	o->max_pixels = c->max_image_pixels;
	o->time_limit = (int)((c->render_timeout_ms + 999) / 1000);
	o->font_dir = c->font_dir;
}

static void
cover_fields(const struct manifest *mf, const struct render_cover *c, int pages,
    char (*buf)[64], struct cover_field *f, size_t *n)
{
	struct tm	tm;
	time_t		t = (time_t)c->now;
	unsigned	cats = 0;
	size_t		i = 0;

	localtime_r(&t, &tm);
	strftime(buf[0], 64, "%Y-%m-%d", &tm);
	strftime(buf[1], 64, "%H:%M %Z", &tm);
	snprintf(buf[2], 64, "%d", pages);
	snprintf(buf[3], 64, "%zu", mf->ndocs);
	for (size_t k = 0; k < mf->ndocs; k++)
		cats |= mf->docs[k].categories;
#define F(k, v)	do { f[i].name = (k); f[i].value = (v); i++; } while (0)
	F("org_name", c->org_name);
	F("org_address", c->org_address);
	F("org_phone", c->org_phone);
	F("org_fax", c->org_fax);
	F("logo", c->logo ? c->logo : "");
	F("to_name", c->to_name);
	F("to_organization", c->to_organization);
	F("to_address", c->to_address);
	F("from", mf->approval_by);
	F("date", buf[0]);
	F("time", buf[1]);
	F("pages", buf[2]);
	F("documents", buf[3]);
	F("request_id", mf->request_id);
	F("packet_id", mf->packet_id);
	F("requester", mf->requester_name);
	F("purpose", mf->purpose);
	F("note", mf->cover_note);
	F("urgent", mf->cover_urgent ? "URGENT" : "");
	F("part2", (cats & CAT_SUD_PART2) ? "yes" : "");
#undef F
	*n = i;
}

/* Write the document to dirfd/name, fsync it, hash it. */
static int
save(struct out *w, int dirfd, const char *name, struct render_result *res)
{
	char	path[64];
	int	fd;

	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT)
		return fail(res, "cannot replace %s: %s", name, strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	if (strlen(path) >= sizeof(path) - 1 ||
	    HPDF_SaveToFile(w->pdf, path) != HPDF_OK) {
		res->tempfail = 1;
		return fail(res, "cannot write the output PDF (libhpdf error 0x%04x, "
		    "detail %u)", (unsigned)w->hs.error, (unsigned)w->hs.detail);
	}
	/* What was sent, with the patient's records in it: its owner only. */
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fchmod(fd, 0600) == -1 || fsync(fd) == -1 || fsync(dirfd) == -1 ||
	    sha256_fd(fd, res->sha256, NULL) == -1) {
		res->tempfail = 1;
		if (fd != -1)
			close(fd);
		return fail(res, "cannot write the output PDF: %s", strerror(errno));
	}
	close(fd);
	return 0;
}

int
render_packet(const struct manifest *mf, int dirfd, const char *outname,
    const struct render_opts *o, const struct render_cover *c,
    struct render_result *res)
{
	struct cover_template	*tpl;
	struct capped		 cap;
	fz_alloc_context	 alloc;
	struct sigaction	 old;
	struct doc_run		 r;
	struct out		 w;
	struct cover_field	 fields[32];
	char			 fbuf[4][64];
	HPDF_Page		 cover;
	size_t			 nf;
	int			 rv = 0;

	memset(res, 0, sizeof(*res));
	if ((tpl = cover_load(c->template_path, o->font_dir, res->err,
	    sizeof(res->err))) == NULL) {
		res->admin = 1;
		return -1;
	}
	memset(&w, 0, sizeof(w));
	w.o = o;
	if ((w.pdf = HPDF_NewEx(hpdf_error, NULL, NULL, 0, &w.hs)) == NULL) {
		cover_free(tpl);
		res->tempfail = 1;
		return fail(res, "out of memory");
	}
	HPDF_SetCompressionMode(w.pdf, HPDF_COMP_ALL);
	cover = HPDF_AddPage(w.pdf);
	HPDF_Page_SetWidth(cover, (HPDF_REAL)o->paper_w);
	HPDF_Page_SetHeight(cover, (HPDF_REAL)o->paper_h);
	w.pages = 1;
	if (o->profile == RENDER_FAX)
		w.bits = xmalloc(((size_t)(o->paper_w / 72.0 * o->xdpi + 1) + 7) / 8 *
		    (size_t)(o->paper_h / 72.0 * o->ydpi + 1));

	memset(&r, 0, sizeof(r));
	r.ctx = new_ctx(&cap, &alloc, o->max_memory);
	r.cap = &cap;
	r.w = &w;
	r.mf = mf;
	r.o = o;
	r.res = res;
	if (r.ctx == NULL) {
		res->tempfail = 1;
		rv = fail(res, "cannot start the document reader (out of memory)");
	}
	limit_start(o->time_limit, &old);
	for (size_t i = 0; rv == 0 && i < mf->ndocs; i++) {
		int fd = openat(dirfd, mf->docs[i].file, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);

		if (fd == -1) {
			res->tempfail = 1;
			rv = fail(res, "document %.100s: cannot open the job's copy: %s",
			    mf->docs[i].file, strerror(errno));
			break;
		}
		rv = render_doc(&r, &mf->docs[i], (int)i + 1, fd);
		close(fd);
	}
	limit_stop(&old);
	if (r.ctx)
		fz_drop_context(r.ctx);
	free(r.bx.b);
	if (rv == 0) {
		cover_fields(mf, c, w.pages, fbuf, fields, &nf);
		if ((rv = cover_draw(tpl, w.pdf, cover, fields, nf, res->err,
		    sizeof(res->err))) == -1)
			res->admin = 1;
	}
	if (rv == 0 && (rv = save(&w, dirfd, outname, res)) == 0)
		res->pages = w.pages;
	HPDF_Free(w.pdf);
	free(w.bits);
	cover_free(tpl);
	return rv;
}

int
render_template_path(const struct config *c, const char *name, char *path,
    size_t len, char *err, size_t errlen)
{
	if (name == NULL)
		name = c->cover_template;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
			snprintf(err, errlen, "cover_sheet.template \"%.64s\": a "
			    "template name is letters, digits, '-' and '_'", name);
			return -1;
		}
	if ((size_t)snprintf(path, len, "%s/%s.tpl", c->template_dir, name) >= len) {
		snprintf(err, errlen, "cover_sheet.template \"%.64s\": too long", name);
		return -1;
	}
	return 0;
}

int
render_check_templates(const struct config *c, char *err, size_t errlen)
{
	struct cover_template	*t;
	struct dirent		*de;
	DIR			*d;
	char			 path[4096];
	int			 found = 0, rv = 0;

	if ((d = opendir(c->template_dir)) == NULL) {
		snprintf(err, errlen, "template_dir %s cannot be read: %s",
		    c->template_dir, strerror(errno));
		return -1;
	}
	while (rv == 0 && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 5 ||
		    strcmp(de->d_name + len - 4, ".tpl") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->template_dir, de->d_name);
		if ((t = cover_load(path, c->font_dir, err, errlen)) == NULL)
			rv = -1;
		cover_free(t);
		if (strlen(c->cover_template) == len - 4 &&
		    strncmp(de->d_name, c->cover_template, len - 4) == 0)
			found = 1;
	}
	closedir(d);
	snprintf(path, sizeof(path), "%s/DejaVuSansMono.ttf", c->font_dir);
	if (rv == 0 && access(path, R_OK) == -1) {
		snprintf(err, errlen, "font_dir: %s (plain-text documents are set "
		    "in it) cannot be read: %s", path, strerror(errno));
		rv = -1;
	}
	if (rv == 0 && !found) {
		snprintf(err, errlen, "cover_template %s: there is no %s/%s.tpl",
		    c->cover_template, c->template_dir, c->cover_template);
		rv = -1;
	}
	return rv;
}

void
render_result_free(struct render_result *res)
{
	free(res->red);
	res->red = NULL;
	res->nred = 0;
}

/* ---- probing at intake --------------------------------------------------- */

int
render_probe_here(int fd, const char *mime, const struct render_opts *o,
    char *err, size_t errlen)
{
	struct capped		 cap;
	fz_alloc_context	 alloc;
	struct opened		 op;
	fz_context		*ctx;
	fz_page			*page = NULL;
	fz_display_list		*list = NULL;
	const char		*m;
	volatile int		 rv = 0, n = 0;

	if (kind_of(mime, &m) == KIND_TEXT)
		return 0;	/* any bytes can be typeset */
	if ((ctx = new_ctx(&cap, &alloc, o->max_memory)) == NULL) {
		snprintf(err, errlen, "cannot start the document reader");
		return -1;
	}
	if (open_doc(ctx, fd, mime, o, &op, err, errlen) == -1) {
		fz_drop_context(ctx);
		return -1;
	}
	fz_var(page);
	fz_var(list);
	fz_try(ctx) {
		n = fz_count_pages(ctx, op.doc);
		if (n >= 1 && (o->max_pages <= 0 || n <= o->max_pages)) {
			int	w, h;

			page = fz_load_page(ctx, op.doc, 0);
			list = record_page(ctx, page, fz_bound_page(ctx, page));
			largest_image(ctx, list, &w, &h);
			if (o->max_pixels > 0 && (int64_t)w * h > o->max_pixels) {
				snprintf(err, errlen, "holds an image of %d x %d "
				    "pixels, over the limit of %lld pixels", w, h,
				    (long long)o->max_pixels);
				rv = -1;
			}
		}
	}
	fz_always(ctx) {
		fz_drop_display_list(ctx, list);
		fz_drop_page(ctx, page);
	}
	fz_catch(ctx) {
		snprintf(err, errlen, "cannot be opened as %s: it is damaged (%.200s)",
		    m, fz_caught_message(ctx));
		rv = -1;
	}
	if (rv == 0 && n < 1)
		rv = -1, snprintf(err, errlen, "has no pages");
	else if (rv == 0 && o->max_pages > 0 && n > o->max_pages)
		rv = -1, snprintf(err, errlen, "has %d pages, over the limit of %d",
		    n, o->max_pages);
	opened_close(ctx, &op);
	fz_drop_context(ctx);
	return rv;
}

int
render_probe(int fd, const char *mime, const struct render_opts *o, char *err,
    size_t errlen)
{
	char	msg[512];
	int	p[2], status;
	pid_t	pid, parent;
	ssize_t	n, got = 0;
	const char *m;

	if (kind_of(mime, &m) == KIND_TEXT)
		return 0;	/* any bytes can be typeset: no reader to try */
	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "cannot be checked: %s", strerror(errno));
		return -1;
	}
	parent = getpid();
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "cannot be checked: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct rlimit	cpu = { RENDER_PROBE_SECONDS, RENDER_PROBE_SECONDS + 1 };
		int		hf, hp;

		/* Dies with the caller, and holds nothing of it but the
		 * document and the pipe (not the daemon's lock, socket or
		 * database: a restart after a crash must not find them taken). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
			_exit(1);
		if ((hf = fcntl(fd, F_DUPFD, 1000)) == -1 ||
		    (hp = fcntl(p[1], F_DUPFD, 1000)) == -1 ||
		    dup2(hf, 3) == -1 || dup2(hp, 4) == -1)
			_exit(1);
		fd = 3;
		p[1] = 4;
		close_range(5, ~0U, 0);
		setrlimit(RLIMIT_CPU, &cpu);
		signal(SIGALRM, SIG_DFL);
		alarm(RENDER_PROBE_SECONDS);
		msg[0] = '\0';
		if (render_probe_here(fd, mime, o, msg, sizeof(msg)) == -1) {
			(void)!write(p[1], msg, strlen(msg) + 1);
			_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	while (got < (ssize_t)sizeof(msg) - 1 &&
	    ((n = read(p[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0 ||
	    (n == -1 && errno == EINTR)))
		if (n > 0)
			got += n;
	msg[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && got > 0)
		snprintf(err, errlen, "%s", msg);
	else
		snprintf(err, errlen, "cannot be opened: the reader %s on it (the "
		    "document is damaged or built to exhaust the reader)",
		    WIFSIGNALED(status) ? "crashed or ran out of time" : "failed");
	return -1;
}
