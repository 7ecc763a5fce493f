/*
 * The "faxapi" transport: sends a packet through a cloud fax service over
 * HTTPS with libcurl, and confirms delivery asynchronously (poll).
 *
 * The provider's wire format is a profile: a table of paths, field names
 * and status words (below; Phaxio v2.1 is the first).  The transport logic
 * (numbers, idempotency, error classes, receipts) does not change with the
 * provider.
 *
 * The recipient's directory entry holds the fax number (its address),
 * normalized to E.164 when it is used: nothing else can ever be dialled.
 *
 * Each fax carries two tags: tag[roigate] = INSTANCE-JOB-ATTEMPT names
 * this send, and tag[roigate_job] = INSTANCE-JOB is what a retry looks
 * faxes up by (the provider filters on exact values).  INSTANCE is the
 * gateway database's random id, so gateways (or a database made anew)
 * sharing one fax account never see each other's jobs.  Before each send
 * the transport lists the faxes with its job's tag made since the job was
 * accepted, every page of them; one counts as "already sent" only if its
 * tags, its single destination (the number we would dial now) and its
 * creation time (after the job was accepted) all match and it has not
 * failed.  Anything else the list holds is logged (fax and job ids only)
 * and ignored: a fax that is not provably ours never stands for a delivery.
 *
 * Phaxio v2.1 as its documentation and its client libraries' recorded
 * traffic show it: every answer is {"success", "message", "data"}, and a
 * 2xx answer without "success": true is an error, never a result.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include <roigate/transport.h>

#include "log.h"
#include "util.h"

/* How far apart our clock and the provider's may be (a fax made a little
 * "before" the job was accepted by its clock is still this job's). */
#define FAX_CLOCK_SKEW	120
/* Pages of a lookup read at most (each up to the provider's per_page). */
#define FAX_LIST_PAGES	50
/* Characters of the request reference the fax header always keeps. */
#define HEADER_REF	20

/* What a provider's API looks like. */
struct fax_status_word {
	const char	*word;
	enum { FX_PENDING, FX_DELIVERED, FX_FAILED, FX_PARTIAL } kind;
};

/* What a failed fax's error says about dialling again. */
enum fax_error_kind {
	FE_REDIAL,	/* the line or the call: dial again later */
	FE_NUMBER,	/* the number itself (not in service, changed, refuses) */
	FE_DOCUMENT,	/* the provider could not convert our document */
	FE_ACCOUNT,	/* the account cannot send (funds): every fax job */
	FE_CANCELLED,	/* someone cancelled it at the provider */
};

/* An error type and code (-1: every code of the type), or failing those,
 * words in its message (type NULL). */
struct fax_error_class {
	const char		*type;
	long			 code;
	const char		*words;
	enum fax_error_kind	 kind;
};

struct fax_profile {
	const char			*name;
	const char			*send_path;	/* POST, multipart */
	const char			*status_path;	/* GET, {} = fax id */
	const char			*list_path;	/* GET, with the query below */
	const char			*q_tag, *q_after, *q_per_page, *q_page;
	long				 per_page;	/* asked for; the answer says */
	const char			*f_to, *f_file, *f_files, *f_header, *f_caller_id;
	const char			*f_tag_send;	/* INSTANCE-JOB-ATTEMPT */
	const char			*f_tag_job;	/* INSTANCE-JOB, looked up by */
	size_t				 header_max;	/* characters */
	/* JSON paths in the responses (dotted; "data.id"). */
	const char			*r_success, *r_message;
	const char			*r_id, *r_status, *r_pages, *r_completed;
	const char			*r_created, *r_direction, *r_sent;
	const char			*r_tag_send, *r_tag_job, *r_recipients;
	const char			*r_rcpt_number, *r_rcpt_status;
	const char			*r_rcpt_etype, *r_rcpt_ecode, *r_rcpt_emsg;
	const char			*r_list, *r_error_type, *r_error_code, *r_error_msg;
	const char			*r_csid;	/* NULL: the provider gives none */
	const char			*r_total, *r_page_size;
	const struct fax_status_word	*words;
	const struct fax_error_class	*errors;
};

/* https://www.phaxio.com/docs/statuses */
static const struct fax_status_word phaxio_words[] = {
	{ "queued", FX_PENDING }, { "pendingbatch", FX_PENDING },
	{ "inprogress", FX_PENDING }, { "success", FX_DELIVERED },
	{ "failure", FX_FAILED }, { "partialsuccess", FX_PARTIAL },
	{ NULL, FX_PENDING },
};

/*
 * https://www.phaxio.com/docs/errorMessages: five error types.  A line
 * error is mostly the call (busy, no answer, dropped: dial again), but
 * some say the number cannot take a fax at all, and those fail at once
 * instead of being re-dialled for days.  The words catch the same causes
 * under codes the list does not name.
 */
