/*
 * Alerts (daemon): fire once, resolve once.
 *
 * An alert is a (rule, subject) pair: "credentials / transport faxapi",
 * "held / transport faxapi", "waiting / recipient clinic-fax".  It opens
 * when its condition starts and is then only counted (jobs, times) while
 * it stays open: twenty faxes refused for the same bad account are one
 * alert and one mail, not twenty.  It resolves when the condition ends,
 * with one more mail.  Conditions come from two places: the queue's
 * outcomes (alerts_job_event: refused credentials, failures, deliveries
 * that end them) and a periodic look at the store and the disks
 * ([alerts] check_interval: held jobs, long waits, unconfirmed faxes, free
 * space, a failing disclosure log).  A held alert is not raised for a
 * transport whose credentials alert is open: those jobs are held because
 * of it, and the one mail says so.
 *
 * Delivery runs in a child process (one per notification) so that the
 * event loop never waits: e-mail with libcurl (STARTTLS required, the CA
 * file configurable, as transports/smime.c does) to [alerts] mail_to,
 * and/or [alerts] program run with execv (no shell), the alert as JSON on
 * its standard input, killed after program_timeout.  The daemon's SIGCHLD
 * handler reaps the children.  Alerts are kept in memory (the open ones
 * and the last ALERTS_RECENT resolved); after a restart a condition that
 * still holds opens its alert again.
 *
 * What an alert carries: rule, subject (a transport name, a recipient id
 * or a folder name), job ids, counts and times.  Never PHI.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "alerts.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "requests.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

#define ALERTS_MAX	128	/* open and resolved, kept at once */
#define ALERTS_RECENT	50	/* resolved ones kept for roictl alerts */
#define ALERT_JOBS	10	/* job ids named in one alert */

struct alert {
	unsigned	 id;
	enum alert_rule	 rule;
	char		 subject[96];
	char		 summary[256];
	int64_t		 opened_at;
	int64_t		 resolved_at;	/* 0 while open */
	int64_t		 last_at;	/* the condition last seen */
	int64_t		 count;		/* events or jobs seen while open */
	int64_t		 jobs[ALERT_JOBS];
	size_t		 njobs;
	int		 seen;		/* in this periodic check */
	int		 used;
};

static struct alert		 alerts[ALERTS_MAX];
static unsigned			 next_id = 1;
static struct loop_timer	*check_timer;

static int
rule_on(enum alert_rule r)
{
	return (rg->conf->alert_rules & (1u << r)) != 0;
}

static struct alert *
alert_find(enum alert_rule r, const char *subject)
{
	for (int i = 0; i < ALERTS_MAX; i++)
		if (alerts[i].used && !alerts[i].resolved_at && alerts[i].rule == r &&
		    strcmp(alerts[i].subject, subject) == 0)
			return &alerts[i];
	return NULL;
}

/* A free slot: an unused one, else the oldest resolved one. */
static struct alert *
alert_slot(void)
{
	struct alert	*old = NULL;

	for (int i = 0; i < ALERTS_MAX; i++) {
		if (!alerts[i].used)
			return &alerts[i];
		if (alerts[i].resolved_at && (old == NULL ||
		    alerts[i].resolved_at < old->resolved_at))
			old = &alerts[i];
	}
	return old;
}

static json_t *
alert_json(const struct alert *a, const char *status)
{
	json_t	*jobs = json_array();
	char	 opened[32], resolved[32];

	for (size_t i = 0; i < a->njobs; i++)
		json_array_append_new(jobs, json_integer(a->jobs[i]));
	time_iso(a->opened_at, opened, sizeof(opened));
	time_iso(a->resolved_at, resolved, sizeof(resolved));
	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s?, s:I, s:o, s:s,"
	    " s:s}", "status", status, "id", (json_int_t)a->id,
	    "rule", alert_rule_name(a->rule), "subject", a->subject,
	    "summary", a->summary, "opened_at", opened,
	    "resolved_at", a->resolved_at ? resolved : NULL,
	    "count", (json_int_t)a->count, "jobs", jobs,
	    "instance", rg->instance, "source", "roigate");
}

