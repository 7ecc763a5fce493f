/*
 * The control socket's framing, shared by the daemon and its clients:
 * each message is a 4-byte big-endian length and a JSON object; file
 * descriptors travel alongside with SCM_RIGHTS.  See docs/protocol.md.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define PROTO_VERSION		1
#define PROTO_MAX_FRAME		(1024 * 1024)
#define PROTO_MAX_FDS		64

/* Blocking send of one frame with optional fds.  0 / -1 (errno). */
int	proto_send(int fd, json_t *msg, const int *fds, size_t nfds);
/* Blocking receive of one frame.  0, or -1 with err; fds received are
 * stored in fds (up to *nfds on input, count on output). */
int	proto_recv(int fd, size_t max, json_t **msg, int *fds, size_t *nfds,
	    char *err, size_t errlen);

/* Incremental, non-blocking reader for the daemon. */
struct proto_reader {
	uint8_t		 hdr[4];
	size_t		 hdrlen;
	char		*body;
	size_t		 want;		/* body length from the header */
	size_t		 got;
	size_t		 max;		/* frame size limit */
	int		 fds[PROTO_MAX_FDS];
	size_t		 nfds;
	size_t		 maxfds;	/* kept per frame (PROTO_MAX_FDS); the
					 * rest are closed as they arrive */
	int		 fds_overflow;	/* more fds were sent than allowed */
};
void	proto_reader_init(struct proto_reader *, size_t max);
void	proto_reader_reset(struct proto_reader *);	/* closes unclaimed fds */
/*
 * Read what is available.  1: a whole frame is in body/want; 0: need
 * more; -1: protocol error (reason in err) or I/O error; -2: peer closed.
 */
int	proto_read(struct proto_reader *, int fd, char *err, size_t errlen);
/* Parse a frame body as a JSON object with "v" == PROTO_VERSION; NULL with err. */
json_t	*proto_decode(const char *body, size_t len, char *err, size_t errlen);

#endif
