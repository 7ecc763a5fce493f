/*
 * Packet intake shared by the spool folder and socket submission:
 * validate a packet folder, then accept it durably into jobs/ID.
 * Runs in the daemon.
 */
#ifndef INTAKE_H
#define INTAKE_H

#include <stdint.h>

struct manifest;
struct errlist;
struct policy_magic;

/* Once at start-up: the jobs/ folder and the libmagic handle. */
void	intake_init(int jobs_dirfd, struct policy_magic *);

/*
 * Validate a packet folder (dirfd open on it).  0: acceptable (*mp set);
 * 1: incomplete, still waiting for files (reasons in errs); -1: must be
 * rejected (reasons in errs).
 */
int	intake_check(int dirfd, struct manifest **mp, struct errlist *errs);

/*
 * Accept a validated packet: rename srcdirfd/name to jobs/ID, fsync both
 * folders, then commit the job.  0 and *id, or -1 with err (the packet is
 * then back where it was).
 */
int	intake_accept(int srcdirfd, const char *name, const struct manifest *m,
	    const char *source, const char *actor, int64_t *id, char *err,
	    size_t errlen);

/* After a crash: commit or reject folders in jobs/ that have no job row. */
void	intake_recover(int rejected_dirfd);

#endif
