/*
 * libroigate: the client library the records system links against to
 * submit release packets to roigated and ask for their status, over the
 * daemon's Unix socket.  Documents travel as file descriptors, never as
 * paths: the daemon reads them with the rights the caller gave it.
 *
 *	struct roigate *rg = roigate_connect(NULL, err, sizeof(err));
 *	int64_t job;
 *	if (rg && roigate_submit_dir(rg, "/path/packet", &job, err, sizeof(err)) == 0)
 *		printf("accepted as job %lld\n", (long long)job);
 *	roigate_close(rg);
 *
 * Functions return 0 on success or a negative ROIGATE_E_* code, with a
 * plain-language message in err (for a refused packet, one reason a line).
 * Link with `pkg-config --libs roigate`.
 */
#ifndef ROIGATE_CLIENT_H
#define ROIGATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROIGATE_DEFAULT_SOCKET	"/run/roigate/roigate.sock"

enum roigate_error {
	ROIGATE_OK = 0,
	ROIGATE_E_UNAVAILABLE = -1,	/* cannot reach the daemon */
	ROIGATE_E_DENIED = -2,		/* the caller's role does not allow it */
	ROIGATE_E_INVALID = -3,		/* the packet or request was refused */
	ROIGATE_E_NOTFOUND = -4,	/* no such job / recipient */
	ROIGATE_E_PROTOCOL = -5,	/* the daemon's answer made no sense */
	ROIGATE_E_INTERNAL = -6,	/* the daemon failed to do it */
	ROIGATE_E_SYSTEM = -7,		/* a local error (open, read): see err */
	ROIGATE_E_TEMPFAIL = -8,	/* the daemon cannot do it now (database
					 * busy, disk full): send it again later */
};

struct roigate;

struct roigate_file {
	const char	*name;	/* the document's file name in the manifest */
	int		 fd;	/* open for reading; a regular file or memfd */
};

/* NULL path: $ROIGATE_SOCKET, else ROIGATE_DEFAULT_SOCKET.  On failure NULL,
 * err filled, and errno says why (EACCES: not allowed to use the socket). */
struct roigate	*roigate_connect(const char *path, char *err, size_t errlen);
void		 roigate_close(struct roigate *);

/* Submit a packet folder: its manifest.json and every document it lists. */
int	roigate_submit_dir(struct roigate *, const char *dir, int64_t *job,
	    char *err, size_t errlen);
/* Submit a manifest (JSON text) and already-open documents. */
int	roigate_submit(struct roigate *, const char *manifest_json,
	    const struct roigate_file *files, size_t nfiles, int64_t *job,
	    char *err, size_t errlen);
/* A job's state name ("queued", "delivered", ...). */
int	roigate_job_state(struct roigate *, int64_t job, char *state,
	    size_t statelen, char *err, size_t errlen);
/*
 * Any request of docs/protocol.md: op and its arguments as a JSON object
 * text ("{}" for none).  On success *result is the result object as JSON
 * text (free() it).
 */
int	roigate_call(struct roigate *, const char *op, const char *args_json,
	    char **result, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
