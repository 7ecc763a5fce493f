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
#define MANIFEST_MAX_FILENAME	255	/* NAME_MAX */
#define MANIFEST_MAX_EXPECT	100000
#define MANIFEST_MAX_PAGE	1000000
#define MANIFEST_REGEX_WEIGHT	2000	/* see regex_weight() */
#define MANIFEST_REGEX_DEPTH	64

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

/* "path.key", or "key" at the top: the field as a clerk finds it. */
static void
field_path(char *buf, size_t len, const char *path, const char *key)
{
	snprintf(buf, len, "%s%s%s", path, path[0] ? "." : "", key);
}

/* Is s only spaces (space, tab, no-break space U+00A0)? */
static int
text_blank(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == ' ' || *p == '\t')
			continue;
		if (p[0] == 0xc2 && p[1] == 0xa0) {
			p++;
			continue;
		}
		return 0;
	}
	return 1;
}

int
text_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return *p;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return p[1];
	}
	return -1;
}

/* 0 if s may stand in the field named f, -1 with the reason added.  Every
 * string of the manifest passes here: what it says ends up in the
 * disclosure log, on a cover sheet or in a file name. */
static int
check_text(struct ctx *c, const char *f, const char *s, size_t max)
{
	int	ch;

	if (strlen(s) > max) {
		errlist_add(c->errs, "%s: is longer than %zu bytes", f, max);
		return -1;
	}
	if (text_blank(s)) {
		errlist_add(c->errs, "%s: must not be empty or only spaces", f);
		return -1;
	}
	if ((ch = text_control(s)) != -1) {
		errlist_add(c->errs, "%s: contains an invisible control character "
		    "(U+%04X): type the text again without it", f, (unsigned)ch);
		return -1;
	}
	return 0;
}

static const char *
get_str_max(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required, size_t max)
{
	json_t		*v = json_object_get(obj, key);
	const char	*s;
	char		 f[128];

	field_path(f, sizeof(f), path, key);
	if (v == NULL || json_is_null(v)) {
		if (required)
			errlist_add(c->errs, "%s: missing", f);
		return NULL;
	}
	if (!json_is_string(v)) {
		errlist_add(c->errs, "%s: must be a string", f);
		return NULL;
	}
	s = json_string_value(v);
	return check_text(c, f, s, max) == 0 ? s : NULL;
}

static const char *
get_str(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	return get_str_max(c, obj, path, key, required, MANIFEST_MAX_STRING);
}

static char *
dup_str(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	const char	*s = get_str(c, obj, path, key, required);

	return s ? xstrdup(s) : NULL;
}

/* A date (YYYY-MM-DD) or a date and time (RFC 3339), checked by parse. */
static char *
dup_when(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required, int (*parse)(const char *, int64_t *), int64_t *out,
    const char *form)
{
	const char	*s = get_str(c, obj, path, key, required);
	char		 f[128];
	int64_t		 t;

	if (s == NULL)
		return NULL;
	if (parse(s, out ? out : &t) == -1) {
		field_path(f, sizeof(f), path, key);
		errlist_add(c->errs, "%s: \"%.40s\" is not a %s", f, s, form);
		return NULL;
	}
	return xstrdup(s);
}

static char *
dup_date(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required, int64_t *days)
{
	return dup_when(c, obj, path, key, required, date_parse, days,
	    "date (use YYYY-MM-DD)");
}

static char *
dup_time(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	return dup_when(c, obj, path, key, required, datetime_parse, NULL,
	    "date and time (use 2026-11-24T09:30:00Z)");
}

static json_t *
get_obj(struct ctx *c, json_t *obj, const char *path, const char *key,
    int required)
{
	json_t	*v = json_object_get(obj, key);
	char	 f[128];

	field_path(f, sizeof(f), path, key);
	if (v == NULL || json_is_null(v)) {
		if (required)
			errlist_add(c->errs, "%s: missing", f);
		return NULL;
	}
	if (!json_is_object(v)) {
		errlist_add(c->errs, "%s: must be an object", f);
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
	char		 f[128];

	json_object_foreach(obj, k, v) {
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			if (text_control(k) != -1)
				k = "(a name with control characters)";
			snprintf(f, sizeof(f), "%s%s%.60s", path, path[0] ? "." : "", k);
			errlist_add(c->errs, "%s: unknown field (check the spelling "
			    "against docs/manifest.md)", f);
		}
	}
	(void)v;
}

