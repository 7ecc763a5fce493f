/*
 * Metrics (daemon): what roigate-exporter turns into Prometheus text.
 *
 * Counters (deliveries, failures by class, refusals at intake, pages,
 * the two histograms) live in this process's memory: they are seeded from
 * the disclosure log and the jobs table when the daemon starts (failures
 * recorded before then carry the class "unclassified"; render times start
 * from zero), and moved by the queue as it records outcomes.  Gauges (jobs
 * by state, the oldest waiting job, free space, problems) are read when
 * asked for: two grouped queries, served by the (state, next_at) index.
 *
 * A scrape must stay cheap and must never carry PHI: labels are transport
 * instance names, recipient ids, states and short error classes, bounded
 * in number (METRICS_MAX_SERIES; what does not fit is counted as "other").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "queue.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

#define METRICS_MAX_SERIES	256
#define METRICS_NAME_MAX	64

struct series {
	char	transport[METRICS_NAME_MAX];
	char	cls[32];
	int64_t	n;
};

struct counter_set {
	struct series	s[METRICS_MAX_SERIES];
	size_t		n;
};

/* Upper bounds, in seconds, of the histograms' buckets (+Inf is implied). */
static const double latency_le[] = { 10, 30, 60, 120, 300, 600, 1800, 3600,
	7200, 21600, 86400, 259200 };
static const double render_le[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
	120, 300 };
#define NLAT	(sizeof(latency_le) / sizeof(latency_le[0]))
#define NREN	(sizeof(render_le) / sizeof(render_le[0]))

struct histogram {
	const double	*le;
	size_t		 nle;
	int64_t		 counts[16];	/* per bucket, not cumulative; [nle] is +Inf */
	double		 sum;
	int64_t		 count;
};

static const char *const refusal_classes[] = { "manifest", "document",
	"authorization", "recipient", "approval", "duplicate", "incomplete",
	"size", "other" };
#define NREFUSAL	(sizeof(refusal_classes) / sizeof(refusal_classes[0]))

static struct {
	struct counter_set	deliveries;	/* cls unused */
	struct counter_set	tempfails;
	struct counter_set	permfails;
	int64_t			refused[NREFUSAL];
	int64_t			pages;
	struct histogram	latency;
	struct histogram	render;
	int			verified;	/* -1 not since start, 0 failed, 1 passed */
	int64_t			verified_at;
	int64_t			seeded_at;
} m = {
	.latency = { latency_le, NLAT, { 0 }, 0, 0 },
	.render = { render_le, NREN, { 0 }, 0, 0 },
	.verified = -1,
};

static void
count_add(struct counter_set *c, const char *transport, const char *cls,
    int64_t n)
{
	size_t	i;

	if (transport == NULL)
		transport = "";
	if (cls == NULL)
		cls = "";
	for (i = 0; i < c->n; i++)
		if (strcmp(c->s[i].transport, transport) == 0 &&
		    strcmp(c->s[i].cls, cls) == 0) {
			c->s[i].n += n;
			return;
		}
	if (c->n == METRICS_MAX_SERIES - 1) {
		/* The last series takes whatever no longer fits. */
		transport = "other";
		cls = "other";
		for (i = 0; i < c->n; i++)
			if (strcmp(c->s[i].transport, "other") == 0 &&
			    strcmp(c->s[i].cls, "other") == 0) {
				c->s[i].n += n;
				return;
			}
	}
	if (c->n >= METRICS_MAX_SERIES)
		return;
	strlcpy_(c->s[c->n].transport, transport, sizeof(c->s[c->n].transport));
	strlcpy_(c->s[c->n].cls, cls, sizeof(c->s[c->n].cls));
	c->s[c->n].n = n;
	c->n++;
}

