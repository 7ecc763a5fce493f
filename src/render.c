/*
 * The document pipeline (worker): for each document of the packet, open
 * it (src/reader.c), find its redactions (src/boxes.c, src/search.c),
 * draw each page to pixels with the boxes burned in (src/raster.c) and
 * add it to the output (src/pdfout.c) behind the cover sheet
 * (src/cover.c).  See include/render.h.
 *
 * Whatever an input PDF carried besides what its page shows (text layer,
 * metadata, annotations, forms, scripts, attachments, optional content,
 * earlier revisions) has no way into the output.  Only a page's own
 * contents are drawn (and searched): annotations and form fields are
 * left out.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iconv.h>

#include <hpdf.h>
#include <mupdf/fitz.h>

#include "boxes.h"
#include "config.h"
#include "cover.h"
#include "gate.h"
#include "log.h"
#include "manifest.h"
#include "ocr.h"
#include "pdfout.h"
#include "raster.h"
#include "reader.h"
#include "render.h"
#include "sandbox.h"
#include "search.h"
#include "util.h"

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

/* ---- the packet -------------------------------------------------------------- */

/* A document's patterns, the site's protected ones added, kept until the
 * leak gate has read the output. */
struct doc_pats {
	struct redact_pattern	*rp;
	struct pattern		*p;
	size_t			 n;
};

struct doc_run {
	fz_context		*ctx;
	struct reader_cap	*cap;
	struct out		*w;
	struct doc_pats		*dp;		/* one per document */
	int			*page_doc;	/* output page -> document (0: cover) */
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
	if (reader_timed_out)
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

/* Every page of an opened document into the output; tiff_fd: the file,
 * if it is a TIFF, for its pages' orientation (else -1). */
static int
render_pages(struct doc_run *r, const struct document *d, int docno,
    struct reader_doc *op, const struct doc_pats *dp, int tiff_fd)
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

