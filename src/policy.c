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

/*
 * 42 CFR 2.32 (2024): a disclosure of Part 2 records made with consent
 * carries the notice (the cover sheet prints it) and a copy of the
 * consent: authorization.file must name the signed consent, a document
 * of this packet; it is sent right after the cover sheet.
 */
static void
check_part2_consent(const struct manifest *m, struct errlist *e)
{
	const struct document	*d = NULL;

	for (size_t i = 0; i < m->ndocs && d == NULL; i++)
		if (m->docs[i].categories & CAT_SUD_PART2)
			d = &m->docs[i];
	if (m->authorization && m->authorization->file &&
	    manifest_consent_doc(m) == -1)
		errlist_add(e, "authorization.file: \"%.100s\" is not one of the "
		    "packet's documents (list the signed consent under documents "
		    "too)", m->authorization->file);
	else if (d && m->authorization && m->authorization->file == NULL)
		errlist_add(e, "document %s carries substance_use_part2 (42 CFR "
		    "Part 2): a copy of the signed consent must go with it; add it "
		    "to the packet and name it in authorization.file", d->file);
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
		/* The signed consent itself travels by rule, not by scope. */
		if (m->authorization && (int)i != manifest_consent_doc(m))
			check_scope(m, d, errs);
		check_categories(m, d, errs);
	}
	check_part2_consent(m, errs);
	check_recipient(m, ctx, errs);
	return errs->n > before ? -1 : 0;
}

int
policy_recipient_text(const char *field, const char *s, int required,
    struct errlist *e)
{
	int	ch;

	if (s == NULL || strspn(s, " \t") == strlen(s)) {
		if (!required && s == NULL)
			return 0;
		errlist_add(e, "%s: must not be empty", field);
		return -1;
	}
	if (strlen(s) > 512) {
		errlist_add(e, "%s: is longer than 512 bytes", field);
		return -1;
	}
	if ((ch = text_control(s)) != -1) {
		errlist_add(e, "%s: contains an invisible control character (U+%04X): "
		    "type it again without it", field, (unsigned)ch);
		return -1;
	}
	return 0;
}

int
policy_recipient_param(const char *field, const char *s, struct errlist *e)
{
	const unsigned char	*p;

	if (strlen(s) > RECIPIENT_PARAM_MAX) {
		errlist_add(e, "%s: is longer than %d bytes", field,
		    RECIPIENT_PARAM_MAX);
		return -1;
	}
	/* A certificate or key given with @FILE has its line breaks. */
	for (p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') ||
		    *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
			errlist_add(e, "%s: contains an invisible control character "
			    "(U+%04X): type it again without it", field,
			    (unsigned)(p[0] == 0xc2 ? p[1] : p[0]));
			return -1;
		}
	return 0;
}

/* sftp://USER@HOST[:PORT]/FOLDER, as transports/sftp.c reads it. */
static int
sftp_address_ok(const char *a)
{
	const char	*at, *slash, *colon, *end;
	size_t		 n;
	long		 port;

	if (strncmp(a, "sftp://", 7) != 0)
		return 0;
	a += 7;
	if ((slash = strchr(a, '/')) == NULL || (at = memchr(a, '@', (size_t)(slash
	    - a))) == NULL || at == a || (size_t)(at - a) >= 128 ||
	    memchr(a, ':', (size_t)(at - a)) != NULL)
		return 0;
	if ((colon = memchr(at + 1, ':', (size_t)(slash - at - 1))) != NULL) {
		port = strtol(colon + 1, (char **)&end, 10);
		if (end != slash || colon[1] == '+' || colon[1] == '-' ||
		    port < 1 || port > 65535)
			return 0;
	} else
		colon = slash;
	if (colon == at + 1 || (size_t)(colon - at - 1) >= 256)
		return 0;
	n = strlen(slash);
	return strcspn(a, " \t") == strlen(a) && n < 1024 &&
	    strstr(slash, "/../") == NULL &&
	    !(n >= 3 && strcmp(slash + n - 3, "/..") == 0);
}

/* name@domain.example: plain ASCII, no spaces, one '@'. */
static int
email_address_ok(const char *a)
{
	const char	*at = strchr(a, '@');
	size_t		 n = strlen(a);

	if (at == NULL || at == a || at - a > 64 || at[1] == '\0' || n > 254 ||
	    strchr(at + 1, '@') != NULL || at[1] == '.' || a[n - 1] == '.')
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>()[],;:\\\"", *p))
			return 0;
	return 1;
}

