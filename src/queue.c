/*
 * The queue manager (daemon): the job state machine and its scheduler.
 *
 *   queued/deferred --(worker started)--> rendering
 *   rendering --(output hash reported; "attempt" logged)--> sending
 *   sending --OK--> delivered | --OK pending--> awaiting_confirmation
 *           --TEMPFAIL--> deferred (backoff) or failed (too many, too old)
 *           --PERMFAIL--> failed (or held when the transport asks)
 *   awaiting_confirmation --(poll)--> delivered | deferred | failed | held
 *
 * Like Postfix's qmgr and its delivery agents: the worker does the work,
 * the queue manager alone records it.  Every state change of a send is
 * committed in the same transaction as its disclosure-log entry, and the
 * "attempt" entry is committed before the worker is allowed to send.  A
 * worker that crashes, hangs or answers nothing counts as TEMPFAIL.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerts.h"
#include "backoff.h"
#include "config.h"
#include "disclosure.h"
#include "intake.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "metrics.h"
#include "queue.h"
#include "roigated.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "window.h"
#include "worker.h"

struct run {
	struct job		 job;
	struct recipient	 rcpt;
	struct manifest		*mf;
	struct transport_instance *ti;
	enum worker_mode	 mode;
	pid_t			 pid;
	int			 chan;
	struct loop_fd		*lf;
	struct loop_timer	*timeout;
	int			 logged_attempt;	/* "attempt" committed */
	int			 done;			/* outcome handled */
	int			 exited;
	int			 interrupted;		/* killed by shutdown */
	int			 batch;			/* jobs its worker did before */
	int			 gone;			/* its worker process has ended */
	int64_t			 started_ms;		/* now_ms() when it began */
	uint32_t		 pages;
	char			 sha256[65];
	struct store_redaction	*red;			/* what the worker reported */
	size_t			 nred, redcap;
	/* An outcome the database could not take yet (busy, full): kept
	 * here and recorded again on a backoff, never lost or replaced. */
	int			 pending;
	enum transport_status	 pst;
	struct transport_receipt prc;
	char			*perr;
	struct loop_timer	*retry;
	int64_t			 retry_ms;
	struct run		*next;
};

/* Redactions one job may report (a packet of 2,000 pages with a few boxes
 * each fits). */
#define QUEUE_MAX_REDACTIONS	100000

/* Jobs one worker may do in a row for the same recipient. */
#define QUEUE_BATCH_MAX		32

static struct run		*runs;
static int			 nruns;
static struct loop_timer	*wake;
static struct loop_timer	*grace;
static void			(*drained)(void);

static void	queue_reap(int, void *);
static void	queue_hold_transport(const char *, const char *);
static int	queue_running_job(int64_t);
static int	queue_finish(struct run *, enum transport_status,
		    const struct transport_receipt *, const char *);

void
queue_init(void)
{
	wake = loop_timer_new((loop_timer_cb)queue_kick, NULL);
	loop_signal(SIGCHLD, queue_reap, NULL);
}

int
queue_running(void)
{
	return nruns;
}

void
queue_running_for(const char *recipient_id, const char *transport,
    int64_t except, int *for_recipient, int *for_transport)
{
	*for_recipient = *for_transport = 0;
	for (struct run *r = runs; r; r = r->next) {
		if (r->done || r->job.id == except || r->mode != WORKER_DELIVER ||
		    r->ti == NULL)
			continue;
		if (strcmp(r->ti->name, transport) == 0) {
			(*for_transport)++;
			if (r->rcpt.id && strcmp(r->rcpt.id, recipient_id) == 0)
				(*for_recipient)++;
		}
	}
}

/* Fill the disclosure fields that every entry of a job shares. */
static void
queue_disclosure(const struct run *r, const char *outcome, const char *detail,
    const char *remote_id, struct disclosure *d)
{
	static char	 empty[] = "";
	const struct manifest *m = r->mf;

	memset(d, 0, sizeof(*d));
	d->job_id = r->job.id;
	d->packet_id = r->job.packet_id;
	d->mrn = m->patient_mrn;
	d->patient_name = m->patient_name;
	d->recipient_id = r->rcpt.id;
	d->recipient_name = r->rcpt.name;
	d->recipient_address = r->rcpt.address;
	d->description = manifest_describe(m);
	d->purpose = m->purpose;
	d->basis = (char *)basis_name(m->basis);
	d->authorization_id = m->authorization ? m->authorization->id : empty;
	d->transport = r->ti ? r->ti->name : r->rcpt.transport;
	d->remote_id = remote_id ? (char *)remote_id : empty;
	d->outcome = (char *)outcome;
	d->detail = detail ? (char *)detail : empty;
	d->pages = (int)r->pages;
	d->output_sha256 = r->sha256[0] ? (char *)r->sha256 : empty;
	d->accountable = disclosure_accountable(d->basis);
}

/* Append one disclosure entry; inside the caller's transaction. */
static int
queue_log(const struct run *r, const char *outcome, const char *detail,
    const char *remote_id)
{
	struct disclosure	d;
	int			rv;

	queue_disclosure(r, outcome, detail, remote_id, &d);
	rv = disclosure_append(rg->store, &d);
	free(d.description);
	return rv;
}

static int
queue_commit_or_rollback(int rv)
{
	if (rv == 0 && store_commit(rg->store) == 0) {
		daemon_problem_clear(PROBLEM_STORE);
		return 0;
	}
	daemon_problem(PROBLEM_STORE, "cannot write the database: %.200s",
	    store_errmsg(rg->store));
	store_rollback(rg->store);
	return -1;
}

