/*
 * The control socket's operations (daemon): one function per request,
 * found by name in a table with the roles each needs.  See
 * docs/protocol.md for the requests and their results.
 */
#ifndef CONTROL_OPS_H
#define CONTROL_OPS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

struct peer {
	uid_t		uid;
	gid_t		gid;
	pid_t		pid;
	gid_t		groups[64];	/* supplementary groups (SO_PEERGROUPS) */
	int		ngroups;	/* -1: the kernel did not say */
	unsigned	roles;		/* ROLE_* from [roles] */
};

struct op_result {
	const char	*code;		/* NULL: ok; else bad_request, not_found, ... */
	char		 error[512];	/* plain words when code is set */
	json_t		*result;	/* the result object when ok */
	json_t		*reasons;	/* a list of strings (refused packet) */
	char		 target[80];	/* job or recipient, for the audit log */
	char		 detail[160];	/* for the audit log; never PHI */
	/*
	 * An operation that takes time (a submission's copy) answers later:
	 * it sets deferred, keeps conn, and calls control_reply_later(conn,
	 * result) when done; until then the connection reads nothing more.
	 * Should the client go first, cancel(cancel_arg) is called instead.
	 */
	void		*conn;
	int		 deferred;
	void		(*cancel)(void *);
	void		*cancel_arg;
};

/* The answer of a deferred operation (see struct op_result). */
void	control_reply_later(void *conn, struct op_result *);

struct op_def {
	const char	*name;
	unsigned	 roles;		/* any of these may */
	const char	*role_words;	/* "operate", "audit or admin" */
	void		(*run)(const struct peer *, json_t *req, const int *fds,
			    size_t nfds, struct op_result *);
};

const struct op_def	*control_op_find(const char *name);

#endif
