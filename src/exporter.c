/*
 * roigate-exporter: Prometheus metrics for roigate, in a process of its
 * own.  roigated opens no TCP port (DESIGN.md); this small daemon does,
 * on localhost by default ([exporter] listen = 127.0.0.1:9464), and for
 * each scrape asks roigated over the control socket with the read-only
 * "metrics" operation (role "metrics" or "operate" in [roles]), then
 * writes the answer in the Prometheus text format (version 0.0.4).
 *
 * It holds nothing between scrapes, opens no file but its configuration,
 * and sees no PHI: the answer carries counts, ages, states, transport
 * names and recipient ids only.  One thread of libmicrohttpd serves the
 * requests one at a time; the main thread waits for SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include <roigate/client.h>

#include "config.h"
#include "log.h"
#include "util.h"

static const char	*sockpath;
static const char	*urlpath;
static int64_t		 scrape_errors;

static void
usage(void)
{
	fprintf(stderr, "usage: roigate-exporter [-d] [-f roigate.conf] "
	    "[-l ADDRESS:PORT] [-s SOCKET]\n");
	exit(64);
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void
label(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			buf_addstr(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample_d(struct buf *b, double v)
{
	if (isinf(v))
		buf_addstr(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		buf_printf(b, "%.0f", v);
	else
		buf_printf(b, "%.6g", v);
}

static double
num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* A gauge or counter with no labels. */
static void
scalar(struct buf *b, const char *name, const char *type, const char *help,
    double v)
{
	family(b, name, type, help);
	buf_printf(b, "%s ", name);
	sample_d(b, v);
	buf_addstr(b, "\n");
}

/* One sample per entry of list: labels named by keys[] from the entry. */
static void
labelled(struct buf *b, const char *name, json_t *list, const char *const *keys,
    const char *const *labels, const char *value)
{
	size_t	 i;
	json_t	*e;

	json_array_foreach(list, i, e) {
		buf_printf(b, "%s{", name);
		for (int k = 0; keys[k]; k++) {
			buf_printf(b, "%s%s=\"", k ? "," : "", labels[k]);
			label(b, json_string_value(json_object_get(e, keys[k])));
			buf_addstr(b, "\"");
		}
		buf_addstr(b, "} ");
		sample_d(b, num(e, value));
		buf_addstr(b, "\n");
	}
}

/* An object of name: number as samples with one label. */
static void
keyed(struct buf *b, const char *name, const char *lname, json_t *obj)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(obj, k, v) {
		buf_printf(b, "%s{%s=\"", name, lname);
		label(b, k);
		buf_addstr(b, "\"} ");
		sample_d(b, json_number_value(v));
		buf_addstr(b, "\n");
	}
}

static void
histogram(struct buf *b, const char *name, const char *help, json_t *h)
{
	size_t	 i;
	json_t	*e;

	family(b, name, "histogram", help);
	json_array_foreach(json_object_get(h, "buckets"), i, e) {
		buf_printf(b, "%s_bucket{le=\"", name);
		sample_d(b, json_number_value(json_array_get(e, 0)));
		buf_addstr(b, "\"} ");
		sample_d(b, json_number_value(json_array_get(e, 1)));
		buf_addstr(b, "\n");
	}
	buf_printf(b, "%s_bucket{le=\"+Inf\"} ", name);
	sample_d(b, num(h, "count"));
	buf_printf(b, "\n%s_sum ", name);
	sample_d(b, num(h, "sum"));
	buf_printf(b, "\n%s_count ", name);
	sample_d(b, num(h, "count"));
	buf_addstr(b, "\n");
}

