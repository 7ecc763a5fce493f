/*
 * The daily reconciliation (daemon), docs/daily.md.  A clerk or privacy
 * officer checks one day's work against the requests it answered: what
 * was accepted, delivered, failed, held and cancelled that day, by
 * transport and recipient; which jobs were still awaiting confirmation
 * when the day ended (or now, for today); and each send whose outcome
 * is not confirmed: a fax the provider took but has not confirmed, a send
 * in progress, a send the daemon's stop interrupted (it may have reached
 * the recipient).
 *
 * The job events say what happened when; a job counts once per column,
 * on the day of its event, in local time.  The report names jobs by id,
 * packet and request only, never the patient.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daily.h"
#include "report.h"
#include "store.h"
#include "util.h"

enum daily_col {
	DAILY_ACCEPTED, DAILY_DELIVERED, DAILY_FAILED, DAILY_HELD,
	DAILY_CANCELLED, DAILY_AWAITING, DAILY_NCOLS
};
static const char *const daily_cols[DAILY_NCOLS] = { "accepted", "delivered",
	"failed", "held", "cancelled", "awaiting_confirmation" };
/* The states an event of the day counts under (awaiting: at the end). */
static const char *const daily_event_states[DAILY_NCOLS] = { "accepted",
	"delivered", "failed", "held", "cancelled", NULL };

struct daily_job {
	int64_t	 id, sent_at;
	char	*packet_id, *transport, *recipient_id, *request_ref, *remote_id;
	int	 col[DAILY_NCOLS];	/* counted in that column */
	char	*state;			/* at the end looked at */
	int64_t	 state_at;
	char	*failed_reason, *held_reason;
	int64_t	 failed_at, held_at;
};

struct daily_scan {
	const struct daily_req	*rq;
	struct daily_job	*j;
	size_t			 n, cap;
};

static void
daily_set(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v ? v : "");
}

static void
daily_job_free(struct daily_job *j)
{
	free(j->packet_id);
	free(j->transport);
	free(j->recipient_id);
	free(j->request_ref);
	free(j->remote_id);
	free(j->state);
	free(j->failed_reason);
	free(j->held_reason);
}

static struct daily_job *
daily_job_of(struct daily_scan *d, const struct store_day_event *e)
{
	struct daily_job *j;

	if (d->n && d->j[d->n - 1].id == e->job_id)
		return &d->j[d->n - 1];
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->j = xreallocarray(d->j, d->cap, sizeof(*d->j));
	}
	j = &d->j[d->n++];
	memset(j, 0, sizeof(*j));
	j->id = e->job_id;
	j->sent_at = e->sent_at;
	daily_set(&j->packet_id, e->packet_id);
	daily_set(&j->transport, e->transport);
	daily_set(&j->recipient_id, e->recipient_id);
	daily_set(&j->request_ref, e->request_ref);
	daily_set(&j->remote_id, e->remote_id);
	return j;
}

static int
daily_event(const struct store_day_event *e, void *arg)
{
	struct daily_scan	*d = arg;
	struct daily_job	*j = daily_job_of(d, e);
	const char		*to = e->to_state ? e->to_state : "";

	daily_set(&j->state, to);
	j->state_at = e->at;
	if (e->at < d->rq->from || e->at >= d->rq->as_of)
		return 0;
	for (int c = 0; c < DAILY_NCOLS; c++)
		if (daily_event_states[c] && strcmp(to, daily_event_states[c]) == 0)
			j->col[c] = 1;
	if (strcmp(to, "failed") == 0) {
		daily_set(&j->failed_reason, e->reason);
		j->failed_at = e->at;
	} else if (strcmp(to, "held") == 0) {
		daily_set(&j->held_reason, e->reason);
		j->held_at = e->at;
	}
	return 0;
}

static json_t *
daily_time(int64_t t)
{
	char	buf[32];

	time_iso(t, buf, sizeof(buf));
	return json_string(buf);
}

