/*
 * The job state machine and scheduler: picks due jobs, starts workers
 * (at most [queue] workers at once), records results in the same
 * transaction as the disclosure-log entries, applies backoff, and carries
 * out operator commands.  Runs in the daemon.
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stddef.h>
#include <stdint.h>

void	queue_init(void);
/* Recover jobs left in rendering/sending by a crash; call once at start. */
void	queue_recover(void);
/* Look for due jobs now (after intake, a worker exit, a timer). */
void	queue_kick(void);
/* Stop starting jobs; running ones finish within grace, the rest are
 * requeued.  done() is called when no worker is left. */
void	queue_drain(void (*done)(void));
/* After a configuration reload. */
void	queue_reconfigure(void);
int	queue_running(void);		/* workers running now */
/* Sends running now for this recipient and for this transport instance,
 * job except not counted (src/window.c's limits). */
void	queue_running_for(const char *recipient_id, const char *transport,
	    int64_t except, int *for_recipient, int *for_transport);

/* Operator commands.  0 ok; -1 with a plain-language reason in err. */
int	queue_hold(int64_t id, const char *actor, char *err, size_t errlen);
int	queue_release(int64_t id, const char *actor, char *err, size_t errlen);
int	queue_retry(int64_t id, const char *actor, char *err, size_t errlen);
int	queue_cancel(int64_t id, const char *actor, char *err, size_t errlen);


#endif