/*
 * Each string of the list arr (the field path), checked as text; fn is
 * called with each that passes.  0, or -1 if arr is not a list.
 */
static int
each_text(struct ctx *c, json_t *arr, const char *path,
    void (*fn)(struct ctx *, const char *f, const char *s, void *), void *arg)
{
	char	 f[128];
	size_t	 i;
	json_t	*v;

	if (!json_is_array(arr)) {
		errlist_add(c->errs, "%s: must be a list", path);
		return -1;
	}
	json_array_foreach(arr, i, v) {
		snprintf(f, sizeof(f), "%s[%zu]", path, i);
		if (!json_is_string(v))
			errlist_add(c->errs, "%s: must be a string", f);
		else if (check_text(c, f, json_string_value(v),
		    MANIFEST_MAX_STRING) == 0)
			fn(c, f, json_string_value(v), arg);
	}
	return 0;
}

static void
add_category(struct ctx *c, const char *f, const char *s, void *arg)
{
	unsigned	*bits = arg, b;

	if (category_parse(s, &b) == -1)
		errlist_add(c->errs, "%s: \"%.40s\" is not a special category "
		    "(use psychotherapy_notes, substance_use_part2, hiv, genetic, "
		    "mental_health)", f, s);
	else
		*bits |= b;
}

/* obj.categories: a list of special categories, as CAT_* bits. */
static unsigned
parse_categories(struct ctx *c, json_t *obj, const char *path)
{
	json_t		*arr = json_object_get(obj, "categories");
	unsigned	 bits = 0;
	char		 f[128];

	if (arr == NULL || json_is_null(arr))
		return 0;
	field_path(f, sizeof(f), path, "categories");
	each_text(c, arr, f, add_category, &bits);
	return bits;
}

static void
add_scope_type(struct ctx *c, const char *f, const char *s, void *arg)
{
	struct authorization	*au = arg;

	(void)c;
	(void)f;
	au->scope_types[au->nscope_types++] = xstrdup(s);
}

static void
parse_authorization(struct ctx *c, json_t *a, struct manifest *m)
{
	static const char *const keys[] = { "id", "signed_on", "signed_by",
	    "effective_on", "expires_on", "scope", "file", NULL };
	static const char *const skeys[] = { "document_types", "from", "to",
	    "categories", NULL };
	struct authorization	*au = xcalloc(1, sizeof(*au));
	json_t			*scope, *types;

	m->authorization = au;
	check_keys(c, a, "authorization", keys);
	au->id = dup_str(c, a, "authorization", "id", 1);
	au->signed_on = dup_date(c, a, "authorization", "signed_on", 0, &au->signed_days);
	au->signed_by = dup_str(c, a, "authorization", "signed_by", 0);
	au->effective_on = dup_date(c, a, "authorization", "effective_on", 0,
	    &au->effective_days);
	au->expires_on = dup_date(c, a, "authorization", "expires_on", 1,
	    &au->expires_days);
	au->file = dup_str(c, a, "authorization", "file", 0);
	if ((scope = get_obj(c, a, "authorization", "scope", 1)) == NULL)
		return;
	check_keys(c, scope, "authorization.scope", skeys);
	types = json_object_get(scope, "document_types");
	if (json_is_array(types) && json_array_size(types) > 0) {
		au->scope_types = xcalloc(json_array_size(types), sizeof(char *));
		each_text(c, types, "authorization.scope.document_types",
		    add_scope_type, au);
	} else
		errlist_add(c->errs, "authorization.scope.document_types: must list "
		    "the document types the authorization covers");
	au->scope_from = dup_date(c, scope, "authorization.scope", "from", 0,
	    &au->scope_from_days);
	au->scope_to = dup_date(c, scope, "authorization.scope", "to", 0,
	    &au->scope_to_days);
	au->scope_categories = parse_categories(c, scope, "authorization.scope");
}