static const struct fax_error_class phaxio_errors[] = {
	{ "lineError", 34, NULL, FE_NUMBER },	/* Phone number not operational */
	{ "lineError", 49, NULL, FE_NUMBER },	/* ... Number Is Not Operational */
	{ "lineError", 50, NULL, FE_NUMBER },	/* Call rejected */
	{ "lineError", 73, NULL, FE_NUMBER },	/* Number changed */
	{ "lineError", 115, NULL, FE_NUMBER },	/* The phone number has been changed */
	{ "faxError", 75, NULL, FE_CANCELLED },	/* Manually canceled by user */
	{ "generalError", 5, NULL, FE_ACCOUNT },	/* Insufficient funds ... */
	{ "generalError", 86, NULL, FE_ACCOUNT },
	{ "generalError", 105, NULL, FE_ACCOUNT },
	{ "generalError", 125, NULL, FE_ACCOUNT },
	{ "documentConversionError", -1, NULL, FE_DOCUMENT },
	{ NULL, 0, "not operational", FE_NUMBER },
	{ NULL, 0, "number changed", FE_NUMBER },
	{ NULL, 0, "has been changed", FE_NUMBER },
	{ NULL, 0, "call rejected", FE_NUMBER },
	{ NULL, 0, "insufficient funds", FE_ACCOUNT },
	{ NULL, 0, NULL, FE_REDIAL },
};

static const struct fax_profile profiles[] = {
	{
		/* https://www.phaxio.com/docs/api/v2.1/, and the traffic
		 * phaxio-ruby recorded (spec/support/cassettes/fax/). */
		.name = "phaxio",
		.send_path = "/faxes",
		.status_path = "/faxes/{}",
		.list_path = "/faxes",
		.q_tag = "tag[roigate_job]", .q_after = "created_after",
		.q_per_page = "per_page", .q_page = "page",
		.per_page = 1000,		/* the documented maximum */
		.f_to = "to", .f_file = "file", .f_files = "file[]",
		.f_header = "header_text", .f_caller_id = "caller_id",
		.f_tag_send = "tag[roigate]", .f_tag_job = "tag[roigate_job]",
		.header_max = 50,
		.r_success = "success", .r_message = "message",
		.r_id = "data.id", .r_status = "data.status",
		.r_pages = "data.num_pages", .r_completed = "data.completed_at",
		.r_created = "data.created_at", .r_direction = "data.direction",
		.r_sent = "sent",
		.r_tag_send = "data.tags.roigate", .r_tag_job = "data.tags.roigate_job",
		.r_recipients = "data.recipients",
		.r_rcpt_number = "data.recipients.0.phone_number",
		.r_rcpt_status = "data.recipients.0.status",
		.r_rcpt_etype = "data.recipients.0.error_type",
		.r_rcpt_ecode = "data.recipients.0.error_id",
		.r_rcpt_emsg = "data.recipients.0.error_message",
		.r_list = "data", .r_error_type = "data.error_type",
		.r_error_code = "data.error_id", .r_error_msg = "data.error_message",
		.r_csid = NULL,		/* recipients[] carry no CSID */
		.r_total = "paging.total", .r_page_size = "paging.per_page",
		.words = phaxio_words,
		.errors = phaxio_errors,
	},
};

struct fax_state {
	const struct fax_profile *p;
	char		*base_url;
	char		*ca_file;
	char		*credentials;	/* file: KEY:SECRET, mode 0600 */
	char		*organization;
	char		*caller_id;
	long		 timeout;
	long		 wait_busy, wait_no_answer, wait_line;	/* seconds */
	char		 user[256], secret[256];
	CURL		*curl;		/* the worker's, made at first use */
};

static void *
fax_create(void)
{
	struct fax_state	*st = calloc(1, sizeof(*st));

	if (st) {
		st->p = &profiles[0];
		st->timeout = 60;
		st->wait_busy = 180;		/* HylaFAX-like: busy 3 minutes */
		st->wait_no_answer = 300;	/* no answer 5 minutes */
		st->wait_line = 600;
	}
	return st;
}

static int
set_str(char **dst, const char *v)
{
	free(*dst);
	return (*dst = strdup(v)) ? 0 : -1;
}

static int
fax_config(void *p, const char *key, const char *value, char *err, size_t errlen)
{
	struct fax_state	*st = p;
	long			*num = NULL, v;
	char			*end;

	if (strcmp(key, "profile") == 0) {
		for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
			if (strcmp(profiles[i].name, value) == 0) {
				st->p = &profiles[i];
				return 0;
			}
		snprintf(err, errlen, "profile: \"%.40s\" is not a known provider "
		    "(phaxio)", value);
		return -1;
	}
	if (strcmp(key, "base_url") == 0) {
		if (strncmp(value, "https://", 8) != 0) {
			snprintf(err, errlen, "base_url: \"%.100s\" must be https://...",
			    value);
			return -1;
		}
		return set_str(&st->base_url, value);
	}
	if (strcmp(key, "ca_file") == 0 || strcmp(key, "credentials") == 0) {
		if (value[0] != '/') {
			snprintf(err, errlen, "%s: \"%.100s\" must be an absolute path",
			    key, value);
			return -1;
		}
		return set_str(key[0] == 'c' && key[1] == 'a' ? &st->ca_file :
		    &st->credentials, value);
	}
	if (strcmp(key, "organization") == 0)
		return set_str(&st->organization, value);
	if (strcmp(key, "caller_id") == 0)
		return set_str(&st->caller_id, value);
	if (strcmp(key, "timeout") == 0)
		num = &st->timeout;
	else if (strcmp(key, "wait_busy") == 0)
		num = &st->wait_busy;
	else if (strcmp(key, "wait_no_answer") == 0)
		num = &st->wait_no_answer;
	else if (strcmp(key, "wait_line_error") == 0)
		num = &st->wait_line;
	if (num) {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || *value == '\0' || *end != '\0' || v < 1 || v > 86400) {
			snprintf(err, errlen, "%s: \"%.40s\" must be 1 to 86400 seconds",
			    key, value);
			return -1;
		}
		*num = v;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%.100s\" for the faxapi transport (keys: "
	    "profile, base_url, ca_file, credentials, organization, caller_id, "
	    "timeout, wait_busy, wait_no_answer, wait_line_error)", key);
	return -1;
}

