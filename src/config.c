/*
 * roigate.conf parser.  Runs in the daemon at start-up, on SIGHUP and for
 * "roigated -n".  An INI file: [daemon], [spool], [queue], [render],
 * [control], [log], [alerts], [exporter], [retention], [roles] and
 * [transport NAME] sections.  Every error is collected and
 * reported as "file:line: message"; a file with any error is refused
 * whole, so a reload never applies half a configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define CONFIG_MAX_LINE		4096
#define CONFIG_MAX_GROUPS	256

enum key_type {
	KEY_PATH,	/* absolute path */
	KEY_STRING,
	KEY_DURATION,	/* int64 ms */
	KEY_SIZE,	/* int64 bytes */
	KEY_INT,	/* int */
	KEY_MSEC,	/* int64 ms, a bare number */
	KEY_LOGLEVEL,
	KEY_CHOICE,	/* int: index of the value in choices ("a|b|c") */
	KEY_RULES,	/* unsigned: ALERT_RULE bits from a list of rule names */
};

struct key_def {
	const char	*section;
	const char	*key;
	enum key_type	 type;
	size_t		 offset;
	int64_t		 min, max;
	const char	*choices;	/* KEY_CHOICE */
};

#define OFF(m)	offsetof(struct config, m)
static const struct key_def keys[] = {
	{ "daemon", "state_dir", KEY_PATH, OFF(state_dir), 0, 0, NULL },
	{ "daemon", "socket", KEY_PATH, OFF(socket_path), 0, 0, NULL },
	{ "daemon", "transport_dir", KEY_PATH, OFF(transport_dir), 0, 0, NULL },
	{ "daemon", "template_dir", KEY_PATH, OFF(template_dir), 0, 0, NULL },
	{ "daemon", "log_level", KEY_LOGLEVEL, OFF(log_level), 0, 0, NULL },
	{ "daemon", "organization", KEY_STRING, OFF(organization), 0, 0, NULL },
	{ "daemon", "organization_address", KEY_STRING, OFF(organization_address), 0, 0, NULL },
	{ "daemon", "organization_phone", KEY_STRING, OFF(organization_phone), 0, 0, NULL },
	{ "daemon", "organization_fax", KEY_STRING, OFF(organization_fax), 0, 0, NULL },
	{ "daemon", "logo", KEY_PATH, OFF(logo), 0, 0, NULL },
	{ "render", "cover_template", KEY_STRING, OFF(cover_template), 0, 0, NULL },
	{ "render", "paper", KEY_CHOICE, OFF(paper), 0, 0, "letter|a4" },
	{ "render", "fax_resolution", KEY_CHOICE, OFF(fax_fine), 0, 0, "200|204x196" },
	{ "render", "document_dpi", KEY_INT, OFF(document_dpi), 150, 300, NULL },
	{ "render", "document_color", KEY_CHOICE, OFF(document_color), 0, 0, "gray|color" },
	{ "render", "jpeg_quality", KEY_INT, OFF(jpeg_quality), 20, 95, NULL },
	{ "render", "max_pages", KEY_INT, OFF(max_pages), 1, 1000000, NULL },
	{ "render", "max_memory", KEY_SIZE, OFF(render_memory), 16 << 20, INT64_MAX, NULL },
	{ "render", "max_image_pixels", KEY_SIZE, OFF(max_image_pixels), 1000, INT64_MAX, NULL },
	{ "render", "timeout", KEY_DURATION, OFF(render_timeout_ms), 1000, 86400000, NULL },
	{ "requests", "deadline_other", KEY_DURATION, OFF(request_deadline_other_ms), 0, INT64_MAX, NULL },
	/* The old name of [retention] archive, still read (roigated -n says so). */
	{ "render", "archive_retention", KEY_DURATION, OFF(archive_retention_ms), 0, INT64_MAX, NULL },
	{ "render", "font_dir", KEY_PATH, OFF(font_dir), 0, 0, NULL },
	{ "render", "ocr", KEY_CHOICE, OFF(render_ocr), 0, 0, "patterns|all|off" },
	{ "render", "ocr_dpi", KEY_INT, OFF(ocr_dpi), 100, 600, NULL },
	{ "render", "verify", KEY_CHOICE, OFF(render_verify), 0, 0, "off|ocr" },
	{ "render", "protect", KEY_STRING, OFF(protect), 0, 0, NULL },
	{ "render", "redact_quantum", KEY_INT, OFF(redact_quantum), 0, 612, NULL },
	{ "render", "sandbox", KEY_CHOICE, OFF(render_sandbox), 0, 0, "off|on" },
	{ "spool", "dir", KEY_PATH, OFF(spool_dir), 0, 0, NULL },
	{ "spool", "settle_ms", KEY_MSEC, OFF(settle_ms), 0, 3600000, NULL },
	{ "spool", "incomplete_timeout", KEY_DURATION, OFF(incomplete_timeout_ms), 1000, INT64_MAX, NULL },
	{ "spool", "rescan", KEY_DURATION, OFF(rescan_ms), 100, 86400000, NULL },
	{ "spool", "max_file_size", KEY_SIZE, OFF(max_file_size), 1, INT64_MAX, NULL },
	{ "spool", "max_packet_size", KEY_SIZE, OFF(max_packet_size), 1, INT64_MAX, NULL },
	{ "spool", "max_files", KEY_INT, OFF(max_files), 1, 100000, NULL },
	{ "queue", "workers", KEY_INT, OFF(workers), 1, 256, NULL },
	{ "queue", "backoff_base", KEY_DURATION, OFF(backoff_base_ms), 100, INT64_MAX, NULL },
	{ "queue", "backoff_max", KEY_DURATION, OFF(backoff_max_ms), 100, INT64_MAX, NULL },
	{ "queue", "max_attempts", KEY_INT, OFF(max_attempts), 1, 1000, NULL },
	{ "queue", "max_age", KEY_DURATION, OFF(max_age_ms), 1000, INT64_MAX, NULL },
	{ "queue", "job_timeout", KEY_DURATION, OFF(job_timeout_ms), 1000, INT64_MAX, NULL },
	{ "queue", "shutdown_grace", KEY_DURATION, OFF(shutdown_grace_ms), 0, INT64_MAX, NULL },
	{ "queue", "poll_interval", KEY_DURATION, OFF(poll_base_ms), 100, INT64_MAX, NULL },
	{ "queue", "confirm_timeout", KEY_DURATION, OFF(confirm_timeout_ms), 1000, INT64_MAX, NULL },
	{ "control", "max_frame", KEY_SIZE, OFF(max_frame), 4096, 64 * 1024 * 1024, NULL },
	{ "control", "max_clients", KEY_INT, OFF(max_clients), 1, 4096, NULL },
	{ "control", "max_clients_per_uid", KEY_INT, OFF(max_clients_per_uid), 1, 4096, NULL },
	{ "control", "idle_timeout", KEY_DURATION, OFF(client_idle_ms), 100, INT64_MAX, NULL },
	{ "alerts", "mail_to", KEY_STRING, OFF(alert_mail_to), 0, 0, NULL },
	{ "alerts", "mail_from", KEY_STRING, OFF(alert_mail_from), 0, 0, NULL },
	{ "alerts", "smtp_url", KEY_STRING, OFF(alert_smtp_url), 0, 0, NULL },
	{ "alerts", "ca_file", KEY_PATH, OFF(alert_ca_file), 0, 0, NULL },
	{ "alerts", "program", KEY_STRING, OFF(alert_program), 0, 0, NULL },
	{ "alerts", "program_timeout", KEY_DURATION, OFF(alert_program_timeout_ms), 100, 3600000, NULL },
	{ "alerts", "check_interval", KEY_DURATION, OFF(alert_check_ms), 100, 3600000, NULL },
	{ "alerts", "waiting_longer_than", KEY_DURATION, OFF(alert_waiting_ms), 0, INT64_MAX, NULL },
	{ "alerts", "awaiting_longer_than", KEY_DURATION, OFF(alert_awaiting_ms), 0, INT64_MAX, NULL },
	{ "alerts", "disk_free_below", KEY_SIZE, OFF(alert_disk_free), 0, INT64_MAX, NULL },
	{ "alerts", "deadline_within", KEY_DURATION, OFF(alert_deadline_ms), 0, INT64_MAX, NULL },
	{ "alerts", "rules", KEY_RULES, OFF(alert_rules), 0, 0, NULL },
	{ "exporter", "listen", KEY_STRING, OFF(exporter_listen), 0, 0, NULL },
	{ "exporter", "path", KEY_STRING, OFF(exporter_path), 0, 0, NULL },
	/* Sub-minute intervals are allowed (tests use 1s); whole seconds. */
	{ "log", "seal_interval", KEY_DURATION, OFF(seal_interval_ms), 1000, 86400000, NULL },
	{ "retention", "jobs", KEY_DURATION, OFF(retention_jobs_ms), 0, INT64_MAX, NULL },
	{ "retention", "archive", KEY_DURATION, OFF(archive_retention_ms), 0, INT64_MAX, NULL },
	/* The six-year floor is checked in config_finish, in words. */
	{ "retention", "records", KEY_DURATION, OFF(retention_records_ms), 0, INT64_MAX, NULL },
};

