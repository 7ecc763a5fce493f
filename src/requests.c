/*
 * Request deadlines (daemon), docs/requests.md.  A request is known from
 * the manifests of the jobs that answer it (request.id, received_on,
 * basis); it stays open until one of them is delivered.  Only the
 * extension is stored of its own (request_extensions, schema 9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "requests.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

struct req_scan {
	json_t	*by_id;		/* request id -> object */
};

static int
req_job(const struct job *j, void *arg)
{
	struct req_scan	*rs = arg;
	json_t		*m = j->manifest ? json_loads(j->manifest, 0, NULL) : NULL;
	json_t		*rq = json_object_get(m, "request"), *o, *jobs;
	const char	*id = json_string_value(json_object_get(rq, "id"));
	const char	*recv = json_string_value(json_object_get(rq, "received_on"));
	const char	*basis = json_string_value(json_object_get(m, "basis"));
	int64_t		 t = 0;

	if (id == NULL || recv == NULL || datetime_parse(recv, &t) == -1) {
		json_decref(m);
		return 0;
	}
	if ((o = json_object_get(rs->by_id, id)) == NULL) {
		o = json_pack("{s:s, s:s, s:I, s:s, s:b, s:[]}", "id", id,
		    "received_on", recv, "received_at", (json_int_t)t, "basis",
		    basis ? basis : "", "delivered", 0, "jobs");
		json_object_set_new(rs->by_id, id, o);
	}
	jobs = json_object_get(o, "jobs");
	json_array_append_new(jobs, json_integer(j->id));
	if (j->state == JOB_DELIVERED)
		json_object_set_new(o, "delivered", json_true());
	json_decref(m);
	return 0;
}

static int
req_extension(const char *id, int64_t at, const char *reason, const char *actor,
    void *arg)
{
	json_t	*o = json_object_get(arg, id);

	if (o)
		json_object_set_new(o, "extension", json_pack("{s:I, s:s?, s:s?}",
		    "at", (json_int_t)at, "reason", reason, "by", actor));
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

/* Age, deadline and days left of one open request. */
static void
req_deadline(json_t *o, int64_t now)
{
	int64_t	recv = json_integer_value(json_object_get(o, "received_at"));
	int	access = strcmp(json_string_value(json_object_get(o, "basis")),
	    "patient_access") == 0;
	int64_t	days = access ? REQUESTS_ACCESS_DAYS :
	    rg->conf->request_deadline_other_ms / 86400000;
	char	due[32];

	if (access && json_object_get(o, "extension"))
		days += REQUESTS_ACCESS_DAYS;
	json_object_set_new(o, "age_days", json_integer((now - recv) / 86400));
	if (days <= 0) {
		json_object_set_new(o, "due", json_null());
		json_object_set_new(o, "overdue", json_false());
		return;
	}
	time_iso(recv + days * 86400, due, sizeof(due));
	due[10] = '\0';
	json_object_set_new(o, "due", json_string(due));
	json_object_set_new(o, "days_left", json_integer((recv + days * 86400 -
	    now) / 86400));
	json_object_set_new(o, "overdue", json_boolean(now >= recv + days * 86400));
}

json_t *
requests_open(int64_t now, char *err, size_t errlen)
{
	struct req_scan	 rs = { json_object() };
	json_t		*arr = json_array(), **v, *o;
	const char	*k;
	size_t		 n = 0, i;

	if (store_jobs_list(rg->store, -1, NULL, 0, req_job, &rs) == -1 ||
	    store_request_extensions(rg->store, req_extension, rs.by_id) == -1) {
		bsnprintf(err, errlen, "%.200s", store_errmsg(rg->store));
		json_decref(rs.by_id);
		json_decref(arr);
		return NULL;
	}
	v = xcalloc(json_object_size(rs.by_id) + 1, sizeof(*v));
	json_object_foreach(rs.by_id, k, o)
		if (!json_is_true(json_object_get(o, "delivered")))
			v[n++] = o;
	qsort(v, n, sizeof(*v), req_cmp);
	for (i = 0; i < n; i++) {
		req_deadline(v[i], now);
		json_object_del(v[i], "delivered");
		json_array_append(arr, v[i]);
	}
	free(v);
	json_decref(rs.by_id);
	return arr;
}

int
requests_extend(const char *id, const char *reason, const char *actor,
    int *notfound, char *err, size_t errlen)
{
	json_t	*open = requests_open(now_wall(), err, errlen), *o;
	size_t	 i;
	int	 rv = -1, found = 0;

	*notfound = 0;
	if (open == NULL)
		return -1;
	json_array_foreach(open, i, o)
		if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0) {
			found = 1;
			break;
		}
	if (!found) {
		*notfound = 1;
		bsnprintf(err, errlen, "no open request %.64s", id);
	} else if (strcmp(json_string_value(json_object_get(o, "basis")),
	    "patient_access") != 0)
		bsnprintf(err, errlen, "request %.64s is not a patient's access "
		    "request: its deadline is [requests] deadline_other", id);
	else if ((rv = store_request_extend(rg->store, id, now_wall(), reason,
	    actor)) == 1) {
		bsnprintf(err, errlen, "request %.64s was extended already: 164.524 "
		    "allows one 30-day extension", id);
		rv = -1;
	} else if (rv == -1)
		bsnprintf(err, errlen, "cannot record it: %.200s",
		    store_errmsg(rg->store));
	json_decref(open);
	return rv;
}