/* Stop listening to the run's worker and close its channel (it exits). */
static void
run_close_chan(struct run *r)
{
	if (r->lf) {
		loop_fd_del(r->lf);
		r->lf = NULL;
	}
	if (r->chan != -1) {
		close(r->chan);
		r->chan = -1;
	}
}

static void
run_free(struct run *r)
{
	struct run	**pp;

	for (pp = &runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	nruns--;
	if (r->lf)
		loop_fd_del(r->lf);
	if (r->chan != -1)
		close(r->chan);
	loop_timer_free(r->timeout);
	loop_timer_free(r->retry);
	free(r->perr);
	manifest_free(r->mf);
	free(r->red);
	job_free(&r->job);
	recipient_free(&r->rcpt);
	free(r);
}

/*
 * Keep what is sent: archive/INSTANCE-JOB-ATTEMPT.pdf, a hard link to the output
 * in the job's folder (same file system; the renderer made it readable by
 * the daemon's user only).  Files older than [retention] archive are removed
 * by src/retention.c.  -1 (and nothing is sent) if it cannot be kept.
 */
/* The worker's rendered output in job id's folder. */
static void
queue_output_path(int64_t id, char *path, size_t len)
{
	snprintf(path, len, "%s/jobs/%lld/%s", rg->conf->state_dir, (long long)id,
	    WORKER_OUTPUT);
}

/* Are the files at a and b the same bytes? */
static int
same_file_content(const char *a, const char *b)
{
	char	ha[65], hb[65];
	int	fa, fb, rv = 0;

	fa = open(a, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	fb = open(b, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fa != -1 && fb != -1 && sha256_fd(fa, ha, NULL) == 0 &&
	    sha256_fd(fb, hb, NULL) == 0)
		rv = strcmp(ha, hb) == 0;
	if (fa != -1)
		close(fa);
	if (fb != -1)
		close(fb);
	return rv;
}

static int
queue_archive(struct run *r)
{
	char	from[PATH_MAX], to[PATH_MAX];
	int	n = 0;

	if (rg->conf->archive_retention_ms == 0)
		return 0;
	queue_output_path(r->job.id, from, sizeof(from));
	/* Never over a copy already kept: one of this attempt, cut off before
	 * it was logged, is the same bytes (a job renders the same on every
	 * attempt); anything else gets a name of its own. */
	for (;;) {
		if (n == 0)
			snprintf(to, sizeof(to), "%s/archive/%s-%lld-%d.pdf",
			    rg->conf->state_dir, rg->instance, (long long)r->job.id,
			    r->job.attempts + 1);
		else
			snprintf(to, sizeof(to), "%s/archive/%s-%lld-%d.%d.pdf",
			    rg->conf->state_dir, rg->instance, (long long)r->job.id,
			    r->job.attempts + 1, n);
		if (link(from, to) == 0)
			return 0;
		if (errno != EEXIST || n++ > 100)
			break;
		if (same_file_content(from, to))
			return 0;
	}
	log_warn("job %lld: cannot keep a copy of the output in archive/; "
	    "not sending", (long long)r->job.id);
	daemon_problem(PROBLEM_QUEUE, "cannot write to %s/archive: %s",
	    rg->conf->state_dir, strerror(errno));
	return -1;
}

/*
 * The rendered output has served its attempt once the outcome is recorded:
 * the copy that stays is the archive's, for archive_retention only; a
 * retry renders the same bytes again.
 */
static void
queue_drop_output(int64_t id)
{
	char	path[PATH_MAX];

	queue_output_path(id, path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		log_warn("job %lld: cannot remove %s", (long long)id, path);
}

/* The worker rendered the output: log the attempt, then let it send. */
static void
queue_rendered(struct run *r, const struct worker_msg *m)
{
	struct job_update	u = JOB_UPDATE_NONE;
	char			go = WORKER_GO, reason[400], gate[300];
	int			rv;

	r->pages = m->pages;
	strlcpy_(r->sha256, m->sha256, sizeof(r->sha256));
	u.output_sha256 = r->sha256;
	u.pages = (int)r->pages;
	/* What the leak gate read back before this send (names of patterns,
	 * never text), on the job's event and the attempt's log entry. */
	snprintf(gate, sizeof(gate), "leak gate: %.*s", (int)sizeof(m->gate) - 1,
	    m->gate[0] ? m->gate : "did not run");
	snprintf(reason, sizeof(reason), "attempt %d by %s; %s",
	    r->job.attempts + 1, r->ti->name, gate);
	if (strncmp(m->gate, "off", 3) == 0)
		daemon_problem(PROBLEM_QUEUE, "[render] verify = off: outputs are "
		    "sent unchecked (no leak gate)");
	/* A copy of exactly what is about to be sent, before it is sent. */
	if (queue_archive(r) == -1) {
		kill(r->pid, SIGKILL);
		return;
	}
	rv = store_begin(rg->store);
	if (rv == 0)
		rv = store_redactions_set(rg->store, r->job.id, r->job.attempts + 1,
		    r->red, r->nred < QUEUE_MAX_REDACTIONS ? r->nred :
		    QUEUE_MAX_REDACTIONS);
	if (rv == 0)
		rv = queue_log(r, "attempt", gate, NULL);
	if (rv == 0)
		rv = store_job_set_state(rg->store, r->job.id, JOB_SENDING, &u,
		    "daemon", reason);
	if (queue_commit_or_rollback(rv) == -1) {
		/* Not logged, so not sent: the worker exits when the channel closes. */
		log_warnx("job %lld: cannot log the attempt; not sending",
		    (long long)r->job.id);
		kill(r->pid, SIGKILL);
		return;
	}
	r->logged_attempt = 1;
	metrics_job_rendered(r->ti->name, r->pages, now_ms() - r->started_ms);
	if (send(r->chan, &go, 1, MSG_NOSIGNAL) != 1)
		log_warn("job %lld: cannot signal the worker", (long long)r->job.id);
	test_crashpoint("queue_after_attempt");
}

static void
queue_chan_read(int fd, uint32_t events, void *arg)
{
	struct run		*r = arg;
	struct worker_msg	 m;
	ssize_t			 n;

	n = recv(fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(m)) {
		/* EOF or garbage: wait for the exit status to decide. */
		loop_fd_del(r->lf);
		r->lf = NULL;
		return;
	}
	m.error[sizeof(m.error) - 1] = '\0';
	m.sha256[sizeof(m.sha256) - 1] = '\0';
	if (m.type == WMSG_REDACTION && r->mode == WORKER_DELIVER &&
	    !r->logged_attempt) {
		if (r->nred == QUEUE_MAX_REDACTIONS) {
			log_warnx("job %lld: more than %d redactions; the job's record "
			    "lists the first %d", (long long)r->job.id,
			    QUEUE_MAX_REDACTIONS, QUEUE_MAX_REDACTIONS);
			r->nred++;	/* said once */
		} else if (r->nred < QUEUE_MAX_REDACTIONS) {
			if (r->nred == r->redcap) {
				r->redcap = r->redcap ? r->redcap * 2 : 64;
				r->red = xreallocarray(r->red, r->redcap, sizeof(*r->red));
			}
			m.red.pattern[sizeof(m.red.pattern) - 1] = '\0';
			r->red[r->nred++] = m.red;
		}
	} else if (m.type == WMSG_RENDERED && r->mode == WORKER_DELIVER &&
	    !r->logged_attempt)
		queue_rendered(r, &m);
	else if (m.type == WMSG_RESULT && !r->done) {
		test_crashpoint("queue_before_outcome");
		queue_finish(r, (enum transport_status)m.status, &m.receipt,
		    m.error[0] ? m.error : NULL);
	}
}

static void
queue_timeout(void *arg)
{
	struct run	*r = arg;

	log_warnx("job %lld: worker gave no answer within the job timeout; "
	    "killing it", (long long)r->job.id);
	kill(r->pid, SIGKILL);
}

/* Defer without counting an attempt (our own trouble, not the transport's). */
static int
queue_postpone(const struct job *j, const char *why)
{
	struct job_update	u = JOB_UPDATE_NONE;

	u.next_at = now_wall_ms() + rg->conf->backoff_base_ms;
	u.last_error = why;
	if (store_begin(rg->store) == -1)
		return -1;
	return queue_commit_or_rollback(store_job_set_state(rg->store, j->id,
	    j->state == JOB_AWAITING ? JOB_AWAITING : JOB_DEFERRED, &u,
	    "daemon", why));
}

/* A limit says not yet (src/window.c): the job keeps its state and waits
 * until `until` with the reason; no attempt is counted.  The same reason
 * again only moves the time (no new event). */
static void
queue_wait(const struct job *j, int64_t until, const char *why)
{
	struct job_update	u = JOB_UPDATE_NONE;

	until *= 1000;		/* window.c speaks seconds, next_at milliseconds */
	if (j->last_error && strcmp(j->last_error, why) == 0) {
		store_job_set_next(rg->store, j->id, until);
		return;
	}
	u.next_at = until;
	u.last_error = why;
	if (store_begin(rg->store) == 0)
		queue_commit_or_rollback(store_job_set_state(rg->store, j->id,
		    j->state, &u, "daemon", why));
}

/* Set a job aside for an administrator, with the reason. */
static int
queue_hold_for_admin(const struct job *j, const char *why)
{
	struct job_update	u = JOB_UPDATE_NONE;

	u.last_error = why;
	log_warnx("job %lld held: %s", (long long)j->id, why);
	if (store_begin(rg->store) == -1)
		return -1;
	return queue_commit_or_rollback(store_job_set_state(rg->store, j->id,
	    JOB_HELD, &u, "daemon", why));
}

/*
 * Jobs that are due but cannot start for the daemon's own trouble (the
 * database busy or full, fork failing) wait on a backoff, the cause a
 * problem in "roictl status"; the loop never spins on them.
 */
static int64_t	start_backoff_ms, start_blocked_until;

static void
queue_cannot_start(const char *why)
{
	start_backoff_ms = start_backoff_ms ? start_backoff_ms * 2 : 1000;
	if (start_backoff_ms > 60000)
		start_backoff_ms = 60000;
	start_blocked_until = now_ms() + start_backoff_ms;
	daemon_problem(PROBLEM_QUEUE, "jobs cannot start: %.200s (tried again "
	    "on a backoff of up to a minute)", why);
}

static void
queue_can_start(void)
{
	if (start_backoff_ms == 0)
		return;
	start_backoff_ms = start_blocked_until = 0;
	daemon_problem_clear(PROBLEM_QUEUE);
}

static int
queue_prepare(struct run *r, char *why, size_t whylen)
{
	struct errlist	errs = { NULL, 0 };
	int		rv;

	rv = store_recipient_get(rg->store, r->job.recipient_id, &r->rcpt);
	if (rv != 1) {
		bsnprintf(why, whylen, "recipient %.64s is no longer in the directory",
		    r->job.recipient_id);
		return -1;
	}
	if (r->rcpt.disabled || !r->rcpt.verified) {
		bsnprintf(why, whylen, "recipient %.64s is %s", r->rcpt.id,
		    r->rcpt.disabled ? "disabled" : "not verified");
		return -1;
	}
	r->mf = manifest_parse(r->job.manifest, strlen(r->job.manifest), &errs);
	if (r->mf == NULL) {
		bsnprintf(why, whylen, "stored manifest does not parse: %.200s",
		    errs.n ? errs.msg[0] : "");
		errlist_free(&errs);
		return -1;
	}
	return 0;
}

/* A run for one due job, its recipient checked and its state moved on:
 * the run (counted in nruns) with *dirfd the job's folder, or NULL. */
static struct run *
queue_new_run(const struct job *j, int *dirfd, int *stuck)
{
	struct run		*r = xcalloc(1, sizeof(*r));
	char			 path[PATH_MAX], why[300];
	int64_t			 until;

	r->chan = -1;
	r->next = runs;
	runs = r;
	nruns++;
	r->job = *j;	/* take ownership of the members */
	r->started_ms = now_ms();
	r->mode = j->state == JOB_AWAITING ? WORKER_POLL : WORKER_DELIVER;
	*stuck = 0;
	if (queue_prepare(r, why, sizeof(why)) == -1) {
		*stuck = queue_hold_for_admin(j, why) == -1;
		goto fail;
	}
	if ((r->ti = transport_find(r->rcpt.transport)) == NULL) {
		daemon_problem(PROBLEM_TRANSPORT, "transport \"%.64s\" is not "
		    "configured; jobs for it wait", r->rcpt.transport);
		*stuck = queue_postpone(j, "transport not configured") == -1;
		goto fail;
	}
	if (r->mode == WORKER_DELIVER && window_may_start(&r->rcpt, r->ti,
	    r->mf->cover_urgent, j->id, now_wall(), &until, why, sizeof(why)) == 0) {
		queue_wait(j, until, why);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/jobs/%lld", rg->conf->state_dir,
	    (long long)j->id);
	if ((*dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(why, sizeof(why), "job folder jobs/%lld cannot be opened: %s",
		    (long long)j->id, strerror(errno));
		*stuck = queue_hold_for_admin(j, why) == -1;
		goto fail;
	}
	if (r->mode == WORKER_DELIVER) {
		struct job_update u = JOB_UPDATE_NONE;
		if (store_begin(rg->store) == -1 || queue_commit_or_rollback(
		    store_job_set_state(rg->store, j->id, JOB_RENDERING, &u,
		    "daemon", "worker started")) == -1) {
			close(*dirfd);
			*stuck = 1;
			goto fail;
		}
	} else if (store_job_set_next(rg->store, j->id, now_wall_ms() +
	    rg->conf->job_timeout_ms + 1000) == -1) {
		/* A poll keeps its state: it is not due again while it runs. */
		close(*dirfd);
		*stuck = 1;
		goto fail;
	}
	return r;
fail:
	run_free(r);
	return NULL;
}

/* The run's worker is up (forked, or handed on): watch it. */
static void
queue_watch(struct run *r)
{
	r->lf = loop_fd_add(r->chan, EPOLLIN, queue_chan_read, r);
	r->timeout = loop_timer_new(queue_timeout, r);
	loop_timer_set(r->timeout, rg->conf->job_timeout_ms);
}

/* Fork a worker for a prepared run.  -1: no worker (fork failed). */
static int
queue_spawn(struct run *r, int dirfd)
{
	r->pid = worker_start(&r->job, r->mode, r->ti, &r->rcpt, dirfd, &r->chan);
	close(dirfd);
	if (r->pid == -1) {
		char why[300];
		snprintf(why, sizeof(why), "cannot start a worker process: %s",
		    strerror(errno));
		(void)queue_postpone(&r->job, why);
		run_free(r);
		queue_cannot_start(why);
		return -1;
	}
	queue_watch(r);
	log_debug("job %lld: worker %d started (%s)", (long long)r->job.id,
	    (int)r->pid, r->mode == WORKER_POLL ? "poll" : "deliver");
	return 0;
}

/* Start a worker for one due job.  -1: it could not even be set aside
 * (the daemon's trouble): starting waits on the backoff. */
static int
queue_start(const struct job *j)
{
	struct run	*r;
	int		 dirfd, stuck;

	if ((r = queue_new_run(j, &dirfd, &stuck)) != NULL)
		return queue_spawn(r, dirfd);
	if (stuck) {
		char why[300];
		snprintf(why, sizeof(why), "the database cannot be written: %.200s",
		    store_errmsg(rg->store));
		queue_cannot_start(why);
		return -1;
	}
	return 0;
}

static int
same_recipient(const struct recipient *a, const struct recipient *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->transport, b->transport) == 0 &&
	    strcmp(a->address, b->address) == 0 &&
	    strcmp(a->params ? a->params : "", b->params ? b->params : "") == 0;
}

/*
 * A worker answered for job r.  If another job for the same recipient is
 * due (to send, or to poll for a poll worker), hand it to the same worker
 * (its transport may reuse the connection); otherwise close the channel,
 * and the worker exits.
 */
static void
queue_hand_on(struct run *r)
{
	struct run	*n;
	struct job	 j;
	int64_t		 id;
	int		 dirfd, stuck;

	if (rg->draining || r->gone || r->batch + 1 >= QUEUE_BATCH_MAX ||
	    store_job_due_for(rg->store, now_wall_ms(), r->rcpt.id, r->rcpt.transport,
	    r->mode == WORKER_POLL, &id) != 1 || store_job_get(rg->store, id, &j) != 1)
		goto close;
	if ((n = queue_new_run(&j, &dirfd, &stuck)) == NULL)
		goto close;
	if (n->mode != r->mode || n->ti != r->ti ||
	    !same_recipient(&n->rcpt, &r->rcpt) ||
	    worker_send_next(r->chan, &n->job, dirfd) == -1) {
		(void)queue_spawn(n, dirfd);	/* a fresh worker after all */
		goto close;
	}
	close(dirfd);
	/* The worker is n's now. */
	n->pid = r->pid;
	n->chan = r->chan;
	n->batch = r->batch + 1;
	loop_fd_del(r->lf);
	r->lf = NULL;
	r->chan = -1;
	r->pid = 0;
	r->exited = 1;
	queue_watch(n);
	log_debug("job %lld: handed to worker %d (job %d of its batch)",
	    (long long)n->job.id, (int)n->pid, n->batch + 1);
	return;
close:
	run_close_chan(r);
}

struct due {
	int64_t		*ids;
	size_t		 n;
};

static int
queue_collect(const struct job *j, void *arg)
{
	struct due	*d = arg;

	d->ids = xreallocarray(d->ids, d->n + 1, sizeof(*d->ids));
	d->ids[d->n++] = j->id;
	return 0;
}

static void
queue_arm_wake(void)
{
	int64_t	at;

	switch (store_next_due(rg->store, &at)) {
	case 1: {
		int64_t delay = at - now_wall_ms();
		loop_timer_set(wake, delay < 0 ? 0 : delay);
		break;
	}
	case 0:
		loop_timer_cancel(wake);
		break;
	default:	/* cannot read: look again soon, not at once */
		loop_timer_set(wake, 1000);
	}
}

static int
queue_running_job(int64_t id)
{
	for (struct run *r = runs; r; r = r->next)
		if (r->job.id == id && !r->done)
			return 1;
	return 0;
}

void
queue_kick(void)
{
	struct due	due = { NULL, 0 };
	int		free_slots, stuck = 0;

	if (rg->draining)
		return;
	if (start_blocked_until > now_ms()) {
		loop_timer_set(wake, start_blocked_until - now_ms());
		return;
	}
	free_slots = rg->conf->workers - nruns;
	/* Ask for more than the free slots: a job awaiting confirmation stays
	 * due while its poll runs, and must not get a second worker. */
	if (free_slots > 0 && store_jobs_due(rg->store, now_wall_ms(), free_slots +
	    nruns, queue_collect, &due) == -1) {
		daemon_problem(PROBLEM_STORE, "cannot read the queue: %.200s",
		    store_errmsg(rg->store));
		queue_cannot_start("the queue cannot be read");
		stuck = 1;
	}
	for (size_t i = 0; !stuck && i < due.n && nruns < rg->conf->workers; i++) {
		struct job j;
		if (queue_running_job(due.ids[i]))
			continue;
		if (store_job_get(rg->store, due.ids[i], &j) == 1 &&
		    queue_start(&j) == -1)	/* takes the members */
			stuck = 1;
	}
	free(due.ids);
	if (stuck)
		loop_timer_set(wake, start_blocked_until - now_ms());
	else {
		queue_can_start();
		if (nruns < rg->conf->workers)
			queue_arm_wake();
		else
			loop_timer_cancel(wake);
	}
}

/* A TEMPFAIL: deferred with backoff, or failed when retrying is over. */
static int
queue_tempfail(struct run *r, const struct transport_receipt *rc,
    const char *why, struct job_update *u, enum job_state *to)
{
	int64_t	age_ms = (now_wall() - r->job.created_at) * 1000;
	int	attempts = r->job.attempts + 1;

	u->attempts = attempts;
	if (backoff_exhausted(attempts, rg->conf->max_attempts, age_ms,
	    rg->conf->max_age_ms)) {
		*to = JOB_FAILED;
		return r->logged_attempt ? queue_log(r, "failed", why, rc->remote_id) : 0;
	}
	*to = JOB_DEFERRED;
	u->next_at = now_wall_ms() + backoff_delay(rg->conf->backoff_base_ms,
	    rg->conf->backoff_max_ms, attempts, (int64_t)rc->retry_after * 1000);
	return r->logged_attempt ? queue_log(r, "deferred", why, rc->remote_id) : 0;
}

/* An OK: delivered, or sent and awaiting confirmation. */
static int
queue_ok(struct run *r, const struct transport_receipt *rc, struct job_update *u,
    enum job_state *to)
{
	u->remote_id = rc->remote_id;
	u->last_error = "";
	if (rc->pages)
		u->pages = (int)(r->pages = rc->pages);
	if (!rc->pending) {
		*to = JOB_DELIVERED;
		return queue_log(r, "delivered", rc->detail, rc->remote_id);
	}
	*to = JOB_AWAITING;
	if (r->mode == WORKER_DELIVER) {
		u->sent_at = now_wall();
		u->next_at = now_wall_ms() + rg->conf->poll_base_ms;
		return queue_log(r, "sent", rc->detail, rc->remote_id);
	}
	/* Still no final word from the remote side. */
	if ((now_wall() - r->job.sent_at) * 1000 > rg->conf->confirm_timeout_ms) {
		*to = JOB_HELD;
		u->last_error = "no final status from the transport within "
		    "confirm_timeout: check with the provider before resending";
		return 0;
	}
	u->next_at = now_wall_ms() + backoff_delay(rg->conf->poll_base_ms,
	    rg->conf->backoff_max_ms, r->job.attempts + 1, 0);
	return 0;
}

/* Record a worker's outcome: job state and disclosure entry, one transaction. */
static void
queue_check_drained(void)
{
	if (rg->draining && nruns == 0 && drained) {
		void (*cb)(void) = drained;
		loop_timer_cancel(grace);
		drained = NULL;
		cb();
	}
}

static void
queue_outcome_retry(void *arg)
{
	struct run	*r = arg;

	(void)queue_finish(r, r->pst, &r->prc, r->perr);
}

/*
 * The outcome of a send could not be written (the database busy or full).
 * It is what happened, so it is kept and written again on a backoff: the
 * job stays "sending" meanwhile and is not started again.  Its worker is
 * let go (it has nothing more to say).  Should the daemon stop first,
 * recovery finds the job "sending" and logs the attempt interrupted.
 */
static void
queue_outcome_later(struct run *r, enum transport_status st,
    const struct transport_receipt *rc, const char *error)
{
	if (!r->pending) {
		r->pending = 1;
		r->pst = st;
		r->prc = *rc;
		r->perr = error ? xstrdup(error) : NULL;
		r->retry = loop_timer_new(queue_outcome_retry, r);
		loop_timer_cancel(r->timeout);
		run_close_chan(r);
	}
	if (r->retry_ms == 0)
		log_warnx("job %lld: cannot record the outcome now (%.200s); it is "
		    "kept and recorded as soon as the database takes it",
		    (long long)r->job.id, store_errmsg(rg->store));
	else
		log_debug("job %lld: the outcome still cannot be recorded",
		    (long long)r->job.id);
	r->retry_ms = r->retry_ms ? r->retry_ms * 2 : 500;
	if (r->retry_ms > 30000)
		r->retry_ms = 30000;
	loop_timer_set(r->retry, r->retry_ms);
}

/* Record an outcome.  0: recorded (r may be freed); -1: kept to be
 * recorded later (r stays). */
static int
queue_finish(struct run *r, enum transport_status st,
    const struct transport_receipt *rc, const char *error)
{
	struct job_update	 u = JOB_UPDATE_NONE;
	enum job_state		 to = JOB_DEFERRED;
	const char		*why = error ? error : rc->detail;
	char			 reason[TRANSPORT_DETAIL_MAX + 32];
	int			 rv;

	/* attempts counts the sends the transport was asked to make. */
	if (r->mode == WORKER_DELIVER)
		u.attempts = r->job.attempts + (r->logged_attempt ? 1 : 0);
	rv = store_begin(rg->store);
	if (rv == 0) {
		switch (st) {
		case TRANSPORT_OK:
			rv = queue_ok(r, rc, &u, &to);
			break;
		case TRANSPORT_PERMFAIL:
			to = rc->hold ? JOB_HELD : JOB_FAILED;
			u.last_error = why;
			if (r->mode == WORKER_DELIVER)
				u.attempts = r->job.attempts + 1;
			if (r->logged_attempt || r->mode == WORKER_POLL)
				rv = queue_log(r, "failed", why, rc->remote_id);
			break;
		default:
			u.last_error = why;
			if (r->mode == WORKER_POLL) {
				/* The remote side gave up (busy, no answer): send again. */
				to = JOB_DEFERRED;
				u.remote_id = "";
				u.next_at = now_wall_ms() + backoff_delay(
				    rg->conf->backoff_base_ms, rg->conf->backoff_max_ms,
				    r->job.attempts, (int64_t)rc->retry_after * 1000);
				rv = queue_log(r, "deferred", why, rc->remote_id);
			} else
				rv = queue_tempfail(r, rc, why, &u, &to);
			break;
		}
	}
	snprintf(reason, sizeof(reason), "%s: %.500s", transport_status_name(st),
	    why[0] ? why : "no detail");
	if (rv == 0)
		rv = store_job_set_state(rg->store, r->job.id, to, &u, "daemon", reason);
	if (queue_commit_or_rollback(rv) == -1) {
		queue_outcome_later(r, st, rc, error);
		return -1;
	}
	r->done = 1;
	r->pending = 0;
	metrics_job_outcome(r->ti ? r->ti->name : r->rcpt.transport, st, rc, error,
	    r->job.created_at, to == JOB_DELIVERED);
	alerts_job_event(&r->job, r->ti ? r->ti->name : r->rcpt.transport, to, st, rc);
	if (r->mode == WORKER_DELIVER)
		window_job_done(r->rcpt.id, r->ti ? r->ti->name : r->rcpt.transport);
	if (r->mode == WORKER_DELIVER)
		queue_drop_output(r->job.id);
	log_info("job %lld: %s (%s)", (long long)r->job.id, job_state_name(to),
	    transport_status_name(st));
	if (st == TRANSPORT_PERMFAIL && rc->hold == TRANSPORT_HOLD_ALL)
		queue_hold_transport(r->ti ? r->ti->name : r->rcpt.transport, why);
	if (!r->exited && r->chan != -1)
		queue_hand_on(r);
	if (r->exited)
		run_free(r);
	queue_kick();
	queue_check_drained();
	return 0;
}

struct held_ids {
	const char	*transport;
	int64_t		*ids;
	size_t		 n;
};

static int
collect_transport_job(const struct job *j, void *arg)
{
	struct held_ids	*h = arg;

	if (strcmp(j->transport, h->transport) == 0 && !queue_running_job(j->id)) {
		h->ids = xreallocarray(h->ids, h->n + 1, sizeof(*h->ids));
		h->ids[h->n++] = j->id;
	}
	return 0;
}

/* The transport says its trouble concerns every job (refused
 * credentials): set all its waiting jobs aside for an administrator. */
static void
queue_hold_transport(const char *transport, const char *why)
{
	struct held_ids	h = { transport, NULL, 0 };
	char		reason[700];

	store_jobs_in_state(rg->store, JOB_QUEUED, collect_transport_job, &h);
	store_jobs_in_state(rg->store, JOB_DEFERRED, collect_transport_job, &h);
	snprintf(reason, sizeof(reason), "held with every waiting job of transport "
	    "%.64s: %.400s", transport, why);
	for (size_t i = 0; i < h.n; i++) {
		struct job_update u = JOB_UPDATE_NONE;
		u.last_error = reason;
		if (store_begin(rg->store) == 0)
			queue_commit_or_rollback(store_job_set_state(rg->store, h.ids[i],
			    JOB_HELD, &u, "daemon", reason));
	}
	if (h.n)
		log_warnx("transport %s: %zu waiting job(s) held: %s", transport, h.n,
		    why);
	free(h.ids);
}

/* Requeue a job whose worker was stopped by shutdown. */
static void
queue_requeue_interrupted(struct run *r)
{
	struct job_update	u = JOB_UPDATE_NONE;
	int			rv;

	u.next_at = now_wall_ms();
	rv = store_begin(rg->store);
	if (rv == 0 && r->logged_attempt)
		rv = queue_log(r, "interrupted", "daemon shut down during the send; "
		    "outcome unknown", NULL);
	if (rv == 0)
		rv = store_job_set_state(rg->store, r->job.id,
		    r->mode == WORKER_POLL ? JOB_AWAITING : JOB_QUEUED, &u, "daemon",
		    "daemon shut down during the job; requeued");
	queue_commit_or_rollback(rv);
	r->done = 1;
}

/* A worker exited: if it gave no result, that is a TEMPFAIL. */
static void
queue_exited(struct run *r, int status)
{
	struct transport_receipt	rc;
	char				why[200];

	/* A result may still sit in the channel (read before marking exited,
	 * so that queue_finish leaves r to us). */
	r->gone = 1;
	if (!r->done && r->lf)
		queue_chan_read(r->chan, EPOLLIN, r);
	r->exited = 1;
	if (r->done) {
		run_free(r);
		return;
	}
	if (r->pending)
		return;		/* its outcome is known; queue_outcome_retry ends it */
	if (r->interrupted) {
		queue_requeue_interrupted(r);
		run_free(r);
		return;
	}
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "worker died (signal %d: %s) without an "
		    "answer", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(why, sizeof(why), "worker exited (status %d) without an "
		    "answer", WEXITSTATUS(status));
	memset(&rc, 0, sizeof(rc));
	queue_finish(r, TRANSPORT_TEMPFAIL, &rc, why);	/* frees r */
}

static void
queue_reap(int signo, void *arg)
{
	struct run	*r;
	pid_t		 pid;
	int		 status, freed = 0;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (r = runs; r; r = r->next)
			if (r->pid == pid)
				break;
		if (r) {
			queue_exited(r, status);
			freed = 1;
		} else
			(void)intake_probe_exited(pid, status);
	}
	/* A worker slot is free only now that its process is gone. */
	if (freed && !rg->draining)
		queue_kick();
	queue_check_drained();
}

static void
queue_grace_over(void *arg)
{
	struct run	*r, *next;

	for (r = runs; r; r = next) {
		next = r->next;
		if (r->pending) {
			/* A last try; else recovery logs the attempt interrupted. */
			if (queue_finish(r, r->pst, &r->prc, r->perr) == -1 &&
			    r->exited)
				run_free(r);
			continue;
		}
		if (r->exited)
			continue;
		log_warnx("job %lld: still running at the end of the shutdown grace "
		    "period; stopping it and requeueing", (long long)r->job.id);
		r->interrupted = 1;
		kill(r->pid, SIGKILL);
	}
	queue_check_drained();
}

void
queue_drain(void (*done)(void))
{
	rg->draining = 1;
	loop_timer_cancel(wake);
	if (nruns == 0) {
		done();
		return;
	}
	log_info("waiting up to %lld ms for %d running job(s)",
	    (long long)rg->conf->shutdown_grace_ms, nruns);
	drained = done;
	grace = loop_timer_new(queue_grace_over, NULL);
	loop_timer_set(grace, rg->conf->shutdown_grace_ms);
}

void
queue_reconfigure(void)
{
	queue_kick();
}

/* After a crash: nothing runs, so rendering and sending jobs were cut off. */
static int
queue_recover_one(const struct job *j, void *arg)
{
	struct job_update	 u = JOB_UPDATE_NONE;
	struct run		 r;
	char			 why[300];
	int			 rv;

	memset(&r, 0, sizeof(r));
	u.next_at = now_wall_ms();
	rv = store_begin(rg->store);
	if (rv == 0 && j->state == JOB_SENDING) {
		/* The send may or may not have happened: log that, then retry. */
		if (store_job_get(rg->store, j->id, &r.job) != 1 ||
		    queue_prepare(&r, why, sizeof(why)) == -1) {
			store_rollback(rg->store);
			job_free(&r.job);
			recipient_free(&r.rcpt);
			return 0;
		}
		r.ti = transport_find(r.rcpt.transport);
		r.pages = (uint32_t)(j->pages > 0 ? j->pages : 0);
		if (j->output_sha256)
			strlcpy_(r.sha256, j->output_sha256, sizeof(r.sha256));
		rv = queue_log(&r, "interrupted", "the daemon stopped during the "
		    "send; outcome unknown, the job is retried", NULL);
		u.attempts = j->attempts + 1;
		manifest_free(r.mf);
		job_free(&r.job);
		recipient_free(&r.rcpt);
	}
	if (rv == 0)
		rv = store_job_set_state(rg->store, j->id, JOB_QUEUED, &u, "daemon",
		    j->state == JOB_SENDING ? "recovered after a restart during the "
		    "send" : "recovered after a restart before the send");
	if (queue_commit_or_rollback(rv) == 0)
		log_info("job %lld: recovered from %s", (long long)j->id,
		    job_state_name(j->state));
	return 0;
}

void
queue_recover(void)
{
	store_jobs_in_state(rg->store, JOB_RENDERING, queue_recover_one, NULL);
	store_jobs_in_state(rg->store, JOB_SENDING, queue_recover_one, NULL);
}

/* Operator commands. */

static int
queue_get_idle(int64_t id, struct job *j, char *err, size_t errlen)
{
	int	rv = store_job_get(rg->store, id, j);

	if (rv != 1) {
		bsnprintf(err, errlen, rv == 0 ? "no job %lld" :
		    "cannot read job %lld", (long long)id);
		return -1;
	}
	for (struct run *r = runs; r; r = r->next)
		if (r->job.id == id) {
			bsnprintf(err, errlen, "job %lld is being worked on right now; "
			    "try again in a moment", (long long)id);
			job_free(j);
			return -1;
		}
	return 0;
}

/* An operator's command: from a state in allowed to `to`.  why_not says
 * which states it needs, done is the job event's reason. */
static int
queue_command(int64_t id, unsigned allowed, enum job_state to,
    struct job_update *u, const char *actor, const char *why_not,
    const char *done, char *err, size_t errlen)
{
	struct job	j;
	int		rv;

	if (queue_get_idle(id, &j, err, errlen) == -1)
		return -1;
	if (!(allowed & (1u << j.state))) {
		bsnprintf(err, errlen, "job %lld is %s; %s", (long long)id,
		    job_state_name(j.state), why_not);
		job_free(&j);
		return -1;
	}
	if (to == JOB_QUEUED && j.sent_at > 0 && j.remote_id && j.remote_id[0] &&
	    j.state == JOB_HELD)
		to = JOB_AWAITING;	/* a held fax in flight resumes polling */
	rv = store_begin(rg->store);
	if (rv == 0)
		rv = store_job_set_state(rg->store, id, to, u, actor, done);
	job_free(&j);
	if (queue_commit_or_rollback(rv) == -1) {
		bsnprintf(err, errlen, "database error: %.200s", store_errmsg(rg->store));
		return -1;
	}
	queue_kick();
	return 0;
}

#define S(x)	(1u << (x))

int
queue_hold(int64_t id, const char *actor, char *err, size_t errlen)
{
	struct job_update	u = JOB_UPDATE_NONE;

	return queue_command(id, S(JOB_QUEUED) | S(JOB_DEFERRED) | S(JOB_AWAITING),
	    JOB_HELD, &u, actor, "only queued, deferred or awaiting_confirmation "
	    "jobs can be held", "held by an operator", err, errlen) == -1 ? -1 : 0;
}

int
queue_release(int64_t id, const char *actor, char *err, size_t errlen)
{
	struct job_update	u = JOB_UPDATE_NONE;

	u.next_at = now_wall_ms();
	return queue_command(id, S(JOB_HELD), JOB_QUEUED, &u, actor,
	    "only held jobs can be released", "released by an operator", err,
	    errlen);
}

int
queue_retry(int64_t id, const char *actor, char *err, size_t errlen)
{
	struct job_update	u = JOB_UPDATE_NONE;
	char			path[PATH_MAX];
	struct stat		st;

	/* Its documents may have gone with [retention] jobs: say so, rather
	 * than hold it for want of them. */
	snprintf(path, sizeof(path), "%s/jobs/%lld", rg->conf->state_dir,
	    (long long)id);
	if (store_job_exists(rg->store, id) == 1 && lstat(path, &st) == -1 &&
	    errno == ENOENT) {
		bsnprintf(err, errlen, "job %lld cannot be retried: its documents "
		    "were removed after [retention] jobs; submit the packet again "
		    "(with a new packet_id)", (long long)id);
		return -1;
	}
	/* A new round of attempts, starting now. */
	u.next_at = now_wall_ms();
	u.attempts = 0;
	u.last_error = "";
	return queue_command(id, S(JOB_DEFERRED) | S(JOB_FAILED), JOB_QUEUED, &u,
	    actor, "only deferred or failed jobs can be retried",
	    "retried by an operator", err, errlen);
}

int
queue_cancel(int64_t id, const char *actor, char *err, size_t errlen)
{
	struct job_update	u = JOB_UPDATE_NONE;

	return queue_command(id, S(JOB_QUEUED) | S(JOB_DEFERRED) | S(JOB_HELD),
	    JOB_CANCELLED, &u, actor, "only queued, deferred or held jobs can be "
	    "cancelled", "cancelled by an operator", err, errlen);
}