/* One row of counts a transport and recipient. */
static json_t *
daily_row_of(json_t *rows, const struct daily_job *j)
{
	json_t	*r;
	char	 key[512];

	snprintf(key, sizeof(key), "%s\n%s", j->transport, j->recipient_id);
	if ((r = json_object_get(rows, key)) == NULL) {
		r = json_pack("{s:s, s:s}", "transport", j->transport, "recipient",
		    j->recipient_id);
		for (int c = 0; c < DAILY_NCOLS; c++)
			json_object_set_new(r, daily_cols[c], json_integer(0));
		json_object_set_new(rows, key, r);
	}
	return r;
}

static void
daily_add(json_t *o, const char *k)
{
	json_object_set_new(o, k, json_integer(json_integer_value(
	    json_object_get(o, k)) + 1));
}

static json_t *
daily_item(const struct daily_job *j, const char *what, int64_t at,
    const char *detail)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s}",
	    "job", (json_int_t)j->id, "packet_id", j->packet_id, "request",
	    j->request_ref, "transport", j->transport, "recipient", j->recipient_id,
	    "status", what, "at", daily_time(at), "detail", detail ? detail : "",
	    "state", j->state ? j->state : "", "remote_id", j->remote_id);
}

static int
daily_cmp_item(const void *pa, const void *pb)
{
	json_t	*a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int	 c = strcmp(json_string_value(json_object_get(a, "at")),
	    json_string_value(json_object_get(b, "at")));
	json_int_t x = json_integer_value(json_object_get(a, "job"));
	json_int_t y = json_integer_value(json_object_get(b, "job"));

	return c ? c : (x > y) - (x < y);
}

