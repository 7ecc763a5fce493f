/*
 * roigated: the gateway daemon.  main(), options, signals, start-up and
 * shutdown order, configuration reload.  One process and one event loop
 * own the database, the spool and the control socket; jobs run in forked
 * workers (src/worker.c).
 */
#include <errno.h>
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

#include "config.h"
#include "control.h"
#include "log.h"
#include "loop.h"
#include "probe.h"
#include "queue.h"
#include "render.h"
#include "roigated.h"
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
	    "usage: roigated [-dn] [-f file]\n"
	    "  -f file  configuration file (default %s;\n"
	    "           the embedded defaults are used if it does not exist)\n"
	    "  -d       log at debug level (PHI may appear: never in production)\n"
	    "  -n       check the configuration and exit\n", CONFIG_DEFAULT_PATH);
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
	spool_reconfigure();
	control_reconfigure();
	queue_reconfigure();
	sd_notify(0, "READY=1");
	log_info("configuration reloaded");
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

static void
open_store(void)
{
	char	path[PATH_MAX], err[512];
	int	lockfd;

	if (mkdir_p(rg->conf->state_dir, 0700) == -1)
		fatal("cannot create %s", rg->conf->state_dir);
	/* One daemon per state folder: a second one would send twice.  The
	 * lock lasts as long as the process (the descriptor stays open). */
	if (bsnprintf(path, sizeof(path), "%s/roigated.lock", rg->conf->state_dir) == -1)
		fatalx("state_dir too long");
	if ((lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("cannot open %s", path);
	if (flock(lockfd, LOCK_EX | LOCK_NB) == -1)
		fatalx("another roigated is already running on %s",
		    rg->conf->state_dir);
	if (bsnprintf(path, sizeof(path), "%s/roigate.db", rg->conf->state_dir) == -1)
		fatalx("state_dir too long");
	if ((rg->store = store_open(path, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (!store_disclosure_guarded(rg->store))
		daemon_problem(PROBLEM_LOG, "the disclosure log's append-only "
		    "triggers are missing: someone changed the database behind the "
		    "daemon; run roictl verify-log");
}

int
main(int argc, char *argv[])
{
	const char	*path = CONFIG_DEFAULT_PATH;
	int		 ch, checkonly = 0, debug = 0, explicit = 0;

	log_init("roigated", LOG_INFO);
	while ((ch = getopt(argc, argv, "df:n")) != -1) {
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
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* Without -f, a missing default file means the embedded defaults. */
	if (!explicit && access(path, F_OK) == -1 && errno == ENOENT)
		path = NULL;
	rg->conf_path = path;
	umask(077);
	if ((rg->conf = load(path, &transports, &ntransports)) == NULL)
		return 1;
	if (checkonly) {
		printf("%s: configuration OK\n", path ? path : "(embedded defaults)");
		return 0;
	}
	log_setlevel(debug ? LOG_DEBUG : rg->conf->log_level);
	transport_set(transports, ntransports);
	rg->started_at = now_wall();

	loop_init();
	signal(SIGPIPE, SIG_IGN);
	loop_signal(SIGTERM, on_terminate, NULL);
	loop_signal(SIGINT, on_terminate, NULL);
	loop_signal(SIGHUP, on_reload, NULL);
	open_store();
	queue_init();
	if (spool_init() == -1 || submit_init() == -1 || control_init() == -1)
		fatalx("start-up failed");
	queue_recover();
	queue_kick();
	log_info("started: spool %s, state %s, socket %s, %zu transport(s)",
	    rg->conf->spool_dir, rg->conf->state_dir, rg->conf->socket_path,
	    ntransports);
	sd_notify(0, "READY=1\nSTATUS=accepting packets");
	loop_run();
	store_close(rg->store);
	transport_free_all(transports, ntransports);
	config_free(rg->conf);
	return 0;
}