/* redact.rects: each {page, x, y, w, h}, inside the page's first quadrant. */
static void
parse_rects(struct ctx *c, json_t *rects, const char *path, struct document *d)
{
	json_int_t	 page;
	json_t		*v;
	size_t		 i;

	if (!json_is_array(rects)) {
		errlist_add(c->errs, "%s.rects: must be a list", path);
		return;
	}
	d->rects = xcalloc(json_array_size(rects) + 1, sizeof(*d->rects));
	json_array_foreach(rects, i, v) {
		struct redact_rect *rr = &d->rects[d->nrects];
		if (json_unpack(v, "{s:I, s:F, s:F, s:F, s:F !}", "page", &page,
		    "x", &rr->x, "y", &rr->y, "w", &rr->w, "h", &rr->h) == -1 ||
		    page < 1 || page > MANIFEST_MAX_PAGE || rr->w <= 0 ||
		    rr->h <= 0 || rr->x < 0 || rr->y < 0) {
			errlist_add(c->errs, "%s.rects[%zu]: must be {page (from 1), x, "
			    "y, w, h} with positive width and height", path, i);
			continue;
		}
		rr->page = (int)page;
		d->nrects++;
	}
}

/* A bound at p ("{m}", "{m,}", "{m,n}", "{,n}"): 1 with the copies it
 * makes (m + 1 for "{m,}") and *after, just past it; 0 if it is none. */
static int
regex_bound(const char *p, long *copies, const char **after)
{
	char	*end;
	long	 m = 0;

	p++;
	if (isdigit((unsigned char)*p)) {
		m = strtol(p, &end, 10);
		p = end;
	} else if (*p != ',')
		return 0;
	*copies = m;
	if (*p == ',') {
		p++;
		*copies = m + 1;
		if (isdigit((unsigned char)*p)) {
			*copies = strtol(p, &end, 10);
			p = end;
		}
	}
	if (*p != '}')
		return 0;
	*after = p + 1;
	return 1;
}

/*
 * About how many copies of its parts a POSIX regex compiler makes of re:
 * a bounded repetition is written out that many times, and nested ones
 * multiply ("((a{1,255}){1,255}){1,255}", 27 bytes, took glibc's regcomp
 * 8 GB and more than a minute, in the daemon, at intake).  Saturates just
 * above cap.  A string regcomp refuses anyway may count anything.
 */
static long
regex_weight(const char *re, long cap)
{
	long		 sum[MANIFEST_REGEX_DEPTH + 1], last = 0, n;
	const char	*p = re, *q;
	int		 depth = 0;
	char		*end;

	sum[0] = 0;
	while (*p) {
		if (*p == '(') {
			if (depth == MANIFEST_REGEX_DEPTH)
				return cap + 1;	/* nobody nests a pattern so */
			sum[depth] += last;
			last = 0;
			sum[++depth] = 0;
			p++;
		} else if (*p == ')' && depth > 0) {
			last = sum[depth] + last;
			if (last == 0)
				last = 1;
			depth--;
			p++;
		} else if (*p == '{' && regex_bound(p, &n, &q)) {
			last = n > cap || last > cap / (n > 0 ? n : 1) ? cap + 1 :
			    last * (n > 0 ? n : 1);
			p = q;
		} else {
			sum[depth] += last;
			last = 1;
			if (*p == '\\' && p[1])
				p += 2;
			else if (*p == '[') {
				/* a bracket expression is one: "[]a]", "[^]a]",
				 * "[[:digit:]]" */
				q = p + 1 + (p[1] == '^');
				q += *q == ']';
				while (*q && *q != ']')
					q += q[0] == '[' && (q[1] == ':' || q[1] == '.' ||
					    q[1] == '=') && (end = strchr(q + 2, ']')) ?
					    end + 1 - q : 1;
				p = *q ? q + 1 : q;
			} else
				p++;
		}
		if (sum[depth] > cap || last > cap)
			return cap + 1;
	}
	sum[depth] += last;
	for (; depth > 0; depth--)
		sum[depth - 1] += sum[depth];
	return sum[0] > cap ? cap + 1 : sum[0];
}