static const struct {
	const char	*name;
	unsigned	 bit;
} role_names[] = {
	{ "submit", ROLE_SUBMIT }, { "operate", ROLE_OPERATE },
	{ "audit", ROLE_AUDIT }, { "admin", ROLE_ADMIN },
	{ "metrics", ROLE_METRICS },
};

struct parser {
	const char	*file;
	int		 line;
	struct buf	 errs;
	int		 nerrs;
	struct config	*conf;
	char		 section[64];
	int		 bad_section;	/* reported; skip its keys */
	struct config_transport *tr;	/* current [transport NAME] */
	struct buf	 notes;		/* deprecations: said, not refused */
	int		 archive_line;	/* where archive retention was set */
	int		 archive_old;	/* ... under its old name */
	int64_t		 archive_ms;	/* ... to this */
	int		 records_line;	/* where [retention] records was set */
};

static void
perr(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
perr(struct parser *p, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		buf_printf(&p->errs, "%s%s:%d: %s", p->nerrs ? "\n" : "", p->file,
		    p->line, msg);
	else	/* about the file as a whole */
		buf_printf(&p->errs, "%s%s: %s", p->nerrs ? "\n" : "", p->file, msg);
	p->nerrs++;
}

static void
config_defaults(struct config *c)
{
	c->state_dir = xstrdup("/var/lib/roigate");
	c->socket_path = xstrdup("/run/roigate/roigate.sock");
	c->transport_dir = xstrdup(TRANSPORT_DIR);
	c->template_dir = xstrdup(TEMPLATE_DIR);
	c->log_level = LOG_INFO;
	c->seal_interval_ms = 15 * 60 * 1000;
	c->organization = xstrdup("Health Information Management");
	c->cover_template = xstrdup("default");
	c->paper = 0;
	c->fax_fine = 1;
	c->document_dpi = 150;
	c->document_color = 0;
	c->jpeg_quality = 75;
	c->max_pages = 2000;
	c->render_memory = (int64_t)512 << 20;
	c->max_image_pixels = (int64_t)100 * 1000 * 1000;
	c->render_timeout_ms = 300 * 1000;
	c->archive_retention_ms = (int64_t)30 * 86400 * 1000;
	c->retention_jobs_ms = (int64_t)30 * 86400 * 1000;
	c->retention_records_ms = RETENTION_RECORDS_MIN_MS;
	c->request_deadline_other_ms = (int64_t)30 * 86400 * 1000;
	c->font_dir = xstrdup("/usr/share/fonts/truetype/dejavu");
	c->render_ocr = 0;
	c->ocr_dpi = 300;
	c->render_verify = 1;
	c->render_sandbox = 1;
	c->redact_quantum = 72;
	c->spool_dir = xstrdup("/var/spool/roigate");
	c->settle_ms = 2000;
	c->incomplete_timeout_ms = 3600 * 1000;
	c->rescan_ms = 30 * 1000;
	c->max_file_size = 256LL * 1024 * 1024;
	c->max_packet_size = 1024LL * 1024 * 1024;
	c->max_files = 500;
	c->workers = 4;
	c->backoff_base_ms = 60 * 1000;
	c->backoff_max_ms = 3600 * 1000;
	c->max_attempts = 10;
	c->max_age_ms = 5LL * 86400 * 1000;
	c->job_timeout_ms = 600 * 1000;
	c->shutdown_grace_ms = 30 * 1000;
	c->poll_base_ms = 60 * 1000;
	c->confirm_timeout_ms = 86400LL * 1000;
	c->max_frame = 1024 * 1024;
	c->max_clients = 64;
	c->max_clients_per_uid = 16;
	c->client_idle_ms = 30 * 1000;
	c->alert_program_timeout_ms = 10 * 1000;
	c->alert_check_ms = 30 * 1000;
	c->alert_waiting_ms = 4 * 3600 * 1000;
	c->alert_awaiting_ms = 2 * 3600 * 1000;
	c->alert_disk_free = 1LL << 30;
	c->alert_deadline_ms = 5LL * 86400 * 1000;
	c->alert_rules = ALERT_RULES_ALL;
	c->exporter_listen = xstrdup("127.0.0.1:9464");
	c->exporter_path = xstrdup("/metrics");
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
parse_int(const char *v, int64_t *out)
{
	char		*end;
	long long	 n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

static const char *const alert_rule_names[ALERT_NRULES] = {
	[ALERT_FAILED] = "failed", [ALERT_HELD] = "held",
	[ALERT_WAITING] = "waiting", [ALERT_AWAITING] = "awaiting",
	[ALERT_CREDENTIALS] = "credentials", [ALERT_DISK] = "disk",
	[ALERT_SEALING] = "sealing", [ALERT_DEADLINE] = "deadline",
};

const char *
alert_rule_name(enum alert_rule r)
{
	return r < ALERT_NRULES ? alert_rule_names[r] : "unknown";
}

/* "failed, held" (or "all", "none") as rule bits; -1 on an unknown name. */
static int
alert_rules_parse(const char *v, unsigned *out)
{
	char		*copy = xstrdup(v), *w, *save = NULL;
	unsigned	 bits = 0;
	int		 rv = 0, i;

	for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		if (strcmp(w, "all") == 0) {
			bits = ALERT_RULES_ALL;
			continue;
		}
		if (strcmp(w, "none") == 0)
			continue;
		for (i = 0; i < ALERT_NRULES && strcmp(w, alert_rule_names[i]); i++)
			;
		if (i == ALERT_NRULES)
			rv = -1;
		else
			bits |= 1u << i;
	}
	free(copy);
	if (rv == 0)
		*out = bits;
	return rv;
}

static void
set_value(struct parser *p, const struct key_def *k, const char *v)
{
	char	*base = (char *)p->conf + k->offset;
	int64_t	 n;
	int	 lvl;

	switch (k->type) {
	case KEY_PATH:
		if (v[0] != '/') {
			perr(p, "%s: \"%.100s\" must be an absolute path", k->key, v);
			return;
		}
		/* FALLTHROUGH */
	case KEY_STRING:
		if (*v == '\0') {
			perr(p, "%s: a value is required", k->key);
			return;
		}
		free(*(char **)base);
		*(char **)base = xstrdup(v);
		return;
	case KEY_LOGLEVEL:
		if ((lvl = log_level_parse(v)) == -1) {
			perr(p, "%s: \"%.100s\" is not a log level (error, warning, "
			    "notice, info, debug)", k->key, v);
			return;
		}
		*(int *)base = lvl;
		return;
	case KEY_CHOICE: {
		const char	*c = k->choices;
		size_t		 len = strlen(v);
		int		 i = 0;

		for (;; i++) {
			const char *bar = strchr(c, '|');
			size_t clen = bar ? (size_t)(bar - c) : strlen(c);

			if (clen == len && strncmp(c, v, len) == 0) {
				*(int *)base = i;
				return;
			}
			if (bar == NULL)
				break;
			c = bar + 1;
		}
		perr(p, "%s: \"%.100s\" is not one of %s", k->key, v, k->choices);
		return;
	}
	case KEY_RULES:
		if (alert_rules_parse(v, (unsigned *)base) == -1)
			perr(p, "%s: \"%.100s\" is not a list of alert rules (%s)",
			    k->key, v, ALERT_RULE_NAMES);
		return;
	case KEY_DURATION:
		if (duration_parse(v, &n) == -1) {
			perr(p, "%s: \"%.100s\" is not a duration (like 500ms, 30s, "
			    "5m, 2h, 6d)", k->key, v);
			return;
		}
		break;
	case KEY_SIZE:
		if (size_parse(v, &n) == -1) {
			perr(p, "%s: \"%.100s\" is not a size (like 4096, 512K, 64M, "
			    "1G)", k->key, v);
			return;
		}
		break;
	case KEY_INT:
	case KEY_MSEC:
		if (parse_int(v, &n) == -1) {
			perr(p, "%s: \"%.100s\" is not a whole number", k->key, v);
			return;
		}
		break;
	}
	if (n < k->min || n > k->max) {
		perr(p, "%s: %.100s is out of range (%lld to %lld)", k->key, v,
		    (long long)k->min, (long long)k->max);
		return;
	}
	if (k->type == KEY_INT)
		*(int *)base = (int)n;
	else
		*(int64_t *)base = n;
}

/* One "user:NAME", "group:NAME", "uid:N" or "gid:N" grant. */
static void
add_grant(struct parser *p, unsigned role, const char *word)
{
	struct config	*c = p->conf;
	struct passwd	*pw;
	struct group	*gr;
	const char	*arg = strchr(word, ':');
	int64_t		 n;
	int		 is_group;
	uid_t		 id;

	if (arg == NULL || arg[1] == '\0')
		goto bad;
	arg++;
	if (strncmp(word, "user:", 5) == 0) {
		if ((pw = getpwnam(arg)) == NULL) {
			perr(p, "no such user \"%.100s\"", arg);
			return;
		}
		is_group = 0, id = pw->pw_uid;
	} else if (strncmp(word, "group:", 6) == 0) {
		if ((gr = getgrnam(arg)) == NULL) {
			perr(p, "no such group \"%.100s\"", arg);
			return;
		}
		is_group = 1, id = gr->gr_gid;
	} else if (strncmp(word, "uid:", 4) == 0 || strncmp(word, "gid:", 4) == 0) {
		if (parse_int(arg, &n) == -1 || n < 0 || n > UINT32_MAX - 1)
			goto bad;
		is_group = word[0] == 'g', id = (uid_t)n;
	} else
		goto bad;
	c->grants = xreallocarray(c->grants, c->ngrants + 1, sizeof(*c->grants));
	c->grants[c->ngrants].is_group = is_group;
	c->grants[c->ngrants].id = id;
	c->grants[c->ngrants].roles = role;
	c->ngrants++;
	return;
bad:
	perr(p, "\"%.100s\" is not a grant (use user:NAME, group:NAME, uid:N "
	    "or gid:N)", word);
}

static void
parse_roles(struct parser *p, const char *key, char *value)
{
	unsigned	 role = 0;
	char		*w, *save = NULL;

	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(key, role_names[i].name) == 0)
			role = role_names[i].bit;
	if (role == 0) {
		perr(p, "unknown role \"%.100s\" (roles are submit, operate, "
		    "audit, admin, metrics)", key);
		return;
	}
	for (w = strtok_r(value, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save))
		add_grant(p, role, w);
}

static void
parse_section(struct parser *p, char *s)
{
	char			*end = strchr(s, ']'), *arg;
	struct config		*c = p->conf;
	struct config_transport	*t;

	p->tr = NULL;
	p->section[0] = '\0';
	p->bad_section = 1;
	if (end == NULL || *trim(end + 1) != '\0') {
		perr(p, "section header must look like [name]");
		return;
	}
	*end = '\0';
	s = trim(s + 1);
	if ((arg = strpbrk(s, " \t")) != NULL) {
		*arg++ = '\0';
		arg = trim(arg);
	}
	if (strcmp(s, "transport") == 0) {
		if (arg == NULL || !valid_filename(arg) || strlen(arg) > 63) {
			perr(p, "[transport NAME] needs a plain name");
			return;
		}
		for (size_t i = 0; i < c->ntransports; i++)
			if (strcmp(c->transports[i].name, arg) == 0) {
				perr(p, "[transport %s] is already defined on line %d",
				    arg, c->transports[i].line);
				return;
			}
		c->transports = xreallocarray(c->transports, c->ntransports + 1,
		    sizeof(*c->transports));
		t = &c->transports[c->ntransports++];
		memset(t, 0, sizeof(*t));
		t->name = xstrdup(arg);
		t->line = p->line;
		p->tr = t;
	} else if (arg != NULL || (strcmp(s, "daemon") && strcmp(s, "spool") &&
	    strcmp(s, "queue") && strcmp(s, "render") && strcmp(s, "control") &&
	    strcmp(s, "log") && strcmp(s, "roles") && strcmp(s, "alerts") &&
	    strcmp(s, "exporter") && strcmp(s, "retention") &&
	    strcmp(s, "requests"))) {
		perr(p, "unknown section [%.60s%s%.60s] (sections are daemon, spool, "
		    "queue, render, control, log, roles, alerts, exporter, retention, "
		    "requests, "
		    "transport NAME)", s, arg ? " " : "", arg ? arg : "");
		return;
	}
	bsnprintf(p->section, sizeof(p->section), "%s", s);
	p->bad_section = 0;
}

static void
parse_transport_key(struct parser *p, const char *key, const char *value)
{
	struct config_transport	*t = p->tr;

	if (strcmp(key, "plugin") == 0) {
		if (!valid_filename(value) || strchr(value, '.')) {
			perr(p, "plugin: \"%.100s\" must be a plugin name like sftp",
			    value);
			return;
		}
		free(t->plugin);
		t->plugin = xstrdup(value);
		return;
	}
	/* The queue's, not the plugin's: how many of its jobs run at once. */
	if (strcmp(key, "max_concurrent") == 0) {
		int64_t	n;
		if (parse_int(value, &n) == -1 || n < 0 || n > 256) {
			perr(p, "max_concurrent: \"%.100s\" must be a whole number "
			    "from 0 (no limit) to 256", value);
			return;
		}
		t->max_concurrent = (int)n;
		return;
	}
	t->kv = xreallocarray(t->kv, t->nkv + 1, sizeof(*t->kv));
	t->kv[t->nkv].key = xstrdup(key);
	t->kv[t->nkv].value = xstrdup(value);
	t->kv[t->nkv].line = p->line;
	t->nkv++;
}

/* A note that does not refuse the file (roigated -n prints them, the
 * daemon logs them at start). */
static void
pnote(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
pnote(struct parser *p, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(&p->notes, "%s%s:%d: %s", p->notes.len ? "\n" : "", p->file,
	    p->line, msg);
}

/* [render] archive_retention is the old name of [retention] archive: it
 * still works, with a note; both with different values is an error
 * (which one holds?). */
static void
archive_key_seen(struct parser *p, const char *key)
{
	int	old = strcmp(p->section, "render") == 0;

	if (p->archive_line && p->archive_old != old &&
	    p->archive_ms != p->conf->archive_retention_ms)
		perr(p, "%s: [render] archive_retention and [retention] archive are "
		    "the same setting (the first is its old name) and differ; keep "
		    "only [retention] archive (line %d has the other)", key,
		    p->archive_line);
	else if (old)
		pnote(p, "[render] archive_retention is deprecated: it is now "
		    "[retention] archive (the old name still works)");
	p->archive_line = p->line;
	p->archive_old = old;
	p->archive_ms = p->conf->archive_retention_ms;
}

static void
parse_line(struct parser *p, char *line)
{
	char	*eq, *key, *value;

	line = trim(line);
	if (*line == '\0' || *line == '#' || *line == ';')
		return;
	if (*line == '[') {
		parse_section(p, line);
		return;
	}
	if ((eq = strchr(line, '=')) == NULL) {
		perr(p, "expected \"key = value\" or a [section]");
		return;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (p->bad_section)
		return;
	if (p->section[0] == '\0') {
		perr(p, "\"%.100s\" is outside any section", key);
		return;
	}
	if (strcmp(p->section, "transport") == 0) {
		if (p->tr)
			parse_transport_key(p, key, value);
		return;
	}
	if (strcmp(p->section, "roles") == 0) {
		parse_roles(p, key, value);
		return;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].section, p->section) == 0 &&
		    strcmp(keys[i].key, key) == 0) {
			set_value(p, &keys[i], value);
			if (keys[i].offset == OFF(archive_retention_ms))
				archive_key_seen(p, key);
			if (keys[i].offset == OFF(retention_records_ms))
				p->records_line = p->line;
			return;
		}
	perr(p, "unknown key \"%.100s\" in [%s]", key, p->section);
}

/*
 * [render] protect: named patterns that hold on every document.  All the
 * named ones: ssn, phone and email need nothing more; mrn, dob and
 * patient_name look for each packet's own patient (a packet without a
 * date of birth has none to look for).  A regular expression belongs to a
 * packet's manifest, where a clerk can see why it did not match.
 */
static void
check_protect(struct parser *p, const char *v)
{
	static const char *const named[] = { "ssn", "phone", "email", "mrn",
	    "dob", "patient_name", "none" };
	char	*list = xstrdup(v), *save = NULL, *name;

	for (name = strtok_r(list, ", ", &save); name;
	    name = strtok_r(NULL, ", ", &save)) {
		size_t i;

		for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
			if (strcmp(name, named[i]) == 0)
				break;
		if (i == sizeof(named) / sizeof(named[0]))
			perr(p, "[render] protect: \"%.40s\" is not a named pattern; "
			    "protect takes ssn, phone, email, mrn, dob and patient_name "
			    "(a regular expression goes in a packet's manifest)", name);
	}
	free(list);
}

/* Checks that need the whole file. */
static void
config_finish(struct parser *p)
{
	struct config	*c = p->conf;

	p->line = 0;
	if (c->protect)
		check_protect(p, c->protect);
	if (c->retention_records_ms < RETENTION_RECORDS_MIN_MS) {
		p->line = p->records_line;
		perr(p, "[retention] records is shorter than six years: the "
		    "disclosure, audit and incident records must be kept at least "
		    "six years (HIPAA, 45 CFR 164.316(b)(2)); set 6y or longer, or "
		    "leave it out (the default is 6y)");
		p->line = 0;
	}
	if (c->backoff_max_ms < c->backoff_base_ms)
		perr(p, "[queue] backoff_max must not be shorter than backoff_base");
	if (c->max_file_size > c->max_packet_size)
		perr(p, "[spool] max_file_size must not exceed max_packet_size");
	if (c->alert_mail_to && (c->alert_smtp_url == NULL ||
	    c->alert_mail_from == NULL))
		perr(p, "[alerts] mail_to needs smtp_url and mail_from");
	if (c->alert_smtp_url && strncmp(c->alert_smtp_url, "smtp://", 7) != 0 &&
	    strncmp(c->alert_smtp_url, "smtps://", 8) != 0)
		perr(p, "[alerts] smtp_url must be smtp://HOST:PORT (STARTTLS is "
		    "required) or smtps://HOST:PORT");
	if (c->alert_program && c->alert_program[0] != '/')
		perr(p, "[alerts] program must start with an absolute path (it is "
		    "run without a shell)");
	if (c->ntransports == 0) {
		/* The embedded default: deliver into a folder of the state dir. */
		struct config_transport *t = xcalloc(1, sizeof(*t));
		t->name = xstrdup("local");
		t->kv = xcalloc(1, sizeof(*t->kv));
		t->kv[0].key = xstrdup("dir");
		xasprintf(&t->kv[0].value, "%s/outbox", c->state_dir);
		t->nkv = 1;
		c->transports = t;
		c->ntransports = 1;
	}
	for (size_t i = 0; i < c->ntransports; i++)
		if (c->transports[i].plugin == NULL)
			c->transports[i].plugin = xstrdup(c->transports[i].name);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct parser	 p;
	FILE		*fp = NULL;
	char		 line[CONFIG_MAX_LINE];

	memset(&p, 0, sizeof(p));
	buf_init(&p.errs);
	buf_init(&p.notes);
	p.conf = xcalloc(1, sizeof(*p.conf));
	p.file = path ? path : "(defaults)";
	p.conf->path = xstrdup(p.file);
	config_defaults(p.conf);
	if (path != NULL) {
		if ((fp = fopen(path, "re")) == NULL) {
			bsnprintf(err, errlen, "%s: %s", path, strerror(errno));
			config_free(p.conf);
			return NULL;
		}
		while (fgets(line, sizeof(line), fp) != NULL) {
			p.line++;
			if (strchr(line, '\n') == NULL && !feof(fp)) {
				perr(&p, "line too long (over %d bytes)",
				    CONFIG_MAX_LINE - 2);
				break;
			}
			parse_line(&p, line);
		}
		fclose(fp);
	}
	config_finish(&p);
	if (p.nerrs) {
		strlcpy_(err, buf_cstr(&p.errs), errlen);
		buf_free(&p.errs);
		buf_free(&p.notes);
		config_free(p.conf);
		return NULL;
	}
	buf_free(&p.errs);
	if (p.notes.len)
		p.conf->notes = xstrdup(buf_cstr(&p.notes));
	buf_free(&p.notes);
	return p.conf;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->notes);
	free(c->state_dir);
	free(c->socket_path);
	free(c->transport_dir);
	free(c->template_dir);
	free(c->organization);
	free(c->organization_address);
	free(c->organization_phone);
	free(c->organization_fax);
	free(c->logo);
	free(c->cover_template);
	free(c->font_dir);
	free(c->protect);
	free(c->spool_dir);
	free(c->alert_mail_to);
	free(c->alert_mail_from);
	free(c->alert_smtp_url);
	free(c->alert_ca_file);
	free(c->alert_program);
	free(c->exporter_listen);
	free(c->exporter_path);
	free(c->grants);
	for (size_t i = 0; i < c->ntransports; i++) {
		struct config_transport *t = &c->transports[i];
		for (size_t j = 0; j < t->nkv; j++) {
			free(t->kv[j].key);
			/* Values may be secrets (paths to them, at least). */
			explicit_bzero(t->kv[j].value, strlen(t->kv[j].value));
			free(t->kv[j].value);
		}
		free(t->kv);
		free(t->name);
		free(t->plugin);
	}
	free(c->transports);
	free(c);
}

