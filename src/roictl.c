/*
 * roictl: the administrators' and the records system's command-line
 * client.  It speaks only the control socket (through libroigate) and
 * never opens the database: what it may do is decided by the daemon from
 * the caller's identity.  Exit codes follow sysexits(3).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <roigate/client.h>

static const char	*sockpath;
static int		 json_out;

struct cmd {
	const char	*name;
	int		(*run)(struct roigate *, int, char **);
	const char	*usage;
	const char	*help;
};

static const char *const main_usage =
"usage: roictl [-s SOCKET] [--json] COMMAND [ARGS]\n"
"\n"
"Talks to roigated over its socket (default $ROIGATE_SOCKET or\n"
ROIGATE_DEFAULT_SOCKET "); what you may do depends on your roles.\n"
"\n"
"Queue (role operate; status: any role):\n"
"  status                          counts by state and transport, problems, recent errors\n"
"  list [--state S] [--transport T] [--limit N]   one line per job, newest first\n"
"  show JOB                        one job: fields, history, redactions, disclosure log\n"
"  hold JOB...                     set jobs aside (queued, deferred, awaiting_confirmation)\n"
"  release JOB...                  put held jobs back in the queue\n"
"  retry JOB...                    retry deferred or failed jobs now, with fresh attempts\n"
"  cancel JOB...                   cancel queued, deferred or held jobs\n"
"  watch [-n SECONDS]              live status screen, like top; q quits\n"
"  shape                           waiting jobs by recipient and age, like qshape\n"
"  alerts                          open and recently resolved alerts\n"
"  metrics                         what roigate-exporter serves, as JSON (role metrics)\n"
"Submission (role submit):\n"
"  submit PACKET_DIR               submit a packet folder; prints the job number\n"
"Disclosure log (role audit):\n"
"  log [--mrn M] [--recipient R] [--since D] [--until D] [--job J]\n"
"  verify-log [--key-file FILE] [--checkpoint LINE]\n"
"                                  check the log (with the verification key: the seals)\n"
"  audit [--since D] [--limit N]   who asked the daemon what, allowed or denied\n"
"  accounting --mrn MRN [--from D] [--to D] [--format text|json|pdf] [-o FILE]\n"
"                                  the 164.528 accounting of disclosures of a patient\n"
"  accounting suspend --agency NAME --until DATE [--oral] [--mrn M] | --list | --end ID\n"
"  report daily [--date D] [--format text|json|pdf] [-o FILE]\n"
"                                  the day's reconciliation: accepted, delivered, failed,\n"
"                                  held, awaiting confirmation, unconfirmed sends\n"
"Requests (role operate, audit or admin):\n"
"  requests [--overdue] [--due-within DAYS]   open requests, age and deadline\n"
"  requests extend ID --reason TEXT           the one 30-day extension (164.524)\n"
"Incidents (role audit; open: audit or operate):\n"
"  incident open --job N --kind misdirected|wrong_patient|wrong_documents|exposed|other --note T\n"
"  incident assess ID --determination low_probability|breach [--nature T] [--person T]\n"
"                [--acquired T] [--mitigation T]\n"
"  incident list | show ID | report ID [--format text|json|pdf] [-o FILE]\n"
"Retention (role admin):\n"
"  prune [--dry-run]               remove the sealed records older than [retention]\n"
"                                  records (six years at least), under a sealed record\n"
"Recipients (role admin to change):\n"
"  recipient add ID --name N --transport T --address A [--organization O]\n"
"                [--param K=V | --param K=@FILE]...\n"
"  recipient list | show ID | disable ID\n"
"  recipient verify ID [--yes | --expect VALUE]   probe, confirm, pin (SFTP host key)\n"
"\n"
"Options:\n"
"  -s, --socket PATH   the daemon's socket\n"
"  -j, --json          JSON output: one object, or JSON Lines for lists\n"
"  -h, --help          this text; `roictl COMMAND --help` for one command\n"
"\n"
"Exit status: 0 ok, 64 usage, 65 refused or integrity error, 67 not found,\n"
"69 daemon unavailable, 70 internal error, 75 try again later (database busy,\n"
"disk full: nothing was taken), 77 permission denied.\n";

static int
exit_code(int rv)
{
	switch (rv) {
	case ROIGATE_OK:
		return 0;
	case ROIGATE_E_UNAVAILABLE:
		return EX_UNAVAILABLE;
	case ROIGATE_E_DENIED:
		return EX_NOPERM;
	case ROIGATE_E_INVALID:
		return EX_DATAERR;
	case ROIGATE_E_NOTFOUND:
		return EX_NOUSER;
	case ROIGATE_E_SYSTEM:
		return EX_OSERR;
	case ROIGATE_E_TEMPFAIL:
		return EX_TEMPFAIL;
	default:
		return EX_SOFTWARE;
	}
}

/* Call op with args (consumed); on success *res is the result object. */
static int
call(struct roigate *rg, const char *op, json_t *args, json_t **res)
{
	char	*text = json_dumps(args, JSON_COMPACT), *out = NULL, err[8192];
	int	 rv;

	json_decref(args);
	rv = roigate_call(rg, op, text, &out, err, sizeof(err));
	free(text);
	if (rv != ROIGATE_OK) {
		fprintf(stderr, "roictl: %s\n", err);
		return exit_code(rv);
	}
	*res = json_loads(out, 0, NULL);
	free(out);
	return *res ? 0 : EX_PROTOCOL;
}

static void
print_json(json_t *j)
{
	char	*s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s)
		puts(s);
	free(s);
}

/* JSON Lines: one object per line. */
static void
print_lines(json_t *arr)
{
	size_t	 i;
	json_t	*v;

	json_array_foreach(arr, i, v)
		print_json(v);
}

static const char *
s_(json_t *o, const char *k)
{
	const char	*s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static long long
i_(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static int
want_help(int argc, char **argv, const struct cmd *c)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: roictl %s\n\n%s\n", c->usage, c->help);
			return 1;
		}
	return 0;
}

static int
cmd_status(struct roigate *rg, int argc, char **argv)
{
	json_t		*r, *v;
	const char	*k;
	size_t		 i;
	int		 rv;

	if (argc != 1)
		return EX_USAGE;
	if ((rv = call(rg, "status", json_object(), &r)) != 0)
		return rv;
	if (json_out) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	printf("Jobs by state:\n");
	json_object_foreach(json_object_get(r, "states"), k, v)
		printf("  %-22s %lld\n", k, (long long)json_integer_value(v));
	printf("Jobs in progress by transport:\n");
	json_object_foreach(json_object_get(r, "transports"), k, v)
		printf("  %-22s %lld\n", k, (long long)json_integer_value(v));
	v = json_object_get(r, "oldest_queued_age");
	if (json_is_integer(v))
		printf("Oldest waiting job:      %lld s\n", (long long)json_integer_value(v));
	else
		printf("Oldest waiting job:      none waiting\n");
	v = json_object_get(r, "oldest_open_request_age");
	if (json_is_integer(v))
		printf("Oldest open request:     %lld days\n",
		    (long long)json_integer_value(v));
	printf("Delivered in last hour:  %lld\n", i_(r, "delivered_last_hour"));
	printf("Workers running:         %lld\n", i_(r, "workers_running"));
	if (json_is_string(json_object_get(r, "instance")))
		printf("Database instance:       %s\n", s_(r, "instance"));
	json_array_foreach(json_object_get(r, "problems"), i, v)
		printf("PROBLEM: %s\n", json_string_value(v));
	if (json_array_size(json_object_get(r, "last_errors")))
		printf("Recent errors:\n");
	json_array_foreach(json_object_get(r, "last_errors"), i, v)
		printf("  job %-6lld %-12s %s  %s\n", i_(v, "job"), s_(v, "state"),
		    s_(v, "at"), s_(v, "error"));
	json_decref(r);
	return 0;
}

