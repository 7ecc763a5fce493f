/*
 * Logging for the daemon and its workers: stderr (the journal under
 * systemd) with a level filter.  Never log PHI above LOG_DEBUG, never
 * credentials.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <syslog.h>

void	log_init(const char *progname, int level);
void	log_setlevel(int level);
int	log_getlevel(void);
int	log_level_parse(const char *s);	/* "debug" -> LOG_DEBUG, -1 if unknown */

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
