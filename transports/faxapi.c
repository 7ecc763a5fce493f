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
 * Each fax carries tags with the job id, so a retry after a crash first
 * looks the fax up instead of sending it again.
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

#include "util.h"

/* What a provider's API looks like. */
struct fax_status_word {
	const char	*word;
	enum { FX_PENDING, FX_DELIVERED, FX_FAILED, FX_PARTIAL } kind;
};

struct fax_profile {
	const char			*name;
	const char			*send_path;	/* POST, multipart */
	const char			*status_path;	/* GET, {} = fax id */
	const char			*by_tag_path;	/* GET, {} = job id tag */
	const char			*f_to, *f_file, *f_header, *f_caller_id;
	const char			*tag_job;	/* multipart field for the job tag */
	/* JSON paths in the responses (dotted; "data.id"). */
	const char			*r_id, *r_status, *r_pages, *r_completed;
	const char			*r_list, *r_error_type, *r_error_code, *r_error_msg;
	const char			*r_csid, *r_message;
	const struct fax_status_word	*words;
};

static const struct fax_status_word phaxio_words[] = {
	{ "queued", FX_PENDING }, { "pendingbatch", FX_PENDING },
	{ "inprogress", FX_PENDING }, { "success", FX_DELIVERED },
	{ "failure", FX_FAILED }, { "partialsuccess", FX_PARTIAL },
	{ NULL, FX_PENDING },
};

