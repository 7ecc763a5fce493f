/*
 * manifest.json, version 1 (daemon and worker).  Parsing checks the shape
 * of the document: types, required fields, formats, limits.  Whether the
 * packet may be released is src/policy.c's decision.  Every error names
 * the field path and the rule in words a records clerk can act on, and
 * all errors are reported at once.  See docs/manifest.md.
 */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"
#include "util.h"

#define MANIFEST_MAX_STRING	512

void
errlist_add(struct errlist *e, const char *fmt, ...)
{
	va_list	ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = xstrdup("(out of memory)");
	va_end(ap);
	e->msg = xreallocarray(e->msg, e->n + 1, sizeof(*e->msg));
	e->msg[e->n++] = msg;
}

void
errlist_free(struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msg[i]);
	free(e->msg);
	e->msg = NULL;
	e->n = 0;
}

char *
errlist_join(const struct errlist *e, const char *sep)
{
	struct buf	b;

	buf_init(&b);
	for (size_t i = 0; i < e->n; i++) {
		if (i)
			buf_addstr(&b, sep);
		buf_addstr(&b, e->msg[i]);
	}
	return buf_cstr(&b);
}

static const struct {
	unsigned	 bit;
	const char	*name;
} categories[] = {
	{ CAT_PSYCHOTHERAPY, "psychotherapy_notes" },
	{ CAT_SUD_PART2, "substance_use_part2" },
	{ CAT_HIV, "hiv" },
	{ CAT_GENETIC, "genetic" },
	{ CAT_MENTAL_HEALTH, "mental_health" },
};

const char *
category_name(unsigned cat)
{
	for (size_t i = 0; i < sizeof(categories) / sizeof(categories[0]); i++)
		if (categories[i].bit == cat)
			return categories[i].name;
	return "unknown";
}

int
category_parse(const char *s, unsigned *cat)
{
	for (size_t i = 0; i < sizeof(categories) / sizeof(categories[0]); i++)
		if (strcmp(categories[i].name, s) == 0) {
			*cat = categories[i].bit;
			return 0;
		}
	return -1;
}

static const char *const bases[] = {
	[BASIS_PATIENT_ACCESS] = "patient_access",
	[BASIS_AUTHORIZATION] = "authorization",
	[BASIS_TREATMENT] = "treatment",
	[BASIS_PAYMENT] = "payment",
	[BASIS_OPERATIONS] = "operations",
	[BASIS_SUBPOENA] = "subpoena",
	[BASIS_COURT_ORDER] = "court_order",
	[BASIS_REQUIRED_BY_LAW] = "required_by_law",
};
#define NBASES	(sizeof(bases) / sizeof(bases[0]))

const char *
basis_name(enum basis b)
{
	return (unsigned)b < NBASES ? bases[b] : "unknown";
}

int
basis_needs_authorization(enum basis b)
{
	return b == BASIS_AUTHORIZATION;
}

int
valid_packet_id(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return 0;
	return 1;
}

/* Field access with error reporting.  path is the object's own path. */
struct ctx {
	struct errlist		*errs;
	const struct manifest	*m;	/* what is parsed so far */
};

static const char *
get_str(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	json_t		*v = json_object_get(obj, key);
	const char	*s;
	const char	*dot = path[0] ? "." : "";

	if (v == NULL || json_is_null(v)) {
		if (required)
			errlist_add(c->errs, "%s%s%s: missing", path, dot, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		errlist_add(c->errs, "%s%s%s: must be a string", path, dot, key);
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) > MANIFEST_MAX_STRING) {
		errlist_add(c->errs, "%s%s%s: longer than %d characters", path, dot,
		    key, MANIFEST_MAX_STRING);
		return NULL;
	}
	if (required && *s == '\0') {
		errlist_add(c->errs, "%s%s%s: must not be empty", path, dot, key);
		return NULL;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 && *p != '\t') {
			errlist_add(c->errs, "%s%s%s: contains control characters",
			    path, dot, key);
			return NULL;
		}
	return s;
}

static char *
dup_str(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	const char	*s = get_str(c, obj, path, key, required);

	return s ? xstrdup(s) : NULL;
}

static char *
dup_date(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required, int64_t *days)
{
	const char	*s = get_str(c, obj, path, key, required);

	if (s == NULL)
		return NULL;
	if (date_parse(s, days) == -1) {
		errlist_add(c->errs, "%s.%s: \"%.40s\" is not a date (use YYYY-MM-DD)",
		    path, key, s);
		return NULL;
	}
	return xstrdup(s);
}

