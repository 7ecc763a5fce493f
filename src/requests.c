/*
 * Request deadlines (daemon), docs/requests.md.  A request is known from
 * the manifests of the jobs that answer it (request.id, received_on,
 * basis).  It is answered, as a clerk counts it, when a job for it was
 * delivered and none is left to do: none waiting, sending, held or
 * awaiting confirmation, and none that failed after the last delivery
 * (a failed packet sent again later is redone; cancelled jobs do not
 * count).  Until then it is open.  The store groups the jobs by request
 * (store_open_requests) and hands over the newest manifest of each open
 * one only.  Only the extension is stored of its own: a sealed row of
 * request_extensions (schema 12).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "requests.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

struct req_scan {
	json_t	*by_id;		/* request id -> object */
};

static int
req_cmp_id(const void *a, const void *b)
{
	json_int_t x = json_integer_value(*(json_t *const *)a);
	json_int_t y = json_integer_value(*(json_t *const *)b);

	return (x > y) - (x < y);
}

/* "5,4" into [4, 5]. */
static json_t *
req_job_ids(const char *list)
{
	json_t	**v = NULL, *arr = json_array();
	size_t	  n = 0, cap = 0, i;
	char	 *end;

	while (list && *list) {
		long long id = strtoll(list, &end, 10);

		if (end == list)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = json_integer(id);
		list = *end == ',' ? end + 1 : end;
	}
	if (n)
		qsort(v, n, sizeof(*v), req_cmp_id);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
	return arr;
}

static int
req_open(const char *id, const char *jobs, const char *manifest, void *arg)
{
	struct req_scan	*rs = arg;
	json_t		*m = manifest ? json_loads(manifest, 0, NULL) : NULL;
	json_t		*rq = json_object_get(m, "request");
	const char	*recv = json_string_value(json_object_get(rq, "received_on"));
	const char	*basis = json_string_value(json_object_get(m, "basis"));
	int64_t		 t = 0;

	if (id && recv && datetime_parse(recv, &t) == 0)
		json_object_set_new(rs->by_id, id, json_pack("{s:s, s:s, s:I, s:s,"
		    " s:o}", "id", id, "received_on", recv, "received_at",
		    (json_int_t)t, "basis", basis ? basis : "", "jobs",
		    req_job_ids(jobs)));
	json_decref(m);
	return 0;
}

static int
req_extension(const char *id, int64_t at, const char *reason, const char *actor,
    void *arg)
{
	json_t	*o = json_object_get(arg, id);
	char	 when[32];

	time_iso(at, when, sizeof(when));
	if (o)
		json_object_set_new(o, "extension", json_pack("{s:s, s:s?, s:s?}",
		    "at", when, "reason", reason, "by", actor));
	return 0;
}

static int
req_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a,
	    "received_at"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b,
	    "received_at"));

	return (x > y) - (x < y);
}

/*
 * Days are calendar days in local time, as a clerk counts them: today is
 * the local date, the request's day its received_on.  Both as the unix
 * second of that date's midnight UTC, so their difference is whole days.
 */
static int64_t
req_day(int64_t t, int local)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (!local)
		return t - ((t % 86400) + 86400) % 86400;
	localtime_r(&tt, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm);
}

/* Age, deadline and days left of one open request; the deadline's day
 * is the last one in time (164.524: "no later than 30 days after"). */
static void
req_deadline(json_t *o, int64_t now)
{
	int64_t	recv = req_day(json_integer_value(json_object_get(o,
	    "received_at")), 0);
	int64_t	today = req_day(now, 1);
	int	access = strcmp(json_string_value(json_object_get(o, "basis")),
	    "patient_access") == 0;
	int64_t	days = access ? REQUESTS_ACCESS_DAYS :
	    rg->conf->request_deadline_other_ms / 86400000;
	int64_t	due_at;
	char	due[32];

	if (access && json_object_get(o, "extension"))
		days += REQUESTS_ACCESS_DAYS;
	json_object_set_new(o, "age_days", json_integer((today - recv) / 86400));
	if (days <= 0) {
		json_object_set_new(o, "due", json_null());
		json_object_set_new(o, "overdue", json_false());
		return;
	}
	due_at = recv + days * 86400;
	time_iso(due_at, due, sizeof(due));
	due[10] = '\0';
	json_object_set_new(o, "due", json_string(due));
	json_object_set_new(o, "days_left", json_integer((due_at - today) / 86400));
	json_object_set_new(o, "overdue", json_boolean(today > due_at));
}