static int
load_credentials(struct fax_state *st, char *err, size_t errlen)
{
	return read_secret_pair("credentials", st->credentials, st->user,
	    sizeof(st->user), st->secret, sizeof(st->secret), err, errlen);
}

/* Characters (UTF-8 code points) of a string. */
static size_t
utf8_chars(const char *s)
{
	size_t	n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Append at most max characters of s to out (of len, at *o), whole code
 * points only, control characters as spaces. */
static void
utf8_put(char *out, size_t len, size_t *o, const char *s, size_t max)
{
	size_t	n = 0, cl;

	while (*s && n < max) {
		unsigned char c = (unsigned char)*s;
		cl = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (strnlen(s, cl) < cl || *o + cl >= len)
			break;
		if (c < 0x20 || c == 0x7f)
			out[(*o)++] = ' ';
		else {
			memcpy(out + *o, s, cl);
			*o += cl;
		}
		s += cl;
		n++;
	}
	out[*o] = '\0';
}

/*
 * The fax header: the organization and the request reference, never the
 * patient, in at most max characters (Phaxio: 50).  The reference keeps
 * at least HEADER_REF characters; the organization is cut first.
 */
static void
header_fit(char *out, size_t len, size_t max, const char *org, const char *ref)
{
	size_t	orgc = utf8_chars(org), refc = utf8_chars(ref), o = 0;

	if (orgc + 1 + refc > max) {
		size_t room = max - 1 > orgc ? max - 1 - orgc : 0;
		refc = refc < (room > HEADER_REF ? room : HEADER_REF) ? refc :
		    (room > HEADER_REF ? room : HEADER_REF);
		orgc = max - 1 - refc < orgc ? max - 1 - refc : orgc;
	}
	out[0] = '\0';
	utf8_put(out, len, &o, org, orgc);
	if (refc && o + 1 < len) {
		out[o++] = ' ';
		utf8_put(out, len, &o, ref, refc);
	}
}

static int
fax_check(void *p, char *err, size_t errlen)
{
	struct fax_state	*st = p;

	if (st->base_url == NULL || st->credentials == NULL ||
	    st->organization == NULL) {
		snprintf(err, errlen, "the faxapi transport needs base_url, credentials "
		    "and organization");
		return -1;
	}
	if (st->ca_file && access(st->ca_file, R_OK) == -1) {
		snprintf(err, errlen, "ca_file %s: %s", st->ca_file, strerror(errno));
		return -1;
	}
	if (load_credentials(st, err, errlen) == -1)
		return -1;
	explicit_bzero(st->secret, sizeof(st->secret));
	/* Said at start-up and by roigated -n: the header is cut to fit. */
	if (utf8_chars(st->organization) > st->p->header_max - 1 - HEADER_REF) {
		log_warnx("[transport faxapi]: organization \"%.100s\" is %zu "
		    "characters; %s's fax header holds %zu, so with the request "
		    "reference only its first %zu are sent; a shorter name fits "
		    "whole", st->organization, utf8_chars(st->organization),
		    st->p->name, st->p->header_max,
		    st->p->header_max - 1 - HEADER_REF);
	}
	return 0;
}

static int
fax_init(void *p, char *err, size_t errlen)
{
	struct fax_state	*st = p;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl could not be initialised");
		return -1;
	}
	return load_credentials(st, err, errlen);
}

/*
 * E.164: "+" and 8 to 15 digits.  Spaces, dots, dashes and parentheses
 * that people write in numbers are dropped; anything else is refused.
 */
static int
e164(const char *in, char *out, size_t len)
{
	size_t	o = 0, digits = 0;

	while (isspace((unsigned char)*in))
		in++;
	if (*in++ != '+')
		return -1;
	out[o++] = '+';
	for (; *in; in++) {
		if (isdigit((unsigned char)*in)) {
			if (o + 1 >= len)
				return -1;
			out[o++] = *in;
			digits++;
		} else if (!strchr(" .-()", *in))
			return -1;
	}
	out[o] = '\0';
	return digits >= 8 && digits <= 15 && out[1] != '0' ? 0 : -1;
}

/* base_url + path with "{}" replaced by value (letters, digits, '-', '_'
 * only: an id from the provider never reshapes the URL).  0 / -1. */
static int
api_url(struct fax_state *st, const char *path, const char *value, char *out,
    size_t len)
{
	const char	*hole = strstr(path, "{}");

	for (const char *v = value; v && *v; v++)
		if (!isalnum((unsigned char)*v) && *v != '-' && *v != '_')
			return -1;
	if (hole == NULL)
		return bsnprintf(out, len, "%s%s", st->base_url, path);
	return bsnprintf(out, len, "%s%.*s%s%s", st->base_url, (int)(hole - path),
	    path, value, hole + 2);
}