static char *
dup_time(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	const char	*s = get_str(c, obj, path, key, required);
	int64_t		 t;

	if (s == NULL)
		return NULL;
	if (datetime_parse(s, &t) == -1) {
		errlist_add(c->errs, "%s%s%s: \"%.40s\" is not a date and time (use "
		    "2026-11-24T09:30:00Z)", path, path[0] ? "." : "", key, s);
		return NULL;
	}
	return xstrdup(s);
}

static json_t *
get_obj(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	json_t	*v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		if (required)
			errlist_add(c->errs, "%s%s%s: missing", path, path[0] ? "." : "", key);
		return NULL;
	}
	if (!json_is_object(v)) {
		errlist_add(c->errs, "%s%s%s: must be an object", path,
		    path[0] ? "." : "", key);
		return NULL;
	}
	return v;
}

/* Keys of obj must all be in allowed: a typo must not drop a field silently. */
static void
check_keys(struct ctx *c, json_t *obj, const char *path, const char *const *allowed)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(obj, k, v) {
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			errlist_add(c->errs, "%s%s%.60s: unknown field (check the "
			    "spelling against docs/manifest.md)", path,
			    path[0] ? "." : "", k);
	}
	(void)v;
}

static unsigned
parse_categories(struct ctx *c, json_t *arr, const char *path)
{
	unsigned	 bits = 0, b;
	size_t		 i;
	json_t		*v;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr)) {
		errlist_add(c->errs, "%s: must be a list", path);
		return 0;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || category_parse(json_string_value(v), &b) == -1)
			errlist_add(c->errs, "%s[%zu]: \"%.40s\" is not a special category "
			    "(use psychotherapy_notes, substance_use_part2, hiv, genetic, "
			    "mental_health)", path, i, json_is_string(v) ?
			    json_string_value(v) : "?");
		else
			bits |= b;
	}
	return bits;
}

static void
parse_authorization(struct ctx *c, json_t *a, struct manifest *m)
{
	static const char *const keys[] = { "id", "signed_on", "signed_by",
	    "effective_on", "expires_on", "scope", NULL };
	static const char *const skeys[] = { "document_types", "from", "to",
	    "categories", NULL };
	struct authorization	*au = xcalloc(1, sizeof(*au));
	json_t			*scope, *types, *v;
	size_t			 i;

	m->authorization = au;
	check_keys(c, a, "authorization", keys);
	au->id = dup_str(c, a, "authorization", "id", 1);
	au->signed_on = dup_date(c, a, "authorization", "signed_on", 0, &au->signed_days);
	au->signed_by = dup_str(c, a, "authorization", "signed_by", 0);
	au->effective_on = dup_date(c, a, "authorization", "effective_on", 0,
	    &au->effective_days);
	au->expires_on = dup_date(c, a, "authorization", "expires_on", 1,
	    &au->expires_days);
	if ((scope = get_obj(c, a, "authorization", "scope", 1)) == NULL)
		return;
	check_keys(c, scope, "authorization.scope", skeys);
	types = json_object_get(scope, "document_types");
	if (!json_is_array(types) || json_array_size(types) == 0)
		errlist_add(c->errs, "authorization.scope.document_types: must list "
		    "the document types the authorization covers");
	else {
		au->scope_types = xcalloc(json_array_size(types), sizeof(char *));
		json_array_foreach(types, i, v) {
			if (!json_is_string(v))
				errlist_add(c->errs, "authorization.scope.document_types[%zu]: "
				    "must be a string", i);
			else
				au->scope_types[au->nscope_types++] =
				    xstrdup(json_string_value(v));
		}
	}
	au->scope_from = dup_date(c, scope, "authorization.scope", "from", 0,
	    &au->scope_from_days);
	au->scope_to = dup_date(c, scope, "authorization.scope", "to", 0,
	    &au->scope_to_days);
	au->scope_categories = parse_categories(c, json_object_get(scope,
	    "categories"), "authorization.scope.categories");
}