unsigned
config_roles(const struct config *c, uid_t uid, gid_t gid,
    const gid_t *peer_groups, int npeer_groups)
{
	struct passwd	*pw;
	gid_t		 groups[CONFIG_MAX_GROUPS];
	int		 ngroups = CONFIG_MAX_GROUPS;
	unsigned	 roles = 0;

	if (peer_groups != NULL) {
		/* The groups the kernel says the peer holds (SO_PEERGROUPS). */
		ngroups = 0;
		groups[ngroups++] = gid;
		for (int i = 0; i < npeer_groups && ngroups < CONFIG_MAX_GROUPS; i++)
			groups[ngroups++] = peer_groups[i];
	} else if ((pw = getpwuid(uid)) == NULL ||
	    getgrouplist(pw->pw_name, gid, groups, &ngroups) == -1) {
		/* From the group database. */
		groups[0] = gid;
		ngroups = 1;
	}
	for (size_t i = 0; i < c->ngrants; i++) {
		const struct role_grant *g = &c->grants[i];
		if (!g->is_group) {
			if (g->id == uid)
				roles |= g->roles;
			continue;
		}
		for (int j = 0; j < ngroups; j++)
			if (groups[j] == g->id)
				roles |= g->roles;
	}
	return roles;
}

const char *
role_name(unsigned role)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (role_names[i].bit == role)
			return role_names[i].name;
	return "unknown";
}

void
roles_format(unsigned roles, char *buf, size_t len)
{
	size_t	off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (!(roles & role_names[i].bit))
			continue;
		int n = snprintf(buf + off, len - off, "%s%s", off ? "," : "",
		    role_names[i].name);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		strlcpy_(buf, "none", len);
}