/* A response body and its headers. */
struct http {
	struct buf	 body;
	long		 code;
	long		 retry_after;
	char		 curlerr[CURL_ERROR_SIZE];
	CURLcode	 rc;
};

static size_t
write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http	*h = arg;

	if (h->body.len + size * n > 1024 * 1024)
		return 0;	/* a status answer is never this big */
	buf_add(&h->body, data, size * n);
	return size * n;
}

static size_t
header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http	*h = arg;
	size_t		 len = size * n;

	if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
		h->retry_after = strtol(data + 12, NULL, 10);
	return len;
}

/* The instance's handle, reset for a new request: its connection (and TLS
 * session) stays open between the requests of one worker, so that a
 * worker polling a batch of faxes connects once. */
static CURL *
fax_curl(struct fax_state *st, const char *url, struct http *h)
{
	CURL	*c = st->curl;

	if (c == NULL && (c = st->curl = curl_easy_init()) == NULL)
		return NULL;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);	/* always */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (st->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, st->ca_file);
	curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(c, CURLOPT_USERNAME, st->user);
	curl_easy_setopt(c, CURLOPT_PASSWORD, st->secret);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, st->timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, st->timeout < 30 ? st->timeout : 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curlerr);
	return c;
}

static void
http_run(CURL *c, struct http *h)
{
	h->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->code);
}

/* A value at a dotted path ("data.recipients.0.csid"). */
static json_t *
jpath(json_t *j, const char *path)
{
	char	buf[128], *tok, *save = NULL;

	if (path == NULL)
		return NULL;
	strlcpy_(buf, path, sizeof(buf));
	for (tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save))
		j = json_is_array(j) ? json_array_get(j, strtoul(tok, NULL, 10)) :
		    json_object_get(j, tok);
	return j;
}

/* A scalar at a path as text ("" when absent). */
static const char *
jtext(json_t *j, const char *path, char *buf, size_t len)
{
	json_t	*v = jpath(j, path);

	buf[0] = '\0';
	if (json_is_string(v))
		strlcpy_(buf, json_string_value(v), len);
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	return buf;
}