/* E.164: '+', then 8 to 15 digits, the first not 0; the spaces, dots,
 * dashes and brackets transports/faxapi.c skips may stand between. */
static int
fax_number_ok(const char *a)
{
	size_t	digits = 0;

	if (*a++ != '+' || *a == '0')
		return 0;
	for (; *a; a++)
		if (*a >= '0' && *a <= '9')
			digits++;
		else if (strchr(" .-()", *a) == NULL)
			return 0;
	return digits >= 8 && digits <= 15;
}

int
policy_recipient_address(const char *backend, const char *a, struct errlist *e)
{
	if (policy_recipient_text("address", a, 1, e) == -1)
		return -1;
	if (strcmp(backend, "local") == 0 && !valid_filename(a))
		errlist_add(e, "address: \"%.100s\" must be one plain folder name "
		    "(no '/' or '\\', not starting with '.')", a);
	else if (strcmp(backend, "sftp") == 0 && !sftp_address_ok(a))
		errlist_add(e, "address: \"%.100s\" must look like "
		    "sftp://USER@HOST[:PORT]/FOLDER (no spaces, no '..' folder)", a);
	else if (strcmp(backend, "smime") == 0 && !email_address_ok(a))
		errlist_add(e, "address: \"%.100s\" is not an e-mail address (like "
		    "records@clinic.example)", a);
	else if (strcmp(backend, "faxapi") == 0 && !fax_number_ok(a))
		errlist_add(e, "address: \"%.40s\" is not a fax number in E.164 form "
		    "(+, the country code and the number: 8 to 15 digits, like "
		    "+15550100123)", a);
	else
		return 0;
	return -1;
}

struct policy_magic {
	magic_t	 mime;		/* "application/zip" */
	magic_t	 words;		/* "Zip archive data, at least v2.0 to extract" */
};

static magic_t
policy_magic_load(int flags)
{
	magic_t	cookie;

	if ((cookie = magic_open(flags | MAGIC_ERROR)) == NULL)
		return NULL;
	if (magic_load(cookie, NULL) == -1) {
		magic_close(cookie);
		return NULL;
	}
	return cookie;
}

struct policy_magic *
policy_magic_open(void)
{
	struct policy_magic	*pm = xcalloc(1, sizeof(*pm));

	if ((pm->mime = policy_magic_load(MAGIC_MIME_TYPE)) == NULL ||
	    (pm->words = policy_magic_load(MAGIC_NONE)) == NULL) {
		policy_magic_close(pm);
		return NULL;
	}
	return pm;
}