/* arr sorted with cmp (jansson arrays have no sort). */
static json_t *
daily_sorted(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t	 n = json_array_size(arr), i;
	json_t	**v = xcalloc(n + 1, sizeof(*v)), *out = json_array();

	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

static int
daily_cmp_row(const void *pa, const void *pb)
{
	json_t	*a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int	 c = strcmp(json_string_value(json_object_get(a, "transport")),
	    json_string_value(json_object_get(b, "transport")));

	return c ? c : strcmp(json_string_value(json_object_get(a, "recipient")),
	    json_string_value(json_object_get(b, "recipient")));
}

/* A send of the day whose outcome the daemon could not learn. */
struct daily_unsure {
	const struct daily_req	*rq;
	struct daily_scan	*d;
	json_t			*items;
};

static int
daily_interrupted(const struct disclosure *e, void *arg)
{
	struct daily_unsure	*u = arg;

	if (e->outcome == NULL || strcmp(e->outcome, "interrupted") != 0 ||
	    e->at >= u->rq->as_of)
		return 0;
	for (size_t i = 0; i < u->d->n; i++)
		if (u->d->j[i].id == e->job_id) {
			json_array_append_new(u->items, daily_item(&u->d->j[i],
			    "interrupted", e->at, e->detail));
			break;
		}
	return 0;
}

/* Counts, the jobs not confirmed at the end, the failed and held ones. */
static void
daily_tally(struct daily_scan *d, json_t *rows, json_t *totals,
    json_t *unsure, json_t *exceptions)
{
	for (size_t i = 0; i < d->n; i++) {
		struct daily_job *j = &d->j[i];

		j->col[DAILY_AWAITING] = strcmp(j->state,
		    "awaiting_confirmation") == 0;
		for (int c = 0; c < DAILY_NCOLS; c++)
			if (j->col[c]) {
				daily_add(daily_row_of(rows, j), daily_cols[c]);
				daily_add(totals, daily_cols[c]);
			}
		if (j->col[DAILY_AWAITING])
			json_array_append_new(unsure, daily_item(j,
			    "awaiting_confirmation", j->sent_at ? j->sent_at :
			    j->state_at, "the transport took it; its final status "
			    "has not come yet"));
		else if (strcmp(j->state, "sending") == 0)
			json_array_append_new(unsure, daily_item(j, "sending",
			    j->state_at, "the send was in progress"));
		if (j->col[DAILY_FAILED])
			json_array_append_new(exceptions, daily_item(j, "failed",
			    j->failed_at, j->failed_reason));
		if (j->col[DAILY_HELD])
			json_array_append_new(exceptions, daily_item(j, "held",
			    j->held_at, j->held_reason));
	}
}

json_t *
daily_build(struct store *s, const struct daily_req *rq, char *err,
    size_t errlen)
{
	struct daily_scan	 d = { rq, NULL, 0, 0 };
	struct daily_unsure	 u = { rq, &d, json_array() };
	struct disclosure_filter f = { NULL, NULL, rq->from, rq->as_of, 0 };
	json_t			*rows = json_object(), *totals = json_object();
	json_t			*exc = json_array(), *list = json_array(), *rep = NULL;
	json_t			*v;
	const char		*k;
	char			 tz[16];
	struct tm		 tm;
	time_t			 t = (time_t)rq->from;

	for (int c = 0; c < DAILY_NCOLS; c++)
		json_object_set_new(totals, daily_cols[c], json_integer(0));
	if (store_day_events(s, rq->from, rq->as_of, daily_event, &d) == -1) {
		bsnprintf(err, errlen, "cannot read the job events: %.200s",
		    store_errmsg(s));
		goto done;
	}
	daily_tally(&d, rows, totals, u.items, exc);
	if (store_disclosure_iter(s, &f, daily_interrupted, &u) == -1) {
		bsnprintf(err, errlen, "cannot read the disclosure log: %.200s",
		    store_errmsg(s));
		goto done;
	}
	json_object_foreach(rows, k, v)
		json_array_append(list, v);
	localtime_r(&t, &tm);
	strftime(tz, sizeof(tz), "%Z", &tm);
	rep = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:O, s:o, s:o,"
	    " s:o}", "report", "daily", "organization", rq->org_name ?
	    rq->org_name : "", "date", rq->date, "timezone", tz, "from",
	    daily_time(rq->from), "to", daily_time(rq->to), "generated",
	    daily_time(rq->generated), "complete", rq->as_of >= rq->to, "totals",
	    totals, "recipients", daily_sorted(list, daily_cmp_row), "unconfirmed",
	    daily_sorted(u.items, daily_cmp_item), "exceptions",
	    daily_sorted(exc, daily_cmp_item));
	list = u.items = exc = NULL;
done:
	for (size_t i = 0; i < d.n; i++)
		daily_job_free(&d.j[i]);
	free(d.j);
	json_decref(rows);
	json_decref(totals);
	json_decref(list);
	json_decref(u.items);
	json_decref(exc);
	return rep;
}

int
daily_day(const char *date, int64_t now, struct daily_req *q, char *err,
    size_t errlen)
{
	struct tm	tm;
	time_t		t = (time_t)now;
	int		y, m, d;
	char		c;

	localtime_r(&t, &tm);
	if (date) {
		if (sscanf(date, "%4d-%2d-%2d%c", &y, &m, &d, &c) != 3 || m < 1 ||
		    m > 12 || d < 1 || d > 31) {
			bsnprintf(err, errlen, "date: a day, as 2026-12-01");
			return -1;
		}
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = y - 1900;
		tm.tm_mon = m - 1;
		tm.tm_mday = d;
	}
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1) {
		bsnprintf(err, errlen, "date: no such day");
		return -1;
	}
	q->from = (int64_t)t;
	strftime(q->date, sizeof(q->date), "%Y-%m-%d", &tm);
	/* The next midnight: 23 or 25 hours away when the clocks change. */
	tm.tm_mday++;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1) {
		bsnprintf(err, errlen, "date: no such day");
		return -1;
	}
	q->to = (int64_t)t;
	/* Up to this second included. */
	q->as_of = now + 1 < q->to ? now + 1 : q->to;
	if (q->as_of < q->from)
		q->as_of = q->from;
	return 0;
}

