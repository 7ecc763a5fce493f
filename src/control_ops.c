/*
 * The control socket's operations (daemon).  Each takes the caller's
 * identity and the request object and fills a result; src/control.c has
 * already checked the caller's role against the table at the bottom, and
 * writes the audit entry.  Reads go to the store; changes to jobs go
 * through the queue (src/queue.c), never straight to the database.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "accounting.h"
#include "daily.h"
#include "alerts.h"
#include "config.h"
#include "control_ops.h"
#include "counts.h"
#include "disclosure.h"
#include "incident.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "policy.h"
#include "probe.h"
#include "queue.h"
#include "retention.h"
#include "requests.h"
#include "roigated.h"
#include "seal.h"
#include "store.h"
#include "submit.h"
#include "transport.h"
#include "util.h"
#include "window.h"

static void
fail(struct op_result *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct op_result *r, const char *code, const char *fmt, ...)
{
	va_list	ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

static json_t *
jtime(int64_t t)
{
	char	buf[32];

	if (t <= 0)
		return json_null();
	time_iso(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* "uid 1000 (name)" for job events and verifications. */
static void
actor_name(const struct peer *p, char *buf, size_t len)
{
	struct passwd	*pw = getpwuid(p->uid);

	if (pw)
		snprintf(buf, len, "uid %u (%.32s)", (unsigned)p->uid, pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)p->uid);
}

/* A time argument: "YYYY-MM-DD" or ISO 8601; 0 if absent, -1 if bad. */
static int
arg_time(json_t *req, const char *key, int64_t *t, struct op_result *r)
{
	json_t	*v = json_object_get(req, key);

	*t = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || datetime_parse(json_string_value(v), t) == -1) {
		fail(r, "bad_request", "%s: use a date like 2026-11-24 or "
		    "2026-11-24T10:00:00Z", key);
		return -1;
	}
	return 0;
}

static int
arg_job(json_t *req, int64_t *id, struct op_result *r)
{
	json_t	*v = json_object_get(req, "job");

	if (!json_is_integer(v) || (*id = json_integer_value(v)) <= 0) {
		fail(r, "bad_request", "job: a job number is required");
		return -1;
	}
	snprintf(r->target, sizeof(r->target), "job %lld", (long long)*id);
	return 0;
}

/* Bytes of the documents the daemon holds for a job (its jobs/ID folder),
 * or -1 when the folder is gone. */
static int64_t
job_bytes(int64_t id)
{
	char		 path[PATH_MAX];
	struct dirent	*de;
	struct stat	 st;
	int64_t		 n = 0;
	DIR		*d;

	snprintf(path, sizeof(path), "%s/jobs/%lld", rg->conf->state_dir,
	    (long long)id);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			n += st.st_size;
	closedir(d);
	return n;
}

static json_t *
job_summary(const struct job *j)
{
	int64_t	bytes = job_bytes(j->id);
	int	final = job_state_final(j->state);

	/* With what `postqueue -j` users look for: arrival_time, next_attempt
	 * (unix seconds), pages and bytes. */
	return json_pack("{s:I, s:s?, s:s, s:s?, s:s?, s:i, s:o, s:o, s:o, s:s?,"
	    " s:I, s:o, s:o, s:o}",
	    "id", (json_int_t)j->id, "packet_id", j->packet_id,
	    "state", job_state_name(j->state), "transport", j->transport,
	    "recipient", j->recipient_id, "attempts", j->attempts,
	    "created_at", jtime(j->created_at), "updated_at", jtime(j->updated_at),
	    "next_at", final ? json_null() : jtime(j->next_at / 1000),
	    "last_error", j->last_error && j->last_error[0] ? j->last_error : NULL,
	    "arrival_time", (json_int_t)j->created_at,
	    "next_attempt", final ? json_null() : json_integer(j->next_at / 1000),
	    "pages", j->pages >= 0 ? json_integer(j->pages) : json_null(),
	    "bytes", bytes >= 0 ? json_integer(bytes) : json_null());
}

#define READERS	(ROLE_OPERATE | ROLE_AUDIT | ROLE_ADMIN)

/*
 * Least privilege: a caller with only the submit role (the records
 * system) sees the jobs its own uid submitted, and of them only what it
 * needs to follow one: its state and, when it stopped, why.  Patient
 * details, recipients and the log are for operate, audit and admin.
 */
static int
sees_all_jobs(const struct peer *p)
{
	return (p->roles & READERS) != 0;
}

static json_t *
job_brief(const struct job *j)
{
	return json_pack("{s:I, s:s?, s:s, s:i, s:o, s:o, s:o, s:s?}",
	    "id", (json_int_t)j->id, "packet_id", j->packet_id,
	    "state", job_state_name(j->state), "attempts", j->attempts,
	    "created_at", jtime(j->created_at), "updated_at", jtime(j->updated_at),
	    "next_at", job_state_final(j->state) ? json_null() : jtime(j->next_at / 1000),
	    "last_error", j->last_error && j->last_error[0] ? j->last_error : NULL);
}

static void
op_status(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct store_status	 st;
	json_t			*states = json_object(), *tr = json_object();
	json_t			*problems = json_array(), *errs = json_array();
	int64_t			 now = now_wall();
	int			 rc;

	/* The counts the daemon keeps, or, if it cannot, counted now. */
	memset(&st, 0, sizeof(st));
	if (counts_start(rg->store) == 0) {
		counts_get(&st);
		rc = store_status_recent(rg->store, now, &st);
	} else {
		store_status_free(&st);
		rc = store_status(rg->store, now, &st);
	}
	if (rc == -1) {
		fail(r, "unavailable", "cannot read the queue: %.200s",
		    store_errmsg(rg->store));
		store_status_free(&st);
		json_decref(states), json_decref(tr);
		json_decref(problems), json_decref(errs);
		return;
	}
	for (int i = 0; i < JOB_NSTATES; i++)
		json_object_set_new(states, job_state_name(i), json_integer(0));
	for (size_t i = 0; i < st.nby_state; i++)
		json_object_set_new(states, st.by_state[i].key,
		    json_integer(st.by_state[i].count));
	for (size_t i = 0; i < st.nby_transport; i++)
		json_object_set_new(tr, st.by_transport[i].key,
		    json_integer(st.by_transport[i].count));
	if (!store_disclosure_guarded(rg->store))
		daemon_problem(PROBLEM_LOG, "the disclosure log's append-only "
		    "triggers are missing: someone changed the database behind the "
		    "daemon; run roictl verify-log");
	for (int i = 0; i < PROBLEM_MAX; i++)
		if (rg->problem[i][0])
			json_array_append_new(problems, json_string(rg->problem[i]));
	/* Other callers' jobs' errors are not a submitter's to read. */
	for (size_t i = 0; sees_all_jobs(p) && i < st.nlast_errors; i++)
		json_array_append_new(errs, json_pack("{s:I, s:s, s:s, s:o}",
		    "job", (json_int_t)st.last_errors[i].id,
		    "state", job_state_name(st.last_errors[i].state),
		    "error", st.last_errors[i].last_error,
		    "at", jtime(st.last_errors[i].updated_at)));
	r->result = json_pack("{s:o, s:o, s:o, s:I, s:i, s:o, s:o, s:I, s:b, s:s}",
	    "states", states, "transports", tr, "oldest_queued_age",
	    st.oldest_queued_at ? json_integer(now - st.oldest_queued_at) : json_null(),
	    "delivered_last_hour", (json_int_t)st.delivered_last_hour,
	    "workers_running", queue_running(), "problems", problems,
	    "last_errors", errs, "uptime", (json_int_t)(now - rg->started_at),
	    "draining", rg->draining, "instance", rg->instance);
	if (sees_all_jobs(p)) {
		/* The oldest open request's age in days (docs/requests.md). */
		int64_t	days;
		int	rv = requests_oldest_age(now, &days);

		if (rv == -1) {
			json_decref(r->result);
			r->result = NULL;
			fail(r, "unavailable", "cannot read the open requests: "
			    "%.200s", store_errmsg(rg->store));
			store_status_free(&st);
			return;
		}
		json_object_set_new(r->result, "oldest_open_request_age",
		    rv == 1 ? json_integer(days) : json_null());
	}
	store_status_free(&st);
}