/* Families whose samples come from a list of objects in the answer. */
static const struct listed {
	const char	*name;
	const char	*type;
	const char	*help;
	const char	*list;		/* the answer's key */
	const char	*keys[3];	/* labels, named as in the answer */
	const char	*value;
} listed[] = {
	{ "roigate_oldest_waiting_seconds", "gauge", "Age of the oldest queued "
	    "or deferred job, by transport and recipient.", "waiting",
	    { "transport", "recipient", NULL }, "oldest_age" },
	{ "roigate_waiting_jobs", "gauge", "Queued or deferred jobs, by transport "
	    "and recipient.", "waiting", { "transport", "recipient", NULL }, "count" },
	{ "roigate_deliveries_total", "counter", "Jobs delivered, by transport.",
	    "deliveries", { "transport", NULL }, "count" },
	{ "roigate_temporary_failures_total", "counter", "Attempts that failed "
	    "temporarily (retried), by transport and error class.", "tempfails",
	    { "transport", "class", NULL }, "count" },
	{ "roigate_permanent_failures_total", "counter", "Attempts that failed "
	    "permanently, by transport and error class.", "permfails",
	    { "transport", "class", NULL }, "count" },
	{ "roigate_folder_free_bytes", "gauge", "Free space of the spool and "
	    "state folders' file systems (for roigated's user).", "disk",
	    { "folder", NULL }, "free_bytes" },
	{ "roigate_folder_size_bytes", "gauge", "Size of the spool and state "
	    "folders' file systems.", "disk", { "folder", NULL }, "size_bytes" },
};

static void
format_queue(struct buf *b, json_t *m)
{
	family(b, "roigate_jobs", "gauge", "Jobs in the queue by state.");
	keyed(b, "roigate_jobs", "state", json_object_get(m, "jobs"));
	for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++) {
		family(b, listed[i].name, listed[i].type, listed[i].help);
		labelled(b, listed[i].name, json_object_get(m, listed[i].list),
		    listed[i].keys, listed[i].keys, listed[i].value);
	}
	family(b, "roigate_intake_refused_total", "counter", "Packets refused at "
	    "intake (spool or socket), by reason class.");
	keyed(b, "roigate_intake_refused_total", "reason",
	    json_object_get(m, "intake_refused"));
	histogram(b, "roigate_delivery_latency_seconds", "Time from acceptance "
	    "to delivery.", json_object_get(m, "delivery_latency"));
	histogram(b, "roigate_render_seconds", "Time to render a job's output.",
	    json_object_get(m, "render_time"));
}

static void
format_daemon(struct buf *b, json_t *m)
{
	json_t	*log = json_object_get(m, "disclosure_log"), *v;

	scalar(b, "roigate_pages_rendered_total", "counter", "Pages rendered "
	    "(cover sheets included).", num(m, "pages_rendered"));
	scalar(b, "roigate_workers_running", "gauge", "Worker processes running.",
	    num(m, "workers_running"));
	scalar(b, "roigate_workers_max", "gauge", "[queue] workers.",
	    num(m, "workers_max"));
	scalar(b, "roigate_awaiting_confirmation", "gauge", "Jobs sent and "
	    "awaiting the remote side's confirmation.",
	    num(m, "awaiting_confirmation"));
	if (json_is_number(v = json_object_get(log, "last_seq")))
		scalar(b, "roigate_disclosure_log_last_seq", "gauge", "Sequence "
		    "number of the disclosure log's last entry.", json_number_value(v));
	/* Sealing: exported once roigated reports an epoch. */
	if (json_is_number(v = json_object_get(log, "seal_epoch")))
		scalar(b, "roigate_disclosure_log_seal_epoch", "gauge", "The "
		    "disclosure log's current sealing epoch.", json_number_value(v));
	v = json_object_get(log, "verified");
	scalar(b, "roigate_disclosure_log_verify_ok", "gauge", "1 unless the last "
	    "verification of the disclosure log (since roigated started) failed.",
	    json_is_false(v) ? 0 : 1);
	scalar(b, "roigate_disclosure_log_verified_timestamp_seconds", "gauge",
	    "When the disclosure log was last verified (0: not since start).",
	    num(log, "verified_at"));
	family(b, "roigate_problem", "gauge", "1 while roigated reports a problem "
	    "of this kind (roictl status says what).");
	keyed(b, "roigate_problem", "kind", json_object_get(m, "problems"));
	scalar(b, "roigate_draining", "gauge", "1 while roigated is shutting down.",
	    json_is_true(json_object_get(m, "draining")) ? 1 : 0);
	scalar(b, "roigate_start_time_seconds", "gauge", "When roigated started.",
	    num(m, "started_at"));
}

