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

#include <hpdf.h>

#include "accounting.h"
#include "cover.h"
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
	if (u->mrn && s->mrn && strcmp(u->mrn, s->mrn) != 0)
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

/* s wrapped at 76 columns, each line after the first indented. */
static void
acc_wrap(struct buf *b, const char *s, const char *indent)
{
	size_t	col = strspn(s, " "), w;
	int	first = 1;

	buf_add(b, s, col);	/* the first line's own indent */
	s += col;
	while (*s) {
		while (*s == ' ')
			s++;
		w = strcspn(s, " ");
		if (w == 0)
			break;
		if (!first && col + 1 + w > 76) {
			buf_printf(b, "\n%s", indent);
			col = strlen(indent);
		} else if (!first) {
			buf_add(b, " ", 1);
			col++;
		}
		buf_add(b, s, w);
		col += w;
		s += w;
		first = 0;
	}
	buf_add(b, "\n", 1);
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
		acc_wrap(b, line, "   ");
		buf_printf(b, "   Date: %s\n", js(it, "date"));
	} else
		buf_printf(b, "%lld. Date: %s%s\n",
		    (long long)json_integer_value(json_object_get(it, "number")),
		    js(it, "date"), strcmp(js(it, "status"), "disclosed") ?
		    " (possibly disclosed: the outcome was never confirmed)" : "");
	snprintf(line, sizeof(line), "   To: %s, %s", js(r, "name"), js(r, "address"));
	acc_wrap(b, line, "       ");
	if (pages > 0)
		snprintf(line, sizeof(line), "   What: %s; %lld pages", js(it,
		    "description"), (long long)pages);
	else
		snprintf(line, sizeof(line), "   What: %s", js(it, "description"));
	acc_wrap(b, line, "         ");
	if (*js(it, "request"))
		snprintf(line, sizeof(line), "   Purpose: %s (request %s)",
		    js(it, "purpose"), js(it, "request"));
	else
		snprintf(line, sizeof(line), "   Purpose: %s", js(it, "purpose"));
	acc_wrap(b, line, "            ");
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
	acc_wrap(&b, js(rep, "excluded"), "");
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
		acc_wrap(&b, js(rep, "possibly_note"), "");
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/*
 * The PDF: templates/accounting/page.tpl draws each page's frame (heading,
 * patient, period, the sentence on what is left out, "page X of Y"), and
 * templates/accounting/entry.tpl one entry, drawn again and again down
 * the page; both in the cover sheet's language (docs/templates.md).
 * "#! area TOP BOTTOM" in the first says where entries go, "#! height H"
 * in the second how tall one is.  The creation date is the report's
 * generation time, so the same inputs give the same bytes.
 */
static const char *const acc_page_fields[] = { "org_name", "org_address",
	"patient_name", "mrn", "period_from", "period_to", "generated", "page",
	"pages", "excluded", "possibly_note", "empty", NULL };
static const char *const acc_entry_fields[] = { "number", "date", "status",
	"recipient_name", "recipient_address", "description", "pages_sent",
	"purpose", "request", "summary", NULL };

/* The numbers of a "#! WORD N [N]" line of a template; -1 if none. */
static int
acc_directive(const char *path, const char *word, double *a, double *b)
{
	FILE	*f = fopen(path, "re");
	char	 line[256], *p, *end;
	size_t	 wl = strlen(word);
	int	 rv = -1;

	if (f == NULL)
		return -1;
	while (rv == -1 && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "#! ", 3) != 0 || strncmp(line + 3, word, wl) != 0 ||
		    line[3 + wl] != ' ')
			continue;
		p = line + 4 + wl;
		double x = strtod(p, &end), y;

		if (end == p)
			continue;
		p = end;
		y = strtod(p, &end);
		*a = x;
		*b = end == p ? x : y;
		rv = 0;
	}
	fclose(f);
	return rv;
}

struct acc_pdf {
	struct cover_template	*page, *entry;
	double			 top, bottom, height;
	size_t			 per_page;
};

