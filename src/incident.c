/*
 * Incidents and their risk assessments (daemon), docs/incidents.md.
 *
 * An incident names a job; the job's disclosure-log entries are linked to
 * it.  A misdirected one is contained when it is opened: the recipient is
 * disabled and every queued, deferred or held job to it is held, each job
 * event naming the incident.  Incidents and assessments are sealed rows
 * (schema 9): an assessment is never edited; a new one supersedes it.
 * The report (text, JSON, or PDF drawn from templates/incident/ by
 * src/report.c) holds what the patient's notification needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident.h"
#include "queue.h"
#include "report.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

static const char *const incident_kinds[] = { "misdirected", "wrong_patient",
	"wrong_documents", "exposed", "other", NULL };

static json_t *
inc_time(int64_t t)
{
	char	buf[32];

	if (t <= 0)
		return json_null();
	time_iso(t, buf, sizeof(buf));
	return json_string(buf);
}

struct inc_disc {
	json_t	*seqs;		/* entry numbers */
	json_t	*entries;
};

static int
inc_collect(const struct disclosure *d, void *arg)
{
	struct inc_disc	*c = arg;

	json_array_append_new(c->seqs, json_integer(d->seq));
	json_array_append_new(c->entries, json_pack("{s:I, s:o, s:s?, s:s?, s:s?,"
	    " s:s?, s:s?, s:s?, s:s?, s:i, s:s?}", "seq", (json_int_t)d->seq, "at",
	    inc_time(d->at), "outcome", d->outcome, "mrn", d->mrn, "patient_name",
	    d->patient_name, "recipient_id", d->recipient_id, "recipient_name",
	    d->recipient_name, "recipient_address", d->recipient_address,
	    "description", d->description, "pages", d->pages, "remote_id",
	    d->remote_id));
	return 0;
}

struct inc_hold {
	const char	*recipient;
	int64_t		 ids[4096];
	size_t		 n;
};

static int
inc_waiting(const struct store_brief *b, void *arg)
{
	struct inc_hold	*h = arg;

	if (b->recipient_id && strcmp(b->recipient_id, h->recipient) == 0 &&
	    h->n < sizeof(h->ids) / sizeof(h->ids[0]))
		h->ids[h->n++] = b->id;
	return 0;
}

/* Disable the recipient, hold its waiting jobs; what was done, in words. */
static void
inc_contain(int64_t inc, const char *recipient, const char *actor, struct buf *b)
{
	struct inc_hold	h;
	char		who[160], err[256];
	size_t		i;

	memset(&h, 0, sizeof(h));
	h.recipient = recipient;
	snprintf(who, sizeof(who), "incident %lld (%.100s)", (long long)inc, actor);
	if (store_recipient_set_disabled(rg->store, recipient, 1) == 0)
		buf_printf(b, "recipient %s disabled", recipient);
	else
		buf_printf(b, "recipient %s could not be disabled: %.100s", recipient,
		    store_errmsg(rg->store));
	store_jobs_brief(rg->store, 1u << JOB_QUEUED | 1u << JOB_DEFERRED |
	    1u << JOB_HELD, inc_waiting, &h);
	buf_printf(b, "; jobs held:");
	for (i = 0; i < h.n; i++) {
		struct job_update u = JOB_UPDATE_NONE;
		struct job j;
		int ok = 0;

		if (store_job_get(rg->store, h.ids[i], &j) != 1)
			continue;
		if (j.state == JOB_HELD) {
			/* Held already: the event says the incident keeps it so. */
			ok = store_begin(rg->store) == 0 &&
			    store_job_set_state(rg->store, j.id, JOB_HELD, &u, who,
			    "kept held: its recipient is disabled") == 0 &&
			    store_commit(rg->store) == 0;
			if (!ok)
				store_rollback(rg->store);
		} else
			ok = queue_hold(j.id, who, err, sizeof(err)) == 0;
		buf_printf(b, " %lld%s", (long long)j.id, ok ? "" : " (failed)");
		job_free(&j);
	}
	if (h.n == 0)
		buf_printf(b, " none");
}

