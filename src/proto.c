/*
 * Control-socket framing, shared by the daemon (non-blocking reader) and
 * its clients (blocking send/receive): a 4-byte big-endian length, then a
 * JSON object; file descriptors ride along with SCM_RIGHTS on the first
 * byte of a frame.  A frame over the limit is refused from its header,
 * before any of its body is read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "proto.h"
#include "util.h"

#define CMSG_FDS_SPACE	CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)

int
proto_send(int fd, json_t *msg, const int *fds, size_t nfds)
{
	char		*body;
	size_t		 len, off = 0;
	uint8_t		*frame;
	ssize_t		 n;
	struct msghdr	 mh;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_FDS_SPACE];
	} cm;

	if (nfds > PROTO_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if ((body = json_dumps(msg, JSON_COMPACT)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	len = strlen(body);
	frame = xmalloc(len + 4);
	frame[0] = (uint8_t)(len >> 24);
	frame[1] = (uint8_t)(len >> 16);
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
	memcpy(frame + 4, body, len);
	free(body);
	len += 4;
	while (off < len) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = frame + off;
		iov.iov_len = len - off;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (off == 0 && nfds > 0) {
			struct cmsghdr *c;
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		if ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			free(frame);
			return -1;
		}
		off += (size_t)n;
	}
	free(frame);
	return 0;
}

/* recvmsg that collects passed fds into pr (closing any beyond the limit). */
static ssize_t
proto_recvmsg(int fd, void *buf, size_t len, int *fds, size_t *nfds,
    size_t maxfds, int *overflow)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	ssize_t		 n;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_FDS_SPACE];
	} cm;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (mh.msg_flags & MSG_CTRUNC)
		*overflow = 1;	/* the kernel closed what did not fit */
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			if (fds != NULL && *nfds < maxfds)
				fds[(*nfds)++] = p[i];
			else {
				close(p[i]);
				*overflow = 1;
			}
		}
	}
	return n;
}

void
proto_reader_init(struct proto_reader *pr, size_t max)
{
	memset(pr, 0, sizeof(*pr));
	pr->max = max;
	pr->maxfds = PROTO_MAX_FDS;
}

void
proto_reader_reset(struct proto_reader *pr)
{
	size_t	max = pr->max, maxfds = pr->maxfds;

	for (size_t i = 0; i < pr->nfds; i++)
		if (pr->fds[i] != -1)
			close(pr->fds[i]);
	free(pr->body);
	proto_reader_init(pr, max);
	pr->maxfds = maxfds;
}

int
proto_read(struct proto_reader *pr, int fd, char *err, size_t errlen)
{
	ssize_t	n;

	for (;;) {
		if (pr->hdrlen < 4) {
			n = proto_recvmsg(fd, pr->hdr + pr->hdrlen, 4 - pr->hdrlen,
			    pr->fds, &pr->nfds, pr->maxfds, &pr->fds_overflow);
		} else if (pr->got < pr->want) {
			n = proto_recvmsg(fd, pr->body + pr->got, pr->want - pr->got,
			    pr->fds, &pr->nfds, pr->maxfds, &pr->fds_overflow);
		} else
			return 1;
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			bsnprintf(err, errlen, "read error: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			if (pr->hdrlen == 0)
				return -2;
			bsnprintf(err, errlen, "connection closed mid-frame");
			return -1;
		}
		if (pr->hdrlen < 4) {
			pr->hdrlen += (size_t)n;
			if (pr->hdrlen < 4)
				continue;
			pr->want = (size_t)pr->hdr[0] << 24 | (size_t)pr->hdr[1] << 16 |
			    (size_t)pr->hdr[2] << 8 | pr->hdr[3];
			if (pr->want == 0 || pr->want > pr->max) {
				bsnprintf(err, errlen, "frame of %zu bytes %s", pr->want,
				    pr->want ? "exceeds the limit" : "is empty");
				if (pr->want)
					snprintf(err + strlen(err), errlen - strlen(err),
					    " of %zu bytes", pr->max);
				return -1;
			}
			pr->body = xmalloc(pr->want + 1);
			pr->got = 0;
		} else
			pr->got += (size_t)n;
		if (pr->hdrlen == 4 && pr->got == pr->want) {
			pr->body[pr->want] = '\0';
			return 1;
		}
	}
}

json_t *
proto_decode(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*j, *v;

	if ((j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		bsnprintf(err, errlen, "bad JSON (column %d: %.100s)", jerr.column,
		    jerr.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		bsnprintf(err, errlen, "a request must be a JSON object");
		goto fail;
	}
	v = json_object_get(j, "v");
	if (!json_is_integer(v) || json_integer_value(v) != PROTO_VERSION) {
		if (json_is_integer(v))
			bsnprintf(err, errlen, "unsupported protocol version %lld (this "
			    "daemon speaks %d)", (long long)json_integer_value(v),
			    PROTO_VERSION);
		else
			bsnprintf(err, errlen, "missing protocol version \"v\" (this "
			    "daemon speaks %d)", PROTO_VERSION);
		goto fail;
	}
	if (!json_is_string(json_object_get(j, "op"))) {
		bsnprintf(err, errlen, "missing operation \"op\"");
		goto fail;
	}
	return j;
fail:
	json_decref(j);
	return NULL;
}

int
proto_recv(int fd, size_t max, json_t **msg, int *fds, size_t *nfds, char *err,
    size_t errlen)
{
	uint8_t		 hdr[4];
	size_t		 got = 0, want, maxfds = nfds ? *nfds : 0, n0 = 0;
	size_t		*count = nfds ? nfds : &n0;
	char		*body;
	ssize_t		 n;
	int		 overflow = 0;
	json_error_t	 jerr;

	*count = 0;
	while (got < 4) {
		n = proto_recvmsg(fd, hdr + got, 4 - got, fds, count, maxfds, &overflow);
		if (n <= 0) {
			bsnprintf(err, errlen, n == 0 ? "connection closed" : "%s",
			    strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	want = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	if (want == 0 || want > max) {
		bsnprintf(err, errlen, "frame of %zu bytes is over the limit of %zu",
		    want, max);
		return -1;
	}
	body = xmalloc(want);
	for (got = 0; got < want; got += (size_t)n) {
		n = proto_recvmsg(fd, body + got, want - got, fds, count, maxfds,
		    &overflow);
		if (n <= 0) {
			bsnprintf(err, errlen, n == 0 ? "connection closed mid-frame" :
			    "%s", strerror(errno));
			free(body);
			return -1;
		}
	}
	*msg = json_loadb(body, want, 0, &jerr);
	free(body);
	if (*msg == NULL || !json_is_object(*msg)) {
		bsnprintf(err, errlen, "bad JSON from the peer: %.100s", jerr.text);
		json_decref(*msg);
		return -1;
	}
	return 0;
}