static void
parse_redact(struct ctx *c, json_t *r, const char *path, struct document *d)
{
	static const char *const keys[] = { "rects", "patterns", NULL };
	static const char *const named[] = { "ssn", "mrn", "phone", "email", "dob",
	    "patient_name", NULL };
	json_t	*rects = json_object_get(r, "rects"), *pats, *v;
	char	 p[96];
	size_t	 i;

	check_keys(c, r, path, keys);
	if (rects && json_is_array(rects)) {
		d->rects = xcalloc(json_array_size(rects) + 1, sizeof(*d->rects));
		json_array_foreach(rects, i, v) {
			struct redact_rect *rr = &d->rects[d->nrects];
			if (json_unpack(v, "{s:i, s:F, s:F, s:F, s:F !}", "page", &rr->page,
			    "x", &rr->x, "y", &rr->y, "w", &rr->w, "h", &rr->h) == -1 ||
			    rr->page < 1 || rr->w <= 0 || rr->h <= 0 || rr->x < 0 || rr->y < 0)
				errlist_add(c->errs, "%s.rects[%zu]: must be {page (from 1), x, "
				    "y, w, h} with positive width and height", path, i);
			else
				d->nrects++;
		}
	} else if (rects)
		errlist_add(c->errs, "%s.rects: must be a list", path);
	pats = json_object_get(r, "patterns");
	if (pats && !json_is_array(pats)) {
		errlist_add(c->errs, "%s.patterns: must be a list", path);
		return;
	}
	d->patterns = xcalloc(json_array_size(pats) + 1, sizeof(*d->patterns));
	json_array_foreach(pats, i, v) {
		struct redact_pattern *rp = &d->patterns[d->npatterns];
		const char *name = NULL, *regex = NULL;
		json_int_t expect = -1;
		snprintf(p, sizeof(p), "%s.patterns[%zu]", path, i);
		if (json_unpack(v, "{s?s, s?s, s?I !}", "name", &name, "regex", &regex,
		    "expect", &expect) == -1 || (name == NULL) == (regex == NULL)) {
			errlist_add(c->errs, "%s: must be {name or regex, expect (optional)}", p);
			continue;
		}
		if (name) {
			size_t k;
			for (k = 0; named[k] && strcmp(named[k], name); k++)
				;
			if (named[k] == NULL) {
				errlist_add(c->errs, "%s.name: \"%.40s\" is not a named pattern "
				    "(ssn, mrn, phone, email, dob, patient_name)", p, name);
				continue;
			}
			/* The patient's identifiers come from the manifest. */
			if (strcmp(name, "dob") == 0 && c->m->patient_dob == NULL) {
				errlist_add(c->errs, "%s.name: dob looks for the patient's "
				    "date of birth: give patient.dob", p);
				continue;
			}
		} else {
			regex_t	re;
			char	why[128];
			int	rc;

			/* Compiled here with the flags the renderer uses, so that a
			 * bad one is refused at intake, not after acceptance. */
			if ((rc = regcomp(&re, regex, REDACT_REGEX_FLAGS)) != 0) {
				regerror(rc, &re, why, sizeof(why));
				errlist_add(c->errs, "%s.regex: \"%.60s\" is not a valid "
				    "regular expression (%s)", p, regex, why);
				continue;
			}
			regfree(&re);
		}
		if (expect < -1) {
			errlist_add(c->errs, "%s.expect: must be 0 or more", p);
			continue;
		}
		rp->name = name ? xstrdup(name) : NULL;
		rp->regex = regex ? xstrdup(regex) : NULL;
		rp->expect = (int)expect;
		d->npatterns++;
	}
}

static int
valid_sha256(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return 0;
	return 1;
}

static void
parse_document(struct ctx *c, json_t *o, size_t i, struct manifest *m)
{
	static const char *const keys[] = { "file", "sha256", "type", "date",
	    "description", "categories", "redact", NULL };
	struct document	*d = &m->docs[m->ndocs++];
	const char	*sha;
	char		 path[32];
	json_t		*r;

	snprintf(path, sizeof(path), "documents[%zu]", i);
	if (!json_is_object(o)) {
		errlist_add(c->errs, "%s: must be an object", path);
		return;
	}
	check_keys(c, o, path, keys);
	d->file = dup_str(c, o, path, "file", 1);
	if (d->file && (!valid_filename(d->file) ||
	    !strcmp(d->file, "manifest.json") || !strcmp(d->file, "REASON.txt"))) {
		errlist_add(c->errs, "%s.file: \"%.100s\" must be a plain file name in "
		    "the packet folder (no '/', not starting with '.', not "
		    "manifest.json or REASON.txt)", path, d->file);
		free(d->file);
		d->file = NULL;
	}
	for (size_t k = 0; d->file && k + 1 < m->ndocs; k++)
		if (m->docs[k].file && strcmp(m->docs[k].file, d->file) == 0)
			errlist_add(c->errs, "%s.file: \"%.100s\" is listed twice", path,
			    d->file);
	if ((sha = get_str(c, o, path, "sha256", 1)) != NULL) {
		if (!valid_sha256(sha))
			errlist_add(c->errs, "%s.sha256: must be 64 hexadecimal characters",
			    path);
		else
			for (int k = 0; k < 65; k++)
				d->sha256[k] = (char)tolower((unsigned char)sha[k]);
	}
	d->type = dup_str(c, o, path, "type", 1);
	d->date = dup_date(c, o, path, "date", 1, &d->date_days);
	d->description = dup_str(c, o, path, "description", 0);
	d->categories = parse_categories(c, json_object_get(o, "categories"), path);
	if ((r = get_obj(c, o, path, "redact", 0)) != NULL)
		parse_redact(c, r, path, d);
}