/* The mail: headers and a plain-text body (CRLF line ends). */
static char *
alert_mail_text(json_t *j)
{
	struct buf	 b;
	size_t		 i;
	json_t		*v;
	char		 date[64], host[128] = "localhost";
	time_t		 t = time(NULL);
	struct tm	 tm;
	const char	*status = json_string_value(json_object_get(j, "status"));

	gethostname(host, sizeof(host) - 1);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
	    gmtime_r(&t, &tm));
	buf_init(&b);
	buf_printf(&b, "From: %s\r\nTo: %s\r\nDate: %s\r\n"
	    "Subject: [roigate %s] %s: %s\r\n"
	    "Message-ID: <alert-%lld-%s-%s@%s>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Auto-Submitted: auto-generated\r\n\r\n",
	    rg->conf->alert_mail_from, rg->conf->alert_mail_to, date,
	    strcmp(status, "firing") == 0 ? "ALERT" : "RESOLVED",
	    json_string_value(json_object_get(j, "rule")),
	    json_string_value(json_object_get(j, "subject")),
	    (long long)json_integer_value(json_object_get(j, "id")), status,
	    rg->instance, host);
	buf_printf(&b, "roigate on %s (instance %s)\r\n\r\nStatus:   %s\r\n"
	    "Rule:     %s\r\nSubject:  %s\r\nSummary:  %s\r\nOpened:   %s\r\n",
	    host, rg->instance, status,
	    json_string_value(json_object_get(j, "rule")),
	    json_string_value(json_object_get(j, "subject")),
	    json_string_value(json_object_get(j, "summary")),
	    json_string_value(json_object_get(j, "opened_at")));
	if (json_is_string(json_object_get(j, "resolved_at")))
		buf_printf(&b, "Resolved: %s\r\n",
		    json_string_value(json_object_get(j, "resolved_at")));
	buf_printf(&b, "Count:    %lld\r\nJobs:    ",
	    (long long)json_integer_value(json_object_get(j, "count")));
	json_array_foreach(json_object_get(j, "jobs"), i, v)
		buf_printf(&b, " %lld", (long long)json_integer_value(v));
	buf_addstr(&b, "\r\n\r\nSee `roictl alerts` and `roictl status`.\r\n");
	return xstrdup(buf_cstr(&b));
}

struct mail_body {
	const char	*p;
	size_t		 left;
};

static size_t
mail_read(char *out, size_t size, size_t n, void *arg)
{
	struct mail_body	*m = arg;
	size_t			 len = size * n < m->left ? size * n : m->left;

	memcpy(out, m->p, len);
	m->p += len;
	m->left -= len;
	return len;
}