static int
collect_job(const struct job *j, void *arg)
{
	json_array_append_new(arg, job_summary(j));
	return 0;
}

/* "limit": absent (0: every row), or a whole number from 1. */
static int
arg_limit(json_t *req, int *limit, struct op_result *r)
{
	json_t	*v = json_object_get(req, "limit");

	*limit = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > INT_MAX) {
		fail(r, "bad_request", "limit: must be a whole number, 1 or more");
		return -1;
	}
	*limit = (int)json_integer_value(v);
	return 0;
}

static int
collect_job_brief(const struct job *j, void *arg)
{
	json_array_append_new(arg, job_brief(j));
	return 0;
}

static void
op_list(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	const char	*state = json_string_value(json_object_get(req, "state"));
	const char	*tr = json_string_value(json_object_get(req, "transport"));
	json_t		*jobs = json_array();
	enum job_state	 s = JOB_QUEUED;
	int		 limit;

	if (arg_limit(req, &limit, r) == -1) {
		json_decref(jobs);
		return;
	}
	if (state && job_state_parse(state, &s) == -1) {
		fail(r, "bad_request", "state: \"%.40s\" is not a job state", state);
		json_decref(jobs);
		return;
	}
	if ((sees_all_jobs(p) ? store_jobs_list(rg->store, state ? (int)s : -1, tr,
	    limit, collect_job, jobs) : store_jobs_list_by(rg->store, p->uid,
	    state ? (int)s : -1, tr, limit, collect_job_brief, jobs)) == -1) {
		fail(r, "unavailable", "cannot read the queue: %.200s",
		    store_errmsg(rg->store));
		json_decref(jobs);
		return;
	}
	r->result = json_pack("{s:o}", "jobs", jobs);
}

static int
collect_event(const struct job_event *e, void *arg)
{
	json_array_append_new(arg, json_pack("{s:o, s:s?, s:s?, s:s?, s:s?}",
	    "at", jtime(e->at), "from", e->from_state, "to", e->to_state,
	    "actor", e->actor, "reason", e->reason));
	return 0;
}

static json_t *
disclosure_json(const struct disclosure *d)
{
	return json_pack("{s:I, s:o, s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?,"
	    " s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:s?, s:b, s:s, s:s}",
	    "seq", (json_int_t)d->seq, "at", jtime(d->at), "job", (json_int_t)d->job_id,
	    "packet_id", d->packet_id, "mrn", d->mrn, "patient_name", d->patient_name,
	    "recipient_id", d->recipient_id, "recipient_name", d->recipient_name,
	    "recipient_address", d->recipient_address, "description", d->description,
	    "purpose", d->purpose, "basis", d->basis, "authorization_id",
	    d->authorization_id, "transport", d->transport, "remote_id", d->remote_id,
	    "outcome", d->outcome, "detail", d->detail, "pages", d->pages,
	    "output_sha256", d->output_sha256, "accountable", d->accountable,
	    "prev_hash", d->prev_hash, "hash", d->hash);
}

static int
collect_disclosure(const struct disclosure *d, void *arg)
{
	json_array_append_new(arg, disclosure_json(d));
	return 0;
}

static int
collect_redaction(const struct store_redaction *rd, int attempt, void *arg)
{
	json_array_append_new(arg, json_pack("{s:i, s:i, s:i, s:[f, f, f, f], s:s}",
	    "attempt", attempt, "document", rd->doc, "page", rd->page, "box",
	    rd->x, rd->y, rd->w, rd->h, "pattern", rd->pattern));
	return 0;
}

static void
op_show(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct disclosure_filter f;
	struct job		 j;
	json_t			*job, *events = json_array(), *disc = json_array();
	json_t			*red = json_array();
	int64_t			 id;
	int			 rv;

	if (arg_job(req, &id, r) == -1 || (!sees_all_jobs(p) &&
	    store_job_submitted_by(rg->store, id, p->uid) != 1) ||
	    (rv = store_job_get(rg->store, id, &j)) != 1) {
		/* Someone else's job is "not found" to a submitter: even
		 * whether it exists is not theirs to know. */
		if (r->code == NULL)
			fail(r, "not_found", "no job %lld", (long long)id);
		json_decref(events), json_decref(disc), json_decref(red);
		return;
	}
	if (!sees_all_jobs(p)) {
		r->result = json_pack("{s:o}", "job", job_brief(&j));
		snprintf(r->detail, sizeof(r->detail), "state only (submitter)");
		json_decref(events), json_decref(disc), json_decref(red);
		job_free(&j);
		return;
	}
	store_job_redactions(rg->store, id, collect_redaction, red);
	memset(&f, 0, sizeof(f));
	f.job_id = id;
	store_job_events(rg->store, id, collect_event, events);
	store_disclosure_iter(rg->store, &f, collect_disclosure, disc);
	job = job_summary(&j);
	json_object_set_new(job, "recipient_id", jstr(j.recipient_id));
	json_object_set_new(job, "mrn", jstr(j.mrn));
	json_object_set_new(job, "patient_name", jstr(j.patient_name));
	json_object_set_new(job, "request_ref", jstr(j.request_ref));
	json_object_set_new(job, "source", jstr(j.source));
	json_object_set_new(job, "remote_id", jstr(j.remote_id));
	json_object_set_new(job, "output_sha256", jstr(j.output_sha256));
	json_object_set_new(job, "pages", j.pages >= 0 ? json_integer(j.pages) :
	    json_null());
	json_object_set_new(job, "sent_at", jtime(j.sent_at));
	/* The audit row (target "job N") says what was read. */
	snprintf(r->detail, sizeof(r->detail), "patient details, %zu events, %zu "
	    "disclosure log entries", json_array_size(events), json_array_size(disc));
	r->result = json_pack("{s:o, s:o, s:o, s:o}", "job", job, "events", events,
	    "disclosures", disc, "redactions", red);
	job_free(&j);
}

typedef int (*queue_cmd)(int64_t, const char *, char *, size_t);

static void
job_command(const struct peer *p, json_t *req, queue_cmd cmd, struct op_result *r)
{
	struct job	j;
	char		actor[64], err[300];
	int64_t		id;

	if (arg_job(req, &id, r) == -1)
		return;
	actor_name(p, actor, sizeof(actor));
	if (cmd(id, actor, err, sizeof(err)) == -1) {
		fail(r, strncmp(err, "no job", 6) == 0 ? "not_found" : "conflict",
		    "%s", err);
		return;
	}
	if (store_job_get(rg->store, id, &j) == 1) {
		r->result = json_pack("{s:I, s:s}", "job", (json_int_t)id, "state",
		    job_state_name(j.state));
		job_free(&j);
	}
}

