/*
 * The accounting of disclosures (45 CFR 164.528), built in the daemon
 * from the disclosure log; docs/accounting.md says what it lists.
 *
 * A job is one disclosure, whatever number of attempts it took: listed
 * when one of its attempts was delivered, on that date; listed as
 * "possibly disclosed" when an attempt has no final outcome (the daemon
 * stopped during the send, or an asynchronous transport never answered):
 * a lost status is never taken for "nothing was sent".  A job whose every
 * attempt failed or was deferred disclosed nothing and is left out.
 *
 * The report is built as JSON first; the text and the PDF are drawn from
 * that one model, so the three always say the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "accounting.h"
#include "cover.h"
#include "report.h"
#include "store.h"
#include "util.h"

#define ACC_DISCLOSED	2
#define ACC_POSSIBLE	1

static const char acc_excluded[] = "Not listed, as 45 CFR 164.528(a) allows: "
    "disclosures to you or your personal representative, disclosures you "
    "authorized in writing, and disclosures for treatment, payment or health "
    "care operations; nor sends that failed, which disclosed nothing.";
static const char acc_possible[] = "An entry marked \"possibly disclosed\" is "
    "a transmission that was started but whose outcome was never confirmed; "
    "it is listed because it may have reached the recipient.";

struct acc_entry {
	int64_t	 job;
	int	 status;	/* ACC_DISCLOSED, ACC_POSSIBLE */
	int64_t	 at;
	int	 pages;
	char	*recipient_id, *recipient_name, *recipient_address;
	char	*description, *purpose, *request, *patient_name;
};

struct acc_build {
	const struct accounting_req *rq;
	struct acc_entry	*e;
	size_t			 n, cap;
	struct acc_entry	 cur;	/* the job being read */
	int			 open;	/* an attempt without its outcome */
	int64_t			 open_at;
};

static void
acc_entry_free(struct acc_entry *e)
{
	free(e->recipient_id);
	free(e->recipient_name);
	free(e->recipient_address);
	free(e->description);
	free(e->purpose);
	free(e->request);
	free(e->patient_name);
	memset(e, 0, sizeof(*e));
}

static void
acc_set(char **dst, const char *v)
{
	if (v && *v) {
		free(*dst);
		*dst = xstrdup(v);
	}
}

/* The job read so far is complete: keep it if it disclosed, or may have. */
static void
acc_finish_job(struct acc_build *b)
{
	struct acc_entry *c = &b->cur;

	if (c->job != 0 && c->status != ACC_DISCLOSED && b->open) {
		c->status = ACC_POSSIBLE;
		c->at = b->open_at;
	}
	if (c->job == 0 || c->status == 0 || c->at < b->rq->from ||
	    c->at >= b->rq->to) {
		acc_entry_free(c);
	} else {
		if (b->n == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 64;
			b->e = xreallocarray(b->e, b->cap, sizeof(*b->e));
		}
		b->e[b->n++] = *c;
		memset(c, 0, sizeof(*c));
	}
	b->open = 0;
}

static int
acc_row(const struct disclosure *d, const char *request_ref, void *arg)
{
	struct acc_build	*b = arg;
	struct acc_entry	*c = &b->cur;
	const char		*o = d->outcome ? d->outcome : "";

	if (d->job_id != c->job) {
		acc_finish_job(b);
		c->job = d->job_id;
	}
	acc_set(&c->recipient_id, d->recipient_id);
	acc_set(&c->recipient_name, d->recipient_name);
	acc_set(&c->recipient_address, d->recipient_address);
	acc_set(&c->description, d->description);
	acc_set(&c->purpose, d->purpose);
	acc_set(&c->request, request_ref);
	acc_set(&c->patient_name, d->patient_name);
	if (d->pages > c->pages)
		c->pages = d->pages;
	if (strcmp(o, "attempt") == 0) {
		if (b->open && c->status != ACC_DISCLOSED) {
			/* An attempt whose outcome was never written. */
			c->status = ACC_POSSIBLE;
			c->at = b->open_at;
		}
		b->open = 1;
		b->open_at = d->at;
	} else if (strcmp(o, "delivered") == 0) {
		if (c->status != ACC_DISCLOSED)
			c->at = d->at;
		c->status = ACC_DISCLOSED;
		b->open = 0;
	} else if (strcmp(o, "interrupted") == 0) {
		if (c->status != ACC_DISCLOSED) {
			c->status = ACC_POSSIBLE;
			c->at = b->open ? b->open_at : d->at;
		}
		b->open = 0;
	} else if (strcmp(o, "sent") == 0) {
		b->open = 1;	/* accepted; delivered or failed follows */
		b->open_at = d->at;
	} else	/* deferred, failed: that attempt disclosed nothing */
		b->open = 0;
	return 0;
}

