/*
 * Alerts (daemon): conditions an administrator must hear about, raised
 * once when they start and resolved once when they end ([alerts] in
 * roigate.conf).  Delivered by e-mail and/or to a program, from a child
 * process, so that the event loop never waits on a mail server.  An
 * alert names rules, transports, recipient ids, job ids and counts:
 * never PHI.
 */
#ifndef ALERTS_H
#define ALERTS_H

#include <stdint.h>

#include <jansson.h>

#include <roigate/transport.h>

#include "config.h"
#include "store.h"

/* Once, after the store is open: starts the periodic check. */
void	alerts_init(void);
void	alerts_reconfigure(void);
/* The queue recorded a worker's outcome for job j (to: its new state). */
void	alerts_job_event(const struct job *j, const char *transport,
	    enum job_state to, enum transport_status,
	    const struct transport_receipt *);
/*
 * A condition from elsewhere (sealing, request deadlines): active opens the alert for (rule, subject) if it
 * is not open, !active resolves it.  summary: plain words, no PHI.
 */
void	alerts_condition(enum alert_rule, const char *subject, int active,
	    const char *summary, int64_t job_id);
/* Open alerts and the recently resolved ones, newest first. */
json_t	*alerts_list(void);

#endif
