/*
 * Spool folder intake: incoming/ is watched with inotify (plus a periodic
 * rescan); a packet folder that is complete and has been quiet for
 * settle_ms is validated, moved into the daemon's jobs/ folder and
 * committed as a job, or moved to rejected/ with REASON.txt.  Runs in the
 * daemon.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdint.h>

#include "manifest.h"

int	spool_init(void);	/* create folders, start watching; -1 on error */
void	spool_stop(void);	/* stop taking packets (shutdown) */
void	spool_reconfigure(void);
/* Re-validate folders left in jobs/ without a job row by a crash. */
void	spool_recover(void);

/*
 * Validate a packet folder (dirfd open on it).  Used by the spool and by
 * socket submission.  Returns 0 if acceptable (*mp set), 1 if incomplete
 * (still waiting for files; reason in errs), -1 if it must be rejected
 * (reasons in errs).
 */
struct manifest;
int	intake_check(int dirfd, struct manifest **mp, struct errlist *errs);
/*
 * Accept a validated packet: rename dir (relative to srcdirfd) to jobs/ID,
 * fsync, commit the job.  0 and *id on success.
 */
int	intake_accept(int srcdirfd, const char *name, const struct manifest *m,
	    const char *source, const char *actor, int64_t *id, char *err,
	    size_t errlen);

#endif
