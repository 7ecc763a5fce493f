/*
 * Per-recipient limits and send windows (daemon), asked by the queue
 * before it starts a job (src/queue.c, queue_new_run).
 *
 *   max_concurrent (recipient parameter): a fax number that takes one fax
 *     at a time gets one at a time; [transport NAME] max_concurrent caps
 *     the instance as a whole (a fax account's line count).
 *   send_window (recipient parameter): "Mon-Fri 08:00-18:00 America/Chicago";
 *     days as Mon-Fri or Mon,Wed,Fri; hours in the named zone of the TZ
 *     database (local time without one).  Outside it the job waits until
 *     it opens; send_window_urgent = bypass lets packets marked urgent
 *     (cover_sheet.urgent) through.
 *
 * A job that may not start stays queued (or deferred) with the reason as
 * its last error, so `roictl show`, `list` and `shape` say why; no attempt
 * is counted.  Busy waits are woken when a slot frees (window_job_done),
 * with backoff_base as a fallback; window waits until the window opens.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "roigated.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "window.h"

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };

static int
day_parse(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++)
		if (len == 3 && strncasecmp(s, day_names[i], 3) == 0)
			return i;
	return -1;
}

/* "Mon-Fri" or "Mon,Wed,Fri" or "Sat-Sun" (wrapping) into day bits. */
static int
days_parse(const char *s, unsigned *out)
{
	*out = 0;
	while (*s) {
		const char	*comma = strchr(s, ',');
		size_t		 len = comma ? (size_t)(comma - s) : strlen(s);
		int		 a, b;

		if (len == 7 && s[3] == '-') {
			if ((a = day_parse(s, 3)) < 0 || (b = day_parse(s + 4, 3)) < 0)
				return -1;
			for (int d = a;; d = (d + 1) % 7) {
				*out |= 1u << d;
				if (d == b)
					break;
			}
		} else if ((a = day_parse(s, len)) >= 0)
			*out |= 1u << a;
		else
			return -1;
		s += len + (comma ? 1 : 0);
	}
	return *out ? 0 : -1;
}

