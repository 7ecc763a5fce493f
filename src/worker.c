/*
 * The worker: one child process per job, forked by the daemon's queue.
 * It checks the packet again (hashes, policy), renders the output (one
 * PDF: cover sheet, every page re-rendered with its redactions burned in;
 * src/render.c), reports the redactions and the output's hash and pages,
 * waits for the daemon to log the attempt, and then hands the output to
 * the transport plugin.
 *
 * The worker never opens the database and never sees a path it could
 * use with the daemon's other rights: it inherits the job's folder as a
 * file descriptor and talks to the daemon over a SOCK_SEQPACKET pair with
 * fixed-size messages.  It dies with the daemon (PR_SET_PDEATHSIG).
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "policy.h"
#include "render.h"
#include "roigated.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

#define WORKER_JOBDIR_FD	3
#define WORKER_CHAN_FD		4

struct worker_output {
	struct transport_file	*files;
	char			(*hex)[65];
	char			(*names)[80];
	size_t			 nfiles;
	uint32_t		 pages;
	char			 sha256[65];
	char			 gate[256];	/* what the leak gate checked */
};

/* What a job parsed: the manifest (PHI) and the recipient's parameters.
 * Kept where worker_main frees it after every job, also when
 * worker_fail() jumps out of the middle of one. */
struct worker_parsed {
	struct manifest		*mf;
	struct transport_param	*params;
	size_t			 nparams;
	struct errlist		 errs;
	char			*why;	/* errs joined, for the daemon */
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
		o->files[i].fd = fd;
		o->files[i].name = d->file;
		o->files[i].content_type = worker_content_type(d->file);
		o->files[i].size = st.st_size;
		o->files[i].sha256 = o->hex[i];
	}
}

/*
 * Render the packet into one PDF (src/render.c) and make it the one file
 * the transport sends.  Each redaction applied goes to the daemon, which
 * records it with the attempt.
 */
static void
worker_render(int chan, const struct job *j, const struct manifest *mf,
    const struct transport_instance *ti, const struct recipient *r,
    struct worker_output *o)
{
	struct render_opts	 opts;
	struct render_cover	 cover;
	struct render_result	 res;
	struct worker_msg	 m;
	struct stat		 st;
	char			 tpl[4096], why[200];
	int			 fd;

	/* The documents were checked against their hashes; render reads them
	 * again by name from the job's private folder. */
	worker_output_close(o);
	render_opts_from_config(rg->conf, ti->profile, &opts);
	if (render_template_path(rg->conf, mf->cover_template, tpl, sizeof(tpl),
	    why, sizeof(why)) == -1)
		worker_fail(chan, TRANSPORT_PERMFAIL, "%s", why);
	memset(&cover, 0, sizeof(cover));
	cover.template_path = tpl;
	cover.org_name = rg->conf->organization;
	cover.org_address = rg->conf->organization_address;
	cover.org_phone = rg->conf->organization_phone;
	cover.org_fax = rg->conf->organization_fax;
	cover.logo = rg->conf->logo;
	cover.to_name = r->name;
	cover.to_organization = r->organization;
	cover.to_address = r->address;
	/* The date the packet was accepted, not the hour of this attempt: a
	 * job renders to the same bytes every time, so a retry can recognize
	 * what an interrupted attempt already delivered. */
	cover.now = j->created_at;
	if (render_packet(mf, WORKER_JOBDIR_FD, WORKER_OUTPUT, &opts, &cover,
	    &res) == -1) {
		render_result_free(&res);
		if (res.admin)
			worker_hold(chan, "%s; held until an administrator fixes it "
			    "and releases the job", res.err);
		if (res.tempfail)
			worker_fail(chan, TRANSPORT_TEMPFAIL, "%s", res.err);
		/* The packet itself: it cannot go as it is, and its packet_id is
		 * used up; say what the clerk does next. */
		worker_fail(chan, TRANSPORT_PERMFAIL, "%s. Nothing was sent: correct "
		    "the packet (or get a good copy of the document) and send it "
		    "again under a new packet_id", res.err);
	}
	for (size_t i = 0; i < res.nred; i++) {
		memset(&m, 0, sizeof(m));
		m.type = WMSG_REDACTION;
		m.red = res.red[i];
		worker_send(chan, &m);
	}
	render_result_free(&res);

	fd = openat(WORKER_JOBDIR_FD, WORKER_OUTPUT, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1)
		worker_fail(chan, TRANSPORT_TEMPFAIL, "the rendered output cannot be "
		    "opened: %s", strerror(errno));
	o->files = xcalloc(1, sizeof(*o->files));
	o->hex = xcalloc(1, sizeof(*o->hex));
	o->names = xcalloc(1, sizeof(*o->names));
	o->nfiles = 1;
	snprintf(o->names[0], sizeof(o->names[0]), "%s.pdf", j->packet_id);
	strlcpy_(o->hex[0], res.sha256, sizeof(o->hex[0]));
	o->files[0].fd = fd;
	o->files[0].name = o->names[0];
	o->files[0].content_type = "application/pdf";
	o->files[0].size = st.st_size;
	o->files[0].sha256 = o->hex[0];
	o->pages = (uint32_t)res.pages;
	strlcpy_(o->sha256, res.sha256, sizeof(o->sha256));
	strlcpy_(o->gate, res.gate, sizeof(o->gate));
}