/* The numbers roigate-exporter serves, as JSON (role metrics or operate). */
static int
cmd_metrics(struct roigate *rg, int argc, char **argv)
{
	json_t	*r;
	int	 rv;

	if (argc != 1)
		return EX_USAGE;
	if ((rv = call(rg, "metrics", json_object(), &r)) != 0)
		return rv;
	print_json(r);
	json_decref(r);
	return 0;
}

/* qshape: waiting jobs by recipient against age buckets. */
static void
shape_row(json_t *row, int width)
{
	size_t	 i;
	json_t	*v;

	printf("%*.*s %6lld", width, width, s_(row, "recipient"), i_(row, "total"));
	json_array_foreach(json_object_get(row, "counts"), i, v)
		printf(" %5lld", (long long)json_integer_value(v));
	printf("\n");
}

static int
cmd_shape(struct roigate *rg, int argc, char **argv)
{
	json_t	*r, *v;
	size_t	 i;
	int	 rv;

	if (argc != 1)
		return EX_USAGE;
	if ((rv = call(rg, "shape", json_object(), &r)) != 0)
		return rv;
	if (json_out) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	printf("%24s %6s", "", "T");
	json_array_foreach(json_object_get(r, "buckets"), i, v)
		printf(" %5s", json_string_value(v));
	printf("\n");
	shape_row(json_object_get(r, "total"), 24);
	json_array_foreach(json_object_get(r, "recipients"), i, v)
		shape_row(v, 24);
	json_array_foreach(json_object_get(r, "recipients"), i, v)
		if (i_(v, "limited") > 0)
			printf("%s: %lld %s\n", s_(v, "recipient"), i_(v, "limited"),
			    s_(v, "limit_reason"));
	json_decref(r);
	return 0;
}

/* Open alerts, then the recently resolved ones. */
static int
cmd_alerts(struct roigate *rg, int argc, char **argv)
{
	json_t	*r, *v;
	size_t	 i;
	int	 rv;

	if (argc != 1)
		return EX_USAGE;
	if ((rv = call(rg, "alerts", json_object(), &r)) != 0)
		return rv;
	if (json_out)
		print_lines(json_object_get(r, "alerts"));
	else {
		printf("%-5s %-9s %-12s %-28s %-20s %-20s %5s  %s\n", "ID", "STATUS",
		    "RULE", "SUBJECT", "OPENED", "RESOLVED", "COUNT", "SUMMARY");
		json_array_foreach(json_object_get(r, "alerts"), i, v)
			printf("%-5lld %-9s %-12s %-28.28s %-20s %-20s %5lld  %.80s\n",
			    i_(v, "id"), s_(v, "status"), s_(v, "rule"), s_(v, "subject"),
			    s_(v, "opened_at"), json_is_string(json_object_get(v,
			    "resolved_at")) ? s_(v, "resolved_at") : "-", i_(v, "count"),
			    s_(v, "summary"));
	}
	json_decref(r);
	return 0;
}

/* --limit N: a whole number of rows, 1 or more, into args. */
static int
limit_arg(const char *s, json_t *args)
{
	char		*end;
	long long	 n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || n < 1 || n > INT_MAX) {
		fprintf(stderr, "roictl: --limit \"%.40s\": give a whole number of "
		    "rows, 1 or more\n", s);
		return -1;
	}
	json_object_set_new(args, "limit", json_integer(n));
	return 0;
}