void
policy_magic_close(struct policy_magic *pm)
{
	if (pm == NULL)
		return;
	if (pm->mime)
		magic_close(pm->mime);
	if (pm->words)
		magic_close(pm->words);
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

/* What a clerk would call a file libmagic names by a MIME type (a type
 * that starts with mime: the Office formats have long families). */
static const struct {
	const char	*mime;
	const char	*words;
} mime_words[] = {
	{ "application/x-empty", "it is empty" },
	{ "inode/x-empty", "it is empty" },
	{ "application/zip", "it looks like a ZIP archive" },
	{ "application/gzip", "it looks like a gzip archive" },
	{ "application/x-gzip", "it looks like a gzip archive" },
	{ "application/x-bzip2", "it looks like a bzip2 archive" },
	{ "application/x-xz", "it looks like an xz archive" },
	{ "application/x-tar", "it looks like a tar archive" },
	{ "application/x-7z-compressed", "it looks like a 7-Zip archive" },
	{ "application/x-rar", "it looks like a RAR archive" },
	{ "application/vnd.rar", "it looks like a RAR archive" },
	{ "application/x-executable", "it looks like a program" },
	{ "application/x-pie-executable", "it looks like a program" },
	{ "application/x-sharedlib", "it looks like a program library" },
	{ "application/x-object", "it looks like a program library" },
	{ "application/x-dosexec", "it looks like a Windows program" },
	{ "application/x-mach-binary", "it looks like a program" },
	{ "text/html", "it looks like a web page (HTML)" },
	{ "text/xml", "it looks like an XML file" },
	{ "application/xml", "it looks like an XML file" },
	{ "text/rtf", "it looks like an RTF document" },
	{ "application/rtf", "it looks like an RTF document" },
	{ "application/msword", "it looks like a Word document" },
	{ "application/vnd.openxmlformats-officedocument.wordprocessingml",
	    "it looks like a Word document" },
	{ "application/vnd.ms-excel", "it looks like an Excel spreadsheet" },
	{ "application/vnd.openxmlformats-officedocument.spreadsheetml",
	    "it looks like an Excel spreadsheet" },
	{ "application/vnd.ms-powerpoint", "it looks like a PowerPoint file" },
	{ "application/vnd.openxmlformats-officedocument.presentationml",
	    "it looks like a PowerPoint file" },
	{ "application/vnd.oasis.opendocument",
	    "it looks like an OpenDocument (LibreOffice) file" },
	{ "application/CDFV2", "it looks like an old Microsoft Office document" },
	{ "application/x-ole-storage",
	    "it looks like an old Microsoft Office document" },
	{ "application/vnd.ms-outlook", "it looks like an Outlook message" },
	{ "message/rfc822", "it looks like an e-mail message" },
	{ "application/postscript", "it looks like a PostScript file" },
	{ "image/gif", "it looks like a GIF image" },
	{ "image/bmp", "it looks like a BMP image" },
	{ "image/x-ms-bmp", "it looks like a BMP image" },
	{ "image/webp", "it looks like a WebP image" },
	{ "image/heic", "it looks like an HEIC photo (from a phone)" },
	{ "image/svg+xml", "it looks like an SVG drawing" },
	{ "text/x-shellscript", "it looks like a script (a program's text)" },
	{ "text/x-script", "it looks like a script (a program's text)" },
};

/*
 * "it looks like a ZIP archive": the type in words, for a clerk who has
 * never seen a MIME type; else libmagic's own description, which is words
 * already ("Zip archive data, ..."), bounded.
 */
static void
type_words(struct policy_magic *pm, const char *type, const void *buf,
    size_t len, char *out, size_t outlen)
{
	const char	*d;

	for (size_t i = 0; i < sizeof(mime_words) / sizeof(mime_words[0]); i++)
		if (strncmp(type, mime_words[i].mime, strlen(mime_words[i].mime)) == 0) {
			snprintf(out, outlen, "%s", mime_words[i].words);
			return;
		}
	if (strstr(type, "script") != NULL) {
		snprintf(out, outlen, "it looks like a script (a program's text)");
		return;
	}
	d = magic_buffer(pm->words, buf, len);
	if (d == NULL || strcmp(d, "data") == 0)
		snprintf(out, outlen, "its content is not a kind of file the gateway "
		    "recognizes");
	else
		snprintf(out, outlen, "it looks like %.80s", d);
}

int
policy_check_type(struct policy_magic *pm, const char *name, const void *buf,
    size_t len, const char **mime, struct errlist *errs)
{
	const char	*type, *dot = strrchr(name, '.');
	char		 words[128];
	size_t		 i, k;

	type = len ? magic_buffer(pm->mime, buf, len) : "application/x-empty";
	if (type == NULL)
		type = "application/octet-stream";
	/* Text that looks like code, CSV or a log is still plain text. */
	if (strncmp(type, "text/", 5) == 0 && strcmp(type, "text/html") &&
	    strcmp(type, "text/xml") && strcmp(type, "text/rtf") &&
	    strstr(type, "script") == NULL)
		type = "text/plain";
	for (i = 0; i < NALLOWED; i++)
		if (strcmp(type, allowed[i].mime) == 0)
			break;
	if (i == NALLOWED) {
		type_words(pm, type, buf, len, words, sizeof(words));
		errlist_add(errs, "document %s: is not a PDF, TIFF, PNG, JPEG or text "
		    "file: %s", name, words);
		return -1;
	}
	for (k = 0; k < 3 && allowed[i].exts[k]; k++)
		if (dot && strcasecmp(dot, allowed[i].exts[k]) == 0) {
			*mime = allowed[i].mime;
			return 0;
		}
	errlist_add(errs, "document %s: content is %s, but the name ends in %s "
	    "(rename it to end in %s)", name, allowed[i].label,
	    dot ? dot : "no extension", allowed[i].exts[0]);
	return -1;
}