int
requests_oldest_age(int64_t now, int64_t *days)
{
	char	recv[32];
	int64_t	t;
	int	rv;

	if ((rv = store_oldest_open_request(rg->store, recv, sizeof(recv))) != 1)
		return rv;
	if (datetime_parse(recv, &t) == -1)
		return 0;
	*days = (req_day(now, 1) - req_day(t, 0)) / 86400;
	return 1;
}

json_t *
requests_open(int64_t now, char *err, size_t errlen)
{
	struct req_scan	 rs = { json_object() };
	json_t		*arr = json_array(), **v, *o;
	const char	*k;
	size_t		 n = 0, i;

	if (store_open_requests(rg->store, req_open, &rs) == -1 ||
	    store_request_extensions(rg->store, req_extension, rs.by_id) == -1) {
		bsnprintf(err, errlen, "%.200s", store_errmsg(rg->store));
		json_decref(rs.by_id);
		json_decref(arr);
		return NULL;
	}
	v = xcalloc(json_object_size(rs.by_id) + 1, sizeof(*v));
	json_object_foreach(rs.by_id, k, o)
		v[n++] = o;
	qsort(v, n, sizeof(*v), req_cmp);
	for (i = 0; i < n; i++) {
		req_deadline(v[i], now);
		json_array_append(arr, v[i]);
	}
	free(v);
	json_decref(rs.by_id);
	return arr;
}

/* Why request o may not be extended now, or NULL. */
static const char *
req_extend_refused(json_t *o, int64_t now, char *why, size_t whylen)
{
	json_t	*ext = json_object_get(o, "extension");
	int64_t	 first_due = req_day(json_integer_value(json_object_get(o,
	    "received_at")), 0) + REQUESTS_ACCESS_DAYS * 86400;
	char	 due[32];

	if (strcmp(json_string_value(json_object_get(o, "basis")),
	    "patient_access") != 0)
		bsnprintf(why, whylen, "it is not a patient's access request: its "
		    "deadline is [requests] deadline_other, with no extension");
	else if (ext)
		bsnprintf(why, whylen, "it was extended already on %.10s by %.60s; "
		    "164.524(b)(2) allows one 30-day extension only",
		    json_string_value(json_object_get(ext, "at")),
		    json_string_value(json_object_get(ext, "by")) ?
		    json_string_value(json_object_get(ext, "by")) : "someone");
	else if (req_day(now, 1) > first_due) {
		time_iso(first_due, due, sizeof(due));
		bsnprintf(why, whylen, "its 30 days ended on %.10s; 164.524(b)(2) "
		    "allows an extension only when the patient is told in writing "
		    "within them", due);
	} else
		return NULL;
	return why;
}

int
requests_extend(const char *id, const char *reason, const char *actor,
    int *notfound, char *err, size_t errlen)
{
	int64_t	 now = now_wall();
	json_t	*open = requests_open(now, err, errlen), *o = NULL, *v;
	char	 why[256];
	size_t	 i;
	int	 rv = -1;

	*notfound = 0;
	if (open == NULL)
		return -1;
	json_array_foreach(open, i, v)
		if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
			o = v;
	if (o == NULL) {
		*notfound = 1;
		bsnprintf(err, errlen, "no open request %.64s (roictl requests lists "
		    "them)", id);
	} else if (req_extend_refused(o, now, why, sizeof(why)))
		bsnprintf(err, errlen, "request %.64s cannot be extended: %s", id, why);
	else if (store_begin(rg->store) == -1 ||
	    (rv = store_request_extend(rg->store, id, now, reason, actor)) == -1 ||
	    store_commit(rg->store) == -1) {
		bsnprintf(err, errlen, "cannot record it: %.200s",
		    store_errmsg(rg->store));
		store_rollback(rg->store);
		rv = -1;
	} else if (rv == 1) {
		bsnprintf(err, errlen, "request %.64s cannot be extended: it was "
		    "extended already", id);
		rv = -1;
	}
	json_decref(open);
	return rv;
}