static const struct fax_profile profiles[] = {
	{
		.name = "phaxio",
		.send_path = "/faxes",
		.status_path = "/faxes/{}",
		.by_tag_path = "/faxes?tag[roigate_job]={}",
		.f_to = "to", .f_file = "file[]", .f_header = "header_text",
		.f_caller_id = "caller_id", .tag_job = "tag[roigate_job]",
		.r_id = "data.id", .r_status = "data.status",
		.r_pages = "data.num_pages", .r_completed = "data.completed_at",
		.r_list = "data", .r_error_type = "data.error_type",
		.r_error_code = "data.error_id", .r_error_msg = "data.error_message",
		.r_csid = "data.recipients.0.csid", .r_message = "message",
		.words = phaxio_words,
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
	return 0;
}

/* The fax already sent for this job, if the service knows one that did
 * not fail (a retry after a crash must not dial again). */
static int
find_by_tag(struct fax_state *st, const struct transport_message *m, char *id,
    size_t idlen, struct transport_receipt *r, enum transport_status *out)
{
	char		 url[1024], job[32], word[64];
	struct http	 h;
	json_t		*j, *list, *f;
	size_t		 i;
	CURL		*c;
	int		 found = 0;

	memset(&h, 0, sizeof(h));
	buf_init(&h.body);
	snprintf(job, sizeof(job), "%llu", (unsigned long long)m->job_id);
	if (api_url(st, st->p->by_tag_path, job, url, sizeof(url)) == -1 ||
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
	list = jpath(j, st->p->r_list);
	json_array_foreach(list, i, f) {
		json_t *wrap = json_pack("{s:O}", "data", f);
		jtext(wrap, st->p->r_status, word, sizeof(word));
		for (const struct fax_status_word *w = st->p->words; w->word; w++)
			if (strcmp(w->word, word) == 0 && w->kind != FX_FAILED) {
				jtext(wrap, st->p->r_id, id, idlen);
				found = 1;
			}
		json_decref(wrap);
	}
	json_decref(j);
	buf_free(&h.body);
	return found;
}

static enum transport_status
fax_deliver(void *p, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct fax_state	*st = p;
	char			 number[32], url[1024], header[128], job[32], id[64];
	struct http		 h;
	enum transport_status	 rv;
	curl_mime		*mime;
	curl_mimepart		*part;
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
	/* A fax this job already sent (its answer was lost) is not sent again. */
	if ((known = find_by_tag(st, m, id, sizeof(id), r, &rv)) == -1)
		return rv;
	if (known) {
		strlcpy_(r->remote_id, id, sizeof(r->remote_id));
		strlcpy_(r->status, "sent", sizeof(r->status));
		snprintf(r->detail, sizeof(r->detail), "fax %s to %s was already sent "
		    "for this job; not sending again, waiting for its status", id,
		    number);
		r->pending = 1;
		return TRANSPORT_OK;
	}
	memset(&h, 0, sizeof(h));
	buf_init(&h.body);
	api_url(st, st->p->send_path, NULL, url, sizeof(url));
	snprintf(job, sizeof(job), "%llu", (unsigned long long)m->job_id);
	/* The header names the sender and the request, never the patient. */
	snprintf(header, sizeof(header), "%.60s %.40s", st->organization,
	    m->request_ref ? m->request_ref : m->packet_id);
	if ((c = fax_curl(st, url, &h)) == NULL)
		return fail(r, TRANSPORT_TEMPFAIL, "libcurl: out of memory");
	mime = curl_mime_init(c);
	part = curl_mime_addpart(mime);
	curl_mime_name(part, st->p->f_to);
	curl_mime_data(part, number, CURL_ZERO_TERMINATED);
	part = curl_mime_addpart(mime);
	curl_mime_name(part, st->p->f_header);
	curl_mime_data(part, header, CURL_ZERO_TERMINATED);
	part = curl_mime_addpart(mime);
	curl_mime_name(part, st->p->tag_job);
	curl_mime_data(part, job, CURL_ZERO_TERMINATED);
	if (st->caller_id) {
		part = curl_mime_addpart(mime);
		curl_mime_name(part, st->p->f_caller_id);
		curl_mime_data(part, st->caller_id, CURL_ZERO_TERMINATED);
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", m->files[i].fd);
		part = curl_mime_addpart(mime);
		curl_mime_name(part, st->p->f_file);
		curl_mime_filedata(part, path);
		curl_mime_filename(part, m->files[i].name);
		curl_mime_type(part, m->files[i].content_type);
	}
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
	snprintf(r->detail, sizeof(r->detail), "fax %s accepted for %s (%zu file%s); "
	    "waiting for the final status", id, number, m->nfiles,
	    m->nfiles == 1 ? "" : "s");
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

static enum transport_status
fax_poll(void *p, const struct transport_message *m, const char *remote_id,
    struct transport_receipt *r)
{
	struct fax_state	*st = p;
	char			 url[1024], word[64], etype[64], ecode[32];
	char			 emsg[200], pages[16], done[64], csid[64];
	const struct fax_status_word *w;
	struct http		 h;
	enum transport_status	 rv;
	json_t			*j;
	CURL			*c;

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
	jtext(j, st->p->r_status, word, sizeof(word));
	jtext(j, st->p->r_error_type, etype, sizeof(etype));
	jtext(j, st->p->r_error_code, ecode, sizeof(ecode));
	jtext(j, st->p->r_error_msg, emsg, sizeof(emsg));
	jtext(j, st->p->r_pages, pages, sizeof(pages));
	jtext(j, st->p->r_completed, done, sizeof(done));
	jtext(j, st->p->r_csid, csid, sizeof(csid));
	json_decref(j);
	buf_free(&h.body);
	r->pages = (uint32_t)strtoul(pages, NULL, 10);
	strlcpy_(r->status, word[0] ? word : "unknown", sizeof(r->status));
	for (w = st->p->words; w->word && strcmp(w->word, word); w++)
		;
	if (w->word == NULL)
		return fail(r, TRANSPORT_PERMFAIL, "fax %s: the service reports "
		    "\"%.40s\", which this profile does not know; check with the "
		    "provider", remote_id, word);
	switch (w->kind) {
	case FX_PENDING:
		r->pending = 1;
		snprintf(r->detail, sizeof(r->detail), "fax %s: %s", remote_id, word);
		return TRANSPORT_OK;
	case FX_DELIVERED:
		r->completed_at = time(NULL);
		snprintf(r->detail, sizeof(r->detail), "fax %s delivered: %s pages, "
		    "completed %s%s%s", remote_id, pages[0] ? pages : "?",
		    done[0] ? done : "?", csid[0] ? ", remote CSID " : "", csid);
		return TRANSPORT_OK;
	case FX_PARTIAL:
		r->hold = 1;
		return fail(r, TRANSPORT_PERMFAIL, "fax %s arrived only in part (%s "
		    "pages sent; %s %s: %s): the recipient holds part of the packet; "
		    "decide with them before anything is sent again", remote_id,
		    pages[0] ? pages : "?", etype, ecode, emsg);
	case FX_FAILED:
	default:
		if (strcmp(etype, "lineError") == 0 || strcmp(etype, "faxError") == 0) {
			r->retry_after = line_wait(st, emsg);
			return fail(r, TRANSPORT_TEMPFAIL, "fax %s failed on the line "
			    "(%s %s: %s); retrying in %d s", remote_id, etype, ecode, emsg,
			    (int)r->retry_after);
		}
		return fail(r, TRANSPORT_PERMFAIL, "fax %s failed (%s %s: %s)",
		    remote_id, etype[0] ? etype : "error", ecode, emsg[0] ? emsg :
		    "no reason given");
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
