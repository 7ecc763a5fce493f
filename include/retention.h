/*
 * Retention (daemon): how long roigate keeps what it holds, [retention]
 * in roigate.conf.  Accepted packet copies (jobs/ID) of finished jobs and
 * archived outputs go by themselves; the sealed records (disclosure,
 * audit, incident, suspension) only by roictl prune, after six years at
 * least, under a sealed prune record.  docs/disclosure-log.md says how a
 * prune stays verifiable.
 */
#ifndef RETENTION_H
#define RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Timers for jobs/ and archive/, and a removal left unfinished by a stop. */
void	retention_init(void);
/* Look at jobs/ and archive/ again now (after a reload or a prune). */
void	retention_sweep(void);

/* What a prune would remove now. */
struct retention_plan {
	int64_t		 now;
	int64_t		 before;	/* epochs that ended by then may go */
	int64_t		 epoch;		/* the newest such epoch; -1: none */
	struct {
		int64_t	 from, to;	/* entries from..to (seq); to < from: none */
		int64_t	 count;		/* present in the database */
		int64_t	 first_at, last_at;
	} t[STORE_SEALED_N];
	struct store_prune rec;		/* the record a prune writes */
	int64_t		 job_folders;	/* expired jobs/ID folders, and their */
	int64_t		 job_bytes;	/* bytes */
	int		 removing;	/* an earlier prune's removal is under way */
};
/* 0, or -1 with why (sealing not set up, the database unreadable). */
int	retention_plan(int64_t now, struct retention_plan *, char *why,
	    size_t whylen);
/* Write the plan's prune record (sealed), then remove in the background,
 * in small transactions between events; 0 and the record's seq (0: there
 * was nothing to prune), or -1 with why. */
int	retention_prune(struct retention_plan *, const char *actor, char *why,
	    size_t whylen);

#endif