static void
op_hold(const struct peer *p, json_t *q, const int *f, size_t n, struct op_result *r)
{
	job_command(p, q, queue_hold, r);
}

static void
op_release(const struct peer *p, json_t *q, const int *f, size_t n, struct op_result *r)
{
	job_command(p, q, queue_release, r);
}

static void
op_retry(const struct peer *p, json_t *q, const int *f, size_t n, struct op_result *r)
{
	job_command(p, q, queue_retry, r);
}

static void
op_cancel(const struct peer *p, json_t *q, const int *f, size_t n, struct op_result *r)
{
	job_command(p, q, queue_cancel, r);
}

/*
 * What a read of the disclosure log is audited as: the jobs whose entries
 * were read (their patient is found from the job, so the audit log names
 * whose records were seen without holding an MRN itself).
 */
static void
log_read_target(const struct disclosure_filter *f, json_t *entries,
    struct op_result *r)
{
	json_t		*e;
	json_int_t	 seen[16], job;
	size_t		 i, k, n = 0, len, skipped = 0;

	if (f->job_id > 0) {
		snprintf(r->target, sizeof(r->target), "job %lld", (long long)f->job_id);
		return;
	}
	len = (size_t)snprintf(r->target, sizeof(r->target), "jobs");
	json_array_foreach(entries, i, e) {
		job = json_integer_value(json_object_get(e, "job"));
		for (k = 0; k < n && k < 16 && seen[k] != job; k++)
			;
		if (k < n && k < 16)
			continue;	/* named already */
		if (n < 16)
			seen[n] = job;
		/* Room for this number and a "+N" at the end. */
		if (len + 24 < sizeof(r->target))
			len += (size_t)snprintf(r->target + len, sizeof(r->target) - len,
			    " %lld", (long long)job);
		else
			skipped++;
		n++;
	}
	if (n == 0)
		snprintf(r->target, sizeof(r->target), "no jobs");
	else if (skipped)
		snprintf(r->target + len, sizeof(r->target) - len, " +%zu", skipped);
}

static void
op_log(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct disclosure_filter f;
	json_t			*entries = json_array();

	memset(&f, 0, sizeof(f));
	f.mrn = json_string_value(json_object_get(req, "mrn"));
	f.recipient_id = json_string_value(json_object_get(req, "recipient"));
	f.job_id = json_integer_value(json_object_get(req, "job"));
	if (arg_time(req, "since", &f.since, r) == -1 ||
	    arg_time(req, "until", &f.until, r) == -1) {
		json_decref(entries);
		return;
	}
	if (store_disclosure_iter(rg->store, &f, collect_disclosure, entries) == -1) {
		fail(r, "unavailable", "cannot read the disclosure log: %.200s",
		    store_errmsg(rg->store));
		json_decref(entries);
		return;
	}
	log_read_target(&f, entries, r);
	snprintf(r->detail, sizeof(r->detail), "%zu entries%s", json_array_size(entries),
	    f.mrn ? " for one patient" : "");
	r->result = json_pack("{s:o}", "entries", entries);
}

static void
op_verify_log(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	const char		*key = json_string_value(json_object_get(req, "key"));
	const char		*cp = json_string_value(json_object_get(req, "checkpoint"));
	struct seal_verdict	 v;
	uint8_t			 vkey[SEAL_KEY_LEN];
	int64_t			 count = 0;
	char			 err[512], tail[200], pruned[400];

	if (disclosure_verify(rg->store, &count, err, sizeof(err)) == -1) {
		daemon_problem(PROBLEM_LOG, "disclosure log: %s", err);
		fail(r, "integrity", "%s", err);
		metrics_log_verified(0);
		return;
	}
	if (cp && seal_checkpoint_verify(rg->store, cp, err, sizeof(err)) == -1) {
		daemon_problem(PROBLEM_LOG, "disclosure log: checkpoint: %s", err);
		fail(r, "integrity", "checkpoint: %s", err);
		return;
	}
	if (key == NULL) {
		daemon_problem_clear(PROBLEM_LOG);
		metrics_log_verified(1);
		r->result = json_pack("{s:b, s:I, s:b, s:b}", "ok", 1, "entries",
		    (json_int_t)count, "sealed", 0, "checkpoint", cp != NULL);
		return;
	}
	/* The auditor's key, sent by roictl over the local socket: used for
	 * this request only, never logged, wiped. */
	if (seal_vkey_parse(key, vkey, err, sizeof(err)) == -1) {
		fail(r, "bad_request", "%s", err);
		return;
	}
	seal_verify(rg->store, vkey, &v);
	OPENSSL_cleanse(vkey, sizeof(vkey));
	switch (v.code) {
	case SEAL_INTACT:
		daemon_problem_clear(PROBLEM_LOG);
		metrics_log_verified(1);
		seal_verdict_tail(&v, tail, sizeof(tail));
		seal_verdict_pruned(&v, pruned, sizeof(pruned));
		r->result = json_pack("{s:b, s:I, s:I, s:I, s:b, s:b, s:I, s:s, s:s}",
		    "ok", 1, "entries", (json_int_t)v.entries[STORE_SEALED_DISCLOSURES] +
		    v.unsealed[STORE_SEALED_DISCLOSURES], "audit_entries",
		    (json_int_t)v.entries[STORE_SEALED_AUDIT] +
		    v.unsealed[STORE_SEALED_AUDIT], "epochs", (json_int_t)v.epochs,
		    "sealed", 1, "checkpoint", cp != NULL, "last_seal_at",
		    (json_int_t)v.last_seal_at, "unsealed", tail, "pruned", pruned);
		return;
	case SEAL_WRONG_KEY:
		fail(r, "denied", "%s", v.msg);
		return;
	case SEAL_UNSEALED:
		fail(r, "not_found", "%s", v.msg);
		return;
	case SEAL_ERROR:
		fail(r, "unavailable", "%s", v.msg);
		return;
	default:
		daemon_problem(PROBLEM_LOG, "disclosure log: %s", v.msg);
		metrics_log_verified(0);
		fail(r, "integrity", "%s", v.msg);
		return;
	}
}

static int
collect_audit(const struct audit_entry *a, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I, s:o, s:I, s:I, s:I, s:s?, s:s?,"
	    " s:s?, s:s?, s:s?}", "id", (json_int_t)a->id, "at", jtime(a->at),
	    "uid", (json_int_t)a->uid, "gid", (json_int_t)a->gid,
	    "pid", (json_int_t)a->pid, "role", a->role, "op", a->op,
	    "target", a->target, "outcome", a->outcome, "detail", a->detail));
	return 0;
}

static void
op_audit(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	json_t	*entries = json_array();
	int64_t	 since;
	int	 limit;

	if (arg_limit(req, &limit, r) == -1 || arg_time(req, "since", &since, r) == -1 ||
	    store_audit_iter(rg->store, since, limit, collect_audit, entries) == -1) {
		if (r->code == NULL)
			fail(r, "unavailable", "cannot read the audit log");
		json_decref(entries);
		return;
	}
	r->result = json_pack("{s:o}", "entries", entries);
}

/*
 * The accounting of disclosures (docs/accounting.md): built from the log,
 * returned as the report (JSON), its text, or its PDF (base64); the
 * SHA-256 of what was returned and who asked go into the audit log.
 */
