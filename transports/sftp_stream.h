/*
 * The sftp transport's bulk transfer: an SFTP channel of its own beside
 * libssh's, on the same SSH connection, that keeps several writes (and
 * the reads that check them) in flight.  libssh 0.10 has no asynchronous
 * write: its sftp_write waits a round trip for every chunk.  Run in the
 * worker, by transports/sftp.c only.
 */
#ifndef SFTP_STREAM_H
#define SFTP_STREAM_H

#include <stdint.h>
#include <time.h>

#include <libssh/libssh.h>

struct sftp_stream;

/* What one upload is to do, and what came of it. */
struct sftp_stream_put {
	int		 fd;		/* the local file, read with pread */
	uint64_t	 size;		/* its size */
	const char	*path;		/* the remote name to create (NAME.part) */
	int		 readback;	/* read each acknowledged chunk back */
	time_t		 deadline;	/* the whole delivery's */
	/* Filled in: */
	char		 sent_sha256[65];	/* what was sent (readback == 0) */
	char		 read_sha256[65];	/* what was read back (readback) */
	uint64_t	 read_size;
	const char	*failed;	/* the step that failed: "create", ... */
	int		 sftp_status;	/* the server's SSH_FX_* for it, or -1 */
	int		 local;		/* the local file could not be read */
};

struct sftp_stream *sftp_stream_open(ssh_session, long timeout_s, char *err,
	    size_t errlen);
int	 sftp_stream_put(struct sftp_stream *, struct sftp_stream_put *,
	    char *err, size_t errlen);
void	 sftp_stream_free(struct sftp_stream *);

#endif
