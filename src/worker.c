/*
 * The worker: one process per recipient's run of jobs, forked by the
 * daemon's queue, and its two children.  It checks the packet again
 * (hashes, policy), has the output rendered, reports the redactions and
 * the output's hash and pages, waits for the daemon to log the attempt,
 * and then has the output sent.
 *
 * Three processes, so that what parses a document and what talks to the
 * network are never the same, and neither can reach the database:
 *   worker    (this file's main): holds the daemon's channel and the job's
 *             folder (both descriptors); parses only the manifest the
 *             daemon accepted; no_new_privs.
 *   renderer  (one per job, forked by the worker): gets the documents and
 *             an empty output file as descriptors, loads nothing it does
 *             not have yet, enters the sandbox (src/sandbox.c: no file
 *             system, no network, seccomp, rlimits) and only then reads a
 *             byte of input; it writes the PDF and reports on a socket.
 *   sender    (one per worker, forked at its start): runs the transport
 *             plugin; gets each finished PDF as a read-only descriptor and
 *             never parses a document; holds no descriptor of the
 *             database, the spool or any job's folder; no_new_privs and
 *             Landlock (its own key and credential files, TLS, DNS).
 * The daemon sees one process and the same messages as before
 * (include/worker.h).  Children die with their parent (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "ocr.h"
#include "policy.h"
#include "render.h"
#include "roigated.h"
#include "sandbox.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

#define WORKER_JOBDIR_FD	3
#define WORKER_CHAN_FD		4
#define WORKER_SENDER_FD	5	/* the worker's end of its sender's channel */

/* The renderer's descriptors (and the sender's channel, fd 3). */
#define RENDERER_REPORT_FD	3
#define RENDERER_OUTPUT_FD	4
#define RENDERER_DOC_FD		5	/* the first document; one per document */
#define SENDER_CHAN_FD		3

/* What the renderer reports (SOCK_SEQPACKET: one message per record), and
 * the SIGSYS handler's struct sandbox_violation. */
enum renderer_msg_type {
	RMSG_REDACTION = 1,
	RMSG_DONE = 2,
};

struct renderer_msg {
	uint32_t		type;
	int32_t			rv;		/* RMSG_DONE: 0 rendered, -1 not */
	int32_t			pages;
	int32_t			tempfail, admin;
	struct sandbox_state	sandbox;
	int64_t			ready_ns;	/* CLOCK_MONOTONIC: sandboxed, ready to read */
	struct render_times	times;
	char			sha256[65];
	char			gate[256];
	char			err[512];
	struct store_redaction	red;		/* RMSG_REDACTION */
};

/* Worker to sender: send or confirm one job (the output travels as a
 * descriptor); the sender answers with a struct sender_reply. */
#define SENDER_TEXT_MAX	16384
struct sender_job {
	uint32_t	mode;		/* enum worker_mode */
	uint32_t	pages;
	int32_t		attempt;
	int64_t		job_id;
	int64_t		accepted_at;
	int64_t		size;
	char		packet_id[72];
	char		name[80];
	char		sha256[65];
	char		remote_id[TRANSPORT_ID_MAX];
	uint32_t	ref_len;	/* text: request_ref NUL purpose NUL */
	char		text[SENDER_TEXT_MAX];
};

struct sender_reply {
	uint32_t			status;		/* enum transport_status */
	int32_t				started;	/* the first reply: init() */
	char				error[TRANSPORT_DETAIL_MAX];
	struct transport_receipt	receipt;
};

struct worker_output {
	struct transport_file	*files;
	char			(*hex)[65];
	char			(*names)[80];
	size_t			 nfiles;
	uint32_t		 pages;
	char			 sha256[65];
	char			 gate[256];	/* what the leak gate checked */
};

/* Where one job's time went in the worker (microseconds), logged at debug
 * level when its result has gone to the daemon: bench/latency's profile. */
static struct worker_times {
	int64_t			 start, check, prepare, render, output, go, send;
	int64_t			 ready;		/* the renderer's fork to its sandbox */
	struct render_times	 r;
} wt;

/* What a job parsed: the manifest (PHI), and what its renderer reported.
 * Kept where worker_main frees it after every job, also when
 * worker_fail() jumps out of the middle of one. */
struct worker_parsed {
	struct manifest		*mf;
	struct errlist		 errs;
	char			*why;	/* errs joined, for the daemon */
	struct store_redaction	*red;
	size_t			 nred;
};

static const char *
worker_content_type(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".pdf", "application/pdf" }, { ".tif", "image/tiff" },
		{ ".tiff", "image/tiff" }, { ".png", "image/png" },
		{ ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" },
		{ ".txt", "text/plain" },
	};
	const char	*dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static void	worker_output_close(struct worker_output *);