static void
worker_message(const struct job *j, const struct manifest *mf,
    const struct transport_recipient *tr, const struct worker_output *o,
    struct transport_message *msg)
{
	memset(msg, 0, sizeof(*msg));
	msg->job_id = (uint64_t)j->id;
	msg->packet_id = j->packet_id;
	msg->request_ref = mf->request_id;
	msg->purpose = mf->purpose;
	msg->recipient = tr;
	msg->files = o->files;
	msg->nfiles = o->nfiles;
	msg->pages = o->pages;
	msg->attempt = j->attempts + 1;
	msg->instance = rg->instance;
	msg->accepted_at = j->created_at;
}

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

/* tr points into r and into wp, which owns the parameters. */
static void
worker_recipient(const struct recipient *r, struct transport_recipient *tr,
    struct worker_parsed *wp)
{
	memset(tr, 0, sizeof(*tr));
	tr->id = r->id;
	tr->name = r->name;
	tr->organization = r->organization;
	tr->address = r->address;
	wp->params = worker_params(r->params, &wp->nparams);
	tr->params = wp->params;
	tr->nparams = wp->nparams;
}

static void
worker_parsed_free(struct worker_parsed *wp)
{
	manifest_free(wp->mf);
	worker_params_free(wp->params, wp->nparams);
	errlist_free(&wp->errs);
	free(wp->why);
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
	struct transport_recipient	 tr;
	struct transport_message	 msg;
	struct worker_msg		 m;
	char				 go;
	int				 chan = WORKER_CHAN_FD;

	mf = wp->mf = manifest_parse(j->manifest, strlen(j->manifest), &wp->errs);
	if (mf == NULL)
		worker_fail(chan, TRANSPORT_PERMFAIL, "stored manifest no longer "
		    "parses: %.200s", wp->errs.n ? wp->errs.msg[0] : "unknown error");
	worker_recipient(r, &tr, wp);

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
		worker_render(chan, j, mf, ti, r, out);
	}
	worker_message(j, mf, &tr, out, &msg);

	memset(&m, 0, sizeof(m));
	if (mode == WORKER_DELIVER) {
		m.type = WMSG_RENDERED;
		m.pages = out->pages;
		strlcpy_(m.sha256, out->sha256, sizeof(m.sha256));
		strlcpy_(m.gate, out->gate, sizeof(m.gate));
		worker_send(chan, &m);
		/* Nothing leaves before the daemon has logged the attempt. */
		if (read(chan, &go, 1) != 1 || go != WORKER_GO)
			_exit(0);
		m.status = ti->backend->deliver(ti->state, &msg, &m.receipt);
	} else if (ti->backend->poll == NULL)
		worker_fail(chan, TRANSPORT_PERMFAIL, "transport %s cannot confirm "
		    "deliveries; check with the recipient", ti->name);
	else
		m.status = ti->backend->poll(ti->state, &msg, j->remote_id, &m.receipt);
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

static void __attribute__((noreturn))
worker_main(const struct job *first, enum worker_mode mode,
    struct transport_instance *ti, const struct recipient *r)
{
	static struct worker_output	 out;
	static struct worker_parsed	 parsed;
	static struct job		 next;
	static const struct job		*j;
	char				 err[TRANSPORT_DETAIL_MAX] = "";

	j = first;
	if (ti->backend->init(ti->state, err, sizeof(err)) == -1) {
		if (sigsetjmp(worker_job_end, 1) == 0)
			worker_fail(WORKER_CHAN_FD, TRANSPORT_TEMPFAIL, "transport %s "
			    "could not start: %.300s", ti->name, err);
		_exit(0);
	}
	for (;;) {
		memset(&out, 0, sizeof(out));
		if (sigsetjmp(worker_job_end, 1) == 0)
			worker_job(j, mode, ti, r, &out, &parsed);
		worker_output_close(&out);
		worker_parsed_free(&parsed);
		if (!worker_next_job(&next))
			break;
		j = &next;
	}
	ti->backend->shutdown(ti->state);
	_exit(0);
}

/* In the child: only stdio, the job folder (none for a probe: /dev/null
 * holds its place) and the channel stay open. */
static void
worker_setup_child(int jobdirfd, int chan, pid_t parent)
{
	sigset_t	 none;
	int		 hj, hc;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (jobdirfd == -1)
		jobdirfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	hj = fcntl(jobdirfd, F_DUPFD, 1000);
	hc = fcntl(chan, F_DUPFD, 1000);
	if (hj == -1 || hc == -1 || dup2(hj, WORKER_JOBDIR_FD) == -1 ||
	    dup2(hc, WORKER_CHAN_FD) == -1)
		_exit(1);
	close_range(WORKER_CHAN_FD + 1, ~0U, 0);
}

static void __attribute__((noreturn))
worker_probe_main(struct transport_instance *ti, const struct recipient *r)
{
	struct transport_recipient	tr;
	struct worker_parsed		wp;
	struct worker_probe_msg		m;
	char				err[TRANSPORT_DETAIL_MAX] = "";

	memset(&m, 0, sizeof(m));
	memset(&wp, 0, sizeof(wp));
	worker_recipient(r, &tr, &wp);
	if (ti->backend->init(ti->state, err, sizeof(err)) == -1)
		snprintf(m.probe.detail, sizeof(m.probe.detail), "transport %s could "
		    "not start: %.300s", ti->name, err);
	else
		m.ok = ti->backend->probe(ti->state, &tr, &m.probe) == 0;
	m.probe.param[sizeof(m.probe.param) - 1] = '\0';
	m.probe.value[sizeof(m.probe.value) - 1] = '\0';
	m.probe.detail[sizeof(m.probe.detail) - 1] = '\0';
	(void)!write(WORKER_CHAN_FD, &m, sizeof(m));
	worker_parsed_free(&wp);
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