			if (reader_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			page = fz_load_page(ctx, op->doc, pno - 1);
			bounds = fz_bound_page(ctx, page);
			if (fz_is_empty_rect(bounds) || bounds.x1 - bounds.x0 < 1 ||
			    bounds.y1 - bounds.y0 < 1)
				fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: the page has no size");
			list = reader_record_page(ctx, page, bounds);
			/* Upright as a viewer shows it (a PDF's /Rotate and a
			 * JPEG's EXIF tag are MuPDF's own). */
			if (tiff_fd >= 0)
				list = raster_orient(ctx, list, &bounds,
				    raster_tiff_orientation(tiff_fd, pno));
			if (reader_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			boxes_page(ctx, list, bounds, op->kind, d, docno, pno, dp->p,
			    dp->n, r->o, &r->bx, r->res);
			pix = raster_page(ctx, list, bounds, &r->bx, r->o);
			if (reader_timed_out)
				fz_throw(ctx, FZ_ERROR_GENERIC, "timed out");
			fz_drop_display_list(ctx, list);
			list = NULL;
			fz_drop_page(ctx, page);
			page = NULL;
			if (pdfout_page(r->w, pix) == -1)
				fz_throw(ctx, FZ_ERROR_GENERIC, "roigate: the output page "
				    "cannot be written (libhpdf error 0x%04x)",
				    (unsigned)r->w->hs.error);
			fz_drop_pixmap(ctx, pix);
			pix = NULL;
			r->page_doc = xreallocarray(r->page_doc,
			    (size_t)r->w->pages + 1, sizeof(*r->page_doc));
			r->page_doc[r->w->pages] = docno;
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

/*
 * The patterns searched in d: its own, and those the site protects on
 * every document ([render] protect) that it does not name itself, as if
 * the clerk had asked for them (no expectation).  mrn, dob and
 * patient_name are the packet's own patient's; a dob the manifest does
 * not give is not looked for.
 */
static void
doc_patterns(const struct manifest *mf, const struct document *d,
    const char *protect, struct doc_pats *dp)
{
	char	*list = xstrdup(protect ? protect : ""), *save = NULL, *name;
	size_t	 n = d->npatterns;

	dp->rp = xcalloc(n + 8, sizeof(*dp->rp));
	for (size_t i = 0; i < n; i++) {
		dp->rp[i] = d->patterns[i];
		dp->rp[i].name = d->patterns[i].name ? xstrdup(d->patterns[i].name) : NULL;
		dp->rp[i].regex = d->patterns[i].regex ? xstrdup(d->patterns[i].regex) : NULL;
	}
	for (name = strtok_r(list, ", ", &save); name && n < d->npatterns + 8;
	    name = strtok_r(NULL, ", ", &save)) {
		size_t k;

		if (strcmp(name, "none") == 0 || (strcmp(name, "dob") == 0 &&
		    (mf->patient_dob == NULL || mf->patient_dob[0] == '\0')))
			continue;
		for (k = 0; k < n; k++)
			if (dp->rp[k].name && strcmp(dp->rp[k].name, name) == 0)
				break;
		if (k == n) {
			dp->rp[n].name = xstrdup(name);
			dp->rp[n++].expect = -1;
		}
	}
	dp->n = n;
	free(list);
}

static void
doc_pats_free(struct doc_pats *dp)
{
	search_free(dp->p, dp->n);
	for (size_t i = 0; dp->rp && i < dp->n; i++) {
		free(dp->rp[i].name);
		free(dp->rp[i].regex);
	}
	free(dp->rp);
	memset(dp, 0, sizeof(*dp));
}

static int
render_doc(struct doc_run *r, const struct document *d, int docno, int fd)
{
	struct reader_doc	 op;
	struct doc_pats		*dp = &r->dp[docno - 1];
	struct document		 withp = *d;
	const char		*mime = "";
	int			 rv;
	char			 why[400];

	doc_patterns(r->mf, d, r->o->protect, dp);
	withp.patterns = dp->rp;
	withp.npatterns = dp->n;
	if (search_compile(r->mf, &withp, &dp->p, why, sizeof(why)) == -1) {
		dp->p = NULL;
		return fail(r->res, "document %.100s: %s", d->file, why);
	}
	if (reader_open(r->ctx, fd, d->file, r->o, &op, why, sizeof(why)) == -1)
		return fail(r->res, "document %.100s %s", d->file, why);
	reader_kind(d->file, &mime);
	rv = render_pages(r, d, docno, &op, dp, mime && strcmp(mime, "image/tiff") == 0 ?
	    fd : -1);
	reader_close(r->ctx, &op);
	for (size_t i = 0; rv == 0 && i < dp->n; i++) {
		const struct redact_pattern *rp = dp->p[i].src;
		char what[64];

		/* The manifest's order names a regular expression: its text
		 * may spell what it hides. */
		if (rp->name)
			snprintf(what, sizeof(what), "pattern %s", rp->name);
		else
			snprintf(what, sizeof(what), "pattern %zu (a regular "
			    "expression)", i + 1);
		if (rp->expect >= 0 && dp->p[i].found != rp->expect)
			rv = fail(r->res, "document %.100s: %s was expected %d time%s "
			    "and found %d time%s: check the redactions marked for it",
			    d->file, what, rp->expect, rp->expect == 1 ? "" : "s",
			    dp->p[i].found, dp->p[i].found == 1 ? "" : "s");
	}
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
	o->ocr = RENDER_OCR_PATTERNS;
	o->ocr_dpi = 300;
	o->verify = 1;
	o->redact_quantum = 72;
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
	o->ocr = (enum render_ocr)c->render_ocr;
	o->ocr_dpi = c->ocr_dpi;
	o->verify = c->render_verify;
	o->protect = c->protect && strcmp(c->protect, "none") != 0 ?
	    c->protect : NULL;
	o->redact_quantum = c->redact_quantum;
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

/* The output read back before anything leaves (src/gate.c). */
static int
render_gate(struct doc_run *r, int outfd, const struct cover_regions *reg)
{
	struct gate_doc	*gd = xcalloc(r->mf->ndocs + 1, sizeof(*gd));
	struct gate	 g;
	int		 rv;

	if (!r->o->verify) {
		snprintf(r->res->gate, sizeof(r->res->gate), "off: the output was "
		    "not read back before sending ([render] verify = off)");
		free(gd);
		return 0;
	}
	for (size_t i = 0; i < r->mf->ndocs; i++) {
		gd[i].p = r->dp[i].p;
		gd[i].n = r->dp[i].n;
	}
	memset(&g, 0, sizeof(g));
	g.o = r->o;
	g.mf = r->mf;
	g.docs = gd;
	g.page_doc = r->page_doc;
	g.pages = r->w->pages;
	g.cover = reg;
	rv = gate_check(r->ctx, outfd, &g, r->res->gate,
	    sizeof(r->res->gate), r->res->err, sizeof(r->res->err));
	free(gd);
	if (rv == -1 && ftruncate(outfd, 0) == -1)	/* never sent, never kept */
		rv = -1;
	return rv;
}

/* Every document's pages into the output; then the cover, the file, the
 * gate. */
static int
render_run(struct doc_run *r, const int *docfds, int outfd,
    const struct render_cover *c, struct cover_template *tpl, HPDF_Page cover)
{
	struct cover_field	 fields[32];
	struct cover_regions	 reg;
	char			 fbuf[4][64];
	size_t			 nf;
	int			 rv = 0;
	int64_t			 t = now_us();
	struct render_times	*tm = &r->res->times;

	cover_regions_init(&reg);
	for (size_t k = 0; rv == 0 && k < r->mf->ndocs; k++) {
		size_t i = manifest_output_doc(r->mf, k);	/* the consent first */
		rv = render_doc(r, &r->mf->docs[i], (int)i + 1, docfds[i]);
	}
	tm->docs_us = now_us() - t;
	if (rv == -1)
		return -1;
	t = now_us();
	cover_fields(r->mf, c, r->w->pages, fbuf, fields, &nf);
	if (cover_draw_regions(tpl, r->w->pdf, cover, fields, nf, &reg,
	    r->res->err, sizeof(r->res->err)) == -1) {
		r->res->admin = 1;
		cover_regions_free(&reg);
		return -1;
	}
	tm->cover_us = now_us() - t;
	t = now_us();
	if (pdfout_save(r->w, outfd, r->res->sha256, r->res->err,
	    sizeof(r->res->err)) == -1) {
		r->res->tempfail = 1;
		cover_regions_free(&reg);
		return -1;
	}
	tm->save_us = now_us() - t;
	t = now_us();
	rv = render_gate(r, outfd, &reg);
	tm->gate_us = now_us() - t;
	cover_regions_free(&reg);
	return rv;
}

/*
 * What the renderer loads before it reads a byte of input, once per
 * process: the OCR data, the cover template, the time zone and the
 * character-set converter.  After this it may be sandboxed
 * (src/sandbox.c): the fonts and the logo are all it still opens.
 */
static struct {
	struct cover_template	*tpl;
	char			 path[4096];
	iconv_t			 cd;	/* held open: its module stays loaded */
} prep = { NULL, "", (iconv_t)-1 };

int
render_prepare(const struct render_opts *o, const struct render_cover *c,
    char *err, size_t errlen)
{
	int64_t	t0 = now_us(), t1;

	if ((o->ocr != RENDER_OCR_OFF || o->verify) &&
	    ocr_init(NULL, err, errlen) == -1)
		return -1;
	tzset();
	if (prep.cd == (iconv_t)-1)
		prep.cd = iconv_open("CP1252", "UTF-8");
	if (prep.tpl && strcmp(prep.path, c->template_path) == 0)
		return 0;
	t1 = now_us();
	cover_free(prep.tpl);
	prep.path[0] = '\0';
	if ((prep.tpl = cover_load(c->template_path, o->font_dir, err,
	    errlen)) == NULL)
		return -1;
	strlcpy_(prep.path, c->template_path, sizeof(prep.path));
	log_debug("render: OCR data ready in %.1f ms, cover template loaded in "
	    "%.1f ms", (double)(t1 - t0) / 1e3, (double)(now_us() - t1) / 1e3);
	return 0;
}

/*
 * In the daemon, before it forks any worker: the OCR data every renderer
 * needs (about 85 ms to load, nearly all of a worker's start), so that
 * each worker inherits it instead of loading it again; the pages are
 * shared copy-on-write.  The daemon itself never reads a document with
 * it.  A failure is only said here: each worker tries again and holds its
 * job with the reason, as before.
 */
void
render_preload(const struct config *c)
{
	char	err[512];
	int64_t	t = now_us();

	if (c->render_ocr == RENDER_OCR_OFF && !c->render_verify)
		return;
	if (ocr_init(NULL, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return;
	}
	log_debug("render: OCR data loaded for the workers in %.1f ms",
	    (double)(now_us() - t) / 1e3);
}

size_t
render_sandbox_paths(const struct render_opts *o, const struct render_cover *c,
    const char **paths, size_t n)
{
	size_t	i = 0;

	if (i < n - 1 && o->font_dir)
		paths[i++] = o->font_dir;
	if (i < n - 1 && c->logo && c->logo[0])
		paths[i++] = c->logo;
	paths[i] = NULL;
	return i;
}

void
render_sandbox_limits(const struct render_opts *o, int max_fd,
    struct sandbox_limits *l)
{
	memset(l, 0, sizeof(*l));
	/* Beyond what is mapped when the sandbox is entered (the libraries
	 * and the OCR data, about 150 MB): what MuPDF may hold
	 * ([render] max_memory), and room for what it does not count:
	 * libhpdf's output document and its saved copy, Tesseract's work on
	 * one page, libc.  See docs/security.md for the figures. */
	l->memory = o->max_memory + RENDER_SANDBOX_HEADROOM;
	l->file_size = l->memory;
	l->cpu_seconds = o->time_limit > 0 ? o->time_limit + 5 : 0;
	l->max_fd = max_fd;
}

int
render_packet_fds(const struct manifest *mf, const int *docfds, int outfd,
    const struct render_opts *o, const struct render_cover *c,
    struct render_result *res)
{
	struct reader_cap	 cap;
	fz_alloc_context	 alloc;
	struct sigaction	 old;
	struct doc_run		 r;
	struct out		 w;
	HPDF_Page		 cover;
	int			 rv = 0;

	memset(res, 0, sizeof(*res));
	if (render_prepare(o, c, res->err, sizeof(res->err)) == -1) {
		res->admin = 1;
		return -1;
	}
	memset(&w, 0, sizeof(w));
	w.o = o;
	if ((w.pdf = HPDF_NewEx(pdfout_error, NULL, NULL, 0, &w.hs)) == NULL) {
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
	r.ctx = reader_new_ctx(&cap, &alloc, o->max_memory);
	r.cap = &cap;
	r.w = &w;
	r.mf = mf;
	r.o = o;
	r.res = res;
	r.dp = xcalloc(mf->ndocs + 1, sizeof(*r.dp));
	if (r.ctx == NULL) {
		res->tempfail = 1;
		rv = fail(res, "cannot start the document reader (out of memory)");
	}
	reader_limit_start(o->time_limit, &old);
	if (rv == 0)
		rv = render_run(&r, docfds, outfd, c, prep.tpl, cover);
	reader_limit_stop(&old);
	if (rv == 0)
		res->pages = w.pages;
	for (size_t i = 0; i < mf->ndocs; i++)
		doc_pats_free(&r.dp[i]);
	free(r.dp);
	free(r.page_doc);
	if (r.ctx)
		fz_drop_context(r.ctx);
	free(r.bx.b);
	HPDF_Free(w.pdf);
	free(w.bits);
	return rv;
}

int
render_open_inputs(const struct manifest *mf, int dirfd, const char *outname,
    int *docfds, int *outfd, struct render_result *res)
{
	for (size_t i = 0; i < mf->ndocs; i++)
		docfds[i] = -1;
	*outfd = -1;
	for (size_t i = 0; i < mf->ndocs; i++)
		if ((docfds[i] = openat(dirfd, mf->docs[i].file, O_RDONLY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1) {
			res->tempfail = 1;
			fail(res, "document %.100s: cannot open the job's copy: %s",
			    mf->docs[i].file, strerror(errno));
			goto fail;
		}
	/* What was sent, with the patient's records in it: its owner only. */
	if ((unlinkat(dirfd, outname, 0) == -1 && errno != ENOENT) ||
	    (*outfd = openat(dirfd, outname, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		res->tempfail = 1;
		fail(res, "cannot write the output PDF %s: %s", outname,
		    strerror(errno));
		goto fail;
	}
	return 0;
fail:
	render_close_inputs(mf, docfds, outfd);
	return -1;
}

void
render_close_inputs(const struct manifest *mf, int *docfds, int *outfd)
{
	for (size_t i = 0; i < mf->ndocs; i++)
		if (docfds[i] != -1) {
			close(docfds[i]);
			docfds[i] = -1;
		}
	if (*outfd != -1)
		close(*outfd);
	*outfd = -1;
}

int
render_packet(const struct manifest *mf, int dirfd, const char *outname,
    const struct render_opts *o, const struct render_cover *c,
    struct render_result *res)
{
	int	*docfds = xcalloc(mf->ndocs + 1, sizeof(*docfds));
	int	 outfd, rv;

	memset(res, 0, sizeof(*res));
	if (render_prepare(o, c, res->err, sizeof(res->err)) == -1) {
		res->admin = 1;
		free(docfds);
		return -1;
	}
	if ((rv = render_open_inputs(mf, dirfd, outname, docfds, &outfd,
	    res)) == 0)
		rv = render_packet_fds(mf, docfds, outfd, o, c, res);
	if (rv == 0 && fsync(dirfd) == -1) {
		res->tempfail = 1;
		rv = fail(res, "cannot write the output PDF: %s", strerror(errno));
	}
	if (rv == -1 && outfd != -1)
		unlinkat(dirfd, outname, 0);	/* never sent, never kept */
	if (outfd != -1)
		render_close_inputs(mf, docfds, &outfd);
	free(docfds);
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