static void
worker_send(int chan, const struct worker_msg *m)
{
	if (send(chan, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		_exit(1);	/* the daemon is gone: nothing to report to */
}

/* Where worker_fail() returns to: the end of the current job. */
static sigjmp_buf	worker_job_end;

static void __attribute__((noreturn))
worker_vfail(int chan, enum transport_status st, int hold, const char *fmt,
    va_list ap)
{
	struct worker_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = WMSG_RESULT;
	m.status = st;
	m.receipt.hold = (uint8_t)hold;
	vsnprintf(m.error, sizeof(m.error), fmt, ap);
	strlcpy_(m.receipt.detail, m.error, sizeof(m.receipt.detail));
	worker_send(chan, &m);
	siglongjmp(worker_job_end, 1);
}

static void __attribute__((noreturn))
worker_fail(int chan, enum transport_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
worker_fail(int chan, enum transport_status st, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	worker_vfail(chan, st, 0, fmt, ap);
}

/* Nothing is wrong with the packet, but it cannot go until an
 * administrator fixes what is (a template, a font): held, not failed. */
static void __attribute__((noreturn))
worker_hold(int chan, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
worker_hold(int chan, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	worker_vfail(chan, TRANSPORT_PERMFAIL, TRANSPORT_HOLD_JOB, fmt, ap);
}

/* Open every document again and check it against the manifest. */
static void
worker_open_documents(int chan, const struct manifest *mf, struct worker_output *o)
{
	struct stat	st;
	int		fd;

	o->files = xcalloc(mf->ndocs, sizeof(*o->files));
	o->hex = xcalloc(mf->ndocs, sizeof(*o->hex));
	o->nfiles = mf->ndocs;
	for (size_t i = 0; i < mf->ndocs; i++) {
		const struct document *d = &mf->docs[i];
		fd = openat(WORKER_JOBDIR_FD, d->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			worker_fail(chan, TRANSPORT_TEMPFAIL, "document %.100s: cannot "
			    "open the job's copy: %s", d->file, strerror(errno));
		o->files[i].fd = fd;
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
			worker_fail(chan, TRANSPORT_PERMFAIL, "document %.100s: not a "
			    "regular file in the job folder", d->file);
		if (sha256_fd(fd, o->hex[i], NULL) == -1)
			worker_fail(chan, TRANSPORT_TEMPFAIL, "document %.100s: read "
			    "error: %s", d->file, strerror(errno));
		if (strcmp(o->hex[i], d->sha256) != 0)
			worker_fail(chan, TRANSPORT_PERMFAIL, "document %.100s: SHA-256 "
			    "no longer matches the manifest; the job's copy was altered",
			    d->file);
		o->files[i].name = d->file;
		o->files[i].content_type = worker_content_type(d->file);
		o->files[i].size = st.st_size;
		o->files[i].sha256 = o->hex[i];
	}
}

/* ---- the renderer ------------------------------------------------------------ */

#ifdef ROIGATE_TEST_HOOKS
/*
 * Test builds only (build/tests/roigated-hooks, never installed): with
 * ROIGATE_TEST_SANDBOX set, the renderer of a packet whose packet_id
 * starts with "ROI-HOOK-", once sandboxed, does what a
 * hostile document's exploit would try (tests/integration/test_sandbox.py):
 * "pause=SECONDS", "open-db=PATH" (for writing), "create=PATH",
 * "connect=PORT" (127.0.0.1), "exec" (/bin/sh), "alloc" (past the
 * address-space limit).  A refusal that returns is reported as an error.
 */
#include <netinet/in.h>

static void
renderer_test_hook(const char *what, int report)
{
	struct renderer_msg	m;
	struct sockaddr_in	sin;
	const char		*arg;
	int			fd = -1;

	if (what == NULL)
		return;
	arg = strchr(what, '=') ? strchr(what, '=') + 1 : "";
	if (strncmp(what, "pause=", 6) == 0) {
		sleep((unsigned)atoi(arg));
		return;
	}
	if (strncmp(what, "open-db=", 8) == 0)
		fd = open(arg, O_RDWR);
	else if (strncmp(what, "create=", 7) == 0)
		fd = open(arg, O_WRONLY | O_CREAT | O_EXCL, 0600);
	else if (strncmp(what, "connect=", 8) == 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)atoi(arg));
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1 &&
		    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			fd = -1;
	} else if (strcmp(what, "exec") == 0) {
		execl("/bin/sh", "sh", "-c", "true", (char *)NULL);
	} else if (strcmp(what, "alloc") == 0) {
		for (size_t i = 0; i < 4096; i++) {
			char *p = malloc((size_t)64 << 20);

			if (p == NULL)
				fatal("test hook: allocation");
			memset(p, 1, (size_t)64 << 20);
		}
		return;
	} else
		return;
	memset(&m, 0, sizeof(m));
	m.type = RMSG_DONE;
	m.rv = -1;
	snprintf(m.err, sizeof(m.err), "test hook %.40s: %s", what,
	    fd == -1 ? strerror(errno) : "it was allowed");
	(void)!write(report, &m, sizeof(m));
	_exit(0);
}
#endif

/* Everything a job's renderer needs, filled by the worker before it forks. */
struct renderer_job {
	const struct manifest	*mf;
	struct render_opts	 opts;
	struct render_cover	 cover;
	char			 tpl[4096];
	int			 sandbox;	/* [render] sandbox */
};

static int		renderer_done;	/* the result has been reported */

static int64_t
monotonic_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static int		renderer_report = -1;

/* A renderer that ends by exit() (xmalloc's fatal) without a result: say
 * why, as far as it can tell. */
static void
renderer_atexit(void)
{
	struct renderer_msg	m;
	int			nomem = errno == ENOMEM;

	if (renderer_done || renderer_report == -1)
		return;
	memset(&m, 0, sizeof(m));
	m.type = RMSG_DONE;
	m.rv = -1;
	snprintf(m.err, sizeof(m.err), nomem ? "needs more memory than the "
	    "renderer may have; the document may be damaged or built to exhaust "
	    "the reader" : "cannot be rendered: the renderer stopped on it");
	(void)!write(renderer_report, &m, sizeof(m));
}

/* Only the report channel, the output and the documents, from fd 3 up;
 * stdin, stdout and stderr are /dev/null (nothing of a document's reaches
 * the daemon's log). */
static void
renderer_fds(const int *docfds, size_t ndocs, int outfd, int report)
{
	int	*high = xcalloc(ndocs + 2, sizeof(*high));
	int	 null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null == -1 || dup2(null, 0) == -1 || dup2(null, 1) == -1 ||
	    dup2(null, 2) == -1)
		_exit(1);
	if ((high[0] = fcntl(report, F_DUPFD_CLOEXEC, 1000)) == -1 ||
	    (high[1] = fcntl(outfd, F_DUPFD_CLOEXEC, 1000)) == -1)
		_exit(1);
	for (size_t i = 0; i < ndocs; i++)
		if ((high[i + 2] = fcntl(docfds[i], F_DUPFD_CLOEXEC, 1000)) == -1)
			_exit(1);
	for (size_t i = 0; i < ndocs + 2; i++)
		if (dup3(high[i], RENDERER_REPORT_FD + (int)i, O_CLOEXEC) == -1)
			_exit(1);
	close_range(RENDERER_DOC_FD + (unsigned)ndocs, ~0U, 0);
	free(high);
}

static void
renderer_send(const struct renderer_msg *m)
{
	if (write(RENDERER_REPORT_FD, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(1);
}

/* The renderer's life: confine, render, report, exit. */
static void __attribute__((noreturn))
renderer_main(struct renderer_job *rj)
{
	static struct renderer_msg	 m;
	struct render_result		 res;
	struct sandbox_limits		 l;
	const char			*paths[4];
	int				*docfds;
	size_t				 n = rj->mf->ndocs;

	prctl(PR_SET_NAME, "roigate-render");
	renderer_report = RENDERER_REPORT_FD;
	atexit(renderer_atexit);
	memset(&m, 0, sizeof(m));
	m.type = RMSG_DONE;
	m.rv = -1;
	docfds = xcalloc(n + 1, sizeof(*docfds));
	for (size_t i = 0; i < n; i++)
		docfds[i] = RENDERER_DOC_FD + (int)i;
	if (rj->sandbox) {
		render_sandbox_paths(&rj->opts, &rj->cover, paths, 4);
		render_sandbox_limits(&rj->opts, RENDERER_DOC_FD + (int)n + 8, &l);
		ocr_sandboxed();
		if (sandbox_enter_parser(&l, paths, RENDERER_REPORT_FD, &m.sandbox,
		    m.err, sizeof(m.err) - 100) == -1) {
			m.admin = 1;
			renderer_done = 1;
			renderer_send(&m);
			_exit(0);
		}
	}
	m.ready_ns = monotonic_ns();
#ifdef ROIGATE_TEST_HOOKS
	if (strncmp(rj->mf->packet_id, "ROI-HOOK-", 9) == 0)
		renderer_test_hook(getenv("ROIGATE_TEST_SANDBOX"), RENDERER_REPORT_FD);
#endif
	m.rv = render_packet_fds(rj->mf, docfds, RENDERER_OUTPUT_FD, &rj->opts,
	    &rj->cover, &res);
	for (size_t i = 0; m.rv == 0 && i < res.nred; i++) {
		struct renderer_msg r;

		memset(&r, 0, sizeof(r));
		r.type = RMSG_REDACTION;
		r.red = res.red[i];
		renderer_send(&r);
	}
	m.pages = res.pages;
	m.times = res.times;
	m.tempfail = res.tempfail;
	m.admin = res.admin;
	memcpy(m.sha256, res.sha256, sizeof(m.sha256));
	memcpy(m.gate, res.gate, sizeof(m.gate));
	memcpy(m.err, res.err, sizeof(m.err) < sizeof(res.err) ? sizeof(m.err) :
	    sizeof(res.err));
	renderer_done = 1;
	renderer_send(&m);
	_exit(0);
}

/* What the renderer said, read until it closes its end. */
struct renderer_seen {
	int64_t			 forked_ns;
	struct renderer_msg	 done;
	int			 got_done;
	int			 violation;	/* a system call number, or -1 */
	struct store_redaction	*red;
	size_t			 nred;
};

static void
renderer_collect(int fd, struct renderer_seen *rs)
{
	union {
		struct renderer_msg		m;
		struct sandbox_violation	v;
	}		u;
	ssize_t		n;

	rs->violation = -1;
	for (;;) {
		n = recv(fd, &u, sizeof(u), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((size_t)n == sizeof(u.v) && u.v.type == SANDBOX_MSG_VIOLATION)
			rs->violation = u.v.nr;
		else if ((size_t)n != sizeof(u.m))
			continue;
		else if (u.m.type == RMSG_REDACTION) {
			rs->red = xreallocarray(rs->red, rs->nred + 1, sizeof(*rs->red));
			rs->red[rs->nred] = u.m.red;
			rs->red[rs->nred].pattern[sizeof(rs->red->pattern) - 1] = '\0';
			rs->nred++;
		} else if (u.m.type == RMSG_DONE && !rs->got_done) {
			rs->done = u.m;
			rs->done.err[sizeof(rs->done.err) - 1] = '\0';
			rs->done.gate[sizeof(rs->done.gate) - 1] = '\0';
			rs->done.sha256[sizeof(rs->done.sha256) - 1] = '\0';
			rs->got_done = 1;
		}
	}
}

/* A renderer that ended without a result: its own limits and crashes are
 * the document's doing; a SIGKILL from outside is not (try again). */
static void
renderer_ended(int chan, const struct job *j, const struct render_opts *o,
    int status, const struct renderer_seen *rs)
{
	char	name[64];

	if (rs->violation != -1 || (WIFEXITED(status) &&
	    WEXITSTATUS(status) == SANDBOX_EXIT_VIOLATION)) {
		log_warnx("job %lld: the renderer was stopped by its sandbox: system "
		    "call %s (%d)", (long long)j->id,
		    sandbox_syscall_name(rs->violation, name, sizeof(name)),
		    rs->violation);
		worker_fail(chan, TRANSPORT_PERMFAIL, "the document tried to do "
		    "something a document may not: it was stopped; nothing was sent");
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
		worker_fail(chan, TRANSPORT_PERMFAIL, "rendering the packet took "
		    "longer than %d seconds; the document may be damaged or built to "
		    "exhaust the reader. Nothing was sent", o->time_limit);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ)
		worker_fail(chan, TRANSPORT_PERMFAIL, "the output would be larger "
		    "than %lld MB; the document may be built to exhaust the reader. "
		    "Nothing was sent", (long long)((o->max_memory +
		    RENDER_SANDBOX_HEADROOM) >> 20));
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		worker_fail(chan, TRANSPORT_PERMFAIL, "the reader crashed on the "
		    "packet (%s; a document is damaged or built to exhaust the "
		    "reader). Nothing was sent", strsignal(WTERMSIG(status)));
	worker_fail(chan, TRANSPORT_TEMPFAIL, "the renderer %s; it is tried again",
	    WIFSIGNALED(status) ? "was killed from outside (out of memory on the "
	    "machine, or an administrator)" : "stopped without a result");
}

/* Fork the renderer on the job's documents and output; wait for it. */
static pid_t
renderer_run(int chan, const struct job *j, struct renderer_job *rj,
    const struct worker_output *o, int outfd, struct renderer_seen *rs)
{
	int	*docfds = xcalloc(o->nfiles + 1, sizeof(*docfds));
	int	 sv[2], status;
	pid_t	 pid, parent = getpid();

	for (size_t i = 0; i < o->nfiles; i++)
		docfds[i] = o->files[i].fd;
	rs->forked_ns = monotonic_ns();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1) {
		free(docfds);
		worker_fail(chan, TRANSPORT_TEMPFAIL, "cannot start the renderer: %s",
		    strerror(errno));
	}
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
			_exit(1);
		renderer_fds(docfds, o->nfiles, outfd, sv[1]);
		renderer_main(rj);
	}
	free(docfds);
	close(sv[1]);
	renderer_collect(sv[0], rs);
	close(sv[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	/* A result said and a plain exit: the result stands (a failure the
	 * renderer caught, or its exit() with the reason). */
	if (!rs->got_done || rs->violation != -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) == SANDBOX_EXIT_VIOLATION)
		renderer_ended(chan, j, &rj->opts, status, rs);
	if (WEXITSTATUS(status) != 0)
		rs->done.rv = -1;
	return pid;
}

/* The job's renderer: options and cover fields from the configuration and
 * the recipient, loaded here once (the OCR data, the template) so that a
 * renderer starts with them and need not open them. */
static void
renderer_job_init(int chan, const struct job *j, const struct manifest *mf,
    const struct transport_instance *ti, const struct recipient *r,
    struct renderer_job *rj)
{
	char	why[512];

	memset(rj, 0, sizeof(*rj));
	rj->mf = mf;
	rj->sandbox = rg->conf->render_sandbox;
	render_opts_from_config(rg->conf, ti->profile, &rj->opts);
	if (render_template_path(rg->conf, mf->cover_template, rj->tpl,
	    sizeof(rj->tpl), why, sizeof(why)) == -1)
		worker_fail(chan, TRANSPORT_PERMFAIL, "%s", why);
	rj->cover.template_path = rj->tpl;
	rj->cover.org_name = rg->conf->organization;
	rj->cover.org_address = rg->conf->organization_address;
	rj->cover.org_phone = rg->conf->organization_phone;
	rj->cover.org_fax = rg->conf->organization_fax;
	rj->cover.logo = rg->conf->logo;
	rj->cover.to_name = r->name;
	rj->cover.to_organization = r->organization;
	rj->cover.to_address = r->address;
	/* The date the packet was accepted, not the hour of this attempt: a
	 * job renders to the same bytes every time, so a retry can recognize
	 * what an interrupted attempt already delivered. */
	rj->cover.now = j->created_at;
	if (render_prepare(&rj->opts, &rj->cover, why, sizeof(why)) == -1)
		worker_hold(chan, "%s; held until an administrator fixes it and "
		    "releases the job", why);
}

/* The renderer's failure, in the words the daemon records. */
static void
renderer_failed(int chan, const struct renderer_msg *d)
{
	if (d->admin)
		worker_hold(chan, "%s; held until an administrator fixes it "
		    "and releases the job", d->err);
	if (d->tempfail)
		worker_fail(chan, TRANSPORT_TEMPFAIL, "%s", d->err);
	/* The packet itself: it cannot go as it is, and its packet_id is
	 * used up; say what the clerk does next. */
	worker_fail(chan, TRANSPORT_PERMFAIL, "%s. Nothing was sent: correct "
	    "the packet (or get a good copy of the document) and send it "
	    "again under a new packet_id", d->err);
}

/* The output the renderer wrote: its hash checked here, opened read-only
 * for the sender. */
static void
worker_take_output(int chan, const struct job *j, const struct renderer_msg *d,
    struct worker_output *o)
{
	struct stat	st;
	char		hex[65];
	int		fd;

	fd = openat(WORKER_JOBDIR_FD, WORKER_OUTPUT, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1 || sha256_fd(fd, hex, NULL) == -1 ||
	    fsync(WORKER_JOBDIR_FD) == -1) {
		if (fd != -1)
			close(fd);
		worker_fail(chan, TRANSPORT_TEMPFAIL, "the rendered output cannot be "
		    "read: %s", strerror(errno));
	}
	o->files = xcalloc(1, sizeof(*o->files));
	o->hex = xcalloc(1, sizeof(*o->hex));
	o->names = xcalloc(1, sizeof(*o->names));
	o->nfiles = 1;
	o->files[0].fd = fd;
	if (strcmp(hex, d->sha256) != 0 || d->pages < 1)
		worker_fail(chan, TRANSPORT_TEMPFAIL, "the rendered output is not "
		    "what the renderer reported; it is rendered again");
	snprintf(o->names[0], sizeof(o->names[0]), "%s.pdf", j->packet_id);
	strlcpy_(o->hex[0], hex, sizeof(o->hex[0]));
	o->files[0].name = o->names[0];
	o->files[0].content_type = "application/pdf";
	o->files[0].size = st.st_size;
	o->files[0].sha256 = o->hex[0];
	o->pages = (uint32_t)d->pages;
	strlcpy_(o->sha256, hex, sizeof(o->sha256));
	strlcpy_(o->gate, d->gate, sizeof(o->gate));
}

/*
 * Render the packet into one PDF in a sandboxed renderer and make it the
 * one file the sender sends.  Each redaction applied goes to the daemon,
 * which records it with the attempt.
 */
static void
worker_render(int chan, const struct job *j, const struct manifest *mf,
    const struct transport_instance *ti, const struct recipient *r,
    struct worker_output *o, struct worker_parsed *wp)
{
	static struct renderer_job	 rj;
	struct renderer_seen		 rs;
	struct worker_msg		 m;
	int				 outfd;

	int64_t				 t = now_us();

	renderer_job_init(chan, j, mf, ti, r, &rj);
	wt.prepare = now_us() - t;
	t = now_us();
	/* A new, empty file for the renderer to write (an earlier attempt's
	 * is replaced). */
	if ((unlinkat(WORKER_JOBDIR_FD, WORKER_OUTPUT, 0) == -1 && errno != ENOENT) ||
	    (outfd = openat(WORKER_JOBDIR_FD, WORKER_OUTPUT, O_RDWR | O_CREAT |
	    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
		worker_fail(chan, TRANSPORT_TEMPFAIL, "cannot make the output file: "
		    "%s", strerror(errno));
	memset(&rs, 0, sizeof(rs));
	renderer_run(chan, j, &rj, o, outfd, &rs);
	close(outfd);
	wt.render = now_us() - t;
	wt.ready = (rs.done.ready_ns - rs.forked_ns) / 1000;
	wt.r = rs.done.times;
	wp->red = rs.red;
	wp->nred = rs.nred;
	worker_output_close(o);
	if (rs.done.rv != 0) {
		unlinkat(WORKER_JOBDIR_FD, WORKER_OUTPUT, 0);	/* never sent */
		renderer_failed(chan, &rs.done);
	}
	log_debug("job %lld: renderer ready %.2f ms after fork, sandbox %s "
	    "(Landlock ABI %d%s, seccomp %s)", (long long)j->id,
	    (double)(rs.done.ready_ns - rs.forked_ns) / 1e6, rj.sandbox ? "on" :
	    "off", rs.done.sandbox.landlock_abi, rs.done.sandbox.landlock ?
	    " in force" : "", rs.done.sandbox.seccomp ? "on" : "off");
	t = now_us();
	worker_take_output(chan, j, &rs.done, o);
	wt.output = now_us() - t;
	for (size_t i = 0; i < rs.nred; i++) {
		memset(&m, 0, sizeof(m));
		m.type = WMSG_REDACTION;
		m.red = rs.red[i];
		worker_send(chan, &m);
	}
}

/* ---- the sender ------------------------------------------------------------------ */

/* The recipient's params JSON object as key/value pairs. */
static struct transport_param *
worker_params(const char *json, size_t *n)
{
	json_t			*obj, *v;
	const char		*k;
	struct transport_param	*p;
	size_t			 i = 0;

	*n = 0;
	if (json == NULL || (obj = json_loads(json, 0, NULL)) == NULL)
		return NULL;
	p = xcalloc(json_object_size(obj) + 1, sizeof(*p));
	json_object_foreach(obj, k, v) {
		if (!json_is_string(v))
			continue;
		p[i].key = xstrdup(k);
		p[i].value = xstrdup(json_string_value(v));
		i++;
	}
	json_decref(obj);
	*n = i;
	return p;
}

static void
worker_params_free(struct transport_param *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)p[i].key);
		free((char *)p[i].value);
	}
	free(p);
}

/* tr points into r and into *params, which the caller frees. */
static void
worker_recipient(const struct recipient *r, struct transport_recipient *tr,
    struct transport_param **params, size_t *nparams)
{
	memset(tr, 0, sizeof(*tr));
	tr->id = r->id;
	tr->name = r->name;
	tr->organization = r->organization;
	tr->address = r->address;
	*params = worker_params(r->params, nparams);
	tr->params = *params;
	tr->nparams = *nparams;
}

/*
 * The files a transport may open under Landlock: every absolute path in
 * its [transport NAME] section and in the recipient's parameters, read
 * only, except a folder named by a key ending in "dir" (the local
 * transport's), where it writes.  NULL-terminated lists.
 */
static void
sender_paths(const struct transport_instance *ti, const struct transport_param *p,
    size_t np, const char ***rd, const char ***wr)
{
	const struct config_transport	*ct = NULL;
	size_t				 nr = 0, nw = 0, n;

	for (size_t i = 0; i < rg->conf->ntransports; i++)
		if (strcmp(rg->conf->transports[i].name, ti->name) == 0)
			ct = &rg->conf->transports[i];
	n = (ct ? ct->nkv : 0) + np + 1;
	*rd = xcalloc(n, sizeof(**rd));
	*wr = xcalloc(n, sizeof(**wr));
	for (size_t i = 0; ct && i < ct->nkv; i++) {
		size_t kl = strlen(ct->kv[i].key);

		if (ct->kv[i].value[0] != '/')
			continue;
		if (kl >= 3 && strcmp(ct->kv[i].key + kl - 3, "dir") == 0)
			(*wr)[nw++] = ct->kv[i].value;
		else
			(*rd)[nr++] = ct->kv[i].value;
	}
	for (size_t i = 0; i < np; i++)
		if (p[i].value[0] == '/')
			(*rd)[nr++] = p[i].value;
}

static void
sender_reply(const struct sender_reply *rp)
{
	if (send(SENDER_CHAN_FD, rp, sizeof(*rp), MSG_NOSIGNAL) != (ssize_t)sizeof(*rp))
		_exit(1);
}

/* One job, as the worker described it; the output's descriptor in fd. */
static void
sender_job(struct transport_instance *ti, const struct transport_recipient *tr,
    struct sender_job *sj, int fd)
{
	struct transport_message	msg;
	struct transport_file		file;
	struct sender_reply		rp;

	memset(&rp, 0, sizeof(rp));
	memset(&msg, 0, sizeof(msg));
	sj->text[sizeof(sj->text) - 1] = '\0';
	sj->packet_id[sizeof(sj->packet_id) - 1] = '\0';
	sj->name[sizeof(sj->name) - 1] = '\0';
	sj->sha256[sizeof(sj->sha256) - 1] = '\0';
	sj->remote_id[sizeof(sj->remote_id) - 1] = '\0';
	msg.job_id = (uint64_t)sj->job_id;
	msg.packet_id = sj->packet_id;
	msg.request_ref = sj->text;
	msg.purpose = sj->ref_len < sizeof(sj->text) - 1 ?
	    sj->text + sj->ref_len + 1 : "";
	msg.recipient = tr;
	msg.pages = sj->pages;
	msg.attempt = sj->attempt;
	msg.instance = rg->instance;
	msg.accepted_at = sj->accepted_at;
	if (fd != -1) {
		file.fd = fd;
		file.name = sj->name;
		file.content_type = "application/pdf";
		file.size = (off_t)sj->size;
		file.sha256 = sj->sha256;
		msg.files = &file;
		msg.nfiles = 1;
	}
	if (sj->mode == WORKER_DELIVER)
		rp.status = ti->backend->deliver(ti->state, &msg, &rp.receipt);
	else
		rp.status = ti->backend->poll(ti->state, &msg, sj->remote_id,
		    &rp.receipt);
	if (fd != -1)
		close(fd);
	sender_reply(&rp);
}

/* Receive one struct sender_job and perhaps a descriptor; 1, or 0 at the
 * end (the worker closed the channel). */
static int
sender_recv(int chan, struct sender_job *sj, int *fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cbuf;
	struct iovec	 iov = { sj, sizeof(*sj) };
	struct msghdr	 mh;
	struct cmsghdr	*cm;
	ssize_t		 n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	*fd = -1;
	while ((n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	for (cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(*fd));
	if (n == (ssize_t)sizeof(*sj))
		return 1;
	if (*fd != -1)
		close(*fd);
	return 0;
}

/* The sender's life: confine, start the transport, send what it is given. */
static void __attribute__((noreturn))
sender_main(struct transport_instance *ti, const struct recipient *r)
{
	static struct sender_job	 sj;
	struct transport_recipient	 tr;
	struct transport_param		*params;
	struct sandbox_state		 ss;
	struct sender_reply		 rp;
	const char			**rd, **wr;
	size_t				 np;
	int				 fd;

	prctl(PR_SET_NAME, "roigate-send");
	worker_recipient(r, &tr, &params, &np);
	sender_paths(ti, params, np, &rd, &wr);
	memset(&rp, 0, sizeof(rp));
	rp.started = 1;
	if (sandbox_enter_sender(rd, wr, &ss, rp.error, sizeof(rp.error)) == -1) {
		rp.started = 0;
		sender_reply(&rp);
		_exit(0);
	}
	free(rd);
	free(wr);
	if (ti->backend->init(ti->state, rp.error, sizeof(rp.error)) == -1) {
		rp.started = 0;
		sender_reply(&rp);
		_exit(0);
	}
	sender_reply(&rp);
	while (sender_recv(SENDER_CHAN_FD, &sj, &fd))
		sender_job(ti, &tr, &sj, fd);
	ti->backend->shutdown(ti->state);
	worker_params_free(params, np);
	_exit(0);
}

static int
sender_read_reply(struct sender_reply *rp)
{
	ssize_t	n;

	while ((n = recv(WORKER_SENDER_FD, rp, sizeof(*rp), 0)) == -1 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(*rp) ? 0 : -1;
}

/* Fork the sender (WORKER_SENDER_FD is the worker's end of its channel)
 * and wait until its transport has started: 0, or -1 with err. */
static int
sender_start(struct transport_instance *ti, const struct recipient *r,
    char *err, size_t errlen)
{
	struct sender_reply	rp;
	int			sv[2], h;
	pid_t			pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (pid = fork()) == -1) {
		snprintf(err, errlen, "cannot start the sender: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* Nothing of the worker's but stdio (the log) and the channel. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent ||
		    (h = fcntl(sv[1], F_DUPFD_CLOEXEC, 1000)) == -1 ||
		    dup3(h, SENDER_CHAN_FD, O_CLOEXEC) == -1)
			_exit(1);
		close_range(SENDER_CHAN_FD + 1, ~0U, 0);
		sender_main(ti, r);
	}
	close(sv[1]);
	if ((h = fcntl(sv[0], F_DUPFD_CLOEXEC, 1000)) == -1 ||
	    dup3(h, WORKER_SENDER_FD, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "cannot start the sender: %s", strerror(errno));
		return -1;
	}
	close(h);
	if (sv[0] != WORKER_SENDER_FD)
		close(sv[0]);
	if (sender_read_reply(&rp) == -1) {
		snprintf(err, errlen, "the sender stopped as it started");
		return -1;
	}
	if (!rp.started) {
		rp.error[sizeof(rp.error) - 1] = '\0';
		snprintf(err, errlen, "%s", rp.error);
		return -1;
	}
	return 0;
}

/* Hand the job to the sender and wait for its answer.  A sender that
 * gives none is a TEMPFAIL (and the worker ends after this job). */
static int	sender_gone;

static void
sender_call(int chan, const struct job *j, enum worker_mode mode,
    const struct manifest *mf, const struct worker_output *o,
    struct worker_msg *m)
{
	static struct sender_job	 sj;
	struct sender_reply		 rp;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}				 cbuf;
	struct iovec			 iov = { &sj, sizeof(sj) };
	struct msghdr			 mh;
	struct cmsghdr			*cm;
	int				 rl;

	memset(&sj, 0, sizeof(sj));
	sj.mode = mode;
	sj.pages = o->pages;
	sj.attempt = j->attempts + 1;
	sj.job_id = j->id;
	sj.accepted_at = j->created_at;
	strlcpy_(sj.packet_id, j->packet_id, sizeof(sj.packet_id));
	if (j->remote_id)
		strlcpy_(sj.remote_id, j->remote_id, sizeof(sj.remote_id));
	rl = snprintf(sj.text, sizeof(sj.text), "%s", mf->request_id ?
	    mf->request_id : "");
	sj.ref_len = (uint32_t)(rl < (int)sizeof(sj.text) ? rl : (int)sizeof(sj.text) - 1);
	if (sj.ref_len + 1 < sizeof(sj.text))
		strlcpy_(sj.text + sj.ref_len + 1, mf->purpose ? mf->purpose : "",
		    sizeof(sj.text) - sj.ref_len - 1);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (o->nfiles == 1) {
		strlcpy_(sj.name, o->files[0].name, sizeof(sj.name));
		strlcpy_(sj.sha256, o->files[0].sha256, sizeof(sj.sha256));
		sj.size = o->files[0].size;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &o->files[0].fd, sizeof(int));
	}
	if (sendmsg(WORKER_SENDER_FD, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(sj) ||
	    sender_read_reply(&rp) == -1) {
		sender_gone = 1;
		worker_fail(chan, TRANSPORT_TEMPFAIL, "the sender stopped without "
		    "an answer; it is tried again");
	}
	m->status = rp.status;
	m->receipt = rp.receipt;
}

/* ---- the worker --------------------------------------------------------------------- */

static void
worker_parsed_free(struct worker_parsed *wp)
{
	manifest_free(wp->mf);
	errlist_free(&wp->errs);
	free(wp->why);
	free(wp->red);
	memset(wp, 0, sizeof(*wp));
}

/* One job: check, render, wait for the daemon's go, send; the result goes
 * to the daemon (worker_fail() jumps back to the caller's end of job). */
static void
worker_job(const struct job *j, enum worker_mode mode,
    struct transport_instance *ti, const struct recipient *r,
    struct worker_output *out, struct worker_parsed *wp)
{
	struct manifest			*mf;
	struct policy_ctx		 pctx;
	struct worker_msg		 m;
	char				 go;
	int				 chan = WORKER_CHAN_FD;

	mf = wp->mf = manifest_parse(j->manifest, strlen(j->manifest), &wp->errs);
	if (mf == NULL)
		worker_fail(chan, TRANSPORT_PERMFAIL, "stored manifest no longer "
		    "parses: %.200s", wp->errs.n ? wp->errs.msg[0] : "unknown error");

	if (mode == WORKER_DELIVER) {
		/* Checked again right before sending: time passes in a queue. */
		pctx.today = now_wall() / 86400;
		pctx.recipient = r;
		if (policy_check(mf, &pctx, &wp->errs) == -1) {
			wp->why = errlist_join(&wp->errs, "; ");
			worker_fail(chan, TRANSPORT_PERMFAIL, "no longer releasable: "
			    "%.400s", wp->why);
		}
		worker_open_documents(chan, mf, out);
		wt.check = now_us() - wt.start;
		worker_render(chan, j, mf, ti, r, out, wp);
	} else if (ti->backend->poll == NULL)
		worker_fail(chan, TRANSPORT_PERMFAIL, "transport %s cannot confirm "
		    "deliveries; check with the recipient", ti->name);

	memset(&m, 0, sizeof(m));
	if (mode == WORKER_DELIVER) {
		m.type = WMSG_RENDERED;
		m.pages = out->pages;
		strlcpy_(m.sha256, out->sha256, sizeof(m.sha256));
		strlcpy_(m.gate, out->gate, sizeof(m.gate));
		wt.go = now_us();
		worker_send(chan, &m);
		/* Nothing leaves before the daemon has logged the attempt. */
		if (read(chan, &go, 1) != 1 || go != WORKER_GO)
			_exit(0);
		wt.go = now_us() - wt.go;
	}
	wt.send = now_us();
	sender_call(chan, j, mode, mf, out, &m);
	wt.send = now_us() - wt.send;
	if (m.status > TRANSPORT_PERMFAIL)	/* anything else is no clear answer */
		m.status = TRANSPORT_TEMPFAIL;
	m.type = WMSG_RESULT;
	m.receipt.detail[sizeof(m.receipt.detail) - 1] = '\0';
	m.receipt.remote_id[sizeof(m.receipt.remote_id) - 1] = '\0';
	m.receipt.status[sizeof(m.receipt.status) - 1] = '\0';
	m.receipt.sha256[sizeof(m.receipt.sha256) - 1] = '\0';
	worker_send(chan, &m);
}
/*
 * After a job, the daemon either hands the worker another due job for the
 * same recipient (struct worker_next, with the job's folder as a passed
 * descriptor; the transport may reuse its connection) or closes the
 * channel.  1 with *j filled for the next job, 0 to exit.
 */
/* A WMSG_NEXT message with room for one descriptor. */
struct next_msg {
	struct worker_next	 n;
	struct msghdr		 mh;
	struct iovec		 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}			 cbuf;
};

static void
next_msg_init(struct next_msg *x)
{
	memset(x, 0, sizeof(*x));
	x->iov.iov_base = &x->n;
	x->iov.iov_len = sizeof(x->n);
	x->mh.msg_iov = &x->iov;
	x->mh.msg_iovlen = 1;
	x->mh.msg_control = x->cbuf.buf;
	x->mh.msg_controllen = sizeof(x->cbuf.buf);
}

static int
worker_next_job(struct job *j)
{
	struct next_msg		 x;
	struct worker_next	*n = &x.n;
	struct cmsghdr		*cm;
	struct buf		 b;
	int			 fd = -1, mfd;

	next_msg_init(&x);
	if (recvmsg(WORKER_CHAN_FD, &x.mh, MSG_CMSG_CLOEXEC) != (ssize_t)sizeof(*n) ||
	    n->type != WMSG_NEXT)
		return 0;
	for (cm = CMSG_FIRSTHDR(&x.mh); cm; cm = CMSG_NXTHDR(&x.mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	if (fd == -1 || dup2(fd, WORKER_JOBDIR_FD) == -1)
		return 0;
	close(fd);
	/* The manifest as accepted lies in the job's folder. */
	buf_init(&b);
	if ((mfd = openat(WORKER_JOBDIR_FD, "manifest.json", O_RDONLY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    read_file_fd(mfd, MANIFEST_MAX_SIZE, &b) == -1) {
		if (mfd != -1)
			close(mfd);
		buf_free(&b);
		return 0;
	}
	close(mfd);
	free(j->packet_id);
	free(j->manifest);
	free(j->remote_id);
	memset(j, 0, sizeof(*j));
	j->id = n->job_id;
	j->created_at = n->created_at;
	n->packet_id[sizeof(n->packet_id) - 1] = '\0';
	j->packet_id = xstrdup(n->packet_id);
	j->attempts = n->attempts;
	n->remote_id[sizeof(n->remote_id) - 1] = '\0';
	if (n->remote_id[0]) {
		j->remote_id = xstrdup(n->remote_id);
		j->state = JOB_AWAITING;
	} else
		j->state = JOB_RENDERING;
	j->manifest = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return 1;
}

static void
worker_output_close(struct worker_output *o)
{
	for (size_t i = 0; i < o->nfiles; i++)
		if (o->files && o->files[i].fd > 0)
			close(o->files[i].fd);
	free(o->files);
	free(o->hex);
	free(o->names);
	memset(o, 0, sizeof(*o));
}

/* Debug level only: the stages of a delivered job, in milliseconds. */
static void
worker_times_log(const struct job *j)
{
	log_debug("job %lld: worker %.1f ms: check %.1f, prepare %.1f, renderer "
	    "%.1f (sandboxed %.1f after fork; documents %.1f, cover %.1f, save "
	    "%.1f, gate %.1f), output %.1f, wait for the attempt's record %.1f, "
	    "send %.1f", (long long)j->id, (double)(now_us() - wt.start) / 1e3,
	    (double)wt.check / 1e3, (double)wt.prepare / 1e3,
	    (double)wt.render / 1e3, (double)wt.ready / 1e3,
	    (double)wt.r.docs_us / 1e3, (double)wt.r.cover_us / 1e3,
	    (double)wt.r.save_us / 1e3, (double)wt.r.gate_us / 1e3,
	    (double)wt.output / 1e3, (double)wt.go / 1e3, (double)wt.send / 1e3);
}

static void __attribute__((noreturn))
worker_main(const struct job *first, enum worker_mode mode,
    struct transport_instance *ti, const struct recipient *r)
{
	static struct worker_output	 out;
	static struct worker_parsed	 parsed;
	static struct job		 next;
	static const struct job		*j;
	char				 err[TRANSPORT_DETAIL_MAX] = "";

	prctl(PR_SET_NAME, "roigate-worker");
	j = first;
	if (sender_start(ti, r, err, sizeof(err)) == -1) {
		if (sigsetjmp(worker_job_end, 1) == 0)
			worker_fail(WORKER_CHAN_FD, TRANSPORT_TEMPFAIL, "transport %s "
			    "could not start: %.300s", ti->name, err);
		_exit(0);
	}
	for (;;) {
		memset(&out, 0, sizeof(out));
		memset(&wt, 0, sizeof(wt));
		wt.start = now_us();
		if (sigsetjmp(worker_job_end, 1) == 0) {
			worker_job(j, mode, ti, r, &out, &parsed);
			if (mode == WORKER_DELIVER)
				worker_times_log(j);
		}
		worker_output_close(&out);
		worker_parsed_free(&parsed);
		if (sender_gone || !worker_next_job(&next))
			break;
		j = &next;
	}
	/* Closing the channel tells the sender to shut its transport down. */
	_exit(0);
}

/* In the child: only stdio, the job folder (none for a probe: /dev/null
 * holds its place) and the channel stay open.  No process the worker
 * starts gains privileges (set-user-id programs, file capabilities). */
static void
worker_setup_child(int jobdirfd, int chan, pid_t parent)
{
	sigset_t	 none;
	int		 hj, hc;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		_exit(1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (jobdirfd == -1)
		jobdirfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	hj = fcntl(jobdirfd, F_DUPFD, 1000);
	hc = fcntl(chan, F_DUPFD, 1000);
	if (hj == -1 || hc == -1 || dup2(hj, WORKER_JOBDIR_FD) == -1 ||
	    dup2(hc, WORKER_CHAN_FD) == -1)
		_exit(1);
	close_range(WORKER_CHAN_FD + 1, ~0U, 0);
}

/* roictl recipient verify: the transport's probe(), sandboxed as a
 * sender is. */
static void __attribute__((noreturn))
worker_probe_main(struct transport_instance *ti, const struct recipient *r)
{
	struct transport_recipient	 tr;
	struct transport_param		*params;
	struct sandbox_state		 ss;
	struct worker_probe_msg		 m;
	const char			**rd, **wr;
	size_t				 np;
	char				 err[TRANSPORT_DETAIL_MAX] = "";

	memset(&m, 0, sizeof(m));
	worker_recipient(r, &tr, &params, &np);
	sender_paths(ti, params, np, &rd, &wr);
	if (sandbox_enter_sender(rd, wr, &ss, err, sizeof(err)) == -1 ||
	    ti->backend->init(ti->state, err, sizeof(err)) == -1)
		snprintf(m.probe.detail, sizeof(m.probe.detail), "transport %s could "
		    "not start: %.300s", ti->name, err);
	else
		m.ok = ti->backend->probe(ti->state, &tr, &m.probe) == 0;
	m.probe.param[sizeof(m.probe.param) - 1] = '\0';
	m.probe.value[sizeof(m.probe.value) - 1] = '\0';
	m.probe.detail[sizeof(m.probe.detail) - 1] = '\0';
	(void)!write(WORKER_CHAN_FD, &m, sizeof(m));
	free(rd);
	free(wr);
	worker_params_free(params, np);
	ti->backend->shutdown(ti->state);
	_exit(0);
}

int
worker_send_next(int chan, const struct job *j, int jobdirfd)
{
	struct next_msg		 x;
	struct cmsghdr		*cm;

	next_msg_init(&x);
	x.n.type = WMSG_NEXT;
	x.n.attempts = j->attempts;
	x.n.job_id = j->id;
	x.n.created_at = j->created_at;
	if (j->state == JOB_AWAITING && j->remote_id)
		strlcpy_(x.n.remote_id, j->remote_id, sizeof(x.n.remote_id));
	strlcpy_(x.n.packet_id, j->packet_id, sizeof(x.n.packet_id));
	cm = CMSG_FIRSTHDR(&x.mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &jobdirfd, sizeof(int));
	return sendmsg(chan, &x.mh, MSG_NOSIGNAL) == (ssize_t)sizeof(x.n) ? 0 : -1;
}

pid_t
worker_probe(struct transport_instance *ti, const struct recipient *r, int *chan)
{
	int	sv[2];
	pid_t	pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	switch ((pid = fork())) {
	case -1:
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		worker_setup_child(-1, sv[1], parent);
		worker_probe_main(ti, r);
	default:
		break;
	}
	close(sv[1]);
	*chan = sv[0];
	return pid;
}

pid_t
worker_start(const struct job *j, enum worker_mode mode,
    struct transport_instance *ti, const struct recipient *r, int jobdirfd,
    int *chan)
{
	int	sv[2];
	pid_t	pid, parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("job %lld: socketpair", (long long)j->id);
		return -1;
	}
	switch ((pid = fork())) {
	case -1:
		log_warn("job %lld: fork", (long long)j->id);
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		worker_setup_child(jobdirfd, sv[1], parent);
		worker_main(j, mode, ti, r);
	default:
		break;
	}
	close(sv[1]);
	*chan = sv[0];
	return pid;
}