static int
acc_cmp_group(const void *pa, const void *pb)
{
	const struct acc_entry *a = pa, *b = pb;
	int c;

	if (a->status != b->status)
		return b->status - a->status;
	if ((c = strcmp(a->recipient_id ? a->recipient_id : "",
	    b->recipient_id ? b->recipient_id : "")) != 0)
		return c;
	if ((c = strcmp(a->purpose ? a->purpose : "", b->purpose ? b->purpose : "")))
		return c;
	return a->at < b->at ? -1 : a->at > b->at ? 1 : (a->job > b->job) -
	    (a->job < b->job);
}

static int
acc_cmp_item(const void *pa, const void *pb)
{
	json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	json_int_t x = json_integer_value(json_object_get(a, "at"));
	json_int_t y = json_integer_value(json_object_get(b, "at"));
	json_int_t i = json_integer_value(json_object_get(a, "job"));
	json_int_t k = json_integer_value(json_object_get(b, "job"));

	return x < y ? -1 : x > y ? 1 : (i > k) - (i < k);
}

static json_t *
acc_date(int64_t t)
{
	char	buf[32];

	time_iso(t, buf, sizeof(buf));
	buf[10] = '\0';
	return json_string(buf);
}

static json_t *
acc_item(const struct acc_entry *e)
{
	return json_pack("{s:s, s:I, s:o, s:I, s:s, s:{s:s, s:s, s:s}, s:s, s:i,"
	    " s:s, s:s}", "type", "disclosure", "at", (json_int_t)e->at,
	    "date", acc_date(e->at), "job", (json_int_t)e->job,
	    "status", e->status == ACC_DISCLOSED ? "disclosed" : "possibly_disclosed",
	    "recipient", "id", e->recipient_id ? e->recipient_id : "",
	    "name", e->recipient_name ? e->recipient_name : "",
	    "address", e->recipient_address ? e->recipient_address : "",
	    "description", e->description ? e->description : "",
	    "pages", e->pages, "purpose", e->purpose ? e->purpose : "",
	    "request", e->request ? e->request : "");
}

/* 164.528(b)(3): the first disclosure in full, how many, how often, the last. */
static json_t *
acc_summary(const struct acc_entry *first, size_t n, const struct acc_entry *last)
{
	json_t	*it = acc_item(first);
	int64_t	 days = (last->at - first->at) / 86400 / (int64_t)(n - 1);
	char	 freq[64];

	if (last->at - first->at < 86400)
		snprintf(freq, sizeof(freq), "%zu times in one day", n);
	else if (days <= 1)
		snprintf(freq, sizeof(freq), "about daily");
	else
		snprintf(freq, sizeof(freq), "about every %lld days", (long long)days);
	json_object_set_new(it, "type", json_string("summary"));
	json_object_set_new(it, "count", json_integer((json_int_t)n));
	json_object_set_new(it, "frequency", json_string(freq));
	json_object_set_new(it, "last_date", acc_date(last->at));
	json_object_set_new(it, "last_job", json_integer(last->job));
	return it;
}

struct acc_susp {
	struct store_suspension	*u;
	size_t			 n, cap;
	int64_t			*ended;
	const char		*mrn;
};

static int
acc_susp_row(const struct store_suspension *u, void *arg)
{
	struct acc_susp	*s = arg;

	if (u->action && strcmp(u->action, "end") == 0) {
		for (size_t i = 0; i < s->n; i++)
			if (s->u[i].seq == u->ref && (s->ended[i] == 0 ||
			    u->at < s->ended[i]))
				s->ended[i] = u->at;
		return 0;
	}
	/* No MRN: every patient.  The hash reads a missing value and an
	 * empty text alike, so this does too: an MRN edited from NULL to ''
	 * would otherwise free every patient's entries to the agency. */
	if (u->mrn && *u->mrn && s->mrn && strcmp(u->mrn, s->mrn) != 0)
		return 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->u = xreallocarray(s->u, s->cap, sizeof(*s->u));
		s->ended = xreallocarray(s->ended, s->cap, sizeof(*s->ended));
	}
	s->u[s->n] = *u;
	s->u[s->n].agency = xstrdup(u->agency ? u->agency : "");
	s->u[s->n].action = s->u[s->n].mrn = s->u[s->n].actor = s->u[s->n].note = NULL;
	s->ended[s->n++] = 0;
	return 0;
}