static void
histogram_observe(struct histogram *h, double v)
{
	size_t	i;

	for (i = 0; i < h->nle && v > h->le[i]; i++)
		;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

static int
seed_outcome(const char *transport, const char *outcome, int64_t count,
    int64_t pages, void *arg)
{
	if (strcmp(outcome, "delivered") == 0)
		count_add(&m.deliveries, transport, "", count);
	else if (strcmp(outcome, "deferred") == 0)
		count_add(&m.tempfails, transport, "unclassified", count);
	else if (strcmp(outcome, "failed") == 0)
		count_add(&m.permfails, transport, "unclassified", count);
	else if (strcmp(outcome, "attempt") == 0)
		m.pages += pages;
	return 0;
}

static int
seed_latency(int64_t seconds, void *arg)
{
	histogram_observe(&m.latency, (double)(seconds < 0 ? 0 : seconds));
	return 0;
}

void
metrics_init(void)
{
	int64_t	t0 = now_ms();

	if (store_outcome_counts(rg->store, seed_outcome, NULL) == -1 ||
	    store_delivery_latencies(rg->store, seed_latency, NULL) == -1)
		log_warnx("metrics: cannot read the counters' starting values: "
		    "%.200s; they start from zero", store_errmsg(rg->store));
	m.seeded_at = now_wall();
	log_debug("metrics: counters seeded in %lld ms", (long long)(now_ms() - t0));
}

void
metrics_job_rendered(const char *transport, uint32_t pages, int64_t render_ms)
{
	m.pages += pages;
	histogram_observe(&m.render, (double)render_ms / 1000.0);
}

void
metrics_error_class(enum transport_status st, const struct transport_receipt *rc,
    const char *error, char *out, size_t len)
{
	size_t	n = 0;

	if (rc->hold == TRANSPORT_HOLD_ALL) {
		strlcpy_(out, "credentials", len);
		return;
	}
	if (error != NULL) {
		/* The daemon's own words: the worker died, hung or said nothing. */
		strlcpy_(out, "worker", len);
		return;
	}
	/* The receipt's status word, reduced to [a-z0-9_]. */
	for (const char *p = rc->status; *p && n + 1 < len && n < 24; p++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*p);
		out[n++] = (char)(isalnum(c) ? c : '_');
	}
	out[n] = '\0';
	if (n == 0)
		strlcpy_(out, "unknown", len);
}

void
metrics_job_outcome(const char *transport, enum transport_status st,
    const struct transport_receipt *rc, const char *error, int64_t created_at,
    int delivered)
{
	char	cls[32];

	if (st == TRANSPORT_OK) {
		if (delivered) {
			count_add(&m.deliveries, transport, "", 1);
			histogram_observe(&m.latency, (double)(now_wall() - created_at));
		}
		return;
	}
	metrics_error_class(st, rc, error, cls, sizeof(cls));
	count_add(st == TRANSPORT_PERMFAIL ? &m.permfails : &m.tempfails,
	    transport, cls, 1);
}

/* The class of a refusal, from the words of its first reason. */
static size_t
refusal_class(const char *why)
{
	static const struct {
		const char	*word;
		size_t		 cls;
	} words[] = {
		{ "already", 5 }, { "has not arrived", 6 }, { "incomplete", 6 },
		{ "over the limit", 7 }, { "past the limit", 7 }, { "the limit is", 7 },
		{ "authorization", 2 }, { "basis", 2 }, { "carries", 2 },
		{ "approval", 4 }, { "recipient", 3 }, { "document", 1 }, { "file", 1 },
		{ "manifest", 0 },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(why, words[i].word) != NULL)
			return words[i].cls;
	return NREFUSAL - 1;
}

void
metrics_intake_refused(const struct errlist *errs)
{
	m.refused[errs && errs->n ? refusal_class(errs->msg[0]) : NREFUSAL - 1]++;
}

void
metrics_log_verified(int ok)
{
	m.verified = ok ? 1 : 0;
	m.verified_at = now_wall();
}

static json_t *
counters_json(const struct counter_set *c, int with_class)
{
	json_t	*a = json_array();

	for (size_t i = 0; i < c->n; i++)
		json_array_append_new(a, with_class ?
		    json_pack("{s:s, s:s, s:I}", "transport", c->s[i].transport,
		    "class", c->s[i].cls, "count", (json_int_t)c->s[i].n) :
		    json_pack("{s:s, s:I}", "transport", c->s[i].transport,
		    "count", (json_int_t)c->s[i].n));
	return a;
}

static json_t *
histogram_json(const struct histogram *h)
{
	json_t	*b = json_array();
	int64_t	 cum = 0;

	/* Cumulative, as Prometheus wants them; +Inf is "count". */
	for (size_t i = 0; i < h->nle; i++) {
		cum += h->counts[i];
		json_array_append_new(b, json_pack("[f, I]", h->le[i], (json_int_t)cum));
	}
	return json_pack("{s:o, s:f, s:I}", "buckets", b, "sum", h->sum,
	    "count", (json_int_t)h->count);
}

struct waiting_ctx {
	json_t	*list;
	int64_t	 now;
};

/* Queued and deferred come one after the other: merge by transport and
 * recipient (a few hundred entries at most, so a linear search). */