static int
cmd_list(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "transport", required_argument, NULL, 't' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *r, *v;
	size_t	 i;
	int	 ch, rv;

	optind = 0;	/* 0: GNU getopt starts afresh (permuting) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's')
			json_object_set_new(args, "state", json_string(optarg));
		else if (ch == 't')
			json_object_set_new(args, "transport", json_string(optarg));
		else if (ch != 'l' || limit_arg(optarg, args) == -1) {
			json_decref(args);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		json_decref(args);
		return EX_USAGE;
	}
	if ((rv = call(rg, "list", args, &r)) != 0)
		return rv;
	if (json_out)
		print_lines(json_object_get(r, "jobs"));
	else {
		printf("%-7s %-22s %-12s %-10s %-16s %4s  %s\n", "JOB", "STATE",
		    "TRANSPORT", "RECIPIENT", "PACKET", "TRY", "LAST ERROR");
		json_array_foreach(json_object_get(r, "jobs"), i, v)
			printf("%-7lld %-22s %-12.12s %-10.10s %-16.16s %4lld  %.60s\n",
			    i_(v, "id"), s_(v, "state"), s_(v, "transport"),
			    s_(v, "recipient"), s_(v, "packet_id"), i_(v, "attempts"),
			    json_is_string(json_object_get(v, "last_error")) ?
			    s_(v, "last_error") : "");
	}
	json_decref(r);
	return 0;
}

static int
job_arg(const char *s, long long *id)
{
	char	*end;

	*id = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || *id <= 0) {
		fprintf(stderr, "roictl: \"%s\" is not a job number\n", s);
		return -1;
	}
	return 0;
}

static int
cmd_show(struct roigate *rg, int argc, char **argv)
{
	json_t		*r, *j, *v, *val;
	const char	*k;
	long long	 id;
	size_t		 i;
	int		 rv;

	if (argc != 2)
		return EX_USAGE;
	if (job_arg(argv[1], &id) == -1)
		return EX_USAGE;
	if ((rv = call(rg, "show", json_pack("{s:I}", "job", (json_int_t)id), &r)) != 0)
		return rv;
	if (json_out) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	j = json_object_get(r, "job");
	json_object_foreach(j, k, val) {
		char *s = json_is_string(val) ? NULL : json_dumps(val, JSON_ENCODE_ANY);
		printf("%-14s %s\n", k, s ? s : json_string_value(val));
		free(s);
	}
	printf("\nHistory:\n");
	json_array_foreach(json_object_get(r, "events"), i, v)
		printf("  %s  %-12s -> %-22s %-20s %s\n", s_(v, "at"), s_(v, "from"),
		    s_(v, "to"), s_(v, "actor"), s_(v, "reason"));
	if (json_array_size(json_object_get(r, "redactions")) > 0) {
		printf("\nRedactions (attempt %lld; boxes in points, or pixels for "
		    "images, from the page's top-left):\n", i_(json_array_get(
		    json_object_get(r, "redactions"), 0), "attempt"));
		json_array_foreach(json_object_get(r, "redactions"), i, v) {
			json_t *b = json_object_get(v, "box");
			printf("  document %lld page %-4lld %8.1f %8.1f %7.1f x %-7.1f %s\n",
			    i_(v, "document"), i_(v, "page"),
			    json_real_value(json_array_get(b, 0)),
			    json_real_value(json_array_get(b, 1)),
			    json_real_value(json_array_get(b, 2)),
			    json_real_value(json_array_get(b, 3)), s_(v, "pattern"));
		}
	}
	printf("\nDisclosure log:\n");
	json_array_foreach(json_object_get(r, "disclosures"), i, v)
		printf("  #%-5lld %s  %-11s %s %s\n", i_(v, "seq"), s_(v, "at"),
		    s_(v, "outcome"), s_(v, "remote_id"), s_(v, "detail"));
	json_decref(r);
	return 0;
}

static int
job_command(struct roigate *rg, const char *op, int argc, char **argv)
{
	json_t		*r;
	long long	 id;
	int		 rv, worst = 0;

	if (argc < 2)
		return EX_USAGE;
	for (int i = 1; i < argc; i++) {
		if (job_arg(argv[i], &id) == -1)
			return EX_USAGE;
		if ((rv = call(rg, op, json_pack("{s:I}", "job", (json_int_t)id), &r)) != 0) {
			worst = rv;
			continue;
		}
		if (json_out)
			print_json(r);
		else
			printf("job %lld: %s\n", id, s_(r, "state"));
		json_decref(r);
	}
	return worst;
}

static int
cmd_hold(struct roigate *rg, int argc, char **argv)
{
	return job_command(rg, "hold", argc, argv);
}

static int
cmd_release(struct roigate *rg, int argc, char **argv)
{
	return job_command(rg, "release", argc, argv);
}

static int
cmd_retry(struct roigate *rg, int argc, char **argv)
{
	return job_command(rg, "retry", argc, argv);
}

static int
cmd_cancel(struct roigate *rg, int argc, char **argv)
{
	return job_command(rg, "cancel", argc, argv);
}

static int
cmd_log(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mrn", required_argument, NULL, 'm' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "job", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *r, *v;
	size_t	 i;
	int	 ch, rv;

	optind = 0;	/* 0: GNU getopt starts afresh (permuting) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *key = ch == 'm' ? "mrn" : ch == 'r' ? "recipient" :
		    ch == 's' ? "since" : ch == 'u' ? "until" : NULL;
		if (key)
			json_object_set_new(args, key, json_string(optarg));
		else if (ch == 'j')
			json_object_set_new(args, "job", json_integer(atoll(optarg)));
		else {
			json_decref(args);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		json_decref(args);
		return EX_USAGE;
	}
	if ((rv = call(rg, "log", args, &r)) != 0)
		return rv;
	if (json_out)
		print_lines(json_object_get(r, "entries"));
	else
		json_array_foreach(json_object_get(r, "entries"), i, v) {
			printf("#%lld %s job %lld %s via %s to %s (%s, %s)\n", i_(v, "seq"),
			    s_(v, "at"), i_(v, "job"), s_(v, "outcome"), s_(v, "transport"),
			    s_(v, "recipient_name"), s_(v, "recipient_address"),
			    s_(v, "recipient_id"));
			printf("    patient %s (MRN %s); %s\n", s_(v, "patient_name"),
			    s_(v, "mrn"), s_(v, "description"));
			printf("    purpose: %s; basis: %s; authorization: %s%s\n",
			    s_(v, "purpose"), s_(v, "basis"), s_(v, "authorization_id"),
			    json_is_true(json_object_get(v, "accountable")) ?
			    "; accountable under 164.528" : "");
			if (i_(v, "pages") > 0)
				printf("    sent %lld pages, sha256 %s", i_(v, "pages"),
				    s_(v, "output_sha256"));
			else
				printf("    sent sha256 %s", s_(v, "output_sha256"));
			if (strcmp(s_(v, "remote_id"), "-") && *s_(v, "remote_id"))
				printf("; remote id %s", s_(v, "remote_id"));
			if (strcmp(s_(v, "detail"), "-") && *s_(v, "detail"))
				printf("; %s", s_(v, "detail"));
			printf("\n");
		}
	json_decref(r);
	return 0;
}

/* A date of the result as YYYY-MM-DD (the first 10 characters). */
static const char *
day_(json_t *o, const char *k)
{
	const char	*v = json_string_value(json_object_get(o, k));

	return v ? v : "-";
}

/*
 * prune [--dry-run]: what the retention period lets go; the daemon writes
 * the sealed prune record and removes in the background.
 */
static int
cmd_prune(struct roigate *rg, int argc, char **argv)
{
	json_t	*r, *t, *args = json_object();
	size_t	 i;
	int	 dry = 0, rv;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--dry-run") == 0)
			dry = 1;
		else {
			json_decref(args);
			return EX_USAGE;
		}
	}
	json_object_set_new(args, "dry_run", json_boolean(dry));
	if ((rv = call(rg, "prune", args, &r)) != 0)
		return rv;
	if (json_out) {
		print_json(r);
		json_decref(r);
		return 0;
	}
	printf("%s records sealed before %.10s (retention %lld days):\n",
	    dry ? "would remove" : "removing", day_(r, "before"),
	    i_(r, "records_retention_days"));
	json_array_foreach(json_object_get(r, "tables"), i, t) {
		if (i_(t, "count") == 0)
			printf("  %-12s nothing\n", s_(t, "name"));
		else
			printf("  %-12s %lld entries (%lld to %lld), from %.10s to %.10s\n",
			    s_(t, "name"), i_(t, "count"), i_(t, "from"), i_(t, "to"),
			    day_(t, "first_at"), day_(t, "last_at"));
	}
	printf("job folders (jobs/ID of jobs finished longer than [retention] jobs): "
	    "%lld, %lld bytes%s\n", i_(r, "job_folders"), i_(r, "job_bytes"),
	    dry ? "" : " (being removed)");
	if (!dry && i_(r, "record") > 0)
		printf("prune record %lld written (sealed); the removal runs in the "
		    "daemon, which logs when it is done\n", i_(r, "record"));
	else if (!dry)
		printf("nothing to prune: no sealed epoch ended before then\n");
	if (json_is_true(json_object_get(r, "removing")))
		printf("(an earlier prune's removal is still under way)\n");
	json_decref(r);
	return 0;
}