static int
acc_period(json_t *req, struct accounting_req *q, struct op_result *r)
{
	int64_t	from, to, gen;

	if (arg_time(req, "from", &from, r) == -1 ||
	    arg_time(req, "to", &to, r) == -1 ||
	    arg_time(req, "generated", &gen, r) == -1)
		return -1;
	q->generated = gen ? gen : now_wall();
	/* --to names the last day of the period: up to its end. */
	q->to = to ? to + 86400 : (q->generated / 86400 + 1) * 86400;
	/* Six years back (164.528(a)(3)), to the same day. */
	q->from = from ? from : q->to - 86400 - (6 * 365 + 1) * 86400LL;
	if (q->from >= q->to) {
		fail(r, "bad_request", "from: the period starts after it ends");
		return -1;
	}
	return 0;
}

static json_t *
acc_base64(const struct buf *b)
{
	char	*out = xmalloc(4 * ((b->len + 2) / 3) + 1);
	json_t	*j;

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)b->data,
	    (int)b->len);
	j = json_string(out);
	free(out);
	return j;
}

/* The report in the format asked into r->result (the JSON report is
 * there already): "text", or "pdf" in base64, and the SHA-256 of what
 * the caller gets, for the audit log.  0, or -1 after fail(). */
static int
report_render(struct op_result *r, json_t *rep, const char *fmt,
    char *(*text_of)(json_t *), int (*pdf_of)(json_t *, const char *,
    const char *, struct buf *, char *, size_t), char sha[65])
{
	struct buf	 pdf;
	char		 err[512], *text = NULL;
	int		 rv = 0;

	buf_init(&pdf);
	if (strcmp(fmt, "pdf") == 0) {
		if ((rv = pdf_of(rep, rg->conf->template_dir, rg->conf->font_dir,
		    &pdf, err, sizeof(err))) == -1) {
			fail(r, "unavailable", "%s", err);
			json_decref(r->result);
			r->result = NULL;
			goto done;
		}
		sha256_hex(pdf.data, pdf.len, sha);
		json_object_set_new(r->result, "pdf", acc_base64(&pdf));
	} else if (strcmp(fmt, "text") == 0) {
		text = text_of(rep);
		sha256_hex(text, strlen(text), sha);
		json_object_set_new(r->result, "text", json_string(text));
	} else {
		text = json_dumps(rep, JSON_SORT_KEYS | JSON_INDENT(2));
		sha256_hex(text, strlen(text), sha);
	}
	json_object_set_new(r->result, "sha256", json_string(sha));
done:
	free(text);
	buf_free(&pdf);
	return rv;
}

static int
report_format_ok(const char *fmt, struct op_result *r)
{
	if (strcmp(fmt, "json") && strcmp(fmt, "text") && strcmp(fmt, "pdf")) {
		fail(r, "bad_request", "format: text, json or pdf");
		return 0;
	}
	return 1;
}

static void
op_accounting(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct accounting_req	 q;
	const char		*fmt = json_string_value(json_object_get(req, "format"));
	json_t			*rep;
	char			 err[512], sha[65];
	int			 held = 0;

	memset(&q, 0, sizeof(q));
	fmt = fmt ? fmt : "json";
	if ((q.mrn = json_string_value(json_object_get(req, "mrn"))) == NULL ||
	    !*q.mrn) {
		fail(r, "bad_request", "mrn: the patient's MRN is required");
		return;
	}
	if (!report_format_ok(fmt, r) || acc_period(req, &q, r) == -1)
		return;
	q.org_name = rg->conf->organization;
	q.org_address = rg->conf->organization_address;
	if ((rep = accounting_build(rg->store, &q, &held, err, sizeof(err))) == NULL) {
		fail(r, "unavailable", "%s", err);
		return;
	}
	r->result = json_pack("{s:O, s:i}", "report", rep, "held_back", held);
	if (report_render(r, rep, fmt, accounting_text, accounting_pdf, sha) == 0) {
		/* The audit log names whose accounting it was by count, not
		 * by MRN. */
		snprintf(r->target, sizeof(r->target), "accounting of one patient");
		snprintf(r->detail, sizeof(r->detail), "%s, %zu entries, %d held "
		    "back; sha256 %s", fmt, json_array_size(json_object_get(rep,
		    "entries")), held, sha);
	}
	json_decref(rep);
}

/*
 * The daily reconciliation (docs/daily.md): one day in local time, as
 * JSON, text or PDF; the SHA-256 of what was returned and who asked go
 * into the audit log.
 */
static void
op_report_daily(const struct peer *p, json_t *req, const int *fds,
    size_t nfds, struct op_result *r)
{
	struct daily_req	 q;
	const char		*fmt = json_string_value(json_object_get(req, "format"));
	json_t			*rep;
	int64_t			 gen;
	char			 err[512], sha[65];

	memset(&q, 0, sizeof(q));
	fmt = fmt ? fmt : "json";
	if (!report_format_ok(fmt, r) || arg_time(req, "generated", &gen, r) == -1)
		return;
	if (json_object_get(req, "date") && !json_is_string(json_object_get(req,
	    "date"))) {
		fail(r, "bad_request", "date: a day, as 2026-12-01");
		return;
	}
	q.generated = gen ? gen : now_wall();
	if (daily_day(json_string_value(json_object_get(req, "date")), now_wall(),
	    &q, err, sizeof(err)) == -1) {
		fail(r, "bad_request", "%s", err);
		return;
	}
	q.org_name = rg->conf->organization;
	if ((rep = daily_build(rg->store, &q, err, sizeof(err))) == NULL) {
		fail(r, "unavailable", "%s", err);
		return;
	}
	r->result = json_pack("{s:O}", "report", rep);
	if (report_render(r, rep, fmt, daily_text, daily_pdf, sha) == 0) {
		snprintf(r->target, sizeof(r->target), "daily report %s", q.date);
		snprintf(r->detail, sizeof(r->detail), "%s; sha256 %s", fmt, sha);
	}
	json_decref(rep);
}

static json_t *
suspension_json(const struct store_suspension *u, int64_t ended)
{
	return json_pack("{s:I, s:o, s:s, s:s?, s:b, s:o, s:o, s:o, s:s?, s:s?}",
	    "id", (json_int_t)u->seq, "at", jtime(u->at), "agency", u->agency,
	    "mrn", u->mrn, "oral", u->oral, "until", jtime(u->until_at),
	    "ended_at", jtime(ended), "effective_end",
	    jtime(accounting_suspension_end(u, ended)), "by", u->actor, "note",
	    u->note);
}

static int
collect_suspension(const struct store_suspension *u, void *arg)
{
	json_t	*arr = arg, *v;
	size_t	 i;

	if (u->action && strcmp(u->action, "end") == 0) {
		json_array_foreach(arr, i, v)
			if (json_integer_value(json_object_get(v, "id")) == u->ref &&
			    json_is_null(json_object_get(v, "ended_at")))
				json_object_set_new(v, "ended", json_integer(u->at));
		return 0;
	}
	json_array_append_new(arr, suspension_json(u, 0));
	return 0;
}

