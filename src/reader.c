/*
 * Opening documents, in the worker (render) and in a child of the daemon
 * (the intake probe): MuPDF with a memory cap and a time limit, the
 * document types roigate takes, and a page's own contents recorded once
 * into a display list that the image check, the searches and the
 * rasterizer replay.  Plain text is typeset first (src/typeset.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mupdf/fitz.h>

#include "log.h"
#include "reader.h"
#include "render.h"
#include "sandbox.h"
#include "typeset.h"
#include "util.h"

extern fz_document_handler pdf_document_handler;
extern fz_document_handler img_document_handler;

/* Opening a document at intake takes milliseconds; the daemon waits for it,
 * so a file built to take longer is cut off (and refused) after this. */
#define RENDER_PROBE_SECONDS	10

static void *
cap_malloc(void *u, size_t n)
{
	struct reader_cap	*c = u;
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
	struct reader_cap	*c = u;
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
	struct reader_cap	*c = u;
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

fz_context *
reader_new_ctx(struct reader_cap *cap, fz_alloc_context *alloc, int64_t max_memory)
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

fz_cookie		 reader_cookie;
volatile sig_atomic_t	 reader_timed_out;

static void
on_alarm(int sig)
{
	(void)sig;
	reader_timed_out = 1;
	reader_cookie.abort = 1;
}

void
reader_limit_start(int seconds, struct sigaction *old)
{
	struct sigaction sa;

	memset(&reader_cookie, 0, sizeof(reader_cookie));
	reader_timed_out = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, old);
	alarm(seconds > 0 ? (unsigned)seconds : 0);
}

void
reader_limit_stop(const struct sigaction *old)
{
	alarm(0);
	sigaction(SIGALRM, old, NULL);
}

/* ---- document types -------------------------------------------------------- */

enum reader_kind
reader_kind(const char *mime_or_name, const char **mime)
{
	static const struct {
		const char	*ext, *mime;
		enum reader_kind	 kind;
	} kinds[] = {
		{ ".pdf", "application/pdf", READER_PDF },
		{ ".tif", "image/tiff", READER_IMAGE },
		{ ".tiff", "image/tiff", READER_IMAGE },
		{ ".png", "image/png", READER_IMAGE },
		{ ".jpg", "image/jpeg", READER_IMAGE },
		{ ".jpeg", "image/jpeg", READER_IMAGE },
		{ ".txt", "text/plain", READER_TEXT },
	};
	const char	*dot = strrchr(mime_or_name, '.');

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(mime_or_name, kinds[i].mime) == 0 ||
		    (dot && strcasecmp(dot, kinds[i].ext) == 0)) {
			*mime = kinds[i].mime;
			return kinds[i].kind;
		}
	*mime = NULL;
	return READER_UNKNOWN;
}

/* ---- opening ---------------------------------------------------------------- */