/* A pattern's name (a known one) or regex (one the renderer can compile). */
static int
check_pattern(struct ctx *c, const char *p, const char *name, const char *regex)
{
	static const char *const named[] = { "ssn", "mrn", "phone", "email", "dob",
	    "patient_name", NULL };
	regex_t		 re;
	char		 why[128];
	size_t		 k;
	int		 rc;

	if (name) {
		for (k = 0; named[k] && strcmp(named[k], name); k++)
			;
		if (named[k] == NULL) {
			errlist_add(c->errs, "%s.name: \"%.40s\" is not a named pattern "
			    "(ssn, mrn, phone, email, dob, patient_name)", p, name);
			return -1;
		}
		/* The patient's identifiers come from the manifest. */
		if (strcmp(name, "dob") == 0 && c->m->patient_dob == NULL) {
			errlist_add(c->errs, "%s.name: dob looks for the patient's "
			    "date of birth: give patient.dob", p);
			return -1;
		}
		return 0;
	}
	if (regex_weight(regex, MANIFEST_REGEX_WEIGHT) > MANIFEST_REGEX_WEIGHT) {
		errlist_add(c->errs, "%s.regex: repeats too much for the gateway (its "
		    "{n,m} counts, nested or one after another, come to more than "
		    "%d copies of what they repeat): write it with smaller counts",
		    p, MANIFEST_REGEX_WEIGHT);
		return -1;
	}
	/* Compiled here with the flags the renderer uses, so that a bad one is
	 * refused at intake, not after acceptance. */
	if ((rc = regcomp(&re, regex, REDACT_REGEX_FLAGS)) != 0) {
		regerror(rc, &re, why, sizeof(why));
		errlist_add(c->errs, "%s.regex: \"%.60s\" is not a valid regular "
		    "expression (%s)", p, regex, why);
		return -1;
	}
	regfree(&re);
	return 0;
}

/*
 * expect, if given: how many times the pattern must match.  The struct's
 * -1 ("no expectation") is never read from the packet: a written -1 is
 * refused like any other negative count.
 */
static int
parse_expect(struct ctx *c, json_t *v, const char *p, int *expect)
{
	json_t	*e = json_object_get(v, "expect");

	*expect = -1;
	if (e == NULL || json_is_null(e))
		return 0;
	if (!json_is_integer(e) || json_integer_value(e) < 0 ||
	    json_integer_value(e) > MANIFEST_MAX_EXPECT) {
		errlist_add(c->errs, "%s.expect: must be a whole number from 0 to %d "
		    "(how many times the pattern must be found)", p,
		    MANIFEST_MAX_EXPECT);
		return -1;
	}
	*expect = (int)json_integer_value(e);
	return 0;
}

/* mode, if given: "line" blacks out the whole line of each match. */
static int
parse_mode(struct ctx *c, json_t *v, const char *p, int *line)
{
	const char	*mode = get_str(c, v, p, "mode", 0);

	*line = 0;
	if (mode == NULL)
		return 0;
	if (strcmp(mode, "line") != 0 && strcmp(mode, "box") != 0) {
		errlist_add(c->errs, "%s.mode: must be \"box\" (the default) or "
		    "\"line\" (the whole line of each match)", p);
		return -1;
	}
	*line = strcmp(mode, "line") == 0;
	return 0;
}

static void
parse_pattern(struct ctx *c, json_t *v, const char *p, struct document *d)
{
	static const char *const keys[] = { "name", "regex", "expect", "mode", NULL };
	struct redact_pattern	*rp = &d->patterns[d->npatterns];
	const char		*name, *regex;
	size_t			 before = c->errs->n;
	int			 expect, line;

	if (!json_is_object(v)) {
		errlist_add(c->errs, "%s: must be {name or regex, expect (optional)}", p);
		return;
	}
	check_keys(c, v, p, keys);
	name = get_str(c, v, p, "name", 0);
	regex = get_str(c, v, p, "regex", 0);
	if (c->errs->n == before && (name == NULL) == (regex == NULL)) {
		errlist_add(c->errs, "%s: give a name or a regex (one of the two)", p);
		return;
	}
	if (c->errs->n > before || check_pattern(c, p, name, regex) == -1 ||
	    parse_expect(c, v, p, &expect) == -1 || parse_mode(c, v, p, &line) == -1)
		return;
	rp->name = name ? xstrdup(name) : NULL;
	rp->regex = regex ? xstrdup(regex) : NULL;
	rp->expect = expect;
	rp->line = line;
	d->npatterns++;
}