/* The list with each end applied (recomputed once all rows are read). */
static json_t *
suspension_list(struct op_result *r)
{
	json_t	*arr = json_array(), *v;
	size_t	 i;

	if (store_suspension_iter(rg->store, collect_suspension, arr) == -1) {
		fail(r, "unavailable", "cannot read the suspensions: %.200s",
		    store_errmsg(rg->store));
		json_decref(arr);
		return NULL;
	}
	json_array_foreach(arr, i, v) {
		json_t *e = json_object_get(v, "ended");
		struct store_suspension u;
		int64_t at = 0, until = 0;

		if (e == NULL)
			continue;
		memset(&u, 0, sizeof(u));
		datetime_parse(json_string_value(json_object_get(v, "at")), &at);
		datetime_parse(json_string_value(json_object_get(v, "until")), &until);
		u.at = at;
		u.until_at = until;
		u.oral = json_is_true(json_object_get(v, "oral"));
		json_object_set_new(v, "ended_at", jtime(json_integer_value(e)));
		json_object_set_new(v, "effective_end", jtime(
		    accounting_suspension_end(&u, json_integer_value(e))));
		json_object_del(v, "ended");
	}
	return arr;
}

static void
op_accounting_suspend(const struct peer *p, json_t *req, const int *fds,
    size_t nfds, struct op_result *r)
{
	struct store_suspension	 u;
	char			 actor[80];
	json_t			*end = json_object_get(req, "end"), *list;
	int64_t			 seq, until;

	memset(&u, 0, sizeof(u));
	actor_name(p, actor, sizeof(actor));
	u.at = now_wall();
	u.actor = actor;
	if (json_is_true(json_object_get(req, "list"))) {
		if ((list = suspension_list(r)) != NULL)
			r->result = json_pack("{s:o}", "suspensions", list);
		snprintf(r->target, sizeof(r->target), "suspensions");
		return;
	}
	if (end) {
		if (!json_is_integer(end) || json_integer_value(end) <= 0) {
			fail(r, "bad_request", "end: a suspension's number");
			return;
		}
		u.action = "end";
		u.ref = json_integer_value(end);
	} else {
		u.action = "suspend";
		u.agency = json_string_value(json_object_get(req, "agency"));
		u.mrn = json_string_value(json_object_get(req, "mrn"));
		u.note = json_string_value(json_object_get(req, "note"));
		u.oral = json_is_true(json_object_get(req, "oral"));
		if (u.agency == NULL || !*u.agency) {
			fail(r, "bad_request", "agency: the oversight or law-enforcement "
			    "agency that asked (its recipient id or name)");
			return;
		}
		if (u.mrn && !*u.mrn) {
			fail(r, "bad_request", "mrn: the patient's MRN, or none for "
			    "every patient");
			return;
		}
		if (arg_time(req, "until", &until, r) == -1)
			return;
		if (until <= u.at) {
			fail(r, "bad_request", "until: the date the suspension ends, in "
			    "the future (the agency's statement gives it)");
			return;
		}
		u.until_at = until;
	}
	if (store_begin(rg->store) == -1 ||
	    store_suspension_add(rg->store, &u, &seq) == -1 ||
	    store_commit(rg->store) == -1) {
		fail(r, "unavailable", "cannot record it: %.200s", store_errmsg(rg->store));
		store_rollback(rg->store);
		return;
	}
	snprintf(r->target, sizeof(r->target), "suspension %lld",
	    (long long)(end ? u.ref : seq));
	snprintf(r->detail, sizeof(r->detail), "%s%s", u.action, u.oral ?
	    " (oral, at most 30 days)" : "");
	r->result = json_pack("{s:I, s:s}", "id", (json_int_t)(end ? u.ref : seq),
	    "action", u.action);
}

/* Incidents (docs/incidents.md): open, assess, list, show, report. */
static void
incident_fail(struct op_result *r, int notfound, const char *err)
{
	fail(r, notfound ? "not_found" : strstr(err, "cannot record") ||
	    strstr(err, "database") ? "unavailable" : "bad_request", "%s", err);
}

static void
op_incident_open(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	const char	*kind = json_string_value(json_object_get(req, "kind"));
	const char	*note = json_string_value(json_object_get(req, "note"));
	char		 actor[80], err[512];
	int64_t		 job, disc;
	int		 nf;

	if (arg_job(req, &job, r) == -1 || arg_time(req, "discovered", &disc, r) == -1)
		return;
	if (kind == NULL || note == NULL || !*note) {
		fail(r, "bad_request", "kind and note are required");
		return;
	}
	actor_name(p, actor, sizeof(actor));
	if (incident_open(actor, job, kind, note, disc, &r->result, &nf, err,
	    sizeof(err)) == -1) {
		incident_fail(r, nf, err);
		return;
	}
	snprintf(r->detail, sizeof(r->detail), "incident %lld opened (%s)",
	    (long long)json_integer_value(json_object_get(r->result, "id")), kind);
}

static int
arg_incident(json_t *req, int64_t *id, struct op_result *r)
{
	json_t	*v = json_object_get(req, "incident");

	if (!json_is_integer(v) || (*id = json_integer_value(v)) <= 0) {
		fail(r, "bad_request", "incident: an incident number is required");
		return -1;
	}
	snprintf(r->target, sizeof(r->target), "incident %lld", (long long)*id);
	return 0;
}

static void
op_incident_assess(const struct peer *p, json_t *req, const int *fds,
    size_t nfds, struct op_result *r)
{
	struct incident_factors	 fa;
	char			 actor[80], err[512];
	int64_t			 id;
	int			 nf;

	if (arg_incident(req, &id, r) == -1)
		return;
	fa.nature = json_string_value(json_object_get(req, "nature"));
	fa.person = json_string_value(json_object_get(req, "unauthorized_person"));
	fa.acquired = json_string_value(json_object_get(req, "acquired_or_viewed"));
	fa.mitigation = json_string_value(json_object_get(req, "mitigation"));
	fa.determination = json_string_value(json_object_get(req, "determination"));
	actor_name(p, actor, sizeof(actor));
	if (incident_assess(actor, id, &fa, &r->result, &nf, err, sizeof(err)) == -1)
		incident_fail(r, nf, err);
	else
		snprintf(r->detail, sizeof(r->detail), "assessed: %s",
		    fa.determination);
}

static void
op_incident_show(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	const char	*fmt = json_string_value(json_object_get(req, "format"));
	char		 err[512], sha[65];
	json_t		*inc, *rep;
	int64_t		 id, gen = 0;
	int		 nf;

	if (json_object_get(req, "incident") == NULL) {
		if ((inc = incident_list(err, sizeof(err))) == NULL)
			fail(r, "unavailable", "%s", err);
		else
			r->result = json_pack("{s:o}", "incidents", inc);
		return;
	}
	if (arg_incident(req, &id, r) == -1)
		return;
	/* The report (asked by "report"): text unless told otherwise. */
	fmt = fmt ? fmt : "text";
	if (json_object_get(req, "report") && (!report_format_ok(fmt, r) ||
	    arg_time(req, "generated", &gen, r) == -1))
		return;
	if ((inc = incident_get(id, err, sizeof(err), &nf)) == NULL) {
		incident_fail(r, nf, err);
		return;
	}
	if (json_object_get(req, "report") == NULL) {
		r->result = inc;
		return;
	}
	rep = incident_report(inc, rg->conf->organization, gen ? gen : now_wall());
	json_decref(inc);
	r->result = json_pack("{s:O}", "report", rep);
	/* Who asked and the SHA-256 of what they got go into the audit log. */
	if (report_render(r, rep, fmt, incident_report_text, incident_report_pdf,
	    sha) == 0)
		snprintf(r->detail, sizeof(r->detail), "report, %s; sha256 %s", fmt,
		    sha);
	json_decref(rep);
}