static int
cmd_verify_log(struct roigate *rg, int argc, char **argv)
{
	const char	*keyfile = NULL, *cp = NULL, *tail;
	char		 key[512];
	json_t		*r, *args = json_object();
	FILE		*f;
	size_t		 n;
	int		 rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc)
			keyfile = argv[++i];
		else if (strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc)
			cp = argv[++i];
		else {
			json_decref(args);
			return EX_USAGE;
		}
	}
	if (keyfile) {
		/* The auditor's verification key travels in this request over
		 * the local socket; the daemon never stores or logs it. */
		if ((f = fopen(keyfile, "re")) == NULL) {
			fprintf(stderr, "roictl: %s: cannot open it\n", keyfile);
			json_decref(args);
			return EX_NOINPUT;
		}
		n = fread(key, 1, sizeof(key) - 1, f);
		fclose(f);
		key[n] = '\0';
		json_object_set_new(args, "key", json_string(key));
		explicit_bzero(key, sizeof(key));
	}
	if (cp)
		json_object_set_new(args, "checkpoint", json_string(cp));
	if ((rv = call(rg, "verify-log", args, &r)) != 0)
		return rv;
	if (json_out)
		print_json(r);
	else if (keyfile) {
		char		when[32] = "?";
		time_t		last = (time_t)i_(r, "last_seal_at");
		struct tm	tm;

		/* The last seal's date: a tail cut off with its seals leaves
		 * an intact log that ends early. */
		if (gmtime_r(&last, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("disclosure log intact and sealed: %lld entries, %lld audit "
		    "entries, %lld epochs, the last ending %s\n", i_(r, "entries"),
		    i_(r, "audit_entries"), i_(r, "epochs"), when);
		if ((tail = json_string_value(json_object_get(r, "pruned"))) && *tail)
			printf("%s\n", tail);
		if ((tail = json_string_value(json_object_get(r, "unsealed"))) && *tail)
			printf("%s\n", tail);
	} else {
		printf("disclosure log intact: %lld entries\n", i_(r, "entries"));
		printf("(hash chain only: without the verification key this proves "
		    "nothing against\nsomeone with the daemon's own rights; use "
		    "--key-file)\n");
	}
	if (cp && !json_out)
		printf("checkpoint held: the log still holds the entries it names\n");
	json_decref(r);
	return 0;
}

static int
cmd_audit(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *r, *v;
	size_t	 i;
	int	 ch, rv;

	optind = 0;	/* 0: GNU getopt starts afresh (permuting) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 's')
			json_object_set_new(args, "since", json_string(optarg));
		else if (ch != 'l' || limit_arg(optarg, args) == -1) {
			json_decref(args);
			return EX_USAGE;
		}
	}
	if ((rv = call(rg, "audit", args, &r)) != 0)
		return rv;
	if (json_out)
		print_lines(json_object_get(r, "entries"));
	else
		json_array_foreach(json_object_get(r, "entries"), i, v)
			printf("%s uid %-6lld %-22s %-18s %-14s %-7s %s\n", s_(v, "at"),
			    i_(v, "uid"), s_(v, "role"), s_(v, "op"), s_(v, "target"),
			    s_(v, "outcome"), s_(v, "detail"));
	json_decref(r);
	return 0;
}

static void
print_recipient(json_t *v)
{
	printf("%-16s %-10s %-5s %-8s %-24.24s %s\n", s_(v, "id"), s_(v, "transport"),
	    json_is_true(json_object_get(v, "verified")) ? "yes" : "no",
	    json_is_true(json_object_get(v, "disabled")) ? "disabled" : "active",
	    s_(v, "address"), s_(v, "name"));
}

/* Start a probe of recipient id and wait for its answer (it runs in a
 * worker of the daemon); *r is the probe's result object. */
static int
probe_wait(struct roigate *rg, const char *id, json_t **r)
{
	struct timespec	pause = { 0, 200 * 1000000L };
	int		rv;

	if ((rv = call(rg, "recipient-probe", json_pack("{s:s, s:b}", "recipient",
	    id, "start", 1), r)) != 0)
		return rv;
	for (int waited = 0; strcmp(s_(*r, "state"), "probing") == 0; waited++) {
		json_decref(*r);
		if (waited > 5 * 120) {
			fprintf(stderr, "roictl: no answer from the probe of %s\n", id);
			return EX_UNAVAILABLE;
		}
		nanosleep(&pause, NULL);
		if ((rv = call(rg, "recipient-probe", json_pack("{s:s}", "recipient",
		    id), r)) != 0)
			return rv;
	}
	return 0;
}

/* A parameter's value from a file (at most 64 KiB of text). */
static char *
read_param_file(const char *path)
{
	FILE	*fp = fopen(path, "re");
	char	*buf;
	size_t	 n;

	if (fp == NULL) {
		fprintf(stderr, "roictl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, 65537);
	n = buf ? fread(buf, 1, 65536, fp) : 0;
	if (buf == NULL || ferror(fp) || !feof(fp) || memchr(buf, '\0', n)) {
		fprintf(stderr, "roictl: %s: not a text file of at most 64 KiB\n", path);
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static int
recipient_add(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "organization", required_argument, NULL, 'o' },
		{ "transport", required_argument, NULL, 't' },
		{ "address", required_argument, NULL, 'a' },
		{ "param", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *params = json_object(), *r;
	char	*eq, *text;
	int	 ch, rv;

	optind = 0;	/* 0: GNU getopt starts afresh (permuting) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *key = ch == 'n' ? "name" : ch == 'o' ? "organization" :
		    ch == 't' ? "transport" : ch == 'a' ? "address" : NULL;
		if (key)
			json_object_set_new(args, key, json_string(optarg));
		else if (ch == 'p' && (eq = strchr(optarg, '=')) != NULL) {
			*eq = '\0';
			if (eq[1] == '@') {
				/* K=@FILE: the value is the file's text (a certificate) */
				if ((text = read_param_file(eq + 2)) == NULL) {
					json_decref(args);
					json_decref(params);
					return EX_NOINPUT;
				}
				json_object_set_new(params, optarg, json_string(text));
				free(text);
			} else
				json_object_set_new(params, optarg, json_string(eq + 1));
		} else
			goto usage;
	}
	if (optind != argc - 1)
		goto usage;
	json_object_set_new(args, "recipient", json_string(argv[optind]));
	json_object_set_new(args, "params", params);
	if ((rv = call(rg, "recipient-add", args, &r)) != 0)
		return rv;
	if (json_out)
		print_json(r);
	else
		printf("recipient %s added; not verified yet: confirm the destination, "
		    "then run `roictl recipient verify %s`\n", s_(r, "id"), s_(r, "id"));
	json_decref(r);
	/* Check the destination at once (a certificate, a host key), so that
	 * a problem shows now rather than at verification. */
	if ((rv = probe_wait(rg, argv[optind], &r)) != 0)
		return rv;
	if (strcmp(s_(r, "state"), "failed") == 0) {
		fprintf(stderr, "roictl: warning: recipient %s cannot be verified as it "
		    "is: %s\n", argv[optind], s_(r, "detail"));
		json_decref(r);
		return EX_DATAERR;
	}
	if (!json_out && strcmp(s_(r, "state"), "done") == 0)
		printf("checked: %s\n", s_(r, "detail"));
	json_decref(r);
	return 0;
usage:
	json_decref(args);
	json_decref(params);
	return EX_USAGE;
}

/*
 * recipient verify ID [--yes | --expect VALUE]: probe the destination
 * (for SFTP: fetch the server's host key), show what was found, and pin
 * it once the administrator confirms.  Transports with nothing to probe
 * are simply marked verified.
 */
static int
recipient_verify(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "expect", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*expect = NULL, *id, *state;
	json_t		*r = NULL, *pin;
	char		 answer[16];
	int		 ch, rv, yes = 0;

	optind = 0;	/* 0: GNU getopt starts afresh (permuting) */
	while ((ch = getopt_long(argc, argv, "y", opts, NULL)) != -1) {
		if (ch == 'y')
			yes = 1;
		else if (ch == 'e')
			expect = optarg;
		else
			return EX_USAGE;
	}
	if (optind != argc - 1)
		return EX_USAGE;
	id = argv[optind];
	if ((rv = probe_wait(rg, id, &r)) != 0)
		return rv;
	state = s_(r, "state");
	if (strcmp(state, "failed") == 0) {
		fprintf(stderr, "roictl: recipient %s cannot be verified: %s\n", id,
		    s_(r, "detail"));
		json_decref(r);
		return EX_UNAVAILABLE;
	}
	if (strcmp(state, "done") != 0) {	/* nothing to probe */
		json_decref(r);
		if ((rv = call(rg, "recipient-verify", json_pack("{s:s}", "recipient",
		    id), &r)) != 0)
			return rv;
		printf("recipient %s verified\n", id);
		json_decref(r);
		return 0;
	}
	printf("recipient %s: %s\n", id, s_(r, "detail"));
	if (expect && strcmp(expect, s_(r, "value")) != 0) {
		fprintf(stderr, "roictl: %s offers %s %s, not %s: recipient %s is not "
		    "verified\n", id, s_(r, "param"), s_(r, "value"), expect, id);
		json_decref(r);
		return EX_DATAERR;
	}
	if (!yes && !expect) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "roictl: confirm with --yes, or give the value the "
			    "partner told you with --expect VALUE\n");
			json_decref(r);
			return EX_USAGE;
		}
		printf("Pin %s %s and mark %s verified? [y/N] ", s_(r, "param"),
		    s_(r, "value"), id);
		fflush(stdout);
		if (fgets(answer, sizeof(answer), stdin) == NULL ||
		    (answer[0] != 'y' && answer[0] != 'Y')) {
			printf("recipient %s is not verified\n", id);
			json_decref(r);
			return EX_DATAERR;
		}
	}
	pin = json_pack("{s:s, s:s}", "param", s_(r, "param"), "value", s_(r, "value"));
	json_decref(r);
	json_incref(pin);
	if ((rv = call(rg, "recipient-verify", json_pack("{s:s, s:o}", "recipient",
	    id, "pin", pin), &r)) != 0) {
		json_decref(pin);
		return rv;
	}
	printf("recipient %s verified; pinned %s %s\n", id, s_(pin, "param"),
	    s_(pin, "value"));
	json_decref(pin);
	json_decref(r);
	return 0;
}

