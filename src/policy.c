/*
 * Release policy (daemon at intake, worker again before sending): may
 * this packet leave?  Approval, legal basis and authorization (45 CFR
 * 164.508), minimum necessary (every document inside the authorized
 * scope), special categories named specifically, a verified recipient,
 * and an allowed document type.  Each refusal names the field and the
 * rule in words.  The rules are written out in docs/manifest.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <magic.h>

#include "manifest.h"
#include "policy.h"
#include "store.h"
#include "util.h"

static void
check_approval(const struct manifest *m, const struct policy_ctx *ctx,
    struct errlist *e)
{
	int64_t	t;

	if (m->approval_by == NULL || m->approval_at == NULL) {
		errlist_add(e, "the packet has no approval (approval.by and "
		    "approval.at): the gateway sends approved packets only");
		return;
	}
	if (datetime_parse(m->approval_at, &t) == 0 && t / 86400 > ctx->today)
		errlist_add(e, "approval.at: %s is in the future", m->approval_at);
	if (m->authorization && m->authorization->signed_on &&
	    datetime_parse(m->approval_at, &t) == 0 &&
	    t / 86400 < m->authorization->signed_days)
		errlist_add(e, "approval.at: the packet was approved (%.10s) before "
		    "authorization %s was signed (%s)", m->approval_at,
		    m->authorization->id ? m->authorization->id : "",
		    m->authorization->signed_on);
}

static void
check_authorization(const struct authorization *a, const struct policy_ctx *ctx,
    struct errlist *e)
{
	const char	*id = a->id ? a->id : "(no id)";

	if (a->signed_by == NULL || a->signed_on == NULL)
		errlist_add(e, "authorization %s is not signed (signed_by and "
		    "signed_on are required)", id);
	else if (a->signed_days > ctx->today)
		errlist_add(e, "authorization %s: signed_on %s is in the future", id,
		    a->signed_on);
	if (a->effective_on && a->effective_days > ctx->today)
		errlist_add(e, "authorization %s is not valid yet (effective on %s)",
		    id, a->effective_on);
	if (a->expires_on && a->expires_days < ctx->today)
		errlist_add(e, "authorization %s expired on %s", id, a->expires_on);
}

static void
scope_list(const struct authorization *a, char *buf, size_t len)
{
	size_t	off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->nscope_types && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
		    a->scope_types[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Minimum necessary: each document inside the authorization's scope. */
static void
check_scope(const struct manifest *m, const struct document *d,
    struct errlist *e)
{
	const struct authorization	*a = m->authorization;
	char				 list[256];
	size_t				 i;

	for (i = 0; i < a->nscope_types; i++)
		if (d->type && strcmp(a->scope_types[i], d->type) == 0)
			break;
	if (i == a->nscope_types) {
		scope_list(a, list, sizeof(list));
		errlist_add(e, "document %s: type \"%s\" is not covered by "
		    "authorization %s (covers: %s)", d->file, d->type ? d->type : "?",
		    a->id ? a->id : "", list);
	}
	if (a->scope_from && d->date && d->date_days < a->scope_from_days)
		errlist_add(e, "document %s: dated %s, before the authorized period "
		    "(from %s)", d->file, d->date, a->scope_from);
	if (a->scope_to && d->date && d->date_days > a->scope_to_days)
		errlist_add(e, "document %s: dated %s, after the authorized period "
		    "(to %s)", d->file, d->date, a->scope_to);
}

/*
 * Special categories.  With an authorization, every category a document
 * carries must be named in its scope.  Without one, psychotherapy notes
 * and Part 2 records are never released (they need specific written
 * consent); the other categories may go to the patient themselves
 * (patient_access) but are refused on every other basis, because state
 * law commonly restricts them: send those with an authorization.
 */
static void
check_categories(const struct manifest *m, const struct document *d,
    struct errlist *e)
{
	for (unsigned bit = 1; bit <= CAT_MENTAL_HEALTH; bit <<= 1) {
		if (!(d->categories & bit))
			continue;
		if (m->authorization) {
			if (!(m->authorization->scope_categories & bit))
				errlist_add(e, "document %s carries %s, which authorization "
				    "%s does not name", d->file, category_name(bit),
				    m->authorization->id ? m->authorization->id : "");
			continue;
		}
		if (bit == CAT_PSYCHOTHERAPY || bit == CAT_SUD_PART2 ||
		    m->basis != BASIS_PATIENT_ACCESS)
			errlist_add(e, "document %s carries %s, which needs an "
			    "authorization naming it (basis is %s)", d->file,
			    category_name(bit), basis_name(m->basis));
	}
}