/* In the child: send one mail.  0 / -1 (logged). */
static int
alert_send_mail(json_t *j)
{
	struct curl_slist	*rcpt = NULL;
	struct mail_body	 body;
	CURL			*c;
	CURLcode		 rc;
	char			*text = alert_mail_text(j), *list, *w, *save = NULL;
	char			 errbuf[CURL_ERROR_SIZE] = "", from[320];

	list = xstrdup(rg->conf->alert_mail_to);
	for (w = strtok_r(list, " ,", &save); w; w = strtok_r(NULL, " ,", &save))
		rcpt = curl_slist_append(rcpt, w);
	snprintf(from, sizeof(from), "<%s>", rg->conf->alert_mail_from);
	body.p = text;
	body.left = strlen(text);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, rg->conf->alert_smtp_url);
	/* Never in plain text: STARTTLS, and the server's certificate checked. */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (rg->conf->alert_ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, rg->conf->alert_ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		log_warnx("alert %lld: mail to the administrators failed: %.300s",
		    (long long)json_integer_value(json_object_get(j, "id")),
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	free(list);
	free(text);
	return rc == CURLE_OK ? 0 : -1;
}

/* In the child: run the program with the JSON on stdin, within the time limit. */
static int
alert_run_program(const char *text)
{
	char	*copy = xstrdup(rg->conf->alert_program), *argv[32], *w, *save = NULL;
	int	 p[2], status = 0, n = 0;
	int64_t	 deadline = now_ms() + rg->conf->alert_program_timeout_ms;
	pid_t	 pid;

	for (w = strtok_r(copy, " \t", &save); w && n < 31; w = strtok_r(NULL, " \t", &save))
		argv[n++] = w;
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		log_warn("alert program %.100s", argv[0]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[0], STDIN_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[0]);
	write_all(p[1], text, strlen(text));
	close(p[1]);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			log_warnx("alert program %.100s: still running after %lld ms; "
			    "killed", argv[0], (long long)rg->conf->alert_program_timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(20 * 1000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warnx("alert program %.100s failed (status %d)", argv[0], status);
	free(copy);
	return 0;
}

/* Tell the administrators, from a child process. */
static void
alert_notify(const struct alert *a, const char *status)
{
	json_t		*j;
	char		*text;
	sigset_t	 none;
	pid_t		 pid;

	log_warnx("alert %u %s: %s: %s (%lld)", a->id, status,
	    alert_rule_name(a->rule), a->subject, (long long)a->count);
	if (rg->conf->alert_mail_to == NULL && rg->conf->alert_program == NULL)
		return;
	j = alert_json(a, status);
	text = json_dumps(j, JSON_COMPACT);
	if ((pid = fork()) == -1) {
		log_warn("alert %u: cannot start the notifier", a->id);
	} else if (pid == 0) {
		/* The child: the daemon's signals were routed to its signalfd. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		if (rg->conf->alert_mail_to)
			alert_send_mail(j);
		if (rg->conf->alert_program)
			alert_run_program(text);
		_exit(0);
	}
	free(text);
	json_decref(j);
}

static void
alert_note_job(struct alert *a, int64_t job_id)
{
	a->last_at = now_wall();
	if (job_id <= 0)
		return;
	for (size_t i = 0; i < a->njobs; i++)
		if (a->jobs[i] == job_id)
			return;
	if (a->njobs < ALERT_JOBS)
		a->jobs[a->njobs++] = job_id;
}

/* The condition holds: open the alert, or count it if it is open. */
static void
alert_raise(enum alert_rule r, const char *subject, const char *summary,
    int64_t count, int64_t job_id)
{
	struct alert	*a;

	if (!rule_on(r))
		return;
	if ((a = alert_find(r, subject)) != NULL) {
		a->seen = 1;
		a->count = count > 0 ? count : a->count + 1;
		strlcpy_(a->summary, summary, sizeof(a->summary));
		alert_note_job(a, job_id);
		return;
	}
	if ((a = alert_slot()) == NULL)
		return;		/* ALERTS_MAX open at once: said in the log */
	memset(a, 0, sizeof(*a));
	a->used = a->seen = 1;
	a->id = next_id++;
	a->rule = r;
	strlcpy_(a->subject, subject, sizeof(a->subject));
	strlcpy_(a->summary, summary, sizeof(a->summary));
	a->opened_at = now_wall();
	a->count = count > 0 ? count : 1;
	alert_note_job(a, job_id);
	alert_notify(a, "firing");
}

/* The condition ended. */
static void
alert_clear(enum alert_rule r, const char *subject)
{
	struct alert	*a = alert_find(r, subject);

	if (a == NULL)
		return;
	a->resolved_at = now_wall();
	alert_notify(a, "resolved");
}

void
alerts_condition(enum alert_rule r, const char *subject, int active,
    const char *summary, int64_t job_id)
{
	if (active)
		alert_raise(r, subject, summary, 0, job_id);
	else
		alert_clear(r, subject);
}

void
alerts_job_event(const struct job *j, const char *transport, enum job_state to,
    enum transport_status st, const struct transport_receipt *rc)
{
	char	subject[96], summary[256];

	snprintf(subject, sizeof(subject), "transport %.64s", transport);
	if (st == TRANSPORT_PERMFAIL && rc->hold == TRANSPORT_HOLD_ALL) {
		snprintf(summary, sizeof(summary), "the %.64s transport's credentials "
		    "were refused; its waiting jobs are held until they are fixed "
		    "and the jobs released", transport);
		alert_raise(ALERT_CREDENTIALS, subject, summary, 0, j->id);
	} else if (to == JOB_FAILED) {
		snprintf(summary, sizeof(summary), "jobs of transport %.64s failed "
		    "since its last delivery", transport);
		alert_raise(ALERT_FAILED, subject, summary, 0, j->id);
	} else if (st == TRANSPORT_OK) {
		/* It sends again: the account works, the failures are over. */
		alert_clear(ALERT_CREDENTIALS, subject);
		alert_clear(ALERT_FAILED, subject);
	}
}

/* Periodic conditions: mark the rule's open alerts unseen, raise what
 * holds, then resolve what was not seen again. */
static void
sweep_begin(enum alert_rule r)
{
	for (int i = 0; i < ALERTS_MAX; i++)
		if (alerts[i].used && !alerts[i].resolved_at && alerts[i].rule == r)
			alerts[i].seen = 0;
}

static void
sweep_end(enum alert_rule r)
{
	for (int i = 0; i < ALERTS_MAX; i++)
		if (alerts[i].used && !alerts[i].resolved_at && alerts[i].rule == r &&
		    !alerts[i].seen) {
			alerts[i].resolved_at = now_wall();
			alert_notify(&alerts[i], "resolved");
		}
}

struct sweep {
	enum alert_rule	 rule;
	int64_t		 now;
};

static int
check_group(const struct store_group *g, void *arg)
{
	struct sweep	*s = arg;
	char		 subject[96], summary[256];

	switch (s->rule) {
	case ALERT_HELD:
		snprintf(subject, sizeof(subject), "transport %.64s", g->transport);
		if (alert_find(ALERT_CREDENTIALS, subject))
			return 0;	/* held because of it: one alert */
		snprintf(summary, sizeof(summary), "jobs of transport %.64s are held "
		    "for an administrator (roictl list --state held)", g->transport);
		break;
	case ALERT_WAITING:
		if ((s->now - g->oldest_created) * 1000 <= rg->conf->alert_waiting_ms)
			return 0;
		snprintf(subject, sizeof(subject), "recipient %.64s", g->recipient_id);
		snprintf(summary, sizeof(summary), "jobs for recipient %.64s (transport "
		    "%.64s) have waited %lld min", g->recipient_id, g->transport,
		    (long long)(s->now - g->oldest_created) / 60);
		break;
	default:	/* ALERT_AWAITING */
		if (g->oldest_sent == 0 || (s->now - g->oldest_sent) * 1000 <=
		    rg->conf->alert_awaiting_ms)
			return 0;
		snprintf(subject, sizeof(subject), "recipient %.64s", g->recipient_id);
		snprintf(summary, sizeof(summary), "a job for recipient %.64s "
		    "(transport %.64s) was sent %lld min ago and is not confirmed",
		    g->recipient_id, g->transport,
		    (long long)(s->now - g->oldest_sent) / 60);
		break;
	}
	alert_raise(s->rule, subject, summary, -1, g->oldest_id);
	return 0;
}

static void
check_jobs(enum alert_rule r, unsigned states, int64_t threshold)
{
	struct sweep	s = { r, now_wall() };

	if (!rule_on(r) || threshold == 0)
		return;
	sweep_begin(r);
	if (store_jobs_grouped(rg->store, states, check_group, &s) == -1)
		return;		/* unknown: leave them as they are */
	sweep_end(r);
}

static void
check_disk(const char *name, const char *path)
{
	struct statvfs	sv;
	char		subject[96], summary[256];
	int64_t		free_bytes;

	if (statvfs(path, &sv) == -1)
		return;
	free_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	snprintf(subject, sizeof(subject), "%s folder", name);
	snprintf(summary, sizeof(summary), "the %s folder's file system has %lld "
	    "MiB free (alert below %lld MiB)", name, (long long)(free_bytes >> 20),
	    (long long)(rg->conf->alert_disk_free >> 20));
	alerts_condition(ALERT_DISK, subject, free_bytes < rg->conf->alert_disk_free,
	    summary, 0);
}

/*
 * ALERT_DEADLINE: open records requests within [alerts] deadline_within of
 * their deadline, or past it (docs/requests.md); one alert for them all,
 * naming the nearest by its request id (not PHI: the patient is not in it).
 */
static void
check_deadlines(void)
{
	json_t		*open, *o, *near = NULL;
	json_int_t	 left, near_left = 0;
	size_t		 i, n = 0, overdue = 0;
	char		 err[256], summary[256] = "";
	static int64_t	 next_ms;
	int64_t		 t0;

	if (!rule_on(ALERT_DEADLINE) || rg->conf->alert_deadline_ms <= 0) {
		alerts_condition(ALERT_DEADLINE, "requests", 0, "", 0);
		return;
	}
	/*
	 * Deadlines move in days, and the list reads every open request's
	 * manifest: a large backlog makes it long (2.2 s for 200,000).  So
	 * the loop spends at most a hundredth of its time here: after a
	 * check that took T, the next waits at least 100 T.
	 */
	if ((t0 = now_ms()) < next_ms)
		return;
	open = requests_open(now_wall(), err, sizeof(err));
	next_ms = now_ms() + 100 * (now_ms() - t0);
	if (open == NULL)
		return;		/* the store says why in status; try next time */
	json_array_foreach(open, i, o) {
		if (!json_is_integer(json_object_get(o, "days_left")))
			continue;
		left = json_integer_value(json_object_get(o, "days_left"));
		if (left * 86400000 > rg->conf->alert_deadline_ms)
			continue;
		n++;
		overdue += json_is_true(json_object_get(o, "overdue"));
		if (near == NULL || left < near_left) {
			near = o;
			near_left = left;
		}
	}
	if (near)
		snprintf(summary, sizeof(summary), "%zu open records requests are "
		    "due within %lld days or overdue (%zu overdue); the nearest: "
		    "request %.64s, due %.10s (roictl requests)", n, (long long)
		    (rg->conf->alert_deadline_ms / 86400000), overdue,
		    json_string_value(json_object_get(near, "id")),
		    json_string_value(json_object_get(near, "due")));
	alerts_condition(ALERT_DEADLINE, "requests", n > 0, summary, 0);
	json_decref(open);
}

static void
alerts_check(void *arg)
{
	check_jobs(ALERT_HELD, 1u << JOB_HELD, 1);
	check_jobs(ALERT_WAITING, (1u << JOB_QUEUED) | (1u << JOB_DEFERRED),
	    rg->conf->alert_waiting_ms);
	check_jobs(ALERT_AWAITING, 1u << JOB_AWAITING, rg->conf->alert_awaiting_ms);
	if (rule_on(ALERT_DISK) && rg->conf->alert_disk_free > 0) {
		check_disk("spool", rg->conf->spool_dir);
		check_disk("state", rg->conf->state_dir);
	}
	/* The disclosure log failing verification (or its guards missing);
	 * sealing reports here too once it exists (alerts_condition). */
	alerts_condition(ALERT_SEALING, "disclosure log", rg->problem[PROBLEM_LOG][0],
	    rg->problem[PROBLEM_LOG][0] ? rg->problem[PROBLEM_LOG] : "", 0);
	check_deadlines();
	loop_timer_set(check_timer, rg->conf->alert_check_ms);
}

void
alerts_init(void)
{
	check_timer = loop_timer_new(alerts_check, NULL);
	loop_timer_set(check_timer, rg->conf->alert_check_ms);
}

void
alerts_reconfigure(void)
{
	loop_timer_set(check_timer, 0);
}

json_t *
alerts_list(void)
{
	json_t	*list = json_array();
	int	 order[ALERTS_MAX], n = 0;

	for (int i = 0; i < ALERTS_MAX; i++)
		if (alerts[i].used)
			order[n++] = i;
	/* Newest first: by id, which grows. */
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 && alerts[order[k]].id > alerts[order[k - 1]].id; k--) {
			int t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	for (int i = 0; i < n && i < ALERTS_MAX; i++) {
		const struct alert *a = &alerts[order[i]];
		if (a->resolved_at && i >= ALERTS_RECENT)
			continue;
		json_array_append_new(list, alert_json(a, a->resolved_at ? "resolved" :
		    "firing"));
	}
	return list;
}