static void
parse_patient_request(struct ctx *c, json_t *root, struct manifest *m)
{
	static const char *const pkeys[] = { "mrn", "name", "dob", NULL };
	static const char *const rkeys[] = { "id", "received_on", "requester",
	    "purpose", NULL };
	static const char *const qkeys[] = { "name", "organization", "kind", NULL };
	static const char *const kinds[] = { "patient", "personal_representative",
	    "provider", "payer", "attorney", "court", "government", "other", NULL };
	json_t	*p, *r, *q;
	int64_t	 days;
	size_t	 k;

	if ((p = get_obj(c, root, "", "patient", 1)) != NULL) {
		check_keys(c, p, "patient", pkeys);
		m->patient_mrn = dup_str(c, p, "patient", "mrn", 1);
		m->patient_name = dup_str(c, p, "patient", "name", 1);
		m->patient_dob = dup_date(c, p, "patient", "dob", 0, &days);
	}
	if ((r = get_obj(c, root, "", "request", 1)) == NULL)
		return;
	check_keys(c, r, "request", rkeys);
	m->request_id = dup_str(c, r, "request", "id", 1);
	m->request_received_on = dup_date(c, r, "request", "received_on", 0, &days);
	m->purpose = dup_str(c, r, "request", "purpose", 1);
	if ((q = get_obj(c, r, "request", "requester", 1)) == NULL)
		return;
	check_keys(c, q, "request.requester", qkeys);
	m->requester_name = dup_str(c, q, "request.requester", "name", 1);
	m->requester_organization = dup_str(c, q, "request.requester",
	    "organization", 0);
	m->requester_kind = dup_str(c, q, "request.requester", "kind", 1);
	if (m->requester_kind) {
		for (k = 0; kinds[k] && strcmp(kinds[k], m->requester_kind); k++)
			;
		if (kinds[k] == NULL)
			errlist_add(c->errs, "request.requester.kind: \"%.40s\" is not a "
			    "kind of requester (use patient, personal_representative, "
			    "provider, payer, attorney, court, government, other)",
			    m->requester_kind);
	}
}

static void
parse_basis(struct ctx *c, json_t *root, struct manifest *m)
{
	const char	*b = get_str(c, root, "", "basis", 1);
	size_t		 i;

	if (b == NULL)
		return;
	for (i = 0; i < NBASES && strcmp(bases[i], b); i++)
		;
	if (i == NBASES) {
		errlist_add(c->errs, "basis: \"%.40s\" is not a legal basis (use one of: "
		    "patient_access, authorization, treatment, payment, operations, "
		    "subpoena, court_order, required_by_law)", b);
		return;
	}
	m->basis = (enum basis)i;
}