static void
check_recipient(const struct manifest *m, const struct policy_ctx *ctx,
    struct errlist *e)
{
	const struct recipient	*r = ctx->recipient;

	if (r == NULL)
		errlist_add(e, "recipient \"%.64s\" is not in the verified recipient "
		    "directory", m->recipient ? m->recipient : "");
	else if (r->disabled)
		errlist_add(e, "recipient \"%.64s\" is disabled in the directory",
		    r->id);
	else if (!r->verified)
		errlist_add(e, "recipient \"%.64s\" has not been verified yet (an "
		    "administrator must confirm the destination first)", r->id);
}

int
policy_check(const struct manifest *m, const struct policy_ctx *ctx,
    struct errlist *errs)
{
	size_t	before = errs->n;
	int	needs_auth = basis_needs_authorization(m->basis);

	check_approval(m, ctx, errs);
	for (size_t i = 0; i < m->ndocs && !needs_auth; i++)
		if (m->docs[i].categories & CAT_PSYCHOTHERAPY)
			needs_auth = 1;
	if (needs_auth && m->authorization == NULL)
		errlist_add(errs, "authorization: missing; basis %s%s needs a signed "
		    "authorization", basis_name(m->basis), m->basis ==
		    BASIS_AUTHORIZATION ? "" : " with psychotherapy notes");
	if (m->authorization)
		check_authorization(m->authorization, ctx, errs);
	for (size_t i = 0; i < m->ndocs; i++) {
		const struct document *d = &m->docs[i];
		if (d->date && d->date_days > ctx->today)
			errlist_add(errs, "document %s: dated %s, in the future", d->file,
			    d->date);
		if (m->authorization)
			check_scope(m, d, errs);
		check_categories(m, d, errs);
	}
	check_recipient(m, ctx, errs);
	return errs->n > before ? -1 : 0;
}

struct policy_magic {
	magic_t	 cookie;
};

struct policy_magic *
policy_magic_open(void)
{
	struct policy_magic	*pm = xcalloc(1, sizeof(*pm));

	if ((pm->cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR)) == NULL ||
	    magic_load(pm->cookie, NULL) == -1) {
		if (pm->cookie)
			magic_close(pm->cookie);
		free(pm);
		return NULL;
	}
	return pm;
}

void
policy_magic_close(struct policy_magic *pm)
{
	if (pm == NULL)
		return;
	magic_close(pm->cookie);
	free(pm);
}

static const struct {
	const char	*mime;
	const char	*exts[3];
	const char	*label;
} allowed[] = {
	{ "application/pdf", { ".pdf" }, "PDF" },
	{ "image/tiff", { ".tif", ".tiff" }, "TIFF" },
	{ "image/png", { ".png" }, "PNG" },
	{ "image/jpeg", { ".jpg", ".jpeg" }, "JPEG" },
	{ "text/plain", { ".txt" }, "plain text" },
};
#define NALLOWED	(sizeof(allowed) / sizeof(allowed[0]))

int
policy_check_type(struct policy_magic *pm, const char *name, const void *buf,
    size_t len, const char **mime, struct errlist *errs)
{
	const char	*type, *dot = strrchr(name, '.');
	size_t		 i, k;

	type = len ? magic_buffer(pm->cookie, buf, len) : "application/x-empty";
	if (type == NULL)
		type = "application/octet-stream";
	/* Text that looks like code, CSV or a log is still plain text. */
	if (strncmp(type, "text/", 5) == 0 && strcmp(type, "text/html") &&
	    strcmp(type, "text/xml") && strstr(type, "script") == NULL)
		type = "text/plain";
	for (i = 0; i < NALLOWED; i++)
		if (strcmp(type, allowed[i].mime) == 0)
			break;
	if (i == NALLOWED) {
		errlist_add(errs, "document %s: type %s is not allowed (allowed: PDF, "
		    "TIFF, PNG, JPEG, plain text)", name, type);
		return -1;
	}
	for (k = 0; k < 3 && allowed[i].exts[k]; k++)
		if (dot && strcasecmp(dot, allowed[i].exts[k]) == 0) {
			*mime = allowed[i].mime;
			return 0;
		}
	errlist_add(errs, "document %s: content is %s (%s), but the name ends in "
	    "%s", name, allowed[i].label, type, dot ? dot : "no extension");
	return -1;
}