/* One scrape: ask roigated, write the text.  The body is malloc'ed. */
static char *
scrape(size_t *len)
{
	struct roigate	*c;
	struct buf	 b;
	json_t		*m = NULL;
	char		*out = NULL, err[512];
	int64_t		 t0 = now_ms();

	buf_init(&b);
	if ((c = roigate_connect(sockpath, err, sizeof(err))) != NULL) {
		if (roigate_call(c, "metrics", "{}", &out, err, sizeof(err)) == ROIGATE_OK)
			m = json_loads(out, 0, NULL);
		free(out);
		roigate_close(c);
	}
	if (m == NULL) {
		scrape_errors++;
		log_warnx("cannot read metrics from roigated at %s: %.300s", sockpath,
		    err);
	} else {
		format_queue(&b, m);
		format_daemon(&b, m);
		json_decref(m);
	}
	scalar(&b, "roigate_up", "gauge", "1 if roigated answered this scrape.",
	    m ? 1 : 0);
	scalar(&b, "roigate_exporter_scrape_errors_total", "counter", "Scrapes "
	    "roigated did not answer.", (double)scrape_errors);
	scalar(&b, "roigate_exporter_scrape_duration_seconds", "gauge", "How long "
	    "this scrape took.", (double)(now_ms() - t0) / 1000.0);
	*len = b.len;
	out = xmalloc(b.len + 1);
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	buf_free(&b);
	return out;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body,
    size_t len)
{
	struct MHD_Response	*r;
	enum MHD_Result		 rv;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", type);
	rv = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rv;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **state)
{
	size_t	len;
	char	*body;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		    xstrdup("GET only\n"), 9);
	if (strcmp(url, urlpath) != 0) {
		xasprintf(&body, "roigate-exporter: metrics are at %s\n", urlpath);
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", body,
		    strlen(body));
	}
	body = scrape(&len);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
	    body, len);
}

/* "127.0.0.1:9464" or "[::1]:9464" into a socket address. */
static int
parse_listen(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*in = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)ss;
	const char		*colon = strrchr(s, ':');
	char			 host[64];
	long			 port;
	char			*end;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -1;
	}
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_storage	 ss;
	struct MHD_Daemon	*d;
	struct config		*conf = NULL;
	const char		*path = CONFIG_DEFAULT_PATH, *listen = NULL;
	char			 err[4096];
	sigset_t		 set;
	int			 ch, sig, debug = 0;

	log_init("roigate-exporter", LOG_INFO);
	while ((ch = getopt(argc, argv, "df:l:s:")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 's':
			sockpath = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (access(path, F_OK) == -1 && errno == ENOENT &&
	    strcmp(path, CONFIG_DEFAULT_PATH) == 0)
		path = NULL;	/* the embedded defaults, as roigated */
	if ((conf = config_load(path, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	log_setlevel(debug ? LOG_DEBUG : conf->log_level);
	if (sockpath == NULL)
		sockpath = conf->socket_path;
	if (listen == NULL)
		listen = conf->exporter_listen;
	urlpath = conf->exporter_path;
	if (parse_listen(listen, &ss) == -1)
		fatalx("[exporter] listen: \"%.100s\" is not ADDRESS:PORT "
		    "(like 127.0.0.1:9464 or [::1]:9464)", listen);
	/* SIGTERM and SIGINT are waited for; the HTTP thread must not get them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, handle, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (d == NULL)
		fatal("cannot listen on %s", listen);
	log_info("serving %s on http://%s (roigated at %s)", urlpath, listen,
	    sockpath);
	sd_notify(0, "READY=1");
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	log_info("stopping");
	MHD_stop_daemon(d);
	config_free(conf);
	return 0;
}