static void
parse_top(struct ctx *c, json_t *root, struct manifest *m)
{
	static const char *const keys[] = { "version", "packet_id", "created_at",
	    "patient", "request", "basis", "authorization", "approval", "recipient",
	    "documents", "cover_sheet", NULL };
	static const char *const akeys[] = { "by", "at", NULL };
	static const char *const ckeys[] = { "template", "note", "urgent", NULL };
	json_t	*a, *cs, *docs, *v;
	size_t	 i;

	check_keys(c, root, "", keys);
	m->packet_id = dup_str(c, root, "", "packet_id", 1);
	if (m->packet_id && !valid_packet_id(m->packet_id))
		errlist_add(c->errs, "packet_id: \"%.64s\" must be 1 to 64 letters, "
		    "digits, '.', '_' or '-', not starting with '.'", m->packet_id);
	m->created_at = dup_time(c, root, "", "created_at", 0);
	parse_patient_request(c, root, m);
	parse_basis(c, root, m);
	if ((a = get_obj(c, root, "", "authorization", 0)) != NULL)
		parse_authorization(c, a, m);
	/* Approval is checked by policy, so that its absence reads plainly. */
	if ((a = get_obj(c, root, "", "approval", 0)) != NULL) {
		check_keys(c, a, "approval", akeys);
		m->approval_by = dup_str(c, a, "approval", "by", 0);
		m->approval_at = dup_time(c, a, "approval", "at", 0);
	}
	m->recipient = dup_str(c, root, "", "recipient", 1);
	if ((cs = get_obj(c, root, "", "cover_sheet", 0)) != NULL) {
		check_keys(c, cs, "cover_sheet", ckeys);
		m->cover_template = dup_str(c, cs, "cover_sheet", "template", 0);
		m->cover_note = dup_str(c, cs, "cover_sheet", "note", 0);
		m->cover_urgent = json_is_true(json_object_get(cs, "urgent"));
	}
	docs = json_object_get(root, "documents");
	if (!json_is_array(docs) || json_array_size(docs) == 0) {
		errlist_add(c->errs, "documents: must list at least one document");
		return;
	}
	if (json_array_size(docs) > MANIFEST_MAX_DOCS) {
		errlist_add(c->errs, "documents: more than %d documents",
		    MANIFEST_MAX_DOCS);
		return;
	}
	m->docs = xcalloc(json_array_size(docs), sizeof(*m->docs));
	json_array_foreach(docs, i, v)
		parse_document(c, v, i, m);
}

struct manifest *
manifest_parse(const char *text, size_t len, struct errlist *errs)
{
	struct manifest	*m;
	struct ctx	 c = { errs, NULL };
	json_error_t	 jerr;
	json_t		*root, *ver;
	size_t		 before = errs->n;

	if (len > MANIFEST_MAX_SIZE) {
		errlist_add(errs, "manifest.json is larger than %d bytes",
		    MANIFEST_MAX_SIZE);
		return NULL;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		errlist_add(errs, "manifest.json is not valid JSON (line %d, column "
		    "%d: %.100s)", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		errlist_add(errs, "manifest.json must hold one JSON object");
		json_decref(root);
		return NULL;
	}
	ver = json_object_get(root, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != MANIFEST_VERSION) {
		if (json_is_integer(ver))
			errlist_add(errs, "version: %lld is not supported (this gateway "
			    "reads version 1)", (long long)json_integer_value(ver));
		else
			errlist_add(errs, "version: missing or not a number (this "
			    "gateway reads version 1)");
		json_decref(root);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->version = MANIFEST_VERSION;
	c.m = m;
	parse_top(&c, root, m);
	json_decref(root);
	if (errs->n > before) {
		manifest_free(m);
		return NULL;
	}
	return m;
}

static void
document_free(struct document *d)
{
	free(d->file);
	free(d->type);
	free(d->date);
	free(d->description);
	free(d->rects);
	for (size_t i = 0; i < d->npatterns; i++) {
		free(d->patterns[i].name);
		free(d->patterns[i].regex);
	}
	free(d->patterns);
}

void
manifest_free(struct manifest *m)
{
	struct authorization	*a;

	if (m == NULL)
		return;
	if ((a = m->authorization) != NULL) {
		free(a->id);
		free(a->signed_on);
		free(a->signed_by);
		free(a->effective_on);
		free(a->expires_on);
		for (size_t i = 0; i < a->nscope_types; i++)
			free(a->scope_types[i]);
		free(a->scope_types);
		free(a->scope_from);
		free(a->scope_to);
		free(a);
	}
	for (size_t i = 0; i < m->ndocs; i++)
		document_free(&m->docs[i]);
	free(m->docs);
	free(m->packet_id);
	free(m->created_at);
	free(m->patient_mrn);
	free(m->patient_name);
	free(m->patient_dob);
	free(m->request_id);
	free(m->request_received_on);
	free(m->requester_name);
	free(m->requester_organization);
	free(m->requester_kind);
	free(m->purpose);
	free(m->approval_by);
	free(m->approval_at);
	free(m->recipient);
	free(m->cover_template);
	free(m->cover_note);
	free(m);
}

char *
manifest_describe(const struct manifest *m)
{
	struct buf	b;

	buf_init(&b);
	buf_printf(&b, "%zu document%s:", m->ndocs, m->ndocs == 1 ? "" : "s");
	for (size_t i = 0; i < m->ndocs; i++) {
		const struct document *d = &m->docs[i];
		buf_printf(&b, "%s %s (%s)", i ? ";" : "", d->type ? d->type : "?",
		    d->date ? d->date : "?");
		if (d->description && d->description[0])
			buf_printf(&b, " %s", d->description);
	}
	return buf_cstr(&b);
}