int64_t
accounting_suspension_end(const struct store_suspension *u, int64_t ended_at)
{
	int64_t	end = u->until_at;

	if (u->oral && u->at + ACCOUNTING_ORAL_MAX < end)
		end = u->at + ACCOUNTING_ORAL_MAX;
	if (ended_at && ended_at < end)
		end = ended_at;
	return end;
}

/* Held back by a suspension in effect when the report is made? */
static int
acc_held(const struct acc_susp *s, const struct acc_entry *e, int64_t now)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct store_suspension *u = &s->u[i];

		if (u->at > now || accounting_suspension_end(u, s->ended[i]) <= now)
			continue;
		if ((e->recipient_id && strcasecmp(u->agency, e->recipient_id) == 0) ||
		    (e->recipient_name && strcasecmp(u->agency, e->recipient_name) == 0))
			return 1;
	}
	return 0;
}

static void
acc_susp_free(struct acc_susp *s)
{
	for (size_t i = 0; i < s->n; i++)
		free((char *)s->u[i].agency);
	free(s->u);
	free(s->ended);
}

/* Two disclosures (not "possibly") to one recipient for one purpose. */
static int
acc_same(const struct acc_entry *a, const struct acc_entry *b)
{
	return a->status == ACC_DISCLOSED && b->status == ACC_DISCLOSED &&
	    strcmp(a->recipient_id ? a->recipient_id : "",
	    b->recipient_id ? b->recipient_id : "") == 0 &&
	    strcmp(a->purpose ? a->purpose : "", b->purpose ? b->purpose : "") == 0;
}

/* Group runs of one recipient and purpose; items in date order. */
static json_t *
acc_items(struct acc_build *b)
{
	json_t	**v, *arr = json_array();
	size_t	  i, k, nv = 0;

	if (b->n > 0)	/* b->e is NULL then: qsort of NULL is undefined */
		qsort(b->e, b->n, sizeof(*b->e), acc_cmp_group);
	v = xcalloc(b->n + 1, sizeof(*v));
	for (i = 0; i < b->n; i = k) {
		for (k = i + 1; k < b->n && acc_same(&b->e[i], &b->e[k]); k++)
			;
		v[nv++] = k - i > 1 ? acc_summary(&b->e[i], k - i, &b->e[k - 1]) :
		    acc_item(&b->e[i]);
	}
	qsort(v, nv, sizeof(*v), acc_cmp_item);
	for (i = 0; i < nv; i++) {
		json_object_set_new(v[i], "number", json_integer((json_int_t)i + 1));
		json_array_append_new(arr, v[i]);
	}
	free(v);
	return arr;
}

json_t *
accounting_build(struct store *s, const struct accounting_req *rq, int *held,
    char *err, size_t errlen)
{
	struct acc_build	 b;
	struct acc_susp		 su;
	json_t			*rep = NULL, *items;
	char			 gen[32];
	size_t			 i, k;

	memset(&b, 0, sizeof(b));
	memset(&su, 0, sizeof(su));
	b.rq = rq;
	su.mrn = rq->mrn;
	*held = 0;
	if (store_accounting_iter(s, rq->mrn, rq->to, acc_row, &b) == -1 ||
	    store_suspension_iter(s, acc_susp_row, &su) == -1) {
		bsnprintf(err, errlen, "cannot read the disclosure log: %.200s",
		    store_errmsg(s));
		goto done;
	}
	acc_finish_job(&b);
	for (i = k = 0; i < b.n; i++) {
		if (acc_held(&su, &b.e[i], rq->generated)) {
			(*held)++;
			acc_entry_free(&b.e[i]);
		} else
			b.e[k++] = b.e[i];
	}
	b.n = k;
	time_iso(rq->generated, gen, sizeof(gen));
	items = acc_items(&b);
	rep = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:o, s:o}, s:s, s:s, s:s,"
	    " s:o}", "organization", rq->org_name ? rq->org_name : "",
	    "organization_address", rq->org_address ? rq->org_address : "",
	    "patient", "mrn", rq->mrn,
	    "name", b.n && b.e[0].patient_name ? b.e[0].patient_name : "",
	    "period", "from", acc_date(rq->from), "to", acc_date(rq->to - 1),
	    "generated", gen, "excluded", acc_excluded, "possibly_note", acc_possible,
	    "entries", items);
