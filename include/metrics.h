/*
 * What the daemon counts for roigate-exporter (the "metrics" operation):
 * counters kept in memory (seeded from the disclosure log at start) and a
 * snapshot of the queue read from the store on request.  No PHI: labels
 * are transport names, recipient ids, states and error classes.  Runs in
 * the daemon.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>

#include <jansson.h>

#include <roigate/transport.h>

struct errlist;

/* Seed the counters from the store; once, after the store is open. */
void	metrics_init(void);
/* A worker rendered a job's output: its pages and how long it took. */
void	metrics_job_rendered(const char *transport, uint32_t pages,
	    int64_t render_ms);
/* A worker's outcome was recorded: a delivery (delivered != 0, with the
 * job's acceptance time for the latency), a temporary or a permanent
 * failure (classed by the receipt), or a fax sent and still unconfirmed. */
void	metrics_job_outcome(const char *transport, enum transport_status,
	    const struct transport_receipt *, const char *error,
	    int64_t created_at, int delivered);
/* A packet was refused at intake (spool or socket), for these reasons. */
void	metrics_intake_refused(const struct errlist *);
/* The disclosure log was verified: it passed (1) or not (0). */
void	metrics_log_verified(int ok);
/* A short class for a failure ("credentials", "busy", "worker", ...):
 * a label, bounded, never the detail text. */
void	metrics_error_class(enum transport_status, const struct transport_receipt *,
	    const char *error, char *out, size_t len);
/* Everything, as the "metrics" operation returns it (docs/protocol.md). */
json_t	*metrics_snapshot(void);

#endif