static int
hhmm(const char *s, int *min)
{
	int	h, m;
	char	tail;

	if (sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 24 ||
	    m < 0 || m > 59 || (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	return 0;
}

/* A zone name from the TZ database, as a file below /usr/share/zoneinfo. */
static int
valid_zone(const char *tz)
{
	char		path[128];
	struct stat	st;

	if (tz[0] == '\0' || tz[0] == '/' || strstr(tz, "..") || strlen(tz) >= 64)
		return 0;
	for (const char *p = tz; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return 0;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int
window_parse(const char *text, struct send_window *w, char *why, size_t whylen)
{
	char	 days[64], hours[32], tz[64] = "", extra[8];
	char	*dash;
	int	 n;

	memset(w, 0, sizeof(*w));
	n = sscanf(text, "%63s %31s %63s %7s", days, hours, tz, extra);
	if (n < 2 || n > 3) {
		bsnprintf(why, whylen, "send_window: \"%.80s\" must look like "
		    "\"Mon-Fri 08:00-18:00 America/Chicago\"", text);
		return -1;
	}
	if (days_parse(days, &w->days) == -1) {
		bsnprintf(why, whylen, "send_window: \"%.40s\" is not a list of days "
		    "(Mon-Fri, Sat-Sun, Mon,Wed,Fri)", days);
		return -1;
	}
	if ((dash = strchr(hours, '-')) == NULL || (*dash = '\0', hhmm(hours,
	    &w->start)) == -1 || hhmm(dash + 1, &w->end) == -1 || w->end <= w->start) {
		bsnprintf(why, whylen, "send_window: the hours must be like "
		    "08:00-18:00, the end after the start");
		return -1;
	}
	if (n == 3 && !valid_zone(tz)) {
		bsnprintf(why, whylen, "send_window: \"%.63s\" is not a time zone of "
		    "the TZ database (like America/Chicago)", tz);
		return -1;
	}
	strlcpy_(w->tz, tz, sizeof(w->tz));
	return 0;
}

/* localtime_r / mktime in the window's zone: TZ set for the call only. */
static void
zone_enter(const char *tz, char *saved, size_t len)
{
	const char	*old = getenv("TZ");

	saved[0] = '\0';
	if (old)
		snprintf(saved, len, "=%s", old);	/* '=': it was set */
	if (tz[0])
		setenv("TZ", tz, 1);
	tzset();
}

static void
zone_leave(const char *saved)
{
	if (saved[0] == '=')
		setenv("TZ", saved + 1, 1);
	else
		unsetenv("TZ");
	tzset();
}

int
window_open_at(const struct send_window *w, int64_t t, int64_t *opens)
{
	char		saved[128];
	struct tm	tm, day;
	time_t		tt = (time_t)t;
	int		min, rv = 0;

	zone_enter(w->tz, saved, sizeof(saved));
	localtime_r(&tt, &tm);
	min = tm.tm_hour * 60 + tm.tm_min;
	if ((w->days & (1u << tm.tm_wday)) && min >= w->start && min < w->end)
		rv = 1;
	*opens = t;
	for (int d = 0; rv == 0 && d <= 7; d++) {
		day = tm;
		day.tm_mday += d;
		day.tm_hour = w->start / 60;
		day.tm_min = w->start % 60;
		day.tm_sec = 0;
		day.tm_isdst = -1;
		time_t at = mktime(&day);	/* normalizes the date */
		localtime_r(&at, &day);
		if ((w->days & (1u << day.tm_wday)) && at > tt) {
			*opens = at;
			break;
		}
	}
	zone_leave(saved);
	return rv;
}

int
window_check_params(const char *key, const char *value, char *why, size_t whylen)
{
	struct send_window	w;
	char			*end;
	long			 n;

	if (strcmp(key, "max_concurrent") == 0) {
		n = strtol(value, &end, 10);
		if (*value == '\0' || *end != '\0' || n < 0 || n > 256) {
			bsnprintf(why, whylen, "max_concurrent: must be a whole number "
			    "from 0 (no limit) to 256");
			return -1;
		}
	} else if (strcmp(key, "send_window") == 0)
		return window_parse(value, &w, why, whylen);
	else if (strcmp(key, "send_window_urgent") == 0 && strcmp(value, "bypass") &&
	    strcmp(value, "wait")) {
		bsnprintf(why, whylen, "send_window_urgent: must be bypass or wait");
		return -1;
	}
	return 0;
}

/* [transport NAME] max_concurrent; 0: no limit. */
static int
transport_limit(const char *name)
{
	for (size_t i = 0; i < rg->conf->ntransports; i++)
		if (strcmp(rg->conf->transports[i].name, name) == 0)
			return rg->conf->transports[i].max_concurrent;
	return 0;
}

/* Busy jobs waiting for a slot, oldest first (a fallback timer covers
 * any that do not fit or were noted before a restart). */
#define WAITERS_MAX	4096

struct waiter {
	int64_t	job_id;
	char	recipient[65];
	char	transport[64];
};

static struct waiter	waiters[WAITERS_MAX];
static size_t		nwaiters;

static void
waiter_note(int64_t id, const char *recipient, const char *transport)
{
	for (size_t i = 0; i < nwaiters; i++)
		if (waiters[i].job_id == id)
			return;
	if (nwaiters == WAITERS_MAX)
		return;
	waiters[nwaiters].job_id = id;
	strlcpy_(waiters[nwaiters].recipient, recipient, sizeof(waiters[0].recipient));
	strlcpy_(waiters[nwaiters].transport, transport, sizeof(waiters[0].transport));
	nwaiters++;
}

void
window_job_done(const char *recipient_id, const char *transport)
{
	for (size_t i = 0; i < nwaiters; i++) {
		if (strcmp(waiters[i].transport, transport) != 0 ||
		    (strcmp(waiters[i].recipient, recipient_id) != 0 &&
		    transport_limit(transport) == 0))
			continue;
		store_job_set_next(rg->store, waiters[i].job_id, now_wall());
		memmove(&waiters[i], &waiters[i + 1],
		    (nwaiters - i - 1) * sizeof(*waiters));
		nwaiters--;
		return;
	}
}

static const char *
param(json_t *params, const char *key)
{
	return json_string_value(json_object_get(params, key));
}

/* The window check: 1 open (or bypassed), 0 closed with until and why. */
static int
window_ok(json_t *params, int urgent, int64_t now, int64_t *until, char *why,
    size_t whylen)
{
	struct send_window	 w;
	const char		*text = param(params, "send_window"), *bypass;
	char			 err[200], saved[128], when[32];
	struct tm		 tm;
	time_t			 at;

	if (text == NULL)
		return 1;
	bypass = param(params, "send_window_urgent");
	if (urgent && bypass && strcmp(bypass, "bypass") == 0)
		return 1;
	if (window_parse(text, &w, err, sizeof(err)) == -1)
		return 1;	/* checked when added; an old bad entry does not block */
	if (window_open_at(&w, now, until))
		return 1;
	at = (time_t)*until;
	zone_enter(w.tz, saved, sizeof(saved));
	localtime_r(&at, &tm);
	strftime(when, sizeof(when), "%a %H:%M", &tm);
	zone_leave(saved);
	bsnprintf(why, whylen, "waiting for the recipient's send window (opens %s)",
	    when);
	return 0;
}

int
window_may_start(const struct recipient *rc, const struct transport_instance *ti,
    int urgent, int64_t job_id, int64_t now, int64_t *until, char *why,
    size_t whylen)
{
	json_t		*params = json_loads(rc->params ? rc->params : "{}", 0, NULL);
	const char	*mc = param(params, "max_concurrent");
	int		 n_rcpt = 0, n_ti = 0, lim_rcpt = mc ? atoi(mc) : 0, rv = 1;
	int		 lim_ti = transport_limit(ti->name);

	if (!window_ok(params, urgent, now, until, why, whylen)) {
		rv = 0;
		goto done;
	}
	if (lim_rcpt <= 0 && lim_ti <= 0)
		goto done;
	queue_running_for(rc->id, ti->name, job_id, &n_rcpt, &n_ti);
	*until = now + (rg->conf->backoff_base_ms + 999) / 1000;
	if (lim_rcpt > 0 && n_rcpt >= lim_rcpt) {
		bsnprintf(why, whylen, "waiting: recipient busy (%d of %d at once)",
		    n_rcpt, lim_rcpt);
		rv = 0;
	} else if (lim_ti > 0 && n_ti >= lim_ti) {
		bsnprintf(why, whylen, "waiting: transport %.64s busy (%d of %d at "
		    "once)", ti->name, n_ti, lim_ti);
		rv = 0;
	}
	if (rv == 0)
		waiter_note(job_id, rc->id, ti->name);
done:
	json_decref(params);
	return rv;
}
