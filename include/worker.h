/*
 * The worker: a child process per job.  It renders the packet (the seam
 * the document pipeline fills) and hands the output to the transport.
 * It never opens the database: it talks to the daemon over a socketpair
 * with fixed-size messages.  A crash or a lost reply counts as TEMPFAIL.
 */
#ifndef WORKER_H
#define WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include <roigate/transport.h>

#include "store.h"

struct transport_instance;
struct job;
struct recipient;

enum worker_mode {
	WORKER_DELIVER = 1,
	WORKER_POLL = 2,
};

/* Messages from worker to daemon. */
enum worker_msg_type {
	WMSG_RENDERED = 1,	/* output ready: pages, sha256; waits for WMSG_GO */
	WMSG_RESULT = 2,	/* final: status and receipt */
	WMSG_REDACTION = 4,	/* before WMSG_RENDERED: one redaction applied */
};

/* The rendered output in the job's folder (a name no document can have:
 * documents never start with '.'); the transport sees it as PACKET.pdf. */
#define WORKER_OUTPUT	".output.pdf"

struct worker_msg {
	uint32_t			type;
	uint32_t			status;		/* enum transport_status */
	uint32_t			pages;
	char				sha256[65];
	char				error[TRANSPORT_DETAIL_MAX];	/* render or policy error */
	struct transport_receipt	receipt;
	struct store_redaction		red;		/* WMSG_REDACTION */
	char				gate[256];	/* WMSG_RENDERED: what the leak
							 * gate checked, or "off: ..." */
};

/* Daemon to worker: go ahead and send (after the attempt is logged). */
#define WORKER_GO	'G'

/* Daemon to worker, after a result: one more job for the same recipient
 * (its folder travels as a descriptor).  Closing the channel says: exit. */
#define WMSG_NEXT	3
struct worker_next {
	uint32_t	type;		/* WMSG_NEXT */
	int32_t		attempts;
	int64_t		job_id;
	int64_t		created_at;	/* the cover sheet's date */
	char		packet_id[72];
	char		remote_id[TRANSPORT_ID_MAX];	/* a poll's: what to ask about */
};
/* Hand a running worker its next job; 0 / -1. */
int	worker_send_next(int chan, const struct job *j, int jobdirfd);

/*
 * Fork a worker for job j to recipient r.  The child gets jobdirfd (the
 * job's folder, opened by the daemon) and the channel.  Returns the child
 * pid and the daemon's end of the channel in *chan; -1 on error.
 */
pid_t	worker_start(const struct job *j, enum worker_mode mode,
	    struct transport_instance *ti, const struct recipient *r,
	    int jobdirfd, int *chan);

/*
 * Fork a worker that runs the transport's probe() for recipient r (see
 * roictl recipient verify).  It writes one struct worker_probe_msg to the
 * channel and exits.  The child pid, or -1.
 */
struct worker_probe_msg {
	int32_t			ok;	/* 1: found; 0: see probe.detail */
	struct transport_probe	probe;
};
pid_t	worker_probe(struct transport_instance *ti, const struct recipient *r,
	    int *chan);

#endif