static enum transport_status
fail(struct transport_receipt *r, enum transport_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum transport_status
fail(struct transport_receipt *r, enum transport_status s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	if (r->status[0] == '\0')
		strlcpy_(r->status, s == TRANSPORT_PERMFAIL ? "refused" : "error",
		    sizeof(r->status));
	return s;
}

/*
 * What an HTTP answer that is not a success means.  0 when it is one
 * (2xx with JSON), else the status with the receipt filled.
 */
static int
http_problem(struct fax_state *st, struct http *h, json_t **j,
    struct transport_receipt *r, enum transport_status *out)
{
	char	msg[300];

	*j = NULL;
	if (h->rc != CURLE_OK) {
		*out = fail(r, TRANSPORT_TEMPFAIL, "%s: %s", st->base_url,
		    h->curlerr[0] ? h->curlerr : curl_easy_strerror(h->rc));
		return 1;
	}
	*j = json_loadb(h->body.data ? h->body.data : "", h->body.len, 0, NULL);
	jtext(*j, st->p->r_message, msg, sizeof(msg));
	if (h->code == 401 || h->code == 403) {
		*out = fail(r, TRANSPORT_PERMFAIL, "the fax service refused our "
		    "credentials (HTTP %ld: %s); fix %s and release the held fax jobs",
		    h->code, msg[0] ? msg : "no message", st->credentials);
		r->hold = TRANSPORT_HOLD_ALL;	/* they fail for every fax job */
		return 1;
	}
	if (h->code == 429 || h->code >= 500) {
		*out = fail(r, TRANSPORT_TEMPFAIL, "the fax service is %s (HTTP %ld: %s)",
		    h->code == 429 ? "rate limiting us" : "failing", h->code,
		    msg[0] ? msg : "no message");
		r->retry_after = (int32_t)(h->retry_after > 0 ? h->retry_after : 0);
		return 1;
	}
	if (h->code < 200 || h->code >= 300) {
		*out = fail(r, TRANSPORT_PERMFAIL, "the fax service refused the request "
		    "(HTTP %ld: %s)", h->code, msg[0] ? msg : "no message");
		return 1;
	}
	if (*j == NULL) {
		*out = fail(r, TRANSPORT_TEMPFAIL, "the fax service answered something "
		    "that is not JSON (HTTP %ld)", h->code);
		return 1;
	}
	/* A 2xx that does not say "success": true is no answer at all. */
	if (st->p->r_success && !json_is_true(jpath(*j, st->p->r_success))) {
		*out = fail(r, TRANSPORT_TEMPFAIL, "the fax service answered HTTP %ld "
		    "without success (%s)", h->code, msg[0] ? msg : "no message");
		return 1;
	}
	return 0;
}

/* Unix time of an RFC 3339 timestamp ("2021-11-04T16:28:30.000-05:00",
 * "...Z"); 0 / -1. */
static int
rfc3339_parse(const char *s, int64_t *out)
{
	struct tm	 tm;
	int		 n = 0, oh = 0, om = 0;
	long		 off = 0;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return -1;
	s += n;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2 &&
	    strlen(s) == 6)
		off = (*s == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
	else if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = (int64_t)t - off;
	return 0;
}

/* An RFC 3339 UTC time, URL-encoded for a query ("...T00%3A17%3A00%2B00%3A00"). */
static void
rfc3339_query(int64_t t, char *out, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H%%3A%M%%3A%S%%2B00%%3A00", &tm);
}

/* The tag a lookup filters on, INSTANCE-JOB; -1 without a usable instance. */
static int
job_tag(const struct transport_message *m, char *out, size_t len)
{
	const char	*v = m->instance;

	if (v == NULL || *v == '\0' || strlen(v) > 32)
		return -1;
	for (; *v; v++)
		if (!isxdigit((unsigned char)*v))
			return -1;
	return bsnprintf(out, len, "%s-%llu", m->instance,
	    (unsigned long long)m->job_id) == -1 ? -1 : 0;
}

/*
 * Is this listed fax one an earlier attempt of this job sent, and has it
 * not failed?  1 if so.  0 if it failed, or if anything about it (tags,
 * destination, creation time) does not match: then it is logged, by fax
 * and job id only, and never stands for this job's send.
 */
static int
fax_ours(struct fax_state *st, const struct transport_message *m,
    const char *tag, const char *number, json_t *fax, char *id, size_t idlen)
{
	const struct fax_profile	*p = st->p;
	const struct fax_status_word	*w;
	const char			*why = NULL;
	char				 buf[128], *end = buf;
	size_t				 tl = strlen(tag);
	json_t				*wrap = json_pack("{s:O}", "data", fax);
	unsigned long			 att = 0;
	int64_t				 made = 0;
	int				 rv = 0;

	id[0] = '\0';
	if (wrap == NULL)
		return 0;
	jtext(wrap, p->r_id, id, idlen);
	if (strcmp(jtext(wrap, p->r_tag_job, buf, sizeof(buf)), tag) != 0)
		why = "carries another job's tag";
	else {
		jtext(wrap, p->r_tag_send, buf, sizeof(buf));
		if (strncmp(buf, tag, tl) == 0 && buf[tl] == '-' &&
		    isdigit((unsigned char)buf[tl + 1]))
			att = strtoul(buf + tl + 1, &end, 10);
		if (att < 1 || *end != '\0' || att > (unsigned long)m->attempt)
			why = "carries no attempt of this job in its tag";
	}
	if (why == NULL && jpath(wrap, p->r_direction) &&
	    strcmp(jtext(wrap, p->r_direction, buf, sizeof(buf)), p->r_sent) != 0)
		why = "is not a sent fax";
	if (why == NULL && (json_array_size(jpath(wrap, p->r_recipients)) != 1 ||
	    strcmp(jtext(wrap, p->r_rcpt_number, buf, sizeof(buf)), number) != 0))
		why = "went to another number than this job's";
	if (why == NULL && (rfc3339_parse(jtext(wrap, p->r_created, buf,
	    sizeof(buf)), &made) == -1 || made < m->accepted_at - FAX_CLOCK_SKEW))
		why = "was made before this job was accepted";
	if (why) {
		log_warnx("job %llu: fax %.40s %s; not taken as this job's send",
		    (unsigned long long)m->job_id, id[0] ? id : "(no id)", why);
		goto done;
	}
	jtext(wrap, p->r_status, buf, sizeof(buf));
	for (w = p->words; w->word && strcmp(w->word, buf); w++)
		;
	if (w->word && w->kind == FX_FAILED)
		log_debug("job %llu: fax %.40s of attempt %lu failed",
		    (unsigned long long)m->job_id, id, att);
	else
		rv = 1;
done:
	json_decref(wrap);
	return rv;
}

/* After this page of a list, is there another? */
static int
list_more(struct fax_state *st, json_t *j, long page, size_t n)
{
	json_t	*total = jpath(j, st->p->r_total), *size = jpath(j, st->p->r_page_size);
	long	 per = json_is_integer(size) ? (long)json_integer_value(size) :
		    st->p->per_page;

	if (n == 0 || per <= 0)
		return 0;
	if (json_is_integer(total))
		return page * per < (long)json_integer_value(total);
	/* Phaxio says ">10000" past ten thousand: a full page may have more. */
	return n >= (size_t)per;
}

/*
 * The fax an earlier attempt of this job sent (its answer was lost), if
 * the service knows one that did not fail: every page of the faxes with
 * the job's tag made since the job was accepted (without created_after
 * Phaxio lists only the last week).  1 with its id, 0 if none, -1 with
 * the receipt filled when the list cannot be read: then nothing is sent.
 */
static int
fax_lookup(struct fax_state *st, const struct transport_message *m,
    const char *tag, const char *number, char *id, size_t idlen,
    struct transport_receipt *r, enum transport_status *out)
{
	const struct fax_profile	*p = st->p;
	char				 url[1024], after[64], fid[64];
	struct http			 h;
	json_t				*j, *list, *f;
	size_t				 i, n;
	long				 page;
	int				 found = 0, more = 1;
	CURL				*c;

	rfc3339_query(m->accepted_at - FAX_CLOCK_SKEW, after, sizeof(after));
	for (page = 1; more; page++) {
		if (page > FAX_LIST_PAGES) {
			*out = fail(r, TRANSPORT_TEMPFAIL, "the fax service lists more "
			    "than %d pages of faxes for job %llu; not sending without "
			    "knowing", FAX_LIST_PAGES, (unsigned long long)m->job_id);
			return -1;
		}
		memset(&h, 0, sizeof(h));
		buf_init(&h.body);
		if (bsnprintf(url, sizeof(url), "%s%s?%s=%s&%s=%s&%s=%ld&%s=%ld",
		    st->base_url, p->list_path, p->q_tag, tag, p->q_after, after,
		    p->q_per_page, p->per_page, p->q_page, page) == -1 ||
		    (c = fax_curl(st, url, &h)) == NULL) {
			*out = fail(r, TRANSPORT_TEMPFAIL, "cannot build the lookup request");
			buf_free(&h.body);
			return -1;
		}
		http_run(c, &h);
		if (http_problem(st, &h, &j, r, out)) {
			json_decref(j);
			buf_free(&h.body);
			return -1;
		}
		if (!json_is_array(list = jpath(j, p->r_list))) {
			json_decref(j);
			buf_free(&h.body);
			*out = fail(r, TRANSPORT_TEMPFAIL, "the fax service's list of faxes "
			    "holds no list; not sending without knowing");
			return -1;
		}
		n = json_array_size(list);
		json_array_foreach(list, i, f) {
			if (!fax_ours(st, m, tag, number, f, fid, sizeof(fid)))
				continue;
			if (!found) {		/* newest first */
				strlcpy_(id, fid, idlen);
				found = 1;
			} else
				log_warnx("job %llu: fax %.40s is alive too, besides fax "
				    "%.40s", (unsigned long long)m->job_id, fid, id);
		}
		more = list_more(st, j, page, n);
		json_decref(j);
		buf_free(&h.body);
	}
	return found;
}

/* The multipart request of a send. */
/* A file to upload, read by position from its descriptor. */
struct fd_reader {
	int	fd;
	off_t	off;
};

static size_t
fd_read(char *buf, size_t size, size_t n, void *arg)
{
	struct fd_reader	*fr = arg;
	ssize_t			 got;

	do
		got = pread(fr->fd, buf, size * n, fr->off);
	while (got == -1 && errno == EINTR);
	if (got < 0)
		return CURL_READFUNC_ABORT;
	fr->off += got;
	return (size_t)got;
}

static int
fd_seek(void *arg, curl_off_t offset, int origin)
{
	struct fd_reader	*fr = arg;

	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	fr->off = (off_t)offset;
	return CURL_SEEKFUNC_OK;
}

static curl_mime *
fax_form(struct fax_state *st, CURL *c, const struct transport_message *m,
    const char *number, const char *header, const char *tag, const char *sendtag)
{
	const struct fax_profile	*p = st->p;
	const char			*names[] = { p->f_to, p->f_header, p->f_tag_send,
					    p->f_tag_job, p->f_caller_id };
	const char			*values[] = { number, header, sendtag, tag,
					    st->caller_id };
	curl_mime			*mime = curl_mime_init(c);
	curl_mimepart			*part;

	for (size_t i = 0; mime && i < sizeof(names) / sizeof(names[0]); i++) {
		if (values[i] == NULL)
			continue;
		part = curl_mime_addpart(mime);
		curl_mime_name(part, names[i]);
		curl_mime_data(part, values[i], CURL_ZERO_TERMINATED);
	}
	for (size_t i = 0; mime && i < m->nfiles; i++) {
		struct fd_reader *fr = calloc(1, sizeof(*fr));
		if (fr == NULL)
			return NULL;
		fr->fd = m->files[i].fd;
		part = curl_mime_addpart(mime);
		/* "file" for one, "file[]" for several, as documented. */
		curl_mime_name(part, m->nfiles == 1 ? p->f_file : p->f_files);
		/* Read from the descriptor itself: the sender may open no path
		 * (its sandbox has no /proc). */
		curl_mime_data_cb(part, (curl_off_t)m->files[i].size, fd_read, fd_seek,
		    free, fr);
		curl_mime_filename(part, m->files[i].name);
		curl_mime_type(part, m->files[i].content_type);
	}
	return mime;
}

static enum transport_status
fax_deliver(void *p, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct fax_state	*st = p;
	char			 number[32], url[1024], header[256], id[64];
	char			 tag[64], sendtag[80];
	struct http		 h;
	enum transport_status	 rv;
	curl_mime		*mime;
	json_t			*j;
	CURL			*c;
	int			 known;

	/* The number comes from the directory only, checked right now. */
	if (e164(m->recipient->address, number, sizeof(number)) == -1) {
		r->hold = 1;
		return fail(r, TRANSPORT_PERMFAIL, "recipient %s: \"%.60s\" is not a "
		    "fax number in E.164 form (+ and 8 to 15 digits)",
		    m->recipient->id, m->recipient->address);
	}
	if (job_tag(m, tag, sizeof(tag)) == -1 ||
	    bsnprintf(sendtag, sizeof(sendtag), "%s-%d", tag, m->attempt) == -1) {
		r->hold = 1;
		return fail(r, TRANSPORT_PERMFAIL, "job %llu came without the "
		    "database's instance id; nothing was sent",
		    (unsigned long long)m->job_id);
	}
	/* A fax this job already sent (its answer was lost) is not sent again. */
	if ((known = fax_lookup(st, m, tag, number, id, sizeof(id), r, &rv)) == -1)
		return rv;
	if (known) {
		strlcpy_(r->remote_id, id, sizeof(r->remote_id));
		strlcpy_(r->status, "sent", sizeof(r->status));
		snprintf(r->detail, sizeof(r->detail), "fax %s to %s was already sent "
		    "for this job (tag %s); not sending again, waiting for its status",
		    id, number, tag);
		r->pending = 1;
		return TRANSPORT_OK;
	}
	memset(&h, 0, sizeof(h));
	buf_init(&h.body);
	api_url(st, st->p->send_path, NULL, url, sizeof(url));
	/* The header names the sender and the request, never the patient. */
	header_fit(header, sizeof(header), st->p->header_max, st->organization,
	    m->request_ref ? m->request_ref : m->packet_id);
	if ((c = fax_curl(st, url, &h)) == NULL ||
	    (mime = fax_form(st, c, m, number, header, tag, sendtag)) == NULL)
		return fail(r, TRANSPORT_TEMPFAIL, "libcurl: out of memory");
	curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	http_run(c, &h);
	curl_mime_free(mime);
	if (http_problem(st, &h, &j, r, &rv)) {
		/* 422: the provider's own words about what it refused. */
		json_decref(j);
		buf_free(&h.body);
		return rv;
	}
	jtext(j, st->p->r_id, id, sizeof(id));
	json_decref(j);
	buf_free(&h.body);
	if (id[0] == '\0' || api_url(st, st->p->status_path, id, url, sizeof(url)) == -1)
		return fail(r, TRANSPORT_TEMPFAIL, "the fax service accepted the fax "
		    "but named no id");
	strlcpy_(r->remote_id, id, sizeof(r->remote_id));
	strlcpy_(r->status, "sent", sizeof(r->status));
	snprintf(r->detail, sizeof(r->detail), "fax %s accepted for %s (%zu file%s, "
	    "tag %s); waiting for the final status", id, number, m->nfiles,
	    m->nfiles == 1 ? "" : "s", sendtag);
	r->pending = 1;
	return TRANSPORT_OK;
}

/* How long to wait after a line failure, by its kind. */
static int32_t
line_wait(struct fax_state *st, const char *msg)
{
	char	low[128];
	size_t	i;

	for (i = 0; msg[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)msg[i]);
	low[i] = '\0';
	if (strstr(low, "busy"))
		return (int32_t)st->wait_busy;
	if (strstr(low, "no answer") || strstr(low, "noanswer"))
		return (int32_t)st->wait_no_answer;
	return (int32_t)st->wait_line;
}

/* What a status answer says about one fax. */
struct fax_info {
	char	word[64], rword[64], etype[64], ecode[32], emsg[200];
	char	pages[16], done[64], csid[64];
};

static void
fax_info_read(const struct fax_profile *p, json_t *j, struct fax_info *fi)
{
	jtext(j, p->r_status, fi->word, sizeof(fi->word));
	jtext(j, p->r_rcpt_status, fi->rword, sizeof(fi->rword));
	jtext(j, p->r_error_type, fi->etype, sizeof(fi->etype));
	jtext(j, p->r_error_code, fi->ecode, sizeof(fi->ecode));
	jtext(j, p->r_error_msg, fi->emsg, sizeof(fi->emsg));
	if (fi->etype[0] == '\0') {	/* the fax's error, else its recipient's */
		jtext(j, p->r_rcpt_etype, fi->etype, sizeof(fi->etype));
		jtext(j, p->r_rcpt_ecode, fi->ecode, sizeof(fi->ecode));
		jtext(j, p->r_rcpt_emsg, fi->emsg, sizeof(fi->emsg));
	}
	jtext(j, p->r_pages, fi->pages, sizeof(fi->pages));
	jtext(j, p->r_completed, fi->done, sizeof(fi->done));
	jtext(j, p->r_csid, fi->csid, sizeof(fi->csid));
}

static enum fax_error_kind
fax_error_kind(const struct fax_profile *p, const struct fax_info *fi)
{
	const struct fax_error_class	*e;
	char				 low[200];
	long				 code = fi->ecode[0] ? strtol(fi->ecode, NULL, 10) : -2;
	size_t				 i;

	for (i = 0; fi->emsg[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)fi->emsg[i]);
	low[i] = '\0';
	for (e = p->errors; e->type || e->words; e++)
		if (e->type && strcasecmp(e->type, fi->etype) == 0 &&
		    (e->code == -1 || e->code == code))
			return e->kind;
	for (e = p->errors; e->type || e->words; e++)
		if (e->type == NULL && strstr(low, e->words))
			return e->kind;
	return FE_REDIAL;
}

/* A fax that failed: dial again later, or not at all. */
static enum transport_status
fax_failed(struct fax_state *st, const char *id, const struct fax_info *fi,
    struct transport_receipt *r)
{
	const char	*t = fi->etype[0] ? fi->etype : "error";
	const char	*msg = fi->emsg[0] ? fi->emsg : "no reason given";

	switch (fax_error_kind(st->p, fi)) {
	case FE_NUMBER:
		return fail(r, TRANSPORT_PERMFAIL, "fax %s failed: the number cannot "
		    "take a fax (%s %s: %s); not dialled again: check the recipient's "
		    "fax number", id, t, fi->ecode, msg);
	case FE_DOCUMENT:
		r->hold = TRANSPORT_HOLD_JOB;
		return fail(r, TRANSPORT_PERMFAIL, "fax %s failed: the fax service "
		    "could not convert the document (%s %s: %s)", id, t, fi->ecode, msg);
	case FE_ACCOUNT:
		r->hold = TRANSPORT_HOLD_ALL;
		return fail(r, TRANSPORT_PERMFAIL, "fax %s failed: the fax account "
		    "cannot send (%s %s: %s); fix the account and release the held fax "
		    "jobs", id, t, fi->ecode, msg);
	case FE_CANCELLED:
		return fail(r, TRANSPORT_PERMFAIL, "fax %s was cancelled at the fax "
		    "service (%s %s: %s); not sent again", id, t, fi->ecode, msg);
	case FE_REDIAL:
	default:
		r->retry_after = line_wait(st, fi->emsg);
		return fail(r, TRANSPORT_TEMPFAIL, "fax %s failed (%s %s: %s); "
		    "dialling again in %d s", id, t, fi->ecode, msg,
		    (int)r->retry_after);
	}
}

static enum transport_status
fax_poll(void *p, const struct transport_message *m, const char *remote_id,
    struct transport_receipt *r)
{
	struct fax_state		*st = p;
	char				 url[1024];
	const struct fax_status_word	*w;
	struct fax_info			 fi;
	struct http			 h;
	enum transport_status		 rv;
	json_t				*j;
	CURL				*c;
	int				 kind;

	memset(&h, 0, sizeof(h));
	buf_init(&h.body);
	if (api_url(st, st->p->status_path, remote_id, url, sizeof(url)) == -1)
		return fail(r, TRANSPORT_PERMFAIL, "fax id \"%.60s\" is not a plain "
		    "id; check with the provider", remote_id);
	if ((c = fax_curl(st, url, &h)) == NULL)
		return fail(r, TRANSPORT_TEMPFAIL, "libcurl: out of memory");
	http_run(c, &h);
	strlcpy_(r->remote_id, remote_id, sizeof(r->remote_id));
	if (http_problem(st, &h, &j, r, &rv)) {
		json_decref(j);
		buf_free(&h.body);
		/* A lost answer about a fax is not a failed fax: ask again. */
		if (rv == TRANSPORT_TEMPFAIL) {
			r->pending = 1;
			return TRANSPORT_OK;
		}
		return rv;
	}
	memset(&fi, 0, sizeof(fi));
	fax_info_read(st->p, j, &fi);
	json_decref(j);
	buf_free(&h.body);
	r->pages = (uint32_t)strtoul(fi.pages, NULL, 10);
	strlcpy_(r->status, fi.word[0] ? fi.word : "unknown", sizeof(r->status));
	for (w = st->p->words; w->word && strcmp(w->word, fi.word); w++)
		;
	if (w->word == NULL) {
		r->hold = 1;
		return fail(r, TRANSPORT_PERMFAIL, "fax %s: the service reports "
		    "\"%.40s\", which this profile does not know; check with the "
		    "provider", remote_id, fi.word);
	}
	kind = w->kind;
	/* Phaxio: "SOME of the recipients received the fax, but not all".  Our
	 * faxes have one recipient: its own status says which it was. */
	if (kind == FX_PARTIAL && strcmp(fi.rword, "success") == 0)
		kind = FX_DELIVERED;
	else if (kind == FX_PARTIAL && strcmp(fi.rword, "failure") == 0)
		kind = FX_FAILED;
	switch (kind) {
	case FX_PENDING:
		r->pending = 1;
		snprintf(r->detail, sizeof(r->detail), "fax %s: %s", remote_id, fi.word);
		return TRANSPORT_OK;
	case FX_DELIVERED:
		if (rfc3339_parse(fi.done, &r->completed_at) == -1)
			r->completed_at = time(NULL);
		snprintf(r->detail, sizeof(r->detail), "fax %s delivered: %s pages, "
		    "completed %s%s%s", remote_id, fi.pages[0] ? fi.pages : "?",
		    fi.done[0] ? fi.done : "?", fi.csid[0] ? ", remote CSID " : "",
		    fi.csid);
		return TRANSPORT_OK;
	case FX_PARTIAL:
		r->hold = 1;
		return fail(r, TRANSPORT_PERMFAIL, "fax %s: the service reports %s for "
		    "a fax to one number, whose own status is \"%.40s\"; check with the "
		    "provider before anything is sent again", remote_id, fi.word,
		    fi.rword);
	case FX_FAILED:
	default:
		return fax_failed(st, remote_id, &fi, r);
	}
}

static void
fax_shutdown(void *p)
{
	struct fax_state	*st = p;

	if (st == NULL)
		return;
	explicit_bzero(st->secret, sizeof(st->secret));
	if (st->curl)
		curl_easy_cleanup(st->curl);
	free(st->base_url);
	free(st->ca_file);
	free(st->credentials);
	free(st->organization);
	free(st->caller_id);
	free(st);
}

const struct transport_backend roigate_transport = {
	.name = "faxapi",
	.abi = TRANSPORT_ABI_VERSION,
	.caps = TRANSPORT_CAP_POLL | TRANSPORT_CAP_PAGES | TRANSPORT_CAP_FAX,
	.create = fax_create,
	.config = fax_config,
	.check = fax_check,
	.init = fax_init,
	.deliver = fax_deliver,
	.poll = fax_poll,
	.shutdown = fax_shutdown,
	.probe = NULL,
};
