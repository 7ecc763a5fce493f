/*
 * Jobs counted by state, and by transport for those not in a final
 * state, kept by the daemon (roigated) so that `roictl status` reads
 * counts instead of counting a million rows on each request.
 *
 * Counted once in the database at start-up (or, if that failed, when
 * first asked); after that every change to the jobs table is reported by
 * the store (store_watch_jobs: SQLite's pre-update hook, whatever code
 * path made it) and held until its transaction commits, dropped if it
 * rolls back.  Anything the counts
 * cannot follow (an unknown state, too many transports) makes them stop,
 * and the next request counts in the database again.
 */
#include <stdlib.h>
#include <string.h>

#include "counts.h"
#include "util.h"

#define COUNTS_TRANSPORTS	64

static struct {
	int	 following, broken;
	int64_t	 state[JOB_NSTATES], pend_state[JOB_NSTATES];
	char	 tr[COUNTS_TRANSPORTS][64];
	int64_t	 n_tr[COUNTS_TRANSPORTS], pend_tr[COUNTS_TRANSPORTS];
	size_t	 ntr;
} counts;

static int
tr_index(const char *name)
{
	size_t	i;

	for (i = 0; i < counts.ntr; i++)
		if (strcmp(counts.tr[i], name) == 0)
			return (int)i;
	if (i == COUNTS_TRANSPORTS || strlen(name) >= sizeof(counts.tr[0]))
		return -1;
	strlcpy_(counts.tr[i], name, sizeof(counts.tr[i]));
	counts.n_tr[i] = counts.pend_tr[i] = 0;
	counts.ntr++;
	return (int)i;
}

/* One job leaving (d = -1) or entering (d = 1) a state and transport. */
static void
move(const char *state, const char *transport, int d)
{
	enum job_state	 js;
	int		 t;

	if (state == NULL)
		return;
	if (job_state_parse(state, &js) == -1 || transport == NULL) {
		counts.broken = 1;
		return;
	}
	counts.pend_state[js] += d;
	if (job_state_final(js))
		return;
	if ((t = tr_index(transport)) == -1)
		counts.broken = 1;
	else
		counts.pend_tr[t] += d;
}

static void
on_change(void *arg, const char *os, const char *ot, const char *ns,
    const char *nt)
{
	move(os, ot, -1);
	move(ns, nt, 1);
}

static void
on_end(void *arg, int committed)
{
	for (int i = 0; i < JOB_NSTATES; i++) {
		counts.state[i] += committed ? counts.pend_state[i] : 0;
		counts.pend_state[i] = 0;
	}
	for (size_t i = 0; i < counts.ntr; i++) {
		counts.n_tr[i] += committed ? counts.pend_tr[i] : 0;
		counts.pend_tr[i] = 0;
	}
	if (counts.broken)
		counts.following = 0;
}

int
counts_start(struct store *s)
{
	static const struct store_job_watch w = { .change = on_change,
		.end = on_end };
	struct store_status	 st;
	enum job_state		 js;
	int			 t;

	if (counts.following)
		return 0;
	memset(&counts, 0, sizeof(counts));
	if (store_status_counts(s, &st) == -1) {
		store_status_free(&st);
		return -1;
	}
	for (size_t i = 0; i < st.nby_state; i++)
		if (job_state_parse(st.by_state[i].key, &js) == 0)
			counts.state[js] = st.by_state[i].count;
		else
			counts.broken = 1;
	for (size_t i = 0; i < st.nby_transport; i++)
		if ((t = tr_index(st.by_transport[i].key)) != -1)
			counts.n_tr[t] = st.by_transport[i].count;
		else
			counts.broken = 1;
	store_status_free(&st);
	if (counts.broken || store_watch_jobs(s, &w) == -1)
		return -1;
	counts.following = 1;
	return 0;
}

void
counts_get(struct store_status *out)
{
	out->by_state = xcalloc(JOB_NSTATES, sizeof(*out->by_state));
	out->by_transport = xcalloc(counts.ntr + 1, sizeof(*out->by_transport));
	for (int i = 0; i < JOB_NSTATES; i++) {
		out->by_state[i].key = xstrdup(job_state_name(i));
		out->by_state[i].count = counts.state[i];
	}
	out->nby_state = JOB_NSTATES;
	for (size_t i = 0; i < counts.ntr; i++)
		if (counts.n_tr[i] > 0) {
			out->by_transport[out->nby_transport].key = xstrdup(counts.tr[i]);
			out->by_transport[out->nby_transport++].count = counts.n_tr[i];
		}
}