int
incident_open(const char *actor, int64_t job, const char *kind,
    const char *note, int64_t discovered, json_t **out, int *notfound,
    char *err, size_t errlen)
{
	struct inc_disc			 c = { json_array(), json_array() };
	struct disclosure_filter	 f;
	struct job			 j;
	struct buf			 contain;
	const char			*v[9];
	char				 at[24], jb[24], disc[24], *seqs = NULL;
	int64_t				 seq, next;
	char				 hash[65];
	size_t				 k;
	int				 rv = -1;

	*notfound = 0;
	buf_init(&contain);
	for (k = 0; incident_kinds[k] && strcmp(incident_kinds[k], kind); k++)
		;
	if (incident_kinds[k] == NULL) {
		bsnprintf(err, errlen, "kind: misdirected, wrong_patient, "
		    "wrong_documents, exposed or other");
		goto done;
	}
	if (store_job_get(rg->store, job, &j) != 1) {
		*notfound = 1;
		bsnprintf(err, errlen, "no job %lld", (long long)job);
		goto done;
	}
	memset(&f, 0, sizeof(f));
	f.job_id = job;
	store_disclosure_iter(rg->store, &f, inc_collect, &c);
	seqs = json_dumps(c.seqs, JSON_COMPACT);
	if (store_sealed_last(rg->store, STORE_SEALED_INCIDENTS, &next, hash) == -1) {
		bsnprintf(err, errlen, "%.200s", store_errmsg(rg->store));
		job_free(&j);
		goto done;
	}
	next++;		/* the daemon is the only writer: this is its number */
	if (strcmp(kind, "misdirected") == 0)
		inc_contain(next, j.recipient_id, actor, &contain);
	snprintf(at, sizeof(at), "%lld", (long long)now_wall());
	snprintf(jb, sizeof(jb), "%lld", (long long)job);
	snprintf(disc, sizeof(disc), "%lld", (long long)(discovered ? discovered :
	    now_wall()));
	v[0] = at, v[1] = kind, v[2] = jb, v[3] = note, v[4] = actor;
	v[5] = disc, v[6] = seqs, v[7] = j.recipient_id;
	v[8] = contain.len ? buf_cstr(&contain) : NULL;
	if (store_begin(rg->store) == -1 || store_sealed_append(rg->store,
	    STORE_SEALED_INCIDENTS, v, &seq) == -1 || store_commit(rg->store) == -1) {
		bsnprintf(err, errlen, "cannot record it: %.200s",
		    store_errmsg(rg->store));
		store_rollback(rg->store);
		job_free(&j);
		goto done;
	}
	job_free(&j);
	*out = incident_get(seq, err, errlen, notfound);
	rv = *out ? 0 : -1;
done:
	free(seqs);
	buf_free(&contain);
	json_decref(c.seqs);
	json_decref(c.entries);
	return rv;
}

static int
inc_row(const char *const *v, int n, void *arg)
{
	json_t	*arr = arg;

	json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:I, s:s?, s:s?, s:o,"
	    " s:s?, s:s?, s:s?}", "id", (json_int_t)atoll(v[0]),
	    "at", inc_time(atoll(v[1])), "kind", v[2], "job",
	    (json_int_t)atoll(v[3]), "note", v[4], "by", v[5], "discovered_at",
	    inc_time(atoll(v[6])), "entries", v[7], "recipient", v[8],
	    "containment", v[9]));
	return 0;
}

static int
inc_assessment_row(const char *const *v, int n, void *arg)
{
	json_t	*arr = arg;

	json_array_append_new(arr, json_pack("{s:I, s:o, s:{s:s?, s:s?, s:s?, s:s?},"
	    " s:s, s:s?, s:o}", "id", (json_int_t)atoll(v[0]), "at",
	    inc_time(atoll(v[1])), "factors", "nature", v[3],
	    "unauthorized_person", v[4], "acquired_or_viewed", v[5],
	    "mitigation", v[6], "determination", v[7], "by", v[8],
	    "supersedes", v[9] ? json_integer(atoll(v[9])) : json_null()));
	return 0;
}