static int
acc_pdf_load(struct acc_pdf *p, const char *dir, const char *font_dir,
    char *err, size_t errlen)
{
	char	pp[4096], ep[4096];

	snprintf(pp, sizeof(pp), "%s/accounting/page.tpl", dir);
	snprintf(ep, sizeof(ep), "%s/accounting/entry.tpl", dir);
	if ((p->page = cover_load_fields(pp, font_dir, acc_page_fields, err,
	    errlen)) == NULL || (p->entry = cover_load_fields(ep, font_dir,
	    acc_entry_fields, err, errlen)) == NULL)
		return -1;
	if (acc_directive(pp, "area", &p->top, &p->bottom) == -1 ||
	    acc_directive(ep, "height", &p->height, &p->height) == -1 ||
	    p->height < 10 || p->bottom < p->top + p->height) {
		bsnprintf(err, errlen, "template %s needs \"#! area TOP BOTTOM\" and "
		    "%s \"#! height H\" (an entry no taller than the area)", pp, ep);
		return -1;
	}
	p->per_page = (size_t)((p->bottom - p->top) / p->height);
	return 0;
}

static void
acc_entry_fields_of(json_t *it, struct cover_field *f, char *num, char *pages,
    char *summary, size_t slen)
{
	json_t	*r = json_object_get(it, "recipient");

	snprintf(num, 16, "%lld", (long long)json_integer_value(json_object_get(it,
	    "number")));
	snprintf(pages, 16, "%lld", (long long)json_integer_value(json_object_get(it,
	    "pages")));
	summary[0] = '\0';
	if (strcmp(js(it, "type"), "summary") == 0)
		snprintf(summary, slen, "%lld disclosures for this purpose, %s; the "
		    "first on %s (below), the last on %s.",
		    (long long)json_integer_value(json_object_get(it, "count")),
		    js(it, "frequency"), js(it, "date"), js(it, "last_date"));
	f[0] = (struct cover_field){ "number", num };
	f[1] = (struct cover_field){ "date", js(it, "date") };
	f[2] = (struct cover_field){ "status", strcmp(js(it, "status"),
	    "disclosed") ? "Possibly disclosed: the outcome was never confirmed" : "" };
	f[3] = (struct cover_field){ "recipient_name", js(r, "name") };
	f[4] = (struct cover_field){ "recipient_address", js(r, "address") };
	f[5] = (struct cover_field){ "description", js(it, "description") };
	f[6] = (struct cover_field){ "pages_sent", strcmp(pages, "0") ? pages : "" };
	f[7] = (struct cover_field){ "purpose", js(it, "purpose") };
	f[8] = (struct cover_field){ "request", js(it, "request") };
	f[9] = (struct cover_field){ "summary", summary };
}