done:
	for (i = 0; i < b.n; i++)
		acc_entry_free(&b.e[i]);
	acc_entry_free(&b.cur);
	free(b.e);
	acc_susp_free(&su);
	return rep;
}

static const char *
js(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void
acc_text_item(struct buf *b, json_t *it)
{
	json_t		*r = json_object_get(it, "recipient");
	char		 line[1024];
	json_int_t	 pages = json_integer_value(json_object_get(it, "pages"));

	if (strcmp(js(it, "type"), "summary") == 0) {
		snprintf(line, sizeof(line), "%lld. %lld disclosures to %s for the same "
		    "purpose, %s: the first on %s, the last on %s. The first:",
		    (long long)json_integer_value(json_object_get(it, "number")),
		    (long long)json_integer_value(json_object_get(it, "count")),
		    js(r, "name"), js(it, "frequency"), js(it, "date"),
		    js(it, "last_date"));
		report_wrap(b, line, "   ");
		buf_printf(b, "   Date: %s\n", js(it, "date"));
	} else
		buf_printf(b, "%lld. Date: %s%s\n",
		    (long long)json_integer_value(json_object_get(it, "number")),
		    js(it, "date"), strcmp(js(it, "status"), "disclosed") ?
		    " (possibly disclosed: the outcome was never confirmed)" : "");
	snprintf(line, sizeof(line), "   To: %s, %s", js(r, "name"), js(r, "address"));
	report_wrap(b, line, "       ");
	if (pages > 0)
		snprintf(line, sizeof(line), "   What: %s; %lld pages", js(it,
		    "description"), (long long)pages);
	else
		snprintf(line, sizeof(line), "   What: %s", js(it, "description"));
	report_wrap(b, line, "         ");
	if (*js(it, "request"))
		snprintf(line, sizeof(line), "   Purpose: %s (request %s)",
		    js(it, "purpose"), js(it, "request"));
	else
		snprintf(line, sizeof(line), "   Purpose: %s", js(it, "purpose"));
	report_wrap(b, line, "            ");
}

char *
accounting_text(json_t *rep)
{
	struct buf	 b;
	json_t		*p = json_object_get(rep, "patient");
	json_t		*per = json_object_get(rep, "period");
	json_t		*items = json_object_get(rep, "entries"), *it;
	size_t		 i;
	int		 possible = 0;
	char		*out;

	buf_init(&b);
	buf_printf(&b, "ACCOUNTING OF DISCLOSURES (45 CFR 164.528)\n");
	buf_printf(&b, "Organization: %s\n", js(rep, "organization"));
	buf_printf(&b, "Patient: %s (MRN %s)\n", js(p, "name"), js(p, "mrn"));
	buf_printf(&b, "Period: %s to %s\n", js(per, "from"), js(per, "to"));
	buf_printf(&b, "Generated: %s\n\n", js(rep, "generated"));
	report_wrap(&b, js(rep, "excluded"), "");
	buf_add(&b, "\n", 1);
	if (json_array_size(items) == 0)
		buf_printf(&b, "No disclosures to list in this period.\n");
	json_array_foreach(items, i, it) {
		if (i)
			buf_add(&b, "\n", 1);
		acc_text_item(&b, it);
		possible |= strcmp(js(it, "status"), "disclosed") != 0;
	}
	if (possible) {
		buf_add(&b, "\n", 1);
		report_wrap(&b, js(rep, "possibly_note"), "");
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/*
 * The PDF: templates/accounting/page.tpl draws each page's frame (heading,
 * patient, period, the sentence on what is left out, "page X of Y"), and
 * templates/accounting/entry.tpl one entry, drawn again and again down
 * the page (src/report.c).
 */
static const char *const acc_page_fields[] = { "org_name", "org_address",
	"patient_name", "mrn", "period_from", "period_to", "generated", "page",
	"pages", "excluded", "possibly_note", "empty", NULL };
static const char *const acc_entry_fields[] = { "number", "date", "status",
	"recipient_name", "recipient_address", "description", "pages_sent",
	"purpose", "request", "summary", NULL };

struct acc_pdf {
	json_t	*rep;
	int	 possible;
	char	 pg[16], pgs[16], num[16], pages[16], summary[512];
};

static int
acc_pdf_entry(void *arg, size_t i, struct cover_field *f, char *err,
    size_t errlen)
{
	struct acc_pdf	*a = arg;
	json_t		*it = json_array_get(json_object_get(a->rep, "entries"), i);
	json_t		*r = json_object_get(it, "recipient");

	snprintf(a->num, sizeof(a->num), "%lld", (long long)json_integer_value(
	    json_object_get(it, "number")));
	snprintf(a->pages, sizeof(a->pages), "%lld", (long long)
	    json_integer_value(json_object_get(it, "pages")));
	a->summary[0] = '\0';
	if (strcmp(js(it, "type"), "summary") == 0)
		snprintf(a->summary, sizeof(a->summary), "%lld disclosures for this "
		    "purpose, %s; the first on %s (below), the last on %s.",
		    (long long)json_integer_value(json_object_get(it, "count")),
		    js(it, "frequency"), js(it, "date"), js(it, "last_date"));
	f[0] = (struct cover_field){ "number", a->num };
	f[1] = (struct cover_field){ "date", js(it, "date") };
	f[2] = (struct cover_field){ "status", strcmp(js(it, "status"),
	    "disclosed") ? "Possibly disclosed: the outcome was never confirmed" : "" };
	f[3] = (struct cover_field){ "recipient_name", js(r, "name") };
	f[4] = (struct cover_field){ "recipient_address", js(r, "address") };
	f[5] = (struct cover_field){ "description", js(it, "description") };
	f[6] = (struct cover_field){ "pages_sent", strcmp(a->pages, "0") ?
	    a->pages : "" };
	f[7] = (struct cover_field){ "purpose", js(it, "purpose") };
	f[8] = (struct cover_field){ "request", js(it, "request") };
	f[9] = (struct cover_field){ "summary", a->summary };
	return 10;
}

static int
acc_pdf_page(void *arg, size_t pageno, size_t npages, struct cover_field *f,
    char *err, size_t errlen)
{
	struct acc_pdf	*a = arg;
	json_t		*pt = json_object_get(a->rep, "patient");
	json_t		*per = json_object_get(a->rep, "period");

	snprintf(a->pg, sizeof(a->pg), "%zu", pageno + 1);
	snprintf(a->pgs, sizeof(a->pgs), "%zu", npages);
	f[0] = (struct cover_field){ "org_name", js(a->rep, "organization") };
	f[1] = (struct cover_field){ "org_address", js(a->rep,
	    "organization_address") };
	f[2] = (struct cover_field){ "patient_name", js(pt, "name") };
	f[3] = (struct cover_field){ "mrn", js(pt, "mrn") };
	f[4] = (struct cover_field){ "period_from", js(per, "from") };
	f[5] = (struct cover_field){ "period_to", js(per, "to") };
	f[6] = (struct cover_field){ "generated", js(a->rep, "generated") };
	f[7] = (struct cover_field){ "page", a->pg };
	f[8] = (struct cover_field){ "pages", a->pgs };
	f[9] = (struct cover_field){ "excluded", js(a->rep, "excluded") };
	f[10] = (struct cover_field){ "possibly_note", a->possible ?
	    js(a->rep, "possibly_note") : "" };
	f[11] = (struct cover_field){ "empty", json_array_size(json_object_get(
	    a->rep, "entries")) ? "" : "yes" };
	return 12;
}

static const struct report_layout acc_layout = {
	.folder = "accounting",
	.item_tpl = "entry.tpl",
	.page_fields = acc_page_fields,
	.item_fields = acc_entry_fields,
	.title = "Accounting of disclosures",
	.page = acc_pdf_page,
	.item = acc_pdf_entry,
};

int
accounting_pdf(json_t *rep, const char *dir, const char *font_dir,
    struct buf *out, char *err, size_t errlen)
{
	struct acc_pdf	 a;
	json_t		*items = json_object_get(rep, "entries"), *it;
	int64_t		 gen = 0;
	size_t		 i;

	memset(&a, 0, sizeof(a));
	a.rep = rep;
	json_array_foreach(items, i, it)
		a.possible |= strcmp(js(it, "status"), "disclosed") != 0;
	datetime_parse(js(rep, "generated"), &gen);
	return report_pdf(&acc_layout, dir, font_dir, gen, json_array_size(items),
	    &a, out, err, errlen);
}
