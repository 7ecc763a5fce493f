/*
 * roigated: the gateway daemon.  main(), options, signals, start-up and
 * shutdown order, configuration reload.  One process and one event loop
 * own the database, the spool and the control socket; jobs run in forked
 * workers (src/worker.c).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "alerts.h"
#include "config.h"
#include "control.h"
#include "counts.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "probe.h"
#include "queue.h"
#include "retention.h"
#include "render.h"
#include "roigated.h"
#include "seal.h"
#include "spool.h"
#include "store.h"
#include "submit.h"
#include "transport.h"
#include "util.h"

static struct roigated	 daemon_state;
struct roigated		*rg = &daemon_state;

static struct transport_instance *transports;
static size_t			  ntransports;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: roigated [-dn] [-f file] [--init | --setup-seal]\n"
	    "  -f file  configuration file (default %s;\n"
	    "           the embedded defaults are used if it does not exist)\n"
	    "  -d       log at debug level (PHI may appear: never in production)\n"
	    "  -n       check the configuration and exit\n"
	    "  --init   make a new database although the state folder holds an\n"
	    "           earlier one's folders (they are moved to previous-DATE/)\n"
	    "           and exit\n"
	    "  --setup-seal  make the sealing key (kept in the state folder) and\n"
	    "           print the verification key for the privacy officer, once;\n"
	    "           run as the daemon's user with the daemon stopped, and exit\n",
	    CONFIG_DEFAULT_PATH);
	exit(64);
}

void
daemon_problem(enum problem_slot slot, const char *fmt, ...)
{
	char	msg[sizeof(rg->problem[0])];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, rg->problem[slot]) != 0)
		log_warnx("%s", msg);
	strlcpy_(rg->problem[slot], msg, sizeof(rg->problem[slot]));
}

void
daemon_problem_clear(enum problem_slot slot)
{
	if (rg->problem[slot][0])
		log_info("resolved: %s", rg->problem[slot]);
	rg->problem[slot][0] = '\0';
}

/* Load a configuration and its transports; NULL with errors on stderr. */
static struct config *
load(const char *path, struct transport_instance **tis, size_t *n)
{
	struct config	*c;
	char		 err[8192];

	if ((c = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	if (transport_load_all(c, tis, n, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		config_free(c);
		return NULL;
	}
	if (render_check_templates(c, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", c->path, err);
		transport_free_all(*tis, *n);
		config_free(c);
		return NULL;
	}
	return c;
}

static void
on_reload(int signo, void *arg)
{
	struct transport_instance	*tis;
	struct config			*c;
	size_t				 n;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)now_ms() * 1000);
	log_info("reloading %s", rg->conf_path ? rg->conf_path : "(defaults)");
	if ((c = load(rg->conf_path, &tis, &n)) == NULL) {
		log_warnx("configuration not reloaded: the file has errors (above); "
		    "the running configuration stays in force");
		sd_notify(0, "READY=1");
		return;
	}
	if (strcmp(c->state_dir, rg->conf->state_dir) ||
	    strcmp(c->spool_dir, rg->conf->spool_dir) ||
	    strcmp(c->socket_path, rg->conf->socket_path))
		log_warnx("state_dir, spool dir and socket changes take effect only "
		    "after a restart");
	/* Keep the paths in force; take everything else. */
	free(c->state_dir);
	c->state_dir = xstrdup(rg->conf->state_dir);
	free(c->spool_dir);
	c->spool_dir = xstrdup(rg->conf->spool_dir);
	free(c->socket_path);
	c->socket_path = xstrdup(rg->conf->socket_path);
	/* Running workers keep their forked copy of the old instances. */
	transport_free_all(transports, ntransports);
	transports = tis;
	ntransports = n;
	transport_set(tis, n);
	daemon_problem_clear(PROBLEM_TRANSPORT);
	config_free(rg->conf);
	rg->conf = c;
	log_setlevel(c->log_level);
	render_preload(c);	/* OCR turned on: loaded now, once */
	spool_reconfigure();
	control_reconfigure();
	queue_reconfigure();
	alerts_reconfigure();
	retention_sweep();		/* the periods may have changed */
	sd_notify(0, "READY=1");
	log_info("configuration reloaded");
}

static struct loop_timer	*seal_timer;

/* An epoch ended: seal it, evolve the key, send the checkpoint. */
static void
on_seal_timer(void *arg)
{
	int64_t	next = 0;

	if (seal_tick(now_wall(), &next) == -1) {
		daemon_problem(PROBLEM_SEAL, "sealing: an epoch could not be sealed "
		    "(%.200s); retrying", store_errmsg(rg->store));
		next = 1000;
	} else if (rg->problem[PROBLEM_SEAL][0] && seal_active())
		daemon_problem_clear(PROBLEM_SEAL);
	loop_timer_set(seal_timer, next);
}

static void
start_sealing(void)
{
	char	err[512];
	int	rv;

	rv = seal_start(rg->store, rg->conf->state_dir, rg->instance,
	    rg->conf->seal_interval_ms, err, sizeof(err));
	if (rv == 1) {
		daemon_problem(PROBLEM_SEAL, "the disclosure log is not sealed: "
		    "without sealing, anyone with the daemon's rights could rewrite "
		    "it unnoticed; stop roigated and run roigated --setup-seal once "
		    "as its user (docs/disclosure-log.md)");
		return;
	}
	if (rv == -1) {
		daemon_problem(PROBLEM_SEAL, "sealing: %s", err);
		return;
	}
	seal_timer = loop_timer_new(on_seal_timer, NULL);
	on_seal_timer(NULL);	/* seals the epochs missed while stopped */
}

/* --setup-seal: make the keys and print the verification key, once. */
static int
setup_seal(void)
{
	uint8_t	vkey[SEAL_KEY_LEN];
	char	text[128], err[512];

	if (seal_setup(rg->store, rg->conf->state_dir, rg->instance, vkey, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "roigated: %s\n", err);
		return 1;
	}
	seal_vkey_format(vkey, text, sizeof(text));
	explicit_bzero(vkey, sizeof(vkey));
	printf("Sealing is set up for the database in %s (instance %s).\n\n"
	    "VERIFICATION KEY (shown this once, never stored on this machine):\n\n"
	    "    %s\n\n"
	    "Give it to the privacy officer now.  Write it down or print it, and\n"
	    "keep it off this machine (on paper, in a vault).  Whoever holds it can\n"
	    "prove that the disclosure log was not changed (roigate-verify), and\n"
	    "could also forge seals: guard it like a master key.  If it is lost, the\n"
	    "log can no longer be proven intact.  Start roigated now.\n",
	    rg->conf->state_dir, rg->instance, text);
	explicit_bzero(text, sizeof(text));
	return 0;
}

static void
on_drained(void)
{
	log_info("all workers done; exiting");
	loop_exit();
}

static void
on_terminate(int signo, void *arg)
{
	if (rg->draining)
		return;
	log_info("received %s: stopping", strsignal(signo));
	sd_notify(0, "STOPPING=1");
	spool_stop();
	control_stop();
	probe_stop_all();
	queue_drain(on_drained);
}

/* How many entries a folder of the state holds (0 if it is not there). */
static int
state_entries(const char *sub)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if (bsnprintf(path, sizeof(path), "%s/%s", rg->conf->state_dir, sub) == -1 ||
	    (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/*
 * The database is the evidence of what was sent.  A new one is made only in
 * a state folder that holds nothing of an earlier one: with job folders,
 * archived outputs or delivered files there and the database missing or
 * empty, something was lost, and a new database would restart the job
 * numbers, forget every disclosure and reuse the archive's names.  With
 * --init the administrator says to start anew: what is there is kept, moved
 * aside into previous-DATE/.
 */
static void
check_new_database(const char *dbpath, int init)
{
	static const char *const evidence[] = { "jobs", "archive", "outbox" };
	char		 found[300] = "", from[PATH_MAX], to[PATH_MAX], when[32];
	char		 prev[PATH_MAX];
	struct stat	 st;
	int		 n;

	for (size_t i = 0; i < sizeof(evidence) / sizeof(evidence[0]); i++)
		if ((n = state_entries(evidence[i])) > 0)
			snprintf(found + strlen(found), sizeof(found) - strlen(found),
			    "%s%s/ (%d entr%s)", found[0] ? ", " : "", evidence[i], n,
			    n == 1 ? "y" : "ies");
	if (bsnprintf(from, sizeof(from), "%s-wal", dbpath) != -1 &&
	    stat(from, &st) == 0 && st.st_size > 0)
		snprintf(found + strlen(found), sizeof(found) - strlen(found),
		    "%sroigate.db-wal (%lld bytes)", found[0] ? ", " : "",
		    (long long)st.st_size);
	if (bsnprintf(from, sizeof(from), "%s/seal.key", rg->conf->state_dir) != -1 &&
	    stat(from, &st) == 0)
		snprintf(found + strlen(found), sizeof(found) - strlen(found),
		    "%sseal.key (the sealing key of an earlier log)",
		    found[0] ? ", " : "");
	if (found[0] == '\0')
		return;
	if (!init)
		fatalx("%s is missing or empty, but %s holds %s of the gateway's "
		    "records: restore roigate.db from the backup (with its -wal file "
		    "if there is one); roigated makes a new database only in an "
		    "empty state folder, or when told to with roigated --init "
		    "(which moves the old folders aside, kept)", dbpath,
		    rg->conf->state_dir, found);
	time_iso(now_wall(), when, sizeof(when));
	if (bsnprintf(prev, sizeof(prev), "%s/previous-%s", rg->conf->state_dir,
	    when) == -1 || mkdir_p(prev, 0700) == -1)
		fatal("cannot create %s", prev);
	for (size_t i = 0; i < sizeof(evidence) / sizeof(evidence[0]); i++) {
		if (state_entries(evidence[i]) == 0)
			continue;
		if (bsnprintf(from, sizeof(from), "%s/%s", rg->conf->state_dir,
		    evidence[i]) == -1 || bsnprintf(to, sizeof(to), "%s/%s", prev,
		    evidence[i]) == -1 || rename(from, to) == -1)
			fatal("cannot move %s to %s", from, to);
		log_info("--init: %s kept as %s", from, to);
	}
	/* An old database's journal and sealing key must not meet the new one. */
	if (bsnprintf(from, sizeof(from), "%s/seal.key", rg->conf->state_dir) == -1 ||
	    bsnprintf(to, sizeof(to), "%s/seal.key", prev) == -1)
		fatalx("state_dir too long");
	if (access(from, F_OK) == 0 && rename(from, to) == -1)
		fatal("cannot move %s aside", from);
	for (int i = 0; i < 2; i++) {
		const char *sfx = i == 0 ? "-wal" : "-shm";
		if (bsnprintf(from, sizeof(from), "%s%s", dbpath, sfx) == -1 ||
		    bsnprintf(to, sizeof(to), "%s/roigate.db%s", prev, sfx) == -1)
			fatalx("state_dir too long");
		if (access(from, F_OK) == 0 && rename(from, to) == -1)
			fatal("cannot move %s aside", from);
	}
	if (fsync_dir(rg->conf->state_dir) == -1)
		fatal("fsync %s", rg->conf->state_dir);
}

static void
open_store(int init)
{
	char		path[PATH_MAX], err[512];
	struct stat	st;
	int		lockfd;

	if (mkdir_p(rg->conf->state_dir, 0700) == -1)
		fatal("cannot create %s", rg->conf->state_dir);
	/* One daemon per state folder: a second one would send twice.  The
	 * lock lasts as long as the process (the descriptor stays open). */
	if (bsnprintf(path, sizeof(path), "%s/roigated.lock", rg->conf->state_dir) == -1)
		fatalx("state_dir too long");
	if ((lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("cannot open %s", path);
	/* The processes of a roigated just killed hold it a moment longer
	 * (they die with it, PR_SET_PDEATHSIG, but a sender must be gone
	 * before anything is sent again): wait for them, 10 s at most. */
	for (int tries = 0; flock(lockfd, LOCK_EX | LOCK_NB) == -1; tries++) {
		if (errno != EWOULDBLOCK || tries == 200)
			fatalx("another roigated is already running on %s",
			    rg->conf->state_dir);
		if (tries == 0)
			log_info("waiting for the processes of an earlier "
			    "roigated on %s to exit", rg->conf->state_dir);
		(void)poll(NULL, 0, 50);
	}
	if (bsnprintf(path, sizeof(path), "%s/roigate.db", rg->conf->state_dir) == -1)
		fatalx("state_dir too long");
	if (lstat(path, &st) == -1 || st.st_size == 0)
		check_new_database(path, init);
	else if (!S_ISREG(st.st_mode))
		fatalx("%s is not a regular file", path);
	if ((rg->store = store_open(path, err, sizeof(err))) == NULL)
		fatalx("%s: the database cannot be used: restore it from the backup",
		    err);
	if (store_quick_check(rg->store, err, sizeof(err)) == -1)
		fatalx("%s is damaged (SQLite's quick_check: %s): restore it from the "
		    "backup; nothing was changed", path, err);
	if (store_instance_id(rg->store, rg->instance) == -1)
		fatalx("%s: %s", path, store_errmsg(rg->store));
	if (!store_disclosure_guarded(rg->store))
		daemon_problem(PROBLEM_LOG, "the disclosure log's append-only "
		    "triggers are missing: someone changed the database behind the "
		    "daemon; run roictl verify-log");
}

int
main(int argc, char *argv[])
{
	const char	*path = CONFIG_DEFAULT_PATH;
	static const struct option longopts[] = {
		{ "init", no_argument, NULL, 'I' },
		{ "setup-seal", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int		 ch, checkonly = 0, debug = 0, explicit = 0, init = 0;
	int		 setup = 0;

	log_init("roigated", LOG_INFO);
	while ((ch = getopt_long(argc, argv, "df:n", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			path = optarg;
			explicit = 1;
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'I':
			init = 1;
			break;
		case 'S':
			setup = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (init && setup))
		usage();
	/* Without -f, a missing default file means the embedded defaults. */
	if (!explicit && access(path, F_OK) == -1 && errno == ENOENT)
		path = NULL;
	rg->conf_path = path;
	umask(077);
	if ((rg->conf = load(path, &transports, &ntransports)) == NULL)
		return 1;
	if (checkonly) {
		if (rg->conf->notes)
			printf("%s\n", rg->conf->notes);
		printf("%s: configuration OK\n", path ? path : "(embedded defaults)");
		return 0;
	}
	if (rg->conf->notes)
		log_warnx("%s", rg->conf->notes);
	log_setlevel(debug ? LOG_DEBUG : rg->conf->log_level);
	transport_set(transports, ntransports);
	rg->started_at = now_wall();

	loop_init();
	signal(SIGPIPE, SIG_IGN);
	loop_signal(SIGTERM, on_terminate, NULL);
	loop_signal(SIGINT, on_terminate, NULL);
	loop_signal(SIGHUP, on_reload, NULL);
	open_store(init);
	if (init) {
		printf("roigated: database ready in %s (instance %s)\n",
		    rg->conf->state_dir, rg->instance);
		store_close(rg->store);
		return 0;
	}
	if (setup) {
		int rv = setup_seal();
		store_close(rg->store);
		return rv;
	}
	metrics_init();
	alerts_init();
	start_sealing();
	if (!rg->conf->render_verify)	/* said from the start, not at the first send */
		daemon_problem(PROBLEM_QUEUE, "[render] verify = off: outputs are "
		    "sent unchecked (no leak gate)");
	render_preload(rg->conf);
	queue_init();
	retention_init();
	if (spool_init() == -1 || submit_init() == -1 || control_init() == -1)
		fatalx("start-up failed");
	queue_recover();
	/* Counted once now (a million jobs: a third of a second), so that the
	 * first roictl status is as quick as the rest. */
	if (counts_start(rg->store) == -1)
		log_info("the jobs could not be counted at start-up: roictl status "
		    "counts them in the database");
	queue_kick();
	log_info("started: spool %s, state %s, socket %s, %zu transport(s)",
	    rg->conf->spool_dir, rg->conf->state_dir, rg->conf->socket_path,
	    ntransports);
	sd_notify(0, "READY=1\nSTATUS=accepting packets");
	loop_run();
	/* The partial epoch is sealed, and its key erased. */
	if (seal_close(now_wall()) == -1)
		log_warnx("sealing: the last epoch could not be sealed: %s",
		    store_errmsg(rg->store));
	store_close(rg->store);
	transport_free_all(transports, ntransports);
	config_free(rg->conf);
	return 0;
}