static int
acc_pdf_page(const struct acc_pdf *p, HPDF_Doc pdf, json_t *rep, size_t pageno,
    size_t npages, int possible, char *err, size_t errlen)
{
	HPDF_Page		 page = HPDF_AddPage(pdf);
	json_t			*pt = json_object_get(rep, "patient");
	json_t			*per = json_object_get(rep, "period");
	json_t			*items = json_object_get(rep, "entries");
	struct cover_field	 f[12], ef[10];
	char			 pg[16], pgs[16], num[16], pages[16], summary[512];
	size_t			 i;

	HPDF_Page_SetWidth(page, 612);
	HPDF_Page_SetHeight(page, 792);
	snprintf(pg, sizeof(pg), "%zu", pageno + 1);
	snprintf(pgs, sizeof(pgs), "%zu", npages);
	f[0] = (struct cover_field){ "org_name", js(rep, "organization") };
	f[1] = (struct cover_field){ "org_address", js(rep, "organization_address") };
	f[2] = (struct cover_field){ "patient_name", js(pt, "name") };
	f[3] = (struct cover_field){ "mrn", js(pt, "mrn") };
	f[4] = (struct cover_field){ "period_from", js(per, "from") };
	f[5] = (struct cover_field){ "period_to", js(per, "to") };
	f[6] = (struct cover_field){ "generated", js(rep, "generated") };
	f[7] = (struct cover_field){ "page", pg };
	f[8] = (struct cover_field){ "pages", pgs };
	f[9] = (struct cover_field){ "excluded", js(rep, "excluded") };
	f[10] = (struct cover_field){ "possibly_note", possible ?
	    js(rep, "possibly_note") : "" };
	f[11] = (struct cover_field){ "empty", json_array_size(items) ? "" : "yes" };
	if (cover_draw(p->page, pdf, page, f, 12, err, errlen) == -1)
		return -1;
	for (i = pageno * p->per_page; i < json_array_size(items) &&
	    i < (pageno + 1) * p->per_page; i++) {
		double dy = p->top + (double)(i - pageno * p->per_page) * p->height;
		int rv;

		acc_entry_fields_of(json_array_get(items, i), ef, num, pages, summary,
		    sizeof(summary));
		/* The entry template is drawn from its own top-left: move it. */
		HPDF_Page_GSave(page);
		HPDF_Page_Concat(page, 1, 0, 0, 1, 0, (HPDF_REAL)-dy);
		rv = cover_draw(p->entry, pdf, page, ef, 10, err, errlen);
		HPDF_Page_GRestore(page);
		if (rv == -1)
			return -1;
	}
	return 0;
}

static void
acc_pdf_date(HPDF_Doc pdf, int64_t t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;
	HPDF_Date	d;

	gmtime_r(&tt, &tm);
	memset(&d, 0, sizeof(d));
	d.year = tm.tm_year + 1900;
	d.month = tm.tm_mon + 1;
	d.day = tm.tm_mday;
	d.hour = tm.tm_hour;
	d.minutes = tm.tm_min;
	d.seconds = tm.tm_sec;
	d.ind = 'Z';
	HPDF_SetInfoDateAttr(pdf, HPDF_INFO_CREATION_DATE, d);
}

int
accounting_pdf(json_t *rep, const char *dir, const char *font_dir,
    struct buf *out, char *err, size_t errlen)
{
	struct acc_pdf	 p;
	HPDF_Doc	 pdf = NULL;
	json_t		*items = json_object_get(rep, "entries"), *it;
	size_t		 npages, i;
	int		 possible = 0, rv = -1;
	int64_t		 gen = 0;
	HPDF_UINT32	 size;
	HPDF_BYTE	 chunk[65536];

	memset(&p, 0, sizeof(p));
	if (acc_pdf_load(&p, dir, font_dir, err, errlen) == -1)
		goto done;
	json_array_foreach(items, i, it)
		possible |= strcmp(js(it, "status"), "disclosed") != 0;
	npages = (json_array_size(items) + p.per_page - 1) / p.per_page;
	if (npages == 0)
		npages = 1;
	if ((pdf = HPDF_New(NULL, NULL)) == NULL) {
		bsnprintf(err, errlen, "out of memory");
		goto done;
	}
	HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
	datetime_parse(js(rep, "generated"), &gen);
	acc_pdf_date(pdf, gen);
	HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, "Accounting of disclosures");
	for (i = 0; i < npages; i++)
		if (acc_pdf_page(&p, pdf, rep, i, npages, possible, err, errlen) == -1)
			goto done;
	if (HPDF_SaveToStream(pdf) != HPDF_OK) {
		bsnprintf(err, errlen, "the PDF cannot be written (libhpdf error "
		    "0x%04lx)", (unsigned long)HPDF_GetError(pdf));
		goto done;
	}
	HPDF_ResetStream(pdf);
	for (;;) {
		size = sizeof(chunk);
		HPDF_STATUS st = HPDF_ReadFromStream(pdf, chunk, &size);
		buf_add(out, chunk, size);
		if (st != HPDF_OK || size == 0)
			break;
	}
	rv = 0;
done:
	if (pdf)
		HPDF_Free(pdf);
	cover_free(p.page);
	cover_free(p.entry);
	return rv;
}
