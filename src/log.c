/*
 * Logging to stderr, which systemd sends to the journal.  Used by the
 * daemon, its workers, roictl and the plugins.  A "<N>" prefix gives the
 * journal the priority when stderr is not a terminal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static const char	*log_prog = "roigate";
static int		 log_level = LOG_INFO;
static int		 log_prefix_prio;

void
log_init(const char *progname, int level)
{
	log_prog = progname;
	log_level = level;
	log_prefix_prio = !isatty(STDERR_FILENO) && getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

int
log_level_parse(const char *s)
{
	static const struct { const char *name; int level; } levels[] = {
		{ "error", LOG_ERR }, { "warning", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(s, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

static void
log_vemit(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char	msg[2048], line[2400];
	int	n;
	int	saved = errno;

	if (prio > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One write per line, so that workers' lines do not interleave. */
	if (log_prefix_prio)
		n = snprintf(line, sizeof(line), "<%d>%s%s%s\n", prio, msg,
		    suffix ? ": " : "", suffix ? suffix : "");
	else
		n = snprintf(line, sizeof(line), "%s: %s%s%s\n", log_prog, msg,
		    suffix ? ": " : "", suffix ? suffix : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, (size_t)n);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	char	*err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_WARNING, fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vemit(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vemit(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vemit(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	char	*err = strerror(errno);

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
