/*
 * Packet intake shared by the spool folder and socket submission:
 * validate a packet folder, copy what it lists into a daemon-owned
 * staging folder, then accept that durably as jobs/ID.  Runs in the daemon.
 */
#ifndef INTAKE_H
#define INTAKE_H

#include <stdint.h>
#include <sys/types.h>

struct manifest;
struct errlist;
struct policy_magic;

/* A folder of jobs/ being filled: ".stage-PID-N", 0700, ours alone. */
struct intake_stage {
	char	name[64];
	int	fd;		/* -1 once accepted or discarded */
};

/* Once at start-up: the jobs/ folder and the libmagic handle. */
void	intake_init(int jobs_dirfd, struct policy_magic *);

/* Make a new staging folder; -1 with err. */
int	intake_stage_open(struct intake_stage *, char *err, size_t errlen);
/* Remove a staging folder that was not accepted. */
void	intake_stage_discard(struct intake_stage *);

/*
 * Validate a packet folder (dirfd open on it).  With stagefd != -1 each
 * listed document and the manifest are copied into that staging folder
 * first, and the copies are what is checked (hashes, types, the reader);
 * with -1 the folder is a staging folder already.  0: acceptable (*mp
 * set); 1: incomplete, still waiting for files (reasons in errs); -1: must
 * be rejected (reasons in errs); 2: the packet is job *same already, with
 * the very same manifest and documents (*mp set: nothing to take again);
 * 3: a document could not be checked now (its reader was killed from
 * outside): nothing is wrong with the packet so far, look again later;
 * 4: nothing is wrong so far, and a document's reader is still at work
 * (or waits for a free one): spool_probed() and submit_probed() are
 * called when one finishes, to look again.
 */
int	intake_check(int dirfd, int stagefd, struct manifest **mp,
	    struct errlist *errs, int64_t *same);

/*
 * Accept a validated staging folder: in one transaction take the next job
 * id, rename the folder to jobs/ID (fsynced), insert the job (with the
 * uid that submitted it over the socket, or -1) and commit.
 * 0 and *id; or -1 with err, nothing taken (the folder stays staged).
 */
int	intake_accept(struct intake_stage *, const struct manifest *m,
	    const char *source, const char *actor, int64_t submit_uid,
	    int64_t *id, char *err, size_t errlen);

/* At start: remove staging folders and jobs/ID folders with no job row
 * (their acceptance was interrupted: the packet is still at its source). */
void	intake_recover(void);

/* The daemon's SIGCHLD: pid was a document reader of intake's (its
 * status kept for its verdict)?  1 or 0. */
int	intake_probe_exited(pid_t pid, int status);

/* Is name a reason file roigate writes (REASON.txt, REASON.N.txt)? */
int	intake_reason_file(const char *name);

#endif
