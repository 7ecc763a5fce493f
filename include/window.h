/*
 * Per-recipient and per-transport limits (daemon): how many jobs may run
 * at once (recipient parameter max_concurrent, [transport NAME]
 * max_concurrent) and when a recipient may be sent to (recipient
 * parameter send_window, e.g. "Mon-Fri 08:00-18:00 America/Chicago", and
 * send_window_urgent = bypass | wait).  The queue asks before it starts a
 * job; a job that may not start waits in its state with the reason.
 */
#ifndef WINDOW_H
#define WINDOW_H

#include <stddef.h>
#include <stdint.h>

struct recipient;
struct transport_instance;

/* A parsed send window: days (bit 0 Sunday), minutes from midnight, zone. */
struct send_window {
	unsigned	days;
	int		start;		/* minute of the day it opens */
	int		end;		/* minute it closes (after start) */
	char		tz[64];		/* "" local time */
};

/* "Mon-Fri 08:00-18:00 America/Chicago": 0, or -1 with the reason. */
int	window_parse(const char *text, struct send_window *, char *why,
	    size_t whylen);
/* Is t inside the window?  1 / 0; if not, *opens is when it opens next. */
int	window_open_at(const struct send_window *, int64_t t, int64_t *opens);
/* Check a recipient's limit parameters (max_concurrent, send_window,
 * send_window_urgent) when it is added: 0, or -1 with the reason. */
int	window_check_params(const char *key, const char *value, char *why,
	    size_t whylen);

/*
 * May this job start now?  1 yes; 0 no: *until is when to look again
 * (the window's opening; for a busy recipient or transport a fallback,
 * the job is woken earlier when a slot frees) and why says why, in the
 * words `roictl show` and `roictl shape` print.
 */
int	window_may_start(const struct recipient *, const struct transport_instance *,
	    int urgent, int64_t job_id, int64_t now, int64_t *until, char *why,
	    size_t whylen);
/* A job of this recipient and transport ended: wake one that waits for
 * the slot (its next attempt set to now). */
void	window_job_done(const char *recipient_id, const char *transport);

#endif
