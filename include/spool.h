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

int	spool_init(void);	/* create folders, start watching; -1 on error */
void	spool_stop(void);	/* stop taking packets (shutdown) */
void	spool_reconfigure(void);
/* A document reader finished: look again at the packets waiting for one. */
void	spool_probed(void);



#endif