static int
cmd_recipient(struct roigate *rg, int argc, char **argv)
{
	json_t	*r, *v;
	size_t	 i;
	int	 rv;

	if (argc < 2)
		return EX_USAGE;
	if (strcmp(argv[1], "add") == 0)
		return recipient_add(rg, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		if ((rv = call(rg, "recipient-list", json_object(), &r)) != 0)
			return rv;
		if (json_out)
			print_lines(json_object_get(r, "recipients"));
		else {
			printf("%-16s %-10s %-5s %-8s %-24s %s\n", "ID", "TRANSPORT",
			    "VERIF", "STATE", "ADDRESS", "NAME");
			json_array_foreach(json_object_get(r, "recipients"), i, v)
				print_recipient(v);
		}
		json_decref(r);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "verify") == 0)
		return recipient_verify(rg, argc - 1, argv + 1);
	if (argc != 3 || (strcmp(argv[1], "show") && strcmp(argv[1], "disable")))
		return EX_USAGE;
	char op[32];
	snprintf(op, sizeof(op), "recipient-%s", argv[1]);
	if ((rv = call(rg, op, json_pack("{s:s}", "recipient", argv[2]), &r)) != 0)
		return rv;
	if (json_out)
		print_json(r);
	else if (strcmp(argv[1], "show") == 0) {
		char *s = json_dumps(r, JSON_INDENT(2));
		puts(s ? s : "");
		free(s);
	} else
		printf("recipient %s %s\n", argv[2], strcmp(argv[1], "verify") ?
		    "disabled" : "verified");
	json_decref(r);
	return 0;
}

static int
cmd_submit(struct roigate *rg, int argc, char **argv)
{
	char	err[16384];
	int64_t	job;
	int	rv;

	if (argc != 2)
		return EX_USAGE;
	if ((rv = roigate_submit_dir(rg, argv[1], &job, err, sizeof(err))) != 0) {
		fprintf(stderr, "roictl: %s\n", err);
		return exit_code(rv);
	}
	if (json_out)
		printf("{\"job\":%lld,\"state\":\"queued\"}\n", (long long)job);
	else
		printf("accepted as job %lld\n", (long long)job);
	return 0;
}

/*
 * watch: a refreshing status screen, like top(1).  Raw terminal input so
 * that a single 'q' quits; the screen is redrawn every interval, at once
 * on a key or a resize, and a lost daemon is shown and retried.
 */
static struct termios	 watch_saved;
static int		 watch_raw;
static volatile sig_atomic_t watch_resized, watch_stop;

static void
watch_restore(void)
{
	if (watch_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &watch_saved);
		watch_raw = 0;
	}
	fputs("\033[?25h\n", stdout);	/* show the cursor again */
	fflush(stdout);
}

static void
watch_signal(int signo)
{
	if (signo == SIGWINCH)
		watch_resized = 1;
	else
		watch_stop = 1;
}