/* documents[i].redact; path is "documents[i].redact". */
static void
parse_redact(struct ctx *c, json_t *r, const char *path, struct document *d)
{
	static const char *const keys[] = { "rects", "patterns", NULL };
	json_t	*rects = json_object_get(r, "rects"), *pats, *v;
	char	 p[96];
	size_t	 i;

	check_keys(c, r, path, keys);
	if (rects && !json_is_null(rects))
		parse_rects(c, rects, path, d);
	pats = json_object_get(r, "patterns");
	if (pats == NULL || json_is_null(pats))
		return;
	if (!json_is_array(pats)) {
		errlist_add(c->errs, "%s.patterns: must be a list", path);
		return;
	}
	d->patterns = xcalloc(json_array_size(pats) + 1, sizeof(*d->patterns));
	json_array_foreach(pats, i, v) {
		snprintf(p, sizeof(p), "%s.patterns[%zu]", path, i);
		parse_pattern(c, v, p, d);
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

/* documents[i].file: a plain name in the packet folder, listed once. */
static char *
parse_file(struct ctx *c, json_t *o, const char *path, const struct manifest *m)
{
	const char	*file;

	if ((file = get_str_max(c, o, path, "file", 1, MANIFEST_MAX_FILENAME)) == NULL)
		return NULL;
	if (!valid_filename(file) || strcmp(file, "manifest.json") == 0 ||
	    strcmp(file, "REASON.txt") == 0) {
		errlist_add(c->errs, "%s.file: \"%.100s\" must be a plain file name in "
		    "the packet folder (no '/' or '\\', not starting with '.', not "
		    "manifest.json or REASON.txt)", path, file);
		return NULL;
	}
	for (size_t k = 0; k + 1 < m->ndocs; k++)
		if (m->docs[k].file && strcmp(m->docs[k].file, file) == 0)
			errlist_add(c->errs, "%s.file: \"%.100s\" is listed twice", path,
			    file);
	return xstrdup(file);
}

static void
parse_document(struct ctx *c, json_t *o, size_t i, struct manifest *m)
{
	static const char *const keys[] = { "file", "sha256", "type", "date",
	    "description", "categories", "redact", NULL };
	struct document	*d = &m->docs[m->ndocs++];
	const char	*sha;
	char		 path[32], rpath[48];
	json_t		*r;

	snprintf(path, sizeof(path), "documents[%zu]", i);
	if (!json_is_object(o)) {
		errlist_add(c->errs, "%s: must be an object", path);
		return;
	}
	check_keys(c, o, path, keys);
	d->file = parse_file(c, o, path, m);
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
	d->categories = parse_categories(c, o, path);
	snprintf(rpath, sizeof(rpath), "%s.redact", path);
	if ((r = get_obj(c, o, path, "redact", 0)) != NULL)
		parse_redact(c, r, rpath, d);
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
parse_cover(struct ctx *c, json_t *cs, struct manifest *m)
{
	static const char *const keys[] = { "template", "note", "urgent", NULL };
	json_t	*u = json_object_get(cs, "urgent");

	check_keys(c, cs, "cover_sheet", keys);
	m->cover_template = dup_str(c, cs, "cover_sheet", "template", 0);
	m->cover_note = dup_str(c, cs, "cover_sheet", "note", 0);
	/* "yes" must not read as "not urgent". */
	if (u && !json_is_null(u) && !json_is_boolean(u))
		errlist_add(c->errs, "cover_sheet.urgent: must be true or false "
		    "(without quotes)");
	m->cover_urgent = json_is_true(u);
}

static void
parse_documents(struct ctx *c, json_t *docs, struct manifest *m)
{
	json_t	*v;
	size_t	 i;

	if (docs == NULL || json_is_null(docs)) {
		errlist_add(c->errs, "documents: missing");
		return;
	}
	if (!json_is_array(docs)) {
		errlist_add(c->errs, "documents: must be a list");
		return;
	}
	if (json_array_size(docs) == 0) {
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

static void
parse_top(struct ctx *c, json_t *root, struct manifest *m)
{
	static const char *const keys[] = { "version", "packet_id", "created_at",
	    "patient", "request", "basis", "authorization", "approval", "recipient",
	    "documents", "cover_sheet", NULL };
	static const char *const akeys[] = { "by", "at", NULL };
	json_t	*a, *cs;

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
	/* Approval is checked by policy, so that its absence reads plainly;
	 * a blank approval.by is refused here, as every blank string is. */
	if ((a = get_obj(c, root, "", "approval", 0)) != NULL) {
		check_keys(c, a, "approval", akeys);
		m->approval_by = dup_str(c, a, "approval", "by", 0);
		m->approval_at = dup_time(c, a, "approval", "at", 0);
	}
	m->recipient = dup_str(c, root, "", "recipient", 1);
	if ((cs = get_obj(c, root, "", "cover_sheet", 0)) != NULL)
		parse_cover(c, cs, m);
	parse_documents(c, json_object_get(root, "documents"), m);
}

/* jansson's reasons, in words a clerk can act on: first match wins. */
static const struct {
	enum json_error_code	 code;
	const char		*jansson;	/* part of its text, or NULL: any */
	const char		*words;
} json_words[] = {
	{ json_error_end_of_input_expected, NULL,
	    "has text after the closing brace: remove it" },
	{ json_error_premature_end_of_input, NULL, "ends before its closing brace "
	    "(a '}', ']' or '\"' is missing, or the file was cut short)" },
	{ json_error_null_character, NULL, "contains a NUL character (\\u0000)" },
	{ json_error_invalid_utf8, NULL, "is not UTF-8 text: save it as UTF-8" },
	{ json_error_duplicate_key, NULL,
	    "the same field is given twice in one object: keep one" },
	{ json_error_numeric_overflow, NULL, "a number is too large" },
	{ json_error_stack_overflow, NULL, "is nested too deeply" },
	{ json_error_invalid_syntax, "control character", "a string holds a "
	    "control character (a tab or line break inside quotes?): write \\t "
	    "or \\n, or remove it" },
	{ json_error_invalid_syntax, "unexpected newline", "a string runs over a "
	    "line break: close its quote on the same line, or write \\n" },
	{ json_error_invalid_syntax, "invalid escape", "a backslash starts no "
	    "valid escape (write \\\\ for a backslash)" },
	{ json_error_invalid_syntax, "invalid Unicode", "a \\u escape is not a "
	    "valid character" },
	{ json_error_invalid_syntax, "invalid token", "holds something that is "
	    "not JSON (text needs double quotes; true, false and null are "
	    "lower-case)" },
	{ json_error_invalid_syntax, "':' expected",
	    "a ':' is missing after a field name" },
	{ json_error_invalid_syntax, "string or '}' expected", "a field name in "
	    "double quotes is expected here (a comma too many before '}'?)" },
	{ json_error_invalid_syntax, "'}' expected", "a ',' or '}' is missing" },
	{ json_error_invalid_syntax, "']' expected", "a ',' or ']' is missing" },
};

static const char *
json_reason(const json_error_t *jerr)
{
	for (size_t i = 0; i < sizeof(json_words) / sizeof(json_words[0]); i++)
		if (json_words[i].code == json_error_code(jerr) &&
		    (json_words[i].jansson == NULL ||
		    strstr(jerr->text, json_words[i].jansson) != NULL))
			return json_words[i].words;
	return "is not valid JSON here (check for a missing comma, quote or brace)";
}

/* The length of a UTF-8 byte-order mark at the start (Windows Notepad
 * writes one), or 0. */
static size_t
skip_bom(const char *text, size_t len)
{
	return len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

/* The first byte from off on that is not JSON white space, or len. */
static size_t
skip_space(const char *text, size_t len, size_t off)
{
	while (off < len && strchr(" \t\r\n", text[off]) != NULL && text[off])
		off++;
	return off;
}

/* What a JSON value that is not an object is, from its first byte. */
static const char *
json_kind(char ch)
{
	if (ch == '[')
		return "a list ([...])";
	if (ch == '"')
		return "a string";
	if (ch == '-' || (ch >= '0' && ch <= '9'))
		return "a number";
	if (ch == 't' || ch == 'f')
		return "true or false";
	if (ch == 'n')
		return "null";
	return NULL;
}

/* len without a UTF-8 character cut in half at its end. */
static size_t
utf8_whole(const char *text, size_t len)
{
	size_t		i = len, need;
	unsigned char	ch;

	while (i > 0 && len - i < 3 && ((unsigned char)text[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0 || (ch = (unsigned char)text[i - 1]) < 0xc0)
		return len;
	need = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
	return len - (i - 1) < need ? i - 1 : len;
}

int
manifest_text_complete(const char *text, size_t len)
{
	json_error_t	 jerr;
	json_t		*root;
	size_t		 off;

	/* A copier may size the file first and fill it in afterwards. */
	while (len > 0 && text[len - 1] == '\0')
		len--;
	off = skip_space(text, len, skip_bom(text, len));
	if (off == len)
		return 0;
	if (text[off] != '{' || memchr(text, '\0', len) != NULL)
		return 1;
	len = utf8_whole(text, len);
	root = json_loadb(text + off, len - off, JSON_DISABLE_EOF_CHECK |
	    JSON_ALLOW_NUL, &jerr);
	if (root != NULL) {
		json_decref(root);
		return 1;
	}
	if (json_error_code(&jerr) == json_error_premature_end_of_input)
		return 0;
	/* A word, number or escape cut at the last byte: "tru", "1e", "\u00". */
	return !(json_error_code(&jerr) == json_error_invalid_syntax &&
	    (size_t)jerr.position >= len - off &&
	    (strstr(jerr.text, "invalid token") || strstr(jerr.text, "invalid escape")));
}

/* The manifest's JSON object, or NULL with the reason in words. */
static json_t *
manifest_load(const char *text, size_t len, struct errlist *errs)
{
	const char	*kind, *nul;
	json_error_t	 jerr;
	json_t		*root;
	size_t		 off = skip_bom(text, len), first, line = 1;

	text += off;
	len -= off;
	if ((first = skip_space(text, len, 0)) == len) {
		errlist_add(errs, "manifest.json is empty");
		return NULL;
	}
	if (text[first] != '{') {
		if ((kind = json_kind(text[first])) != NULL)
			errlist_add(errs, "manifest.json must be one JSON object "
			    "({...}), not %s", kind);
		else
			errlist_add(errs, "manifest.json must be one JSON object "
			    "({...}), but it does not start with '{'");
		return NULL;
	}
	/* jansson would take a NUL byte for the end of the text. */
	if ((nul = memchr(text, '\0', len)) != NULL) {
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		errlist_add(errs, "manifest.json, line %zu: contains a NUL character "
		    "(\\u0000)", line);
		return NULL;
	}
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		errlist_add(errs, "manifest.json, line %d, column %d: %s", jerr.line,
		    jerr.column, json_reason(&jerr));
	return root;
}

/* Does text hold three digits, two and four with separators or none
 * between them (an SSN's shape)? */
static int
ssn_shaped(const char *t)
{
	int	run = 0;

	for (; *t; t++) {
		if (isdigit((unsigned char)*t))
			run++;
		else if (!strchr(" -./", *t) && run < 9)
			run = 0;
		if (run == 9)
			return 1;
	}
	return 0;
}

/* text, case folded, holds what (non-empty)? */
static int
holds(const char *text, const char *what)
{
	return what && what[0] && text && strcasestr(text, what) != NULL;
}

/*
 * What the cover sheet prints goes to whoever stands at the fax machine:
 * the patient's name, MRN, date of birth or an SSN never belong there.
 * (The leak gate checks the printed cover too; this says it at intake.)
 */
static void
check_cover_text(const struct manifest *m, struct errlist *errs)
{
	const struct {
		const char *field, *text;
	} f[] = {
		{ "cover_sheet.note", m->cover_note },
		{ "request.purpose", m->purpose },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		const char *why = NULL;

		if (f[i].text == NULL)
			continue;
		if (holds(f[i].text, m->patient_name))
			why = "the patient's name";
		else if (holds(f[i].text, m->patient_mrn))
			why = "the patient's MRN";
		else if (holds(f[i].text, m->patient_dob))
			why = "the patient's date of birth";
		else if (ssn_shaped(f[i].text))
			why = "an SSN-shaped number";
		if (why)
			errlist_add(errs, "%s: it is printed on the cover sheet and "
			    "holds %s, which never belongs there: remove it", f[i].field,
			    why);
	}
}

struct manifest *
manifest_parse(const char *text, size_t len, struct errlist *errs)
{
	struct manifest	*m;
	struct ctx	 c = { errs, NULL };
	json_t		*root, *ver;
	size_t		 before = errs->n;

	if (len > MANIFEST_MAX_SIZE) {
		errlist_add(errs, "manifest.json is larger than %d bytes",
		    MANIFEST_MAX_SIZE);
		return NULL;
	}
	if ((root = manifest_load(text, len, errs)) == NULL)
		return NULL;
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
	if (errs->n == before)
		check_cover_text(m, errs);
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
		free(a->file);
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

int
manifest_consent_doc(const struct manifest *m)
{
	if (m->authorization == NULL || m->authorization->file == NULL)
		return -1;
	for (size_t i = 0; i < m->ndocs; i++)
		if (m->docs[i].file && strcmp(m->docs[i].file,
		    m->authorization->file) == 0)
			return (int)i;
	return -1;
}

size_t
manifest_output_doc(const struct manifest *m, size_t k)
{
	int	c = manifest_consent_doc(m);

	if (c == -1 || k > (size_t)c)
		return k;
	return k == 0 ? (size_t)c : k - 1;
}