/* Open requests and their deadlines (docs/requests.md). */
static void
op_requests(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	const char	*ext = json_string_value(json_object_get(req, "extend"));
	const char	*reason = json_string_value(json_object_get(req, "reason"));
	char		 err[512], actor[80];
	json_t		*open;
	int		 nf;

	if (ext) {
		if (reason == NULL || !*reason) {
			fail(r, "bad_request", "reason: the extension's reason, as "
			    "told to the patient in writing");
			return;
		}
		actor_name(p, actor, sizeof(actor));
		snprintf(r->target, sizeof(r->target), "request %.64s", ext);
		snprintf(r->detail, sizeof(r->detail), "extension");
		if (requests_extend(ext, reason, actor, &nf, err, sizeof(err)) == -1) {
			fail(r, nf ? "not_found" : strstr(err, "cannot record") ?
			    "unavailable" : "conflict", "%s", err);
			return;
		}
	}
	if ((open = requests_open(now_wall(), err, sizeof(err))) == NULL) {
		fail(r, "unavailable", "%s", err);
		return;
	}
	r->result = json_pack("{s:o}", "requests", open);
}

static json_t *
recipient_json(const struct recipient *rc)
{
	json_t	*params = json_loads(rc->params ? rc->params : "{}", 0, NULL);

	return json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:o, s:b, s:s?, s:o, s:b, s:o}",
	    "id", rc->id, "name", rc->name, "organization", rc->organization,
	    "transport", rc->transport, "address", rc->address,
	    "params", params ? params : json_object(), "verified", rc->verified,
	    "verified_by", rc->verified_by, "verified_at", jtime(rc->verified_at),
	    "disabled", rc->disabled, "created_at", jtime(rc->created_at));
}

static int
valid_recipient_id(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/*
 * What an administrator adds must be deliverable and printable: the
 * address in the form its transport reads (checked now, not at the first
 * send), no control characters in what reaches a cover sheet or a log.
 */
static int
recipient_add_check(json_t *req, const struct recipient *rc,
    const char *backend, struct op_result *r)
{
	struct errlist	 e = { NULL, 0 };
	json_t		*params = json_object_get(req, "params"), *v;
	const char	*k;
	char		 field[64], *all;

	policy_recipient_text("name", rc->name, 1, &e);
	policy_recipient_text("organization", rc->organization, 0, &e);
	if (rc->address)
		policy_recipient_address(backend, rc->address, &e);
	else
		errlist_add(&e, "address: must not be empty");
	if (params && !json_is_object(params))
		errlist_add(&e, "params: must be an object of strings");
	json_object_foreach(params, k, v) {
		snprintf(field, sizeof(field), "params.%.40s", k);
		if (!json_is_string(v))
			errlist_add(&e, "%s: must be a string", field);
		else {
			char why[200];
			policy_recipient_param(field, json_string_value(v), &e);
			if (window_check_params(k, json_string_value(v), why,
			    sizeof(why)) == -1)
				errlist_add(&e, "params.%s", why);
		}
	}
	if (e.n == 0)
		return 0;
	all = errlist_join(&e, "; ");
	fail(r, "bad_request", "%s", all);
	free(all);
	errlist_free(&e);
	return -1;
}

static void
op_recipient_add(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct recipient		 rc;
	struct transport_instance	*ti;
	json_t				*params = json_object_get(req, "params");
	char				*ptext;

	memset(&rc, 0, sizeof(rc));
	rc.id = (char *)json_string_value(json_object_get(req, "recipient"));
	rc.name = (char *)json_string_value(json_object_get(req, "name"));
	rc.organization = (char *)json_string_value(json_object_get(req, "organization"));
	rc.transport = (char *)json_string_value(json_object_get(req, "transport"));
	rc.address = (char *)json_string_value(json_object_get(req, "address"));
	if (rc.id == NULL || !valid_recipient_id(rc.id)) {
		fail(r, "bad_request", "recipient: a short id of a-z, 0-9, '.', '_', "
		    "'-' is required");
		return;
	}
	snprintf(r->target, sizeof(r->target), "recipient %s", rc.id);
	if (rc.transport == NULL || (ti = transport_find(rc.transport)) == NULL) {
		fail(r, "bad_request", "transport \"%.64s\" is not configured in "
		    "roigate.conf", rc.transport ? rc.transport : "");
		return;
	}
	if (recipient_add_check(req, &rc, ti->backend->name, r) == -1)
		return;
	ptext = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) :
	    xstrdup("{}");
	rc.params = ptext;
	if (store_recipient_add(rg->store, &rc) == -1) {
		struct recipient old;
		if (store_recipient_get(rg->store, rc.id, &old) == 1) {
			fail(r, "bad_request", "recipient %s already exists", rc.id);
			recipient_free(&old);
		} else
			fail(r, "unavailable", "cannot store: %.200s",
			    store_errmsg(rg->store));
		free(ptext);
		return;
	}
	free(ptext);
	if (store_recipient_get(rg->store, rc.id, &rc) == 1) {
		r->result = recipient_json(&rc);
		recipient_free(&rc);
	}
}

static int
recipient_arg(json_t *req, struct recipient *rc, struct op_result *r)
{
	const char	*id = json_string_value(json_object_get(req, "recipient"));

	if (id == NULL) {
		fail(r, "bad_request", "recipient: a recipient id is required");
		return -1;
	}
	snprintf(r->target, sizeof(r->target), "recipient %.64s", id);
	if (store_recipient_get(rg->store, id, rc) != 1) {
		fail(r, "not_found", "no recipient %.64s in the directory", id);
		return -1;
	}
	return 0;
}

static void
op_recipient_show(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct recipient	rc;

	if (recipient_arg(req, &rc, r) == -1)
		return;
	r->result = recipient_json(&rc);
	recipient_free(&rc);
}

static int
collect_recipient(const struct recipient *rc, void *arg)
{
	json_array_append_new(arg, recipient_json(rc));
	return 0;
}

static void
op_recipient_list(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	json_t	*list = json_array();

	store_recipient_list(rg->store, collect_recipient, list);
	r->result = json_pack("{s:o}", "recipients", list);
}

static void
recipient_flag(const struct peer *p, json_t *req, int verify, struct op_result *r)
{
	struct recipient	rc;
	char			actor[64];
	int			rv;

	if (recipient_arg(req, &rc, r) == -1)
		return;
	actor_name(p, actor, sizeof(actor));
	rv = verify ? store_recipient_set_verified(rg->store, rc.id, 1, actor,
	    now_wall()) : store_recipient_set_disabled(rg->store, rc.id, 1);
	recipient_free(&rc);
	if (rv == -1) {
		fail(r, "unavailable", "cannot store: %.200s", store_errmsg(rg->store));
		return;
	}
	if (recipient_arg(req, &rc, r) == 0) {
		r->result = recipient_json(&rc);
		recipient_free(&rc);
	}
}

