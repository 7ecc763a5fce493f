/*
 * State shared by the daemon's subsystems (one process, one thread).
 */
#ifndef ROIGATED_H
#define ROIGATED_H

#include <stdint.h>

struct config;
struct store;

#define PROBLEM_MAX	8

struct roigated {
	struct config	*conf;
	struct store	*store;
	const char	*conf_path;	/* NULL: embedded defaults */
	int		 draining;	/* SIGTERM received: take no new work */
	/* Conditions an operator should see in "roictl status" (disk full,
	 * plugin missing, database locked), by subsystem. */
	char		 problem[PROBLEM_MAX][256];
	int64_t		 started_at;
	char		 instance[17];	/* the database's instance id (hex) */
};

extern struct roigated *rg;

/* Record (msg != NULL) or clear (msg == NULL) a problem in slot n. */
enum problem_slot {
	PROBLEM_SPOOL = 0,
	PROBLEM_STORE,
	PROBLEM_TRANSPORT,
	PROBLEM_QUEUE,
	PROBLEM_CONTROL,
	PROBLEM_LOG,		/* the disclosure log failed verification */
	PROBLEM_SEAL,		/* sealing not set up, or failing */
	PROBLEM_RETENTION,	/* a prune's removal failing */
};
void	daemon_problem(enum problem_slot, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	daemon_problem_clear(enum problem_slot);

#endif