/*
 * Text and PDF are both drawn from the report's lines: the table of
 * counts, then the unconfirmed sends, then the failed and held jobs.
 */
static const char *
js(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* "HH:MM:SS" of an RFC 3339 time, in local time. */
static void
daily_clock(const char *iso, char out[16])
{
	int64_t		t = 0;
	time_t		tt;
	struct tm	tm;

	if (datetime_parse(iso, &t) == -1) {
		snprintf(out, 16, "?");
		return;
	}
	tt = (time_t)t;
	localtime_r(&tt, &tm);
	strftime(out, 16, "%H:%M:%S", &tm);
}

/* One unconfirmed send or exception, as a sentence. */
static void
daily_item_text(json_t *it, char *out, size_t len)
{
	const char	*st = js(it, "status");
	char		 at[16], remote[96] = "", then[64] = "";

	daily_clock(js(it, "at"), at);
	if (strcmp(st, "awaiting_confirmation") == 0 && *js(it, "remote_id"))
		snprintf(remote, sizeof(remote), " (remote id %.64s)",
		    js(it, "remote_id"));
	if (strcmp(st, "interrupted") == 0 || strcmp(st, "failed") == 0 ||
	    strcmp(st, "held") == 0)
		snprintf(then, sizeof(then), "; now %s", js(it, "state"));
	snprintf(out, len, "job %lld %.64s (request %.64s), %.40s to %.64s: %s "
	    "at %s: %.200s%s%s", (long long)json_integer_value(json_object_get(it,
	    "job")), js(it, "packet_id"), *js(it, "request") ? js(it, "request") :
	    "none", js(it, "transport"), js(it, "recipient"),
	    strcmp(st, "awaiting_confirmation") == 0 ? "sent" : st, at,
	    js(it, "detail"), remote, then);
}

#define DAILY_ROW_FMT	"%-10.10s %-20.20s %8s %9s %6s %4s %9s %8s"

static void
daily_count_line(json_t *r, const char *t, const char *rc, char *out,
    size_t len)
{
	char	n[DAILY_NCOLS][24];

	for (int c = 0; c < DAILY_NCOLS; c++)
		snprintf(n[c], sizeof(n[c]), "%lld", (long long)json_integer_value(
		    json_object_get(r, daily_cols[c])));
	snprintf(out, len, DAILY_ROW_FMT, t, rc, n[0], n[1], n[2], n[3], n[4],
	    n[5]);
}

static void
daily_section(struct buf *b, json_t *items, const char *title,
    const char *none)
{
	json_t	*it;
	size_t	 i;
	char	 line[1040], item[1024];

	buf_printf(b, "\n%s (%zu):\n", title, json_array_size(items));
	if (json_array_size(items) == 0)
		buf_printf(b, "  %s\n", none);
	json_array_foreach(items, i, it) {
		daily_item_text(it, item, sizeof(item));
		snprintf(line, sizeof(line), "  %s", item);
		report_wrap(b, line, "    ");
	}
}

static const char daily_unconfirmed_title[] = "Not yet confirmed";
static const char daily_unconfirmed_none[] = "Every send of the day has its "
    "final outcome.";
static const char daily_exceptions_title[] = "Failed or held this day";
static const char daily_exceptions_none[] = "None.";

char *
daily_text(json_t *rep)
{
	struct buf	 b;
	json_t		*r;
	size_t		 i;
	char		 line[256], *out;

	buf_init(&b);
	buf_printf(&b, "DAILY RECONCILIATION %s (%s)\n", js(rep, "date"),
	    js(rep, "timezone"));
	buf_printf(&b, "Organization: %s\n", js(rep, "organization"));
	buf_printf(&b, "Generated: %s%s\n\n", js(rep, "generated"),
	    json_is_true(json_object_get(rep, "complete")) ? "" :
	    " (the day is not over: so far)");
	snprintf(line, sizeof(line), DAILY_ROW_FMT, "TRANSPORT", "RECIPIENT",
	    "ACCEPTED", "DELIVERED", "FAILED", "HELD", "CANCELLED", "AWAITING");
	buf_printf(&b, "%s\n", line);
	json_array_foreach(json_object_get(rep, "recipients"), i, r) {
		daily_count_line(r, js(r, "transport"), js(r, "recipient"), line,
		    sizeof(line));
		buf_printf(&b, "%s\n", line);
	}
	daily_count_line(json_object_get(rep, "totals"), "Total", "", line,
	    sizeof(line));
	buf_printf(&b, "%s\n", line);
	daily_section(&b, json_object_get(rep, "unconfirmed"),
	    daily_unconfirmed_title, daily_unconfirmed_none);
	daily_section(&b, json_object_get(rep, "exceptions"),
	    daily_exceptions_title, daily_exceptions_none);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/*
 * The PDF: templates/daily/page.tpl draws each page's frame and
 * templates/daily/row.tpl one row, of one of three kinds: a heading, a
 * row of counts (the column heads, a recipient, the total) or a line of
 * text (an unconfirmed send or an exception, wrapped over rows).
 */
static const char *const daily_page_fields[] = { "org_name", "date",
	"timezone", "generated", "so_far", "page", "pages", NULL };
static const char *const daily_row_fields[] = { "heading", "row", "head",
	"total", "transport", "recipient", "accepted", "delivered", "failed",
	"held", "cancelled", "awaiting", "line", NULL };

struct daily_pdf_row {
	int	 kind;		/* 'h' heading, 'c' column heads, 'r' counts,
				 * 't' total, 'l' line, 'b' blank */
	json_t	*counts;
	char	*text;
};

struct daily_pdf {
	json_t			*rep;
	struct daily_pdf_row	*rows;
	size_t			 n, cap;
	char			 pg[16], pgs[16], num[DAILY_NCOLS][24];
};

static void
daily_pdf_add(struct daily_pdf *p, int kind, json_t *counts, const char *text)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->rows = xreallocarray(p->rows, p->cap, sizeof(*p->rows));
	}
	p->rows[p->n++] = (struct daily_pdf_row){ kind, counts,
	    text ? xstrdup(text) : NULL };
}