json_t *
incident_get(int64_t id, char *err, size_t errlen, int *notfound)
{
	struct disclosure_filter	 f;
	struct inc_disc			 c = { json_array(), json_array() };
	json_t				*arr = json_array(), *inc, *as = json_array();

	*notfound = 0;
	if (store_sealed_rows(rg->store, STORE_SEALED_INCIDENTS, "seq", id, inc_row,
	    arr) == -1 || store_sealed_rows(rg->store, STORE_SEALED_ASSESSMENTS,
	    "incident", id, inc_assessment_row, as) == -1) {
		bsnprintf(err, errlen, "%.200s", store_errmsg(rg->store));
		inc = NULL;
		goto done;
	}
	if ((inc = json_array_get(arr, 0)) == NULL) {
		*notfound = 1;
		bsnprintf(err, errlen, "no incident %lld", (long long)id);
		goto done;
	}
	json_incref(inc);
	memset(&f, 0, sizeof(f));
	f.job_id = json_integer_value(json_object_get(inc, "job"));
	store_disclosure_iter(rg->store, &f, inc_collect, &c);
	json_object_set(inc, "disclosures", c.entries);
	json_object_set(inc, "assessments", as);
	/* The one in force: the newest; the others were superseded. */
	json_object_set(inc, "assessment", json_array_size(as) ?
	    json_array_get(as, json_array_size(as) - 1) : json_null());
done:
	json_decref(arr);
	json_decref(as);
	json_decref(c.seqs);
	json_decref(c.entries);
	return inc;
}