void
reader_close(fz_context *ctx, struct reader_doc *op)
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
int
reader_open(fz_context *ctx, int fd, const char *mime_or_name,
    const struct render_opts *o, struct reader_doc *op, char *err, size_t errlen)
{
	const char	*mime;
	fz_stream	*stm = NULL;
	int		 dfd;

	memset(op, 0, sizeof(*op));
	if ((op->kind = reader_kind(mime_or_name, &mime)) == READER_UNKNOWN) {
		snprintf(err, errlen, "is not a PDF, TIFF, PNG, JPEG or text file");
		return -1;
	}
	if (op->kind == READER_TEXT) {
		struct buf	b;
		size_t		n;

		buf_init(&b);
		if (lseek(fd, 0, SEEK_SET) == -1 ||
		    read_file_fd(fd, SIZE_MAX / 4, &b) == -1) {
			snprintf(err, errlen, "cannot be read: %s", strerror(errno));
			buf_free(&b);
			return -1;
		}
		if (typeset_text((unsigned char *)b.data, b.len, o, &op->mem, &n, err,
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
			reader_close(ctx, op);
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
		reader_close(ctx, op);
		return -1;
	}
	if (fz_needs_password(ctx, op->doc) || encrypted(ctx, op->doc)) {
		snprintf(err, errlen, "is encrypted or password-protected: ask for an "
		    "unprotected copy");
		reader_close(ctx, op);
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

void
reader_largest_image(fz_context *ctx, fz_display_list *list, int *w, int *h)
{
	struct image_dev *d = fz_new_derived_device(ctx, struct image_dev);

	d->super.fill_image = note_image;
	fz_try(ctx) {
		fz_run_display_list(ctx, list, &d->super, fz_identity, fz_infinite_rect,
		    &reader_cookie);
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
fz_display_list *
reader_record_page(fz_context *ctx, fz_page *page, fz_rect bounds)
{
	fz_display_list	*list = fz_new_display_list(ctx, bounds);
	fz_device	*dev = NULL;

	fz_var(dev);
	fz_try(ctx) {
		dev = fz_new_list_device(ctx, list);
		fz_run_page_contents(ctx, page, dev, fz_identity, &reader_cookie);
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

/* ---- probing at intake --------------------------------------------------- */

int
render_probe_here(int fd, const char *mime, const struct render_opts *o,
    char *err, size_t errlen)
{
	struct reader_cap		 cap;
	fz_alloc_context	 alloc;
	struct reader_doc		 op;
	fz_context		*ctx;
	fz_page			*page = NULL;
	fz_display_list		*list = NULL;
	const char		*m;
	volatile int		 rv = 0, n = 0;

	if (reader_kind(mime, &m) == READER_TEXT)
		return 0;	/* any bytes can be typeset */
	if ((ctx = reader_new_ctx(&cap, &alloc, o->max_memory)) == NULL) {
		snprintf(err, errlen, "cannot start the document reader");
		return -1;
	}
	if (reader_open(ctx, fd, mime, o, &op, err, errlen) == -1) {
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
			list = reader_record_page(ctx, page, fz_bound_page(ctx, page));
			reader_largest_image(ctx, list, &w, &h);
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
	reader_close(ctx, &op);
	fz_drop_context(ctx);
	return rv;
}

/*
 * The probe child is sandboxed before it reads a byte of the document
 * (src/sandbox.c): no file system at all, no network, the seccomp
 * allow-list, the memory and CPU limits.  Its stdio goes to /dev/null.
 */
static void
probe_sandbox(const struct render_opts *o, int report)
{
	struct sandbox_limits	l;
	struct sandbox_state	ss;
	const char		*none[] = { NULL };
	char			why[256];
	int			null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null == -1 || dup2(null, 0) == -1 || dup2(null, 1) == -1 ||
	    dup2(null, 2) == -1)
		_exit(1);
	memset(&l, 0, sizeof(l));
	l.memory = o->max_memory + RENDER_SANDBOX_HEADROOM;
	l.cpu_seconds = RENDER_PROBE_SECONDS;
	l.file_size = 1;	/* it writes no file */
	l.max_fd = 16;
	if (sandbox_enter_parser(&l, none, report, &ss, why, sizeof(why)) == -1)
		_exit(1);	/* not started: the daemon tries again later */
}

/* A probe child that broke the sandbox: which system call, for the log. */
static void
probe_violation(const char *msg, ssize_t got)
{
	struct sandbox_violation	v;
	char				name[64];

	memset(&v, 0, sizeof(v));
	v.nr = -1;
	if (got == (ssize_t)sizeof(v))
		memcpy(&v, msg, sizeof(v));
	log_warnx("document probe stopped by its sandbox: system call %s (%d)",
	    v.type == SANDBOX_MSG_VIOLATION ? sandbox_syscall_name(v.nr, name,
	    sizeof(name)) : "?", v.nr);
}

int
render_probe_needed(const char *mime)
{
	const char	*m;

	return reader_kind(mime, &m) != READER_TEXT;	/* text: any bytes do */
}

int
render_probe_start(int fd, const char *mime, const struct render_opts *o,
    pid_t *pidp, int *pipep, char *err, size_t errlen)
{
	char	msg[512];
	int	p[2];
	pid_t	pid, parent;

	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "could not be checked now: %s", strerror(errno));
		return -2;
	}
	parent = getpid();
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "could not be checked now: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -2;
	}
	if (pid == 0) {
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
		probe_sandbox(o, p[1]);
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
	*pidp = pid;
	*pipep = p[0];
	return 0;
}

int
render_probe_verdict(int status, const char *msg, size_t got, char *err,
    size_t errlen)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SANDBOX_EXIT_VIOLATION) {
		probe_violation(msg, (ssize_t)got);
		snprintf(err, errlen, "cannot be opened: the document tried to do "
		    "something a document may not: it was stopped");
		return -1;
	}
	if (WIFEXITED(status) && got > 0) {
		snprintf(err, errlen, "%s", msg);
		return -1;
	}
	/*
	 * Only the reader's own limits and its own crashes speak of the
	 * document.  A SIGKILL it did not bring on itself (the OOM killer, an
	 * administrator) or a child that never started reading says nothing
	 * of it: look again later.
	 */
	if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGALRM ||
	    WTERMSIG(status) == SIGXCPU)) {
		snprintf(err, errlen, "cannot be opened: the reader ran out of time "
		    "on it (%d seconds; the document is damaged or built to exhaust "
		    "the reader)", RENDER_PROBE_SECONDS);
		return -1;
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
		snprintf(err, errlen, "cannot be opened: the reader crashed on it "
		    "(%s; the document is damaged or built to exhaust the reader)",
		    strsignal(WTERMSIG(status)));
		return -1;
	}
	snprintf(err, errlen, "could not be checked now: the reader %s; it is "
	    "tried again", WIFSIGNALED(status) ? "was killed from outside "
	    "(out of memory on the machine, or an administrator)" :
	    "did not start");
	return -2;
}