static int
watch_rows(void)
{
	struct winsize	ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

/* One operation, quietly: the result object or NULL with err. */
static json_t *
watch_call(struct roigate *rg, const char *op, const char *args, char *err,
    size_t errlen)
{
	char	*out = NULL;
	json_t	*r;

	if (roigate_call(rg, op, args, &out, err, errlen) != ROIGATE_OK)
		return NULL;
	r = json_loads(out, 0, NULL);
	free(out);
	return r;
}

/* Open alerts and the recipients held back by a limit; lines used. */
static int
watch_alerts(struct roigate *rg)
{
	char	 err[512];
	json_t	*al, *sh, *v;
	size_t	 i;
	int	 used = 0;

	if ((al = watch_call(rg, "alerts", "{}", err, sizeof(err))) != NULL) {
		json_array_foreach(json_object_get(al, "alerts"), i, v)
			if (!strcmp(s_(v, "status"), "firing") && used < 8) {
				printf("ALERT %s %s: %.100s (%lld)\n", s_(v, "rule"),
				    s_(v, "subject"), s_(v, "summary"), i_(v, "count"));
				used++;
			}
		json_decref(al);
	}
	if ((sh = watch_call(rg, "shape", "{}", err, sizeof(err))) != NULL) {
		json_array_foreach(json_object_get(sh, "recipients"), i, v)
			if (i_(v, "limited") > 0 && used < 12) {
				printf("WAIT  %s: %lld job(s) %.100s\n", s_(v, "recipient"),
				    i_(v, "limited"), s_(v, "limit_reason"));
				used++;
			}
		json_decref(sh);
	}
	return used;
}

/* Redraw the screen; -1 if the daemon could not be asked. */
static int
watch_draw(struct roigate *rg, int interval)
{
	char		 err[512] = "", now[32], args[64];
	json_t		*st = NULL, *ls = NULL, *v;
	const char	*k;
	time_t		 t = time(NULL);
	size_t		 i;
	int		 rows = watch_rows(), used = 0;

	strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", localtime(&t));
	printf("\033[H\033[2J");
	printf("roigate  %s  (every %d s; q quits)\n\n", now, interval);
	used += 2;
	if (rg == NULL || (st = watch_call(rg, "status", "{}", err, sizeof(err))) == NULL) {
		printf("daemon unavailable: %s\n", err[0] ? err : "not connected");
		fflush(stdout);
		return -1;
	}
	printf("%s", json_is_true(json_object_get(st, "draining")) ?
	    "DRAINING (stopping)\n" : "");
	json_object_foreach(json_object_get(st, "states"), k, v)
		if (json_integer_value(v) > 0 || !strcmp(k, "queued") ||
		    !strcmp(k, "delivered"))
			printf("%s %lld   ", k, (long long)json_integer_value(v));
	printf("\n");
	v = json_object_get(st, "oldest_queued_age");
	if (json_is_integer(v))
		snprintf(args, sizeof(args), "%lld s", (long long)json_integer_value(v));
	else
		snprintf(args, sizeof(args), "none");
	printf("oldest waiting: %s   delivered last hour: %lld   workers: %lld\n",
	    args, i_(st, "delivered_last_hour"), i_(st, "workers_running"));
	used += 3;
	json_array_foreach(json_object_get(st, "problems"), i, v) {
		printf("PROBLEM: %.200s\n", json_string_value(v));
		used++;
	}
	used += watch_alerts(rg);
	printf("\n%-7s %-22s %-12s %-14s %-20s %4s  %s\n", "JOB", "STATE",
	    "TRANSPORT", "RECIPIENT", "PACKET", "TRY", "LAST ERROR");
	used += 2;
	snprintf(args, sizeof(args), "{\"limit\": %d}", rows - used > 1 ? rows - used - 1 : 1);
	if ((ls = watch_call(rg, "list", args, err, sizeof(err))) == NULL)
		printf("(jobs not shown: %s)\n", err);
	else
		json_array_foreach(json_object_get(ls, "jobs"), i, v)
			printf("%-7lld %-22s %-12.12s %-14.14s %-20.20s %4lld  %.40s\n",
			    i_(v, "id"), s_(v, "state"), s_(v, "transport"),
			    s_(v, "recipient"), s_(v, "packet_id"), i_(v, "attempts"),
			    json_is_string(json_object_get(v, "last_error")) ?
			    s_(v, "last_error") : "");
	fflush(stdout);
	json_decref(st);
	json_decref(ls);
	return 0;
}

static int
cmd_watch(struct roigate *rg, int argc, char **argv)
{
	struct sigaction	 sa;
	struct termios		 raw;
	struct roigate		*own = NULL;
	char			 err[512];
	int			 interval = 2;

	if (argc == 3 && (!strcmp(argv[1], "-n") || !strcmp(argv[1], "--interval"))) {
		interval = atoi(argv[2]);
		if (interval < 1 || interval > 3600)
			return EX_USAGE;
	} else if (argc != 1)
		return EX_USAGE;
	if (json_out) {
		fprintf(stderr, "roictl: watch is a screen; use `status --json`\n");
		return EX_USAGE;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "roictl: watch needs a terminal\n");
		return EX_USAGE;
	}
	/* A frame is written whole at its fflush, not line by line between
	 * the daemon's answers (a half-drawn screen, and flicker). */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	tcgetattr(STDIN_FILENO, &watch_saved);
	raw = watch_saved;
	raw.c_lflag &= ~(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	watch_raw = 1;
	atexit(watch_restore);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_signal;
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fputs("\033[?25l", stdout);	/* hide the cursor */
	while (!watch_stop) {
		struct pollfd	pfd = { STDIN_FILENO, POLLIN, 0 };
		char		c;

		if (watch_draw(own ? own : rg, interval) == -1) {
			/* The daemon went away (restart?): connect afresh. */
			if (own)
				roigate_close(own);
			own = roigate_connect(sockpath, err, sizeof(err));
			rg = NULL;
		}
		watch_resized = 0;
		if (poll(&pfd, 1, interval * 1000) == 1 && read(STDIN_FILENO, &c, 1) == 1 &&
		    (c == 'q' || c == 'Q'))
			break;
	}
	if (own)
		roigate_close(own);
	watch_restore();
	return 0;
}

/* Write len bytes to FILE (or stdout when NULL or "-"). */
static int
write_out(const char *path, const void *p, size_t len)
{
	FILE	*f = stdout;
	int	 fd;

	/* A report names a patient: the file is the caller's alone (0600),
	 * and a symbolic link in its place is not followed. */
	if (path && strcmp(path, "-") && ((fd = open(path, O_WRONLY | O_CREAT |
	    O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL))
		f = NULL;
	if (f == NULL) {
		fprintf(stderr, "roictl: %s: %s\n", path, strerror(errno));
		return EX_CANTCREAT;
	}
	if (fwrite(p, 1, len, f) != len || (f != stdout ? fclose(f) : fflush(f))) {
		fprintf(stderr, "roictl: %s: write error\n", path ? path : "stdout");
		return EX_IOERR;
	}
	return 0;
}

static int
accounting_suspend(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agency", required_argument, NULL, 'a' },
		{ "until", required_argument, NULL, 'u' },
		{ "oral", no_argument, NULL, 'o' },
		{ "mrn", required_argument, NULL, 'm' },
		{ "note", required_argument, NULL, 'n' },
		{ "list", no_argument, NULL, 'l' },
		{ "end", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *r, *v;
	size_t	 i;
	int	 ch, rv;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *key = ch == 'a' ? "agency" : ch == 'u' ? "until" :
		    ch == 'm' ? "mrn" : ch == 'n' ? "note" : NULL;
		if (key)
			json_object_set_new(args, key, json_string(optarg));
		else if (ch == 'o' || ch == 'l')
			json_object_set_new(args, ch == 'o' ? "oral" : "list", json_true());
		else if (ch == 'e')
			json_object_set_new(args, "end", json_integer(atoll(optarg)));
		else {
			json_decref(args);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		json_decref(args);
		return EX_USAGE;
	}
	if ((rv = call(rg, "accounting-suspend", args, &r)) != 0)
		return rv;
	if (json_out && json_object_get(r, "suspensions"))
		print_lines(json_object_get(r, "suspensions"));
	else if (json_out)
		print_json(r);
	else if (json_object_get(r, "suspensions"))
		json_array_foreach(json_object_get(r, "suspensions"), i, v)
			printf("%lld %s%s until %s (in effect to %s%s) for %s%s; "
			    "recorded %s by %s\n", i_(v, "id"), s_(v, "agency"),
			    json_is_true(json_object_get(v, "oral")) ? " (oral)" : "",
			    s_(v, "until"), s_(v, "effective_end"),
			    json_is_null(json_object_get(v, "ended_at")) ? "" :
			    ", ended early", json_is_string(json_object_get(v, "mrn")) ?
			    "MRN " : "", json_is_string(json_object_get(v, "mrn")) ?
			    s_(v, "mrn") : "every patient", s_(v, "at"), s_(v, "by"));
	else
		printf("suspension %lld: %s\n", i_(r, "id"), s_(r, "action"));
	json_decref(r);
	return 0;
}

static int
report_write(json_t *r, const char *fmt, const char *out)
{
	const char	*b64 = json_string_value(json_object_get(r, "pdf"));
	unsigned char	*pdf;
	char		*s, *line;
	int		 n, rv;
	size_t		 len;

	if (json_integer_value(json_object_get(r, "held_back")) > 0)
		fprintf(stderr, "roictl: %lld entries held back by an agency's "
		    "suspension (roictl accounting suspend --list)\n",
		    (long long)json_integer_value(json_object_get(r, "held_back")));
	if (strcmp(fmt, "pdf") == 0 && b64) {
		len = strlen(b64);
		pdf = malloc(len / 4 * 3 + 3);
		if (pdf == NULL || (n = EVP_DecodeBlock(pdf, (const unsigned char *)b64,
		    (int)len)) < 0) {
			free(pdf);
			return EX_PROTOCOL;
		}
		/* EVP_DecodeBlock counts the padding's bytes too. */
		while (len > 0 && b64[len - 1] == '=')
			len--, n--;
		rv = write_out(out, pdf, (size_t)n);
		free(pdf);
		return rv;
	}
	if (strcmp(fmt, "text") == 0) {
		const char *t = json_string_value(json_object_get(r, "text"));

		return t ? write_out(out, t, strlen(t)) : EX_PROTOCOL;
	}
	s = json_dumps(json_object_get(r, "report"), JSON_SORT_KEYS | JSON_INDENT(2));
	if (s == NULL || asprintf(&line, "%s\n", s) == -1) {
		free(s);
		return EX_SOFTWARE;
	}
	free(s);
	rv = write_out(out, line, strlen(line));
	free(line);
	return rv;
}

/*
 * A report command (accounting, report daily): each option whose val is 0
 * goes into the request under its own name; --format and -o/--output say
 * how the answer is written.  required: an option that must be given.
 */
static int
report_run(struct roigate *rg, const char *op, int argc, char **argv,
    const struct option *opts, const char *required)
{
	json_t		*args = json_object(), *r;
	const char	*fmt = json_out ? "json" : "text", *out = NULL;
	int		 ch, idx, rv;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "o:", opts, &idx)) != -1) {
		if (ch == 0)
			json_object_set_new(args, opts[idx].name, json_string(optarg));
		else if (ch == 'F')
			fmt = optarg;
		else if (ch == 'o')
			out = optarg;
		else
			goto usage;
	}
	if (optind != argc || (required && json_object_get(args, required) ==
	    NULL) || (strcmp(fmt, "text") && strcmp(fmt, "json") &&
	    strcmp(fmt, "pdf")))
		goto usage;
	json_object_set_new(args, "format", json_string(fmt));
	if ((rv = call(rg, op, args, &r)) != 0)
		return rv;
	rv = report_write(r, fmt, out);
	json_decref(r);
	return rv;
usage:
	json_decref(args);
	return EX_USAGE;
}

static int
cmd_accounting(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mrn", required_argument, NULL, 0 },
		{ "from", required_argument, NULL, 0 },
		{ "to", required_argument, NULL, 0 },
		{ "generated", required_argument, NULL, 0 },
		{ "format", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};

	if (argc > 1 && strcmp(argv[1], "suspend") == 0)
		return accounting_suspend(rg, argc - 1, argv + 1);
	return report_run(rg, "accounting", argc, argv, opts, "mrn");
}

static int
report_daily(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "date", required_argument, NULL, 0 },
		{ "generated", required_argument, NULL, 0 },
		{ "format", required_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};

	return report_run(rg, "report-daily", argc, argv, opts, NULL);
}

static int
cmd_report(struct roigate *rg, int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "daily") == 0)
		return report_daily(rg, argc - 1, argv + 1);
	fprintf(stderr, "roictl: report: which one? (daily)\n");
	return EX_USAGE;
}

/* Options of `incident open` and `incident assess` into request keys. */
static int
incident_opts(int argc, char **argv, json_t *args)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },
		{ "kind", required_argument, NULL, 'k' },
		{ "note", required_argument, NULL, 'n' },
		{ "discovered", required_argument, NULL, 'd' },
		{ "nature", required_argument, NULL, 'N' },
		{ "person", required_argument, NULL, 'p' },
		{ "acquired", required_argument, NULL, 'a' },
		{ "mitigation", required_argument, NULL, 'm' },
		{ "determination", required_argument, NULL, 'D' },
		{ "format", required_argument, NULL, 'f' },
		{ "generated", required_argument, NULL, 'g' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const keys[] = { "j", "job", "k", "kind", "n", "note",
	    "d", "discovered", "N", "nature", "p", "unauthorized_person",
	    "a", "acquired_or_viewed", "m", "mitigation", "D", "determination",
	    "f", "format", "g", "generated", "o", "output", NULL };
	int	ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		size_t i;

		for (i = 0; keys[i] && keys[i][0] != ch; i += 2)
			;
		if (keys[i] == NULL)
			return -1;
		if (ch == 'j')
			json_object_set_new(args, "job", json_integer(atoll(optarg)));
		else
			json_object_set_new(args, keys[i + 1], json_string(optarg));
	}
	return 0;
}