static int
waiting_group(const struct store_group *g, void *arg)
{
	struct waiting_ctx	*w = arg;
	const char		*t = g->transport ? g->transport : "";
	const char		*rc = g->recipient_id ? g->recipient_id : "";
	int64_t			 age = w->now - g->oldest_created;
	json_t			*e;
	size_t			 i;

	json_array_foreach(w->list, i, e)
		if (strcmp(json_string_value(json_object_get(e, "transport")), t) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "recipient")), rc) == 0) {
			json_object_set_new(e, "count", json_integer(g->count +
			    json_integer_value(json_object_get(e, "count"))));
			if (age > json_integer_value(json_object_get(e, "oldest_age")))
				json_object_set_new(e, "oldest_age", json_integer(age));
			return 0;
		}
	json_array_append_new(w->list, json_pack("{s:s, s:s, s:I, s:I}",
	    "transport", t, "recipient", rc, "count", (json_int_t)g->count,
	    "oldest_age", (json_int_t)age));
	return 0;
}

static json_t *
disk_json(const char *name, const char *path)
{
	struct statvfs	sv;

	if (statvfs(path, &sv) == -1)
		return json_pack("{s:s, s:n, s:n}", "folder", name, "free_bytes",
		    "size_bytes");
	return json_pack("{s:s, s:I, s:I}", "folder", name,
	    "free_bytes", (json_int_t)((int64_t)sv.f_bavail * (int64_t)sv.f_frsize),
	    "size_bytes", (json_int_t)((int64_t)sv.f_blocks * (int64_t)sv.f_frsize));
}

static const char *const problem_kinds[PROBLEM_MAX] = {
	[PROBLEM_SPOOL] = "spool", [PROBLEM_STORE] = "store",
	[PROBLEM_TRANSPORT] = "transport", [PROBLEM_QUEUE] = "queue",
	[PROBLEM_CONTROL] = "control", [PROBLEM_LOG] = "log",
};

static json_t *
problems_json(void)
{
	json_t	*o = json_object();

	for (int i = 0; i < PROBLEM_MAX; i++)
		if (problem_kinds[i])
			json_object_set_new(o, problem_kinds[i],
			    json_integer(rg->problem[i][0] ? 1 : 0));
	return o;
}

static json_t *
refused_json(void)
{
	json_t	*o = json_object();

	for (size_t i = 0; i < NREFUSAL; i++)
		json_object_set_new(o, refusal_classes[i], json_integer(m.refused[i]));
	return o;
}

/* The log's head, and (once sealing exists) its epoch. */
static json_t *
disclosure_json(void)
{
	int64_t	head = store_disclosure_head(rg->store);

	/*
	 * Sealing (forward-secure, per epoch) is being built beside this:
	 * when it offers a function for the current epoch, put it in
	 * "seal_epoch" here; roigate-exporter exports it when it is a number.
	 */
	return json_pack("{s:o, s:n, s:o, s:o}",
	    "last_seq", head >= 0 ? json_integer(head) : json_null(),
	    "seal_epoch",
	    "verified", m.verified < 0 ? json_null() : json_boolean(m.verified),
	    "verified_at", m.verified_at ? json_integer(m.verified_at) : json_null());
}

json_t *
metrics_snapshot(void)
{
	struct waiting_ctx	 w;
	int64_t			 by_state[JOB_NSTATES];
	json_t			*states = json_object();

	if (store_jobs_by_state(rg->store, by_state) == -1)
		return NULL;
	for (int i = 0; i < JOB_NSTATES; i++)
		json_object_set_new(states, job_state_name(i), json_integer(by_state[i]));
	w.list = json_array();
	w.now = now_wall();
	if (store_jobs_grouped(rg->store, (1u << JOB_QUEUED) | (1u << JOB_DEFERRED),
	    waiting_group, &w) == -1) {
		json_decref(states);
		json_decref(w.list);
		return NULL;
	}
	return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I,"
	    " s:i, s:i, s:I, s:o, s:[o, o], s:o, s:b}",
	    "time", (json_int_t)w.now, "started_at", (json_int_t)rg->started_at,
	    "jobs", states, "waiting", w.list,
	    "deliveries", counters_json(&m.deliveries, 0),
	    "tempfails", counters_json(&m.tempfails, 1),
	    "permfails", counters_json(&m.permfails, 1),
	    "intake_refused", refused_json(),
	    "delivery_latency", histogram_json(&m.latency),
	    "render_time", histogram_json(&m.render),
	    "pages_rendered", (json_int_t)m.pages,
	    "workers_running", queue_running(), "workers_max", rg->conf->workers,
	    "awaiting_confirmation", (json_int_t)by_state[JOB_AWAITING],
	    "disclosure_log", disclosure_json(),
	    "disk", disk_json("spool", rg->conf->spool_dir),
	    disk_json("state", rg->conf->state_dir),
	    "problems", problems_json(), "draining", rg->draining);
}