/* Start or look at a probe of the recipient's destination. */
static void
op_recipient_probe(const struct peer *p, json_t *req, const int *fds,
    size_t nfds, struct op_result *r)
{
	struct transport_probe	 res;
	struct recipient	 rc;
	enum probe_state	 st;
	char			 err[300] = "";

	if (recipient_arg(req, &rc, r) == -1)
		return;
	memset(&res, 0, sizeof(res));
	st = probe_get(rc.id, &res);
	if (json_is_true(json_object_get(req, "start")) && st != PROBE_RUNNING) {
		st = probe_start(&rc, err, sizeof(err));
		if (st == PROBE_FAILED)
			strlcpy_(res.detail, err, sizeof(res.detail));
	}
	recipient_free(&rc);
	r->result = json_pack("{s:s, s:s, s:s, s:s}", "state", probe_state_name(st),
	    "param", res.param, "value", res.value, "detail", res.detail);
}

/*
 * Verify a recipient.  With "pin" ({"param", "value"}), the value must be
 * what the last probe found; it is stored in the recipient's parameters
 * before the entry is marked verified.
 */
static void
op_recipient_verify(const struct peer *p, json_t *q, const int *f, size_t n,
    struct op_result *r)
{
	struct transport_probe	 res;
	struct recipient	 rc;
	json_t			*pin = json_object_get(q, "pin"), *params;
	const char		*param, *value;
	char			*text;
	int			 rv;

	if (pin == NULL) {
		recipient_flag(p, q, 1, r);
		return;
	}
	param = json_string_value(json_object_get(pin, "param"));
	value = json_string_value(json_object_get(pin, "value"));
	if (param == NULL || value == NULL) {
		fail(r, "bad_request", "pin needs \"param\" and \"value\"");
		return;
	}
	if (recipient_arg(q, &rc, r) == -1)
		return;
	if (probe_get(rc.id, &res) != PROBE_DONE || strcmp(res.param, param) != 0 ||
	    strcmp(res.value, value) != 0) {
		fail(r, "conflict", "%s %s was not what the last probe of %s found "
		    "(%s); probe again and confirm what the server offers",
		    param, value, rc.id, res.value[0] ? res.value : "nothing yet");
		recipient_free(&rc);
		return;
	}
	params = json_loads(rc.params ? rc.params : "{}", 0, NULL);
	if (params == NULL)
		params = json_object();
	json_object_set_new(params, param, json_string(value));
	text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(params);
	free(rc.params);
	rc.params = text;
	rv = store_recipient_update(rg->store, &rc);
	recipient_free(&rc);
	if (rv == -1) {
		fail(r, "unavailable", "cannot store: %.200s", store_errmsg(rg->store));
		return;
	}
	recipient_flag(p, q, 1, r);
}

static void
op_recipient_disable(const struct peer *p, json_t *q, const int *f, size_t n,
    struct op_result *r)
{
	recipient_flag(p, q, 0, r);
}

/* A submission's outcome, in the answer's words. */
static void
submit_result(struct op_result *r, int rv, int64_t id, struct errlist *errs)
{
	if (rv == -2)
		fail(r, "unavailable", "%.400s", errs->n ? errs->msg[0] :
		    "the packet cannot be taken now: send it again later");
	else if (rv == -1) {
		fail(r, "invalid", "the packet was not accepted (%zu reason%s)",
		    errs->n, errs->n == 1 ? "" : "s");
		metrics_intake_refused(errs);
		r->reasons = json_array();
		for (size_t i = 0; i < errs->n; i++)
			json_array_append_new(r->reasons, json_string(errs->msg[i]));
		snprintf(r->detail, sizeof(r->detail), "refused");
	} else {
		snprintf(r->target, sizeof(r->target), "job %lld", (long long)id);
		r->result = json_pack("{s:I, s:s}", "job", (json_int_t)id, "state",
		    "queued");
		queue_kick();
	}
}

static void
submit_answered(void *conn, int rv, int64_t id, struct errlist *errs)
{
	struct op_result	r;

	memset(&r, 0, sizeof(r));
	submit_result(&r, rv, id, errs);
	control_reply_later(conn, &r);
}

static void
submit_cancelled(void *arg)
{
	submit_cancel(arg);
}

static void
op_submit(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct errlist	 errs = { NULL, 0 };
	struct submit	*sb;
	json_t		*manifest = json_object_get(req, "manifest");
	json_t		*files = json_object_get(req, "files"), *v;
	const char	**names;
	char		 actor[64];
	size_t		 i;
	int		 temporary;

	if (!json_is_object(manifest) || !json_is_array(files) ||
	    json_array_size(files) != nfds) {
		fail(r, "bad_request", "submit needs \"manifest\" (an object) and "
		    "\"files\" (a list of names), one name for each passed "
		    "descriptor (%zu passed)", nfds);
		return;
	}
	json_array_foreach(files, i, v)
		if (!json_is_string(v)) {
			fail(r, "bad_request", "submit: files[%zu] must be a file name "
			    "(a string)", i);
			return;
		}
	names = xcalloc(nfds + 1, sizeof(*names));
	json_array_foreach(files, i, v)
		names[i] = json_string_value(v);
	actor_name(p, actor, sizeof(actor));
	/* Answered when the copy is checked and taken (submit_answered). */
	sb = submit_start(manifest, names, fds, nfds, actor, p->uid,
	    submit_answered, r->conn, &errs, &temporary);
	if (sb != NULL) {
		r->deferred = 1;
		r->cancel = submit_cancelled;
		r->cancel_arg = sb;
	} else
		submit_result(r, temporary ? -2 : -1, 0, &errs);
	errlist_free(&errs);
	free(names);
}

/* Counts, ages and states for roigate-exporter: no PHI, no job details. */
static void
op_metrics(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	if ((r->result = metrics_snapshot()) == NULL)
		fail(r, "unavailable", "cannot read the queue: %.200s",
		    store_errmsg(rg->store));
}

/* Open alerts and the recently resolved ones (ids and counts, no PHI). */
static void
op_alerts(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	r->result = json_pack("{s:o}", "alerts", alerts_list());
}

/*
 * qshape (Postfix): waiting jobs by recipient against their age since
 * arrival, in doubling buckets.  Each row also counts the jobs that wait
 * because of a limit (recipient busy, send window), with the latest reason.
 */
static const int shape_minutes[] = { 5, 10, 20, 40, 80, 160, 320, 640, 1440 };
static const char *const shape_labels[] = { "5m", "10m", "20m", "40m", "80m",
	"160m", "320m", "640m", "1d", "1d+" };
#define SHAPE_N	(sizeof(shape_labels) / sizeof(shape_labels[0]))

struct shape_row {
	char	recipient[80];
	char	transport[80];
	char	reason[200];
	int64_t	counts[SHAPE_N];
	int64_t	total;
	int64_t	limited;
};

struct shape {
	struct shape_row	*rows;
	size_t			 n;
	int64_t			 now;
};

static void
shape_add(struct shape_row *row, int64_t age, const char *last_error)
{
	size_t	i;

	for (i = 0; i < SHAPE_N - 1 && age > shape_minutes[i] * 60; i++)
		;
	row->counts[i]++;
	row->total++;
	if (last_error && strncmp(last_error, "waiting", 7) == 0) {
		row->limited++;
		strlcpy_(row->reason, last_error, sizeof(row->reason));
	}
}