static int
cmd_incident(struct roigate *rg, int argc, char **argv)
{
	const char	*sub = argc > 1 ? argv[1] : "";
	json_t		*args = json_object(), *r, *v, *outj = NULL;
	const char	*op = "incident-show", *out = NULL;
	char		 fmt[8];
	size_t		 i;
	int		 rv, report = !strcmp(sub, "report");

	if (incident_opts(argc - 1, argv + 1, args) == -1)
		goto usage;
	/* args goes with the request: what is needed after is kept here. */
	v = json_object_get(args, "format");
	snprintf(fmt, sizeof(fmt), "%s", v ? json_string_value(v) : json_out ?
	    "json" : "text");
	if ((outj = json_incref(json_object_get(args, "output"))))
		out = json_string_value(outj);
	json_object_del(args, "output");
	/* --format, --generated and -o are the report's. */
	if (!report && (out || json_object_get(args, "format") ||
	    json_object_get(args, "generated")))
		goto usage;
	if (strcmp(sub, "open") == 0) {
		op = "incident-open";
		if (optind != argc - 1)
			goto usage;
	} else if (strcmp(sub, "list") == 0) {
		if (optind != argc - 1)
			goto usage;
	} else if (!strcmp(sub, "show") || !strcmp(sub, "assess") || report) {
		if (optind != argc - 2)
			goto usage;
		json_object_set_new(args, "incident", json_integer(atoll(argv[argc - 1])));
		if (!strcmp(sub, "assess"))
			op = "incident-assess";
		if (report) {
			if (strcmp(fmt, "text") && strcmp(fmt, "json") &&
			    strcmp(fmt, "pdf"))
				goto usage;
			json_object_set_new(args, "format", json_string(fmt));
			json_object_set_new(args, "report", json_string("yes"));
		}
	} else
		goto usage;
	if ((rv = call(rg, op, args, &r)) != 0) {
		json_decref(outj);
		return rv;
	}
	if (report)
		rv = report_write(r, fmt, out);
	else if (!strcmp(sub, "list") && json_out)
		print_lines(json_object_get(r, "incidents"));
	else if (!strcmp(sub, "list"))
		json_array_foreach(json_object_get(r, "incidents"), i, v)
			printf("%lld %s job %lld discovered %s: %s\n", i_(v, "id"),
			    s_(v, "kind"), i_(v, "job"), s_(v, "discovered_at"),
			    s_(v, "note"));
	else
		print_json(r);
	json_decref(r);
	json_decref(outj);
	return rv;
usage:
	json_decref(outj);
	json_decref(args);
	return EX_USAGE;
}

/* "5d" or "5": days; -1 if it is neither. */
static long long
requests_days(const char *s)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v < 0 || (*end && strcmp(end, "d")))
		return -1;
	return v;
}

static int
requests_extend(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	json_t	*args = json_object(), *r;
	int	 ch, rv;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'r') {
			json_decref(args);
			return EX_USAGE;
		}
		json_object_set_new(args, "reason", json_string(optarg));
	}
	if (optind + 1 != argc || json_object_get(args, "reason") == NULL) {
		json_decref(args);
		return EX_USAGE;
	}
	json_object_set_new(args, "extend", json_string(argv[optind]));
	if ((rv = call(rg, "requests", args, &r)) != 0)
		return rv;
	if (!json_out)
		printf("request %s extended by 30 days\n", argv[optind]);
	json_decref(r);
	return 0;
}

static void
requests_print(json_t *v)
{
	json_t	*left = json_object_get(v, "days_left");
	char	 due[64], flags[32];

	if (json_is_integer(left))
		snprintf(due, sizeof(due), "%s (%lld days %s)", s_(v, "due"),
		    llabs((long long)json_integer_value(left)),
		    json_integer_value(left) < 0 ? "ago" : "left");
	else
		snprintf(due, sizeof(due), "no deadline");
	snprintf(flags, sizeof(flags), "%s%s%s",
	    json_is_true(json_object_get(v, "overdue")) ? "OVERDUE" : "",
	    json_is_true(json_object_get(v, "overdue")) &&
	    json_object_get(v, "extension") ? ", " : "",
	    json_object_get(v, "extension") ? "extended" : "");
	printf("%-16s %-16s %-10s %4lld  %-*s%s\n", s_(v, "id"), s_(v, "basis"),
	    s_(v, "received_on"), i_(v, "age_days"), *flags ? 29 : 0, due, flags);
}

static int
cmd_requests(struct roigate *rg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "overdue", no_argument, NULL, 'o' },
		{ "due-within", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	json_t		*r, *v;
	long long	 within = -1;
	int		 ch, rv, overdue = 0, n = 0;
	size_t		 i;

	if (argc > 1 && strcmp(argv[1], "extend") == 0)
		return requests_extend(rg, argc - 1, argv + 1);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'o')
			overdue = 1;
		else if (ch != 'd' || (within = requests_days(optarg)) == -1) {
			fprintf(stderr, "roictl: --due-within takes days: 5 or 5d\n");
			return EX_USAGE;
		}
	}
	if (optind != argc)
		return EX_USAGE;
	if ((rv = call(rg, "requests", json_object(), &r)) != 0)
		return rv;
	json_array_foreach(json_object_get(r, "requests"), i, v) {
		json_t *left = json_object_get(v, "days_left");

		if ((overdue && !json_is_true(json_object_get(v, "overdue"))) ||
		    (within >= 0 && (!left || json_integer_value(left) > within)))
			continue;
		if (json_out)
			print_json(v);
		else {
			if (n++ == 0)
				printf("%-16s %-16s %-10s %4s  %s\n", "REQUEST",
				    "BASIS", "RECEIVED", "AGE", "DUE");
			requests_print(v);
		}
	}
	if (!json_out && n == 0)
		printf("no open requests%s\n", overdue || within >= 0 ?
		    " match" : "");
	json_decref(r);
	return 0;
}