json_t *
incident_list(char *err, size_t errlen)
{
	json_t	*arr = json_array();

	if (store_sealed_rows(rg->store, STORE_SEALED_INCIDENTS, NULL, 0, inc_row,
	    arr) == -1) {
		bsnprintf(err, errlen, "%.200s", store_errmsg(rg->store));
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* The last delivered (or otherwise last) entry of the incident. */
static json_t *
inc_last_entry(json_t *inc)
{
	json_t	*d = json_object_get(inc, "disclosures"), *e, *best = NULL;
	size_t	 i;

	json_array_foreach(d, i, e)
		if (best == NULL || strcmp(json_string_value(json_object_get(e,
		    "outcome")), "attempt") != 0)
			best = e;
	return best;
}

static const char *
inc_s(json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

int
incident_assess(const char *actor, int64_t id, const struct incident_factors *fa,
    json_t **out, int *notfound, char *err, size_t errlen)
{
	json_t		*inc = incident_get(id, err, errlen, notfound), *e, *prev;
	const char	*v[9];
	char		 at[24], ref[24], sup[24], nature[600], person[400], acq[400];
	int64_t		 seq;

	if (inc == NULL)
		return -1;
	if (fa->determination == NULL || (strcmp(fa->determination,
	    "low_probability") && strcmp(fa->determination, "breach"))) {
		bsnprintf(err, errlen, "determination: low_probability (of compromise) "
		    "or breach");
		json_decref(inc);
		return -1;
	}
	e = inc_last_entry(inc);
	/* Prefilled from the log where the caller gave nothing. */
	snprintf(nature, sizeof(nature), "%s; %lld pages; patient %s", inc_s(e,
	    "description"), (long long)json_integer_value(json_object_get(e,
	    "pages")), inc_s(e, "patient_name"));
	snprintf(person, sizeof(person), "%s at %s (%s)", inc_s(e, "recipient_name"),
	    inc_s(e, "recipient_address"), inc_s(e, "recipient_id"));
	snprintf(acq, sizeof(acq), "last outcome: %s%s%s; whether it was opened "
	    "or read is not known from the log", inc_s(e, "outcome"),
	    *inc_s(e, "remote_id") ? ", receipt " : "", inc_s(e, "remote_id"));
	prev = json_object_get(inc, "assessment");
	snprintf(at, sizeof(at), "%lld", (long long)now_wall());
	snprintf(ref, sizeof(ref), "%lld", (long long)id);
	snprintf(sup, sizeof(sup), "%lld", (long long)json_integer_value(
	    json_object_get(prev, "id")));
	v[0] = at, v[1] = ref;
	v[2] = fa->nature ? fa->nature : nature;
	v[3] = fa->person ? fa->person : person;
	v[4] = fa->acquired ? fa->acquired : acq;
	v[5] = fa->mitigation ? fa->mitigation : *inc_s(inc, "containment") ?
	    inc_s(inc, "containment") : "none recorded";
	v[6] = fa->determination, v[7] = actor;
	v[8] = json_is_object(prev) ? sup : NULL;
	if (store_begin(rg->store) == -1 || store_sealed_append(rg->store,
	    STORE_SEALED_ASSESSMENTS, v, &seq) == -1 ||
	    store_commit(rg->store) == -1) {
		bsnprintf(err, errlen, "cannot record it: %.200s",
		    store_errmsg(rg->store));
		store_rollback(rg->store);
		json_decref(inc);
		return -1;
	}
	json_decref(inc);
	*out = incident_get(id, err, errlen, notfound);
	return *out ? 0 : -1;
}

json_t *
incident_report(json_t *inc, const char *org, int64_t generated)
{
	json_t		*e = inc_last_entry(inc), *a = json_object_get(inc, "assessment");
	int64_t		 disc = 0;
	const char	*det = json_is_object(a) ? inc_s(a, "determination") : "";

	datetime_parse(inc_s(inc, "discovered_at"), &disc);
	return json_pack("{s:s, s:o, s:O, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:s,"
	    " s:{s:s, s:s, s:s}, s:s, s:O, s:O, s:O?, s:s}", "organization",
	    org ? org : "", "generated", inc_time(generated), "incident",
	    json_object_get(inc, "id"), "kind", inc_s(inc, "kind"),
	    "what_happened", inc_s(inc, "note"), "discovered_at", inc_time(disc),
	    "disclosed_at", inc_s(e, "at"), "patient", inc_s(e, "patient_name"),
	    "mrn", inc_s(e, "mrn"), "notify_by", inc_time(disc +
	    INCIDENT_NOTIFY_DAYS * 86400LL), "phi_involved", inc_s(e,
	    "description"), "recipient", "id", *inc_s(inc, "recipient") ?
	    inc_s(inc, "recipient") : inc_s(e, "recipient_id"), "name", inc_s(e,
	    "recipient_name"), "address", inc_s(e, "recipient_address"),
	    "containment", *inc_s(inc, "containment") ? inc_s(inc, "containment") :
	    "none recorded", "disclosures", json_object_get(inc, "disclosures"),
	    "assessments", json_object_get(inc, "assessments"), "assessment", a,
	    "notification", !*det ? "not yet assessed: assess the four factors "
	    "(roictl incident assess) before the deadline" : strcmp(det, "breach")
	    == 0 ? "required (164.404): tell the patient in plain language what "
	    "happened with the dates of the breach and of its discovery, the kinds "
	    "of information involved, what they should do to protect themselves, "
	    "what is being done to investigate, mitigate and prevent it, and how "
	    "to reach us; without unreasonable delay and by the date above" :
	    "not required: the assessment found a low probability that the "
	    "information was compromised (keep this record six years)");
}

/* "NAME at ADDRESS (ID)": to whom it went. */
static void
inc_recipient(json_t *r, char *out, size_t len)
{
	json_t	*to = json_object_get(r, "recipient");

	snprintf(out, len, "%s at %s (%s)", inc_s(to, "name"), inc_s(to,
	    "address"), inc_s(to, "id"));
}

char *
incident_report_text(json_t *r)
{
	struct buf	 b;
	json_t		*a = json_object_get(r, "assessment");
	json_t		*f = json_object_get(a, "factors");
	char		*out, to[600];

	buf_init(&b);
	inc_recipient(r, to, sizeof(to));
	buf_printf(&b, "Incident %lld (%s)\n", (long long)json_integer_value(
	    json_object_get(r, "incident")), inc_s(r, "kind"));
	buf_printf(&b, "Organization: %s\nGenerated: %s\n", inc_s(r,
	    "organization"), inc_s(r, "generated"));
	buf_printf(&b, "What happened: %s\n", inc_s(r, "what_happened"));
	buf_printf(&b, "Patient: %s (MRN %s)\n", inc_s(r, "patient"), inc_s(r, "mrn"));
	buf_printf(&b, "Disclosed: %s\nDisclosed to: %s\nDiscovered: %s\n",
	    inc_s(r, "disclosed_at"), to, inc_s(r, "discovered_at"));
	buf_printf(&b, "Notify by: %s (60 days from discovery, 164.404(b))\n",
	    inc_s(r, "notify_by"));
	buf_printf(&b, "Information involved: %s\n", inc_s(r, "phi_involved"));
	buf_printf(&b, "What was done: %s\n", inc_s(r, "containment"));
	if (json_is_object(a))
		buf_printf(&b, "Assessment %lld by %s at %s:\n  nature and extent: %s\n"
		    "  unauthorized person: %s\n  acquired or viewed: %s\n"
		    "  mitigation: %s\n  determination: %s\n",
		    (long long)json_integer_value(json_object_get(a, "id")),
		    inc_s(a, "by"), inc_s(a, "at"), inc_s(f, "nature"),
		    inc_s(f, "unauthorized_person"), inc_s(f, "acquired_or_viewed"),
		    inc_s(f, "mitigation"), inc_s(a, "determination"));
	buf_printf(&b, "Notification: %s\n", inc_s(r, "notification"));
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/*
 * The PDF: templates/incident/page.tpl draws each page's frame and
 * templates/incident/row.tpl one row, of one of three kinds: a heading,
 * a labelled value ("Discovered" and its date) or a line of text (a
 * disclosure, an assessment's factor), long values wrapped over rows.
 */
static const char *const inc_page_fields[] = { "org_name", "incident", "kind",
	"generated", "notify_by", "page", "pages", NULL };
static const char *const inc_row_fields[] = { "heading", "label", "value",
	"line", NULL };

struct inc_pdf_row {
	int	 kind;		/* 'h' heading, 'v' label and value, 'l' line,
				 * 'b' blank */
	char	*label, *text;
};

struct inc_pdf {
	json_t			*rep;
	struct inc_pdf_row	*rows;
	size_t			 n, cap;
	char			 id[24], pg[16], pgs[16];
};

static void
inc_pdf_add(struct inc_pdf *p, int kind, const char *label, const char *text)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->rows = xreallocarray(p->rows, p->cap, sizeof(*p->rows));
	}
	p->rows[p->n++] = (struct inc_pdf_row){ kind, label ? xstrdup(label) :
	    NULL, text ? xstrdup(text) : NULL };
}

/* text wrapped into rows of kind: the label on the first. */
static void
inc_pdf_wrapped(struct inc_pdf *p, int kind, const char *label,
    const char *text, const char *indent)
{
	struct buf	 b;
	char		*line, *save = NULL;

	buf_init(&b);
	report_wrap(&b, *text ? text : "-", indent);
	for (line = strtok_r(buf_cstr(&b), "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		inc_pdf_add(p, kind, label, line);
		label = NULL;
	}
	buf_free(&b);
}

static void
inc_pdf_heading(struct inc_pdf *p, const char *title)
{
	if (p->n)
		inc_pdf_add(p, 'b', NULL, NULL);	/* a blank row above */
	inc_pdf_add(p, 'h', NULL, title);
}

static void
inc_pdf_rows(struct inc_pdf *p)
{
	json_t	*r = p->rep, *it, *in_force = json_object_get(r, "assessment");
	json_t	*f, *all = json_object_get(r, "assessments");
	size_t	 i;
	char	 s[1400], to[600];
	static const char *const factors[][2] = { { "nature", "Nature and "
	    "extent" }, { "unauthorized_person", "Unauthorized person" },
	    { "acquired_or_viewed", "Acquired or viewed" }, { "mitigation",
	    "Mitigation" } };

	inc_recipient(r, to, sizeof(to));
	inc_pdf_heading(p, "The incident");
	inc_pdf_wrapped(p, 'v', "What happened", inc_s(r, "what_happened"), "");
	snprintf(s, sizeof(s), "%s (MRN %s)", inc_s(r, "patient"), inc_s(r, "mrn"));
	inc_pdf_wrapped(p, 'v', "Patient", s, "");
	inc_pdf_wrapped(p, 'v', "Disclosed", inc_s(r, "disclosed_at"), "");
	inc_pdf_wrapped(p, 'v', "Disclosed to", to, "");
	inc_pdf_wrapped(p, 'v', "Information", inc_s(r, "phi_involved"), "");
	inc_pdf_wrapped(p, 'v', "Discovered", inc_s(r, "discovered_at"), "");
	snprintf(s, sizeof(s), "%s (60 days from discovery, 164.404(b))",
	    inc_s(r, "notify_by"));
	inc_pdf_wrapped(p, 'v', "Notify by", s, "");
	inc_pdf_wrapped(p, 'v', "What was done", inc_s(r, "containment"), "");

	snprintf(s, sizeof(s), "Disclosures involved (%zu)", json_array_size(
	    json_object_get(r, "disclosures")));
	inc_pdf_heading(p, s);
	json_array_foreach(json_object_get(r, "disclosures"), i, it) {
		snprintf(s, sizeof(s), "Entry %lld, %s, %s: %s at %s (%s); %s; "
		    "%lld pages", (long long)json_integer_value(json_object_get(it,
		    "seq")), inc_s(it, "at"), inc_s(it, "outcome"), inc_s(it,
		    "recipient_name"), inc_s(it, "recipient_address"), inc_s(it,
		    "recipient_id"), inc_s(it, "description"), (long long)
		    json_integer_value(json_object_get(it, "pages")));
		inc_pdf_wrapped(p, 'l', NULL, s, "    ");
	}
	if (json_array_size(json_object_get(r, "disclosures")) == 0)
		inc_pdf_add(p, 'l', NULL, "None in the disclosure log.");

	snprintf(s, sizeof(s), "Risk assessments, 164.402(2) (%zu)",
	    json_array_size(all));
	inc_pdf_heading(p, s);
	json_array_foreach(all, i, it) {
		snprintf(s, sizeof(s), "Assessment %lld by %s at %s (%s): "
		    "determination %s", (long long)json_integer_value(
		    json_object_get(it, "id")), inc_s(it, "by"), inc_s(it, "at"),
		    json_equal(it, in_force) ? "in force" : "superseded",
		    inc_s(it, "determination"));
		inc_pdf_wrapped(p, 'l', NULL, s, "    ");
		f = json_object_get(it, "factors");
		for (size_t k = 0; k < sizeof(factors) / sizeof(factors[0]); k++) {
			snprintf(s, sizeof(s), "    %s: %s", factors[k][1],
			    inc_s(f, factors[k][0]));
			inc_pdf_wrapped(p, 'l', NULL, s, "      ");
		}
	}
	if (json_array_size(all) == 0)
		inc_pdf_add(p, 'l', NULL, "Not yet assessed.");

	inc_pdf_heading(p, "Notification of the patient, 164.404");
	inc_pdf_wrapped(p, 'l', NULL, inc_s(r, "notification"), "");
}

static int
inc_pdf_page(void *arg, size_t pageno, size_t npages, struct cover_field *f,
    char *err, size_t errlen)
{
	struct inc_pdf	*p = arg;

	snprintf(p->pg, sizeof(p->pg), "%zu", pageno + 1);
	snprintf(p->pgs, sizeof(p->pgs), "%zu", npages);
	f[0] = (struct cover_field){ "org_name", inc_s(p->rep, "organization") };
	f[1] = (struct cover_field){ "incident", p->id };
	f[2] = (struct cover_field){ "kind", inc_s(p->rep, "kind") };
	f[3] = (struct cover_field){ "generated", inc_s(p->rep, "generated") };
	f[4] = (struct cover_field){ "notify_by", inc_s(p->rep, "notify_by") };
	f[5] = (struct cover_field){ "page", p->pg };
	f[6] = (struct cover_field){ "pages", p->pgs };
	return 7;
}

static int
inc_pdf_row(void *arg, size_t i, struct cover_field *f, char *err,
    size_t errlen)
{
	struct inc_pdf_row	*r = &((struct inc_pdf *)arg)->rows[i];

	f[0] = (struct cover_field){ "heading", r->kind == 'h' ? r->text : "" };
	f[1] = (struct cover_field){ "label", r->kind == 'v' && r->label ?
	    r->label : "" };
	f[2] = (struct cover_field){ "value", r->kind == 'v' ? r->text : "" };
	f[3] = (struct cover_field){ "line", r->kind == 'l' ? r->text : "" };
	return 4;
}

static const struct report_layout inc_layout = {
	.folder = "incident",
	.item_tpl = "row.tpl",
	.page_fields = inc_page_fields,
	.item_fields = inc_row_fields,
	.title = "Incident report",
	.page = inc_pdf_page,
	.item = inc_pdf_row,
};

int
incident_report_pdf(json_t *rep, const char *dir, const char *font_dir,
    struct buf *out, char *err, size_t errlen)
{
	struct inc_pdf	 p;
	int64_t		 gen = 0;
	size_t		 i;
	int		 rv;

	memset(&p, 0, sizeof(p));
	p.rep = rep;
	snprintf(p.id, sizeof(p.id), "%lld", (long long)json_integer_value(
	    json_object_get(rep, "incident")));
	inc_pdf_rows(&p);
	datetime_parse(inc_s(rep, "generated"), &gen);
	rv = report_pdf(&inc_layout, dir, font_dir, gen, p.n, &p, out, err,
	    errlen);
	for (i = 0; i < p.n; i++) {
		free(p.rows[i].label);
		free(p.rows[i].text);
	}
	free(p.rows);
	return rv;
}