static int
shape_job(const struct store_brief *b, void *arg)
{
	struct shape	*sh = arg;
	const char	*rc = b->recipient_id ? b->recipient_id : "";
	size_t		 i;

	for (i = 1; i < sh->n && strcmp(sh->rows[i].recipient, rc) != 0; i++)
		;
	if (i == sh->n) {
		sh->rows = xreallocarray(sh->rows, sh->n + 1, sizeof(*sh->rows));
		memset(&sh->rows[i], 0, sizeof(sh->rows[i]));
		strlcpy_(sh->rows[i].recipient, rc, sizeof(sh->rows[i].recipient));
		strlcpy_(sh->rows[i].transport, b->transport ? b->transport : "",
		    sizeof(sh->rows[i].transport));
		sh->n++;
	}
	shape_add(&sh->rows[i], sh->now - b->created_at, b->last_error);
	shape_add(&sh->rows[0], sh->now - b->created_at, b->last_error);
	return 0;
}

static int
shape_cmp(const void *a, const void *b)
{
	const struct shape_row	*x = a, *y = b;

	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->recipient, y->recipient);
}

static json_t *
shape_row_json(const struct shape_row *row)
{
	json_t	*c = json_array();

	for (size_t i = 0; i < SHAPE_N; i++)
		json_array_append_new(c, json_integer(row->counts[i]));
	return json_pack("{s:s, s:s, s:I, s:o, s:I, s:s?}", "recipient",
	    row->recipient, "transport", row->transport, "total",
	    (json_int_t)row->total, "counts", c, "limited", (json_int_t)row->limited,
	    "limit_reason", row->reason[0] ? row->reason : NULL);
}

static void
op_shape(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct shape	 sh = { NULL, 1, now_wall() };
	json_t		*labels = json_array(), *rows = json_array();

	sh.rows = xcalloc(1, sizeof(*sh.rows));
	strlcpy_(sh.rows[0].recipient, "TOTAL", sizeof(sh.rows[0].recipient));
	if (store_jobs_brief(rg->store, (1u << JOB_QUEUED) | (1u << JOB_DEFERRED),
	    shape_job, &sh) == -1) {
		fail(r, "unavailable", "cannot read the queue: %.200s",
		    store_errmsg(rg->store));
		free(sh.rows);
		json_decref(labels), json_decref(rows);
		return;
	}
	qsort(sh.rows + 1, sh.n - 1, sizeof(*sh.rows), shape_cmp);
	for (size_t i = 0; i < SHAPE_N; i++)
		json_array_append_new(labels, json_string(shape_labels[i]));
	for (size_t i = 1; i < sh.n; i++)
		json_array_append_new(rows, shape_row_json(&sh.rows[i]));
	r->result = json_pack("{s:o, s:o, s:o}", "buckets", labels, "total",
	    shape_row_json(&sh.rows[0]), "recipients", rows);
	free(sh.rows);
}

/*
 * roictl prune [--dry-run] (docs/disclosure-log.md, Retention): what the
 * retention period lets go now; without dry_run, the sealed prune record
 * is written and the removal runs in the background (src/retention.c).
 */
static void
op_prune(const struct peer *p, json_t *req, const int *fds, size_t nfds,
    struct op_result *r)
{
	struct retention_plan	 pl;
	json_t			*tables = json_array();
	char			 actor[96], why[400];
	int			 dry = json_is_true(json_object_get(req, "dry_run"));
	int64_t			 total = 0;

	if (retention_plan(now_wall(), &pl, why, sizeof(why)) == -1) {
		fail(r, "unavailable", "%s", why);
		json_decref(tables);
		return;
	}
	actor_name(p, actor, sizeof(actor));
	if (!dry && retention_prune(&pl, actor, why, sizeof(why)) == -1) {
		fail(r, "unavailable", "%s", why);
		json_decref(tables);
		return;
	}
	for (int t = 0; t < STORE_SEALED_N; t++) {
		if (t == STORE_SEALED_PRUNES)
			continue;
		total += pl.t[t].count;
		json_array_append_new(tables, json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}",
		    "name", store_sealed_name(t), "from", (json_int_t)pl.t[t].from,
		    "to", (json_int_t)pl.t[t].to, "count", (json_int_t)pl.t[t].count,
		    "first_at", jtime(pl.t[t].first_at), "last_at",
		    jtime(pl.t[t].last_at)));
	}
	snprintf(r->target, sizeof(r->target), "prune %lld", (long long)pl.rec.seq);
	snprintf(r->detail, sizeof(r->detail), "%s%lld sealed entries up to epoch "
	    "%lld, %lld job folders", dry ? "dry run: " : "", (long long)total,
	    (long long)pl.epoch, (long long)pl.job_folders);
	r->result = json_pack("{s:b, s:o, s:I, s:I, s:o, s:I, s:I, s:b, s:I}",
	    "dry_run", dry, "before", jtime(pl.before), "epoch", (json_int_t)pl.epoch,
	    "record", (json_int_t)pl.rec.seq, "tables", tables, "job_folders",
	    (json_int_t)pl.job_folders, "job_bytes", (json_int_t)pl.job_bytes,
	    "removing", pl.removing, "records_retention_days",
	    (json_int_t)(rg->conf->retention_records_ms / 86400000));
}

#define ANYROLE	(ROLE_SUBMIT | ROLE_OPERATE | ROLE_AUDIT | ROLE_ADMIN)

static const struct op_def ops[] = {
	{ "submit", ROLE_SUBMIT, "submit", op_submit },
	{ "status", ANYROLE, "submit, operate, audit or admin", op_status },
	{ "metrics", ROLE_METRICS | ROLE_OPERATE, "metrics or operate", op_metrics },
	{ "alerts", READERS, "operate, audit or admin", op_alerts },
	{ "shape", READERS, "operate, audit or admin", op_shape },
	{ "list", READERS | ROLE_SUBMIT, "submit, operate, audit or admin", op_list },
	{ "show", READERS | ROLE_SUBMIT, "submit, operate, audit or admin", op_show },
	{ "hold", ROLE_OPERATE, "operate", op_hold },
	{ "release", ROLE_OPERATE, "operate", op_release },
	{ "retry", ROLE_OPERATE, "operate", op_retry },
	{ "cancel", ROLE_OPERATE, "operate", op_cancel },
	{ "log", ROLE_AUDIT, "audit", op_log },
	{ "verify-log", ROLE_AUDIT, "audit", op_verify_log },
	{ "audit", ROLE_AUDIT, "audit", op_audit },
	{ "accounting", ROLE_AUDIT, "audit", op_accounting },
	{ "accounting-suspend", ROLE_AUDIT, "audit", op_accounting_suspend },
	{ "report-daily", ROLE_AUDIT, "audit", op_report_daily },
	{ "incident-open", ROLE_AUDIT | ROLE_OPERATE, "audit or operate",
	    op_incident_open },
	{ "incident-assess", ROLE_AUDIT, "audit", op_incident_assess },
	{ "incident-show", ROLE_AUDIT, "audit", op_incident_show },
	{ "prune", ROLE_ADMIN, "admin", op_prune },
	{ "requests", READERS, "operate, audit or admin", op_requests },
	{ "recipient-add", ROLE_ADMIN, "admin", op_recipient_add },
	{ "recipient-list", READERS, "operate, audit or admin", op_recipient_list },
	{ "recipient-show", READERS, "operate, audit or admin", op_recipient_show },
	{ "recipient-verify", ROLE_ADMIN, "admin", op_recipient_verify },
	{ "recipient-probe", ROLE_ADMIN, "admin", op_recipient_probe },
	{ "recipient-disable", ROLE_ADMIN, "admin", op_recipient_disable },
};

const struct op_def *
control_op_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}