static const struct cmd cmds[] = {
	{ "status", cmd_status, "status", "Queue counts by state and transport, the oldest "
	    "waiting job, deliveries in the last hour,\nproblems the daemon reports, and "
	    "the most recent errors." },
	{ "list", cmd_list, "list [--state S] [--transport T] [--limit N]",
	    "One line per job, newest first.  --json prints JSON Lines with what\n"
	    "`postqueue -j` users look for: id, state, recipient, transport, "
	    "attempts,\narrival_time and next_attempt (unix seconds), last_error, "
	    "pages, bytes." },
	{ "show", cmd_show, "show JOB", "One job: its fields, its history (every state "
	    "change with who and why)\nand its disclosure-log entries." },
	{ "hold", cmd_hold, "hold JOB...", "Set jobs aside; they are not sent until "
	    "released." },
	{ "release", cmd_release, "release JOB...", "Put held jobs back in the queue." },
	{ "retry", cmd_retry, "retry JOB...", "Retry deferred or failed jobs now, with a "
	    "fresh count of attempts." },
	{ "cancel", cmd_cancel, "cancel JOB...", "Cancel queued, deferred or held jobs "
	    "(nothing is sent)." },
	{ "watch", cmd_watch, "watch [-n SECONDS]", "A live status screen: counts, "
	    "problems, open alerts, recipients waiting for\na limit (busy, send "
	    "window) and the newest jobs, redrawn every 2 seconds\n(or SECONDS); "
	    "q quits." },
	{ "shape", cmd_shape, "shape", "Waiting (queued and deferred) jobs by recipient "
	    "against their age since arrival,\nlike Postfix's qshape: T is the total, "
	    "then buckets of up to 5m, 10m, 20m, ...,\n640m, 1d and older.  Jobs held "
	    "back by a limit (recipient busy, send window)\nare counted below the "
	    "table with the reason.  --json prints one object." },
	{ "alerts", cmd_alerts, "alerts", "Open alerts and the recently resolved ones: "
	    "each opens once when its condition\nstarts and resolves once when it ends "
	    "([alerts] in roigate.conf).  --json prints\nJSON Lines." },
	{ "metrics", cmd_metrics, "metrics", "The counters and gauges roigate-exporter "
	    "serves to Prometheus, as one JSON\nobject (role metrics or operate)." },
	{ "submit", cmd_submit, "submit PACKET_DIR", "Submit a packet folder "
	    "(manifest.json and its documents) over the socket.\nThe documents are "
	    "passed as open files; prints the job number." },
	{ "log", cmd_log, "log [--mrn M] [--recipient R] [--since D] [--until D] [--job J]",
	    "The disclosure log: who received what about whom, when and why.\nDates as "
	    "2026-11-24 or 2026-11-24T10:00:00Z; --until is exclusive." },
	{ "verify-log", cmd_verify_log, "verify-log [--key-file FILE] [--checkpoint "
	    "LINE]", "Recompute the disclosure log's hash chain.  Exits 65 and names "
	    "the first\nbad entry if anything was altered or removed.  With --key-file "
	    "(the\nverification key from roigated --setup-seal, sent to the daemon for "
	    "this\nrequest only) every entry must match the seal of its own epoch; a "
	    "key of\nanother log is refused (77).  --checkpoint LINE (from the system "
	    "journal)\nproves the log still holds that head: nothing cut from its end." },
	{ "prune", cmd_prune, "prune [--dry-run]", "Remove the disclosure, audit, "
	    "suspension and incident records sealed before\n[retention] records "
	    "(six years at least, 45 CFR 164.316(b)(2)), in whole sealed\nepochs, "
	    "under a sealed prune record that verify-log and roigate-verify "
	    "check;\nalso the expired job folders.  The daemon removes in the "
	    "background and logs\nwhen done.  --dry-run says what would go and "
	    "changes nothing (role admin)." },
	{ "audit", cmd_audit, "audit [--since D] [--limit N]", "The audit log: every "
	    "request to the daemon, allowed or denied." },
	{ "accounting", cmd_accounting, "accounting --mrn MRN [--from D] [--to D] "
	    "[--format text|json|pdf] [-o FILE]\n                  [--generated TIME]\n       roictl accounting suspend "
	    "--agency NAME --until DATE [--oral] [--mrn M] [--note TEXT]\n"
	    "       roictl accounting suspend --list | --end ID",
	    "The accounting of disclosures of 45 CFR 164.528 for one patient (role "
	    "audit):\nonly accountable disclosures (not those to the patient, under "
	    "an\nauthorization, or for treatment, payment or operations), delivered "
	    "or\npossibly delivered; repeated ones to one recipient for one purpose "
	    "summarized.\nThe period is the six years to today unless --from/--to "
	    "(--to inclusive).\n--generated TIME fixes the report's time (the same "
	    "inputs give the same bytes).\nThe SHA-256 of the report goes into the "
	    "audit log.  `suspend` records an\noversight or law-enforcement agency's "
	    "request (164.528(a)(2)): entries to it\nare held back until DATE (an oral "
	    "request: 30 days at most).  See docs/accounting.md." },
	{ "report", cmd_report, "report daily [--date D] [--format text|json|pdf] "
	    "[-o FILE] [--generated TIME]",
	    "The daily reconciliation (role audit): what was accepted, delivered, "
	    "failed,\nheld and cancelled on day D (default today, local time), by "
	    "transport and\nrecipient; what was still awaiting confirmation at its "
	    "end; every send whose\noutcome is not confirmed (a fax not yet "
	    "confirmed, a send interrupted); the\nfailed and held jobs with their "
	    "reasons.  The PDF is drawn from\ntemplates/daily/.  What was asked "
	    "and the SHA-256 of the answer go into the\naudit log.  See "
	    "docs/daily.md." },
	{ "requests", cmd_requests, "requests [--overdue] [--due-within DAYS] "
	    "[--json]\n       roictl requests extend ID --reason TEXT",
	    "Open records requests, oldest first, with their age and deadline (a "
	    "request\nis open until its jobs are delivered; a failed packet sent "
	    "again counts as\nredone): 30 days from receipt for a patient's access "
	    "request (164.524), plus\none 30-day extension (`extend`, within the "
	    "30 days, with the reason given to\nthe patient in writing); other "
	    "bases: [requests] deadline_other.  See\ndocs/requests.md." },
	{ "incident", cmd_incident, "incident open --job N --kind K --note TEXT "
	    "[--discovered D]\n       roictl incident assess ID --determination "
	    "low_probability|breach\n                [--nature T] [--person T] "
	    "[--acquired T] [--mitigation T]\n       roictl incident list | show ID "
	    "| report ID [--format text|json|pdf]\n                [-o FILE] [--generated TIME]",
	    "Incidents (open: role audit or operate; the rest: audit).  K is "
	    "misdirected,\nwrong_patient, wrong_documents, exposed or other.  A "
	    "misdirected one disables\nthe recipient and holds every queued, "
	    "deferred or held job to it at once,\neach job's event naming the "
	    "incident.  assess records the four factors of\n164.402(2) (prefilled "
	    "from the log when not given) and the determination;\na new assessment "
	    "supersedes, never edits.  report: what the patient's\nnotification "
	    "needs (what happened, when it was discovered, what was\ndisclosed, to "
	    "whom, what was done, the assessments) and the 60-day deadline\nfrom "
	    "discovery; the PDF is drawn from templates/incident/.  --generated "
	    "TIME\nfixes the report's time (the same inputs give the same bytes).  "
	    "The SHA-256\nof the report goes into the audit log.  See "
	    "docs/incidents.md." },
	{ "recipient", cmd_recipient, "recipient add ID --name N --transport T "
	    "--address A [--organization O] [--param K=V]...\n       roictl recipient "
	    "list | show ID | disable ID\n       roictl recipient verify ID [--yes | "
	    "--expect VALUE]", "The verified recipient directory.  A new recipient "
	    "cannot receive until an\nadministrator has confirmed the destination "
	    "and run `recipient verify`.\nFor SFTP, verify connects, shows the "
	    "server's host key and pins it once\nconfirmed (at the prompt, with "
	    "--yes, or when it equals --expect VALUE)." },
};

int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct roigate	*rg;
	char		 err[512];
	int		 ch, rv;

	/* Options may also follow the command (roictl status --json). */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j")) {
			json_out = 1;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--, i--;
		}
	while ((ch = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sockpath = optarg;
			break;
		case 'j':
			json_out = 1;
			break;
		case 'h':
			fputs(main_usage, stdout);
			return 0;
		default:
			fputs(main_usage, stderr);
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		fputs(main_usage, stderr);
		return EX_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[0], cmds[i].name) != 0)
			continue;
		if (want_help(argc, argv, &cmds[i]))
			return 0;
		if ((rg = roigate_connect(sockpath, err, sizeof(err))) == NULL) {
			int saved = errno;
			fprintf(stderr, "roictl: %s\n", err);
			return saved == EACCES || saved == EPERM ? EX_NOPERM :
			    EX_UNAVAILABLE;
		}
		rv = cmds[i].run(rg, argc, argv);
		roigate_close(rg);
		if (rv == EX_USAGE)
			fprintf(stderr, "usage: roictl %s\n", cmds[i].usage);
		return rv;
	}
	fprintf(stderr, "roictl: unknown command \"%s\"\n\n%s", argv[0], main_usage);
	return EX_USAGE;
}