/* A section: its heading, then each item wrapped into lines of rows. */
static void
daily_pdf_section(struct daily_pdf *p, json_t *items, const char *title,
    const char *none)
{
	struct buf	 b;
	json_t		*it;
	size_t		 i;
	char		 head[128], item[1024], *line, *save = NULL;

	snprintf(head, sizeof(head), "%s (%zu)", title, json_array_size(items));
	daily_pdf_add(p, 'b', NULL, NULL);	/* a blank row above */
	daily_pdf_add(p, 'h', NULL, head);
	if (json_array_size(items) == 0)
		daily_pdf_add(p, 'l', NULL, none);
	buf_init(&b);
	json_array_foreach(items, i, it) {
		daily_item_text(it, item, sizeof(item));
		report_wrap(&b, item, "    ");
	}
	for (line = strtok_r(buf_cstr(&b), "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save))
		daily_pdf_add(p, 'l', NULL, line);
	buf_free(&b);
}

static int
daily_pdf_page(void *arg, size_t pageno, size_t npages, struct cover_field *f,
    char *err, size_t errlen)
{
	struct daily_pdf	*p = arg;

	snprintf(p->pg, sizeof(p->pg), "%zu", pageno + 1);
	snprintf(p->pgs, sizeof(p->pgs), "%zu", npages);
	f[0] = (struct cover_field){ "org_name", js(p->rep, "organization") };
	f[1] = (struct cover_field){ "date", js(p->rep, "date") };
	f[2] = (struct cover_field){ "timezone", js(p->rep, "timezone") };
	f[3] = (struct cover_field){ "generated", js(p->rep, "generated") };
	f[4] = (struct cover_field){ "so_far", json_is_true(json_object_get(
	    p->rep, "complete")) ? "" : "The day is not over: counts so far." };
	f[5] = (struct cover_field){ "page", p->pg };
	f[6] = (struct cover_field){ "pages", p->pgs };
	return 7;
}

static int
daily_pdf_row(void *arg, size_t i, struct cover_field *f, char *err,
    size_t errlen)
{
	struct daily_pdf	*p = arg;
	struct daily_pdf_row	*r = &p->rows[i];
	static const char *const heads[DAILY_NCOLS] = { "Accepted", "Delivered",
		"Failed", "Held", "Cancelled", "Awaiting" };
	int			 counts = r->kind == 'c' || r->kind == 'r' ||
	    r->kind == 't';

	for (int c = 0; c < DAILY_NCOLS; c++)
		if (r->kind == 'c')
			snprintf(p->num[c], sizeof(p->num[c]), "%s", heads[c]);
		else
			snprintf(p->num[c], sizeof(p->num[c]), "%lld", (long long)
			    json_integer_value(json_object_get(r->counts,
			    daily_cols[c])));
	f[0] = (struct cover_field){ "heading", r->kind == 'h' ? r->text : "" };
	f[1] = (struct cover_field){ "row", r->kind == 'r' ? "yes" : "" };
	f[2] = (struct cover_field){ "head", r->kind == 'c' ? "yes" : "" };
	f[3] = (struct cover_field){ "total", r->kind == 't' ? "yes" : "" };
	f[4] = (struct cover_field){ "transport", r->kind == 'c' ? "Transport" :
	    r->kind == 't' ? "Total" : r->kind == 'r' ? js(r->counts,
	    "transport") : "" };
	f[5] = (struct cover_field){ "recipient", r->kind == 'c' ? "Recipient" :
	    r->kind == 'r' ? js(r->counts, "recipient") : "" };
	for (int c = 0; c < DAILY_NCOLS; c++)
		f[6 + c] = (struct cover_field){ daily_row_fields[6 + c],
		    counts ? p->num[c] : "" };
	f[12] = (struct cover_field){ "line", r->kind == 'l' ? r->text : "" };
	return 13;
}

static const struct report_layout daily_layout = {
	.folder = "daily",
	.item_tpl = "row.tpl",
	.page_fields = daily_page_fields,
	.item_fields = daily_row_fields,
	.title = "Daily reconciliation",
	.page = daily_pdf_page,
	.item = daily_pdf_row,
};

int
daily_pdf(json_t *rep, const char *dir, const char *font_dir,
    struct buf *out, char *err, size_t errlen)
{
	struct daily_pdf	 p;
	json_t			*r;
	int64_t			 gen = 0;
	size_t			 i;
	int			 rv;

	memset(&p, 0, sizeof(p));
	p.rep = rep;
	daily_pdf_add(&p, 'h', NULL, "By transport and recipient");
	daily_pdf_add(&p, 'c', NULL, NULL);
	json_array_foreach(json_object_get(rep, "recipients"), i, r)
		daily_pdf_add(&p, 'r', r, NULL);
	daily_pdf_add(&p, 't', json_object_get(rep, "totals"), NULL);
	daily_pdf_section(&p, json_object_get(rep, "unconfirmed"),
	    daily_unconfirmed_title, daily_unconfirmed_none);
	daily_pdf_section(&p, json_object_get(rep, "exceptions"),
	    daily_exceptions_title, daily_exceptions_none);
	datetime_parse(js(rep, "generated"), &gen);
	rv = report_pdf(&daily_layout, dir, font_dir, gen, p.n, &p, out, err,
	    errlen);
	for (i = 0; i < p.n; i++)
		free(p.rows[i].text);
	free(p.rows);
	return rv;
}
