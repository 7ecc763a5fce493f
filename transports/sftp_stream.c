/*
 * The sftp transport's bulk transfer (see sftp_stream.h): a second SFTP
 * channel on the delivery's SSH connection, spoken directly (SFTP
 * version 3, draft-ietf-secsh-filexfer-02, the version OpenSSH serves).
 * Run in the worker.
 *
 * One upload creates the file (CREAT|EXCL, mode 0600) and keeps 1 MiB
 * of writes in flight.  With readback, each chunk the server has
 * acknowledged is read back on the same handle while later chunks are
 * still being sent (510 KiB of reads in flight) and hashed in file order
 * as it arrives; the upload and its check overlap instead of following
 * each other.  Chunks are as large as the server's limits@openssh.com
 * allows, up to 255 KiB (256 KiB makes OpenSSH drop the channel; fewer,
 * larger requests cost the server less); without it, 255 KiB writes and
 * 64 KiB reads.  A
 * server that answers a read with less than was asked gets smaller
 * reads from then on.  Then fsync@openssh.com where offered, and
 * close.  The caller still checks the size with stat and compares the
 * read-back SHA-256 with the job's before the rename: nothing here
 * decides that a file is delivered.
 *
 * Memory is bounded: one write buffer and the read buffers, under 1 MiB.
 * What is in flight towards us (read data, 510 KiB) stays under the
 * least window libssh 0.10 leaves a channel once read from (it grows it
 * back to 1.25 MB when it falls below half), so the server can always
 * send every answer we asked for while a write of ours waits for the
 * server's window: the two directions never wait for each other.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sftp_stream.h"
#include "util.h"

#define FXP_INIT		1
#define FXP_VERSION		2
#define FXP_OPEN		3
#define FXP_CLOSE		4
#define FXP_READ		5
#define FXP_WRITE		6
#define FXP_STATUS		101
#define FXP_HANDLE		102
#define FXP_DATA		103
#define FXP_EXTENDED		200
#define FXP_EXTENDED_REPLY	201

#define FXF_READ		0x01
#define FXF_WRITE		0x02
#define FXF_CREAT		0x08
#define FXF_EXCL		0x20
#define FILEXFER_ATTR_PERMISSIONS 0x04

#define FX_OK			0
#define FX_EOF			1

#define STREAM_WCHUNK		(255 * 1024)	/* the most data in one write */
#define STREAM_WBYTES		(1024 * 1024)	/* writes in flight */
#define STREAM_RCHUNK		(255 * 1024)	/* the most asked in one read */
#define STREAM_RCHUNK_DEFAULT	(64 * 1024)	/* without limits@openssh.com */
#define STREAM_RBYTES		(510 * 1024)	/* reads in flight: see above */
#define STREAM_WRITES		32		/* ring sizes: at least */
#define STREAM_READS		32		/*  BYTES / the least chunk */
#define STREAM_MIN_CHUNK	(32 * 1024)
#define STREAM_HANDLE_MAX	256		/* the draft's limit */
#define STREAM_SMALL		4096		/* any answer but DATA */

struct sftp_stream {
	ssh_session	 ssh;
	ssh_channel	 ch;
	int		 timeout_ms;
	int		 fsync_ext;	/* fsync@openssh.com offered */
	int		 limits_ext;	/* limits@openssh.com offered */
	uint32_t	 wchunk, rchunk;	/* bytes in one write, one read */
	uint32_t	 next_id;
	unsigned char	 handle[STREAM_HANDLE_MAX];
	uint32_t	 hlen;
	char		*err;
	size_t		 errlen;
};

/* One request in flight. */
struct stream_req {
	uint32_t	 id;
	uint64_t	 off;
	uint32_t	 len, got;
	int		 done;
	int		 stale;		/* a read overtaken by a short one */
	unsigned char	*buf;		/* reads only */
};

/* The pipeline of one upload. */
struct stream_pipe {
	struct sftp_stream_put	*put;
	struct sha256_ctx	*hash;
	unsigned char		*wbuf;
	struct stream_req	 w[STREAM_WRITES], r[STREAM_READS];
	size_t			 whead, wtail, rhead, rtail;	/* rings */
	size_t			 nw, nr;	/* requests in flight, at most */
	uint64_t		 woff;		/* next byte to send */
	uint64_t		 acked;		/* bytes the server acknowledged,
						   from the start */
	uint64_t		 roff;		/* next byte to ask back */
};

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
stream_fail(struct sftp_stream *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
stream_fail(struct sftp_stream *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(s->err, s->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
stream_send(struct sftp_stream *s, const unsigned char *p, size_t n)
{
	if (ssh_channel_write(s->ch, p, (uint32_t)n) != (int)n)
		return stream_fail(s, "the SFTP channel failed while sending: %s",
		    ssh_get_error(s->ssh));
	return 0;
}

/* Exactly n bytes of the server's answers, within the timeout. */
static int
stream_recv(struct sftp_stream *s, void *p, size_t n)
{
	unsigned char	*b = p;
	size_t		 got = 0;
	int		 rc;

	while (got < n) {
		rc = ssh_channel_read_timeout(s->ch, b + got, (uint32_t)(n - got), 0,
		    s->timeout_ms);
		if (rc == SSH_ERROR)
			return stream_fail(s, "the SFTP channel failed: %s",
			    ssh_get_error(s->ssh));
		if (rc == 0 && (ssh_channel_is_eof(s->ch) ||
		    !ssh_is_connected(s->ssh)))
			return stream_fail(s, "the server closed the SFTP channel");
		if (rc == 0)
			return stream_fail(s, "no answer from the server for %d s",
			    s->timeout_ms / 1000);
		got += (size_t)rc;
	}
	return 0;
}

static int
stream_skip(struct sftp_stream *s, size_t n)
{
	unsigned char	b[1024];

	while (n > 0) {
		size_t k = n < sizeof(b) ? n : sizeof(b);
		if (stream_recv(s, b, k) == -1)
			return -1;
		n -= k;
	}
	return 0;
}

/* The head of the next answer: its type and id, and what follows. */
static int
stream_head(struct sftp_stream *s, uint8_t *type, uint32_t *id, uint32_t *rest)
{
	unsigned char	h[9];
	uint32_t	len;

	if (stream_recv(s, h, sizeof(h)) == -1)
		return -1;
	len = get_u32(h);
	if (len < 5 || len > 512 * 1024)
		return stream_fail(s, "the server sent a malformed SFTP answer "
		    "(length %u)", len);
	*type = h[4];
	*id = get_u32(h + 5);
	*rest = len - 5;
	return 0;
}

/* The rest of a STATUS answer: its code, and its message for errors. */
static int
stream_status(struct sftp_stream *s, uint32_t rest, int *code)
{
	unsigned char	b[STREAM_SMALL];
	uint32_t	k = rest < sizeof(b) ? rest : sizeof(b), mlen = 0;

	if (rest < 4)
		return stream_fail(s, "the server sent a short SFTP status");
	if (stream_recv(s, b, k) == -1 || stream_skip(s, rest - k) == -1)
		return -1;
	*code = (int)get_u32(b);
	if (*code == FX_OK || *code == FX_EOF)
		return 0;
	if (k >= 8 && (mlen = get_u32(b + 4)) > k - 8)
		mlen = k - 8;
	/* The server's words, bounded: a path at most, never content. */
	stream_fail(s, "the server answered \"%.*s\" (SFTP status %d)",
	    (int)(mlen > 100 ? 100 : mlen), (const char *)b + 8, *code);
	return 0;
}

/* A request whose only answer is a STATUS (fsync, close): 0 when OK. */
static int
stream_simple(struct sftp_stream *s, const unsigned char *req, size_t n,
    uint32_t id, int *code)
{
	uint8_t		type;
	uint32_t	rid, rest;

	*code = -1;
	if (stream_send(s, req, n) == -1 || stream_head(s, &type, &rid, &rest) == -1)
		return -1;
	if (type != FXP_STATUS || rid != id)
		return stream_fail(s, "the server sent an SFTP answer out of turn "
		    "(type %u)", type);
	if (stream_status(s, rest, code) == -1)
		return -1;
	return *code == FX_OK ? 0 : -1;
}

/* Is NAME among the extensions a VERSION answer lists? */
static int
stream_has_ext(const unsigned char *p, size_t n, const char *name)
{
	size_t	nl = strlen(name);

	while (n >= 4) {
		uint32_t l = get_u32(p);
		if (l > n - 4)
			return 0;
		if (l == nl && memcmp(p + 4, name, nl) == 0)
			return 1;
		p += 4 + l, n -= 4 + l;		/* the name */
		if (n < 4 || (l = get_u32(p)) > n - 4)
			return 0;
		p += 4 + l, n -= 4 + l;		/* its data */
	}
	return 0;
}

static int
stream_init(struct sftp_stream *s)
{
	unsigned char	 req[9], h[5], *b;
	uint32_t	 len;
	int		 rv;

	put_u32(req, 5);
	req[4] = FXP_INIT;
	put_u32(req + 5, 3);
	if (stream_send(s, req, sizeof(req)) == -1 || stream_recv(s, h, 5) == -1)
		return -1;
	len = get_u32(h);
	if (h[4] != FXP_VERSION || len < 5 || len > 65536)
		return stream_fail(s, "the server did not start SFTP (answer type "
		    "%u)", h[4]);
	if ((b = malloc(len - 1)) == NULL)
		return stream_fail(s, "out of memory");
	rv = stream_recv(s, b, len - 1);
	if (rv == 0 && get_u32(b) < 3)
		rv = stream_fail(s, "the server speaks SFTP version %u; 3 is needed",
		    get_u32(b));
	if (rv == 0) {
		s->fsync_ext = stream_has_ext(b + 4, len - 5, "fsync@openssh.com");
		s->limits_ext = stream_has_ext(b + 4, len - 5, "limits@openssh.com");
	}
	free(b);
	return rv;
}

static uint32_t
chunk_within(uint64_t limit, uint32_t most)
{
	if (limit == 0 || limit >= most)	/* 0: no limit said */
		return most;
	return limit < STREAM_MIN_CHUNK ? STREAM_MIN_CHUNK : (uint32_t)limit;
}

/* The server's largest read and write (limits@openssh.com), to size
 * the chunks by. */
static int
stream_limits(struct sftp_stream *s)
{
	static const char	 ext[] = "limits@openssh.com";
	unsigned char		 req[13 + sizeof(ext) - 1], b[32];
	uint32_t		 id = ++s->next_id, rid, rest;
	uint8_t			 type;
	int			 code;

	s->wchunk = STREAM_WCHUNK;
	s->rchunk = STREAM_RCHUNK_DEFAULT;
	if (!s->limits_ext)
		return 0;
	put_u32(req, sizeof(req) - 4);
	req[4] = FXP_EXTENDED;
	put_u32(req + 5, id);
	put_u32(req + 9, sizeof(ext) - 1);
	memcpy(req + 13, ext, sizeof(ext) - 1);
	if (stream_send(s, req, sizeof(req)) == -1 ||
	    stream_head(s, &type, &rid, &rest) == -1)
		return -1;
	if (rid != id)
		return stream_fail(s, "the server answered an SFTP request we did "
		    "not make");
	if (type == FXP_STATUS)		/* refused after all: the defaults */
		return stream_status(s, rest, &code);
	if (type != FXP_EXTENDED_REPLY || rest < sizeof(b))
		return stream_fail(s, "the server sent malformed SFTP limits");
	if (stream_recv(s, b, sizeof(b)) == -1 || stream_skip(s, rest - sizeof(b)))
		return -1;
	s->rchunk = chunk_within((uint64_t)get_u32(b + 8) << 32 | get_u32(b + 12),
	    STREAM_RCHUNK);
	s->wchunk = chunk_within((uint64_t)get_u32(b + 16) << 32 | get_u32(b + 20),
	    STREAM_WCHUNK);
	return 0;
}

struct sftp_stream *
sftp_stream_open(ssh_session ssh, long timeout_s, char *err, size_t errlen)
{
	struct sftp_stream	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ssh = ssh;
	s->timeout_ms = (int)(timeout_s > 86400 ? 86400000 : timeout_s * 1000);
	s->err = err;
	s->errlen = errlen;
	if ((s->ch = ssh_channel_new(ssh)) == NULL ||
	    ssh_channel_open_session(s->ch) != SSH_OK ||
	    ssh_channel_request_subsystem(s->ch, "sftp") != SSH_OK) {
		snprintf(err, errlen, "cannot open a second SFTP channel: %s",
		    ssh_get_error(ssh));
		sftp_stream_free(s);
		return NULL;
	}
	if (stream_init(s) == -1 || stream_limits(s) == -1) {
		sftp_stream_free(s);
		return NULL;
	}
	return s;
}

void
sftp_stream_free(struct sftp_stream *s)
{
	if (s == NULL)
		return;
	if (s->ch) {
		if (ssh_channel_is_open(s->ch))
			(void)ssh_channel_close(s->ch);
		ssh_channel_free(s->ch);
	}
	free(s);
}

/* OPEN the file to create; its handle kept in s. */
static int
stream_create(struct sftp_stream *s, struct sftp_stream_put *p)
{
	size_t		 pl = strlen(p->path), n = 4 + 1 + 4 + 4 + pl + 4 + 8;
	unsigned char	*req, b[4 + STREAM_HANDLE_MAX];
	uint32_t	 id = ++s->next_id, rid, rest, pflags;
	uint8_t		 type;
	int		 rv;

	p->failed = "create";
	if (pl > 4096 || (req = malloc(n)) == NULL)
		return stream_fail(s, "remote path too long");
	pflags = FXF_WRITE | FXF_CREAT | FXF_EXCL | (p->readback ? FXF_READ : 0);
	put_u32(req, (uint32_t)(n - 4));
	req[4] = FXP_OPEN;
	put_u32(req + 5, id);
	put_u32(req + 9, (uint32_t)pl);
	memcpy(req + 13, p->path, pl);
	put_u32(req + 13 + pl, pflags);
	put_u32(req + 17 + pl, FILEXFER_ATTR_PERMISSIONS);
	put_u32(req + 21 + pl, 0600);
	rv = stream_send(s, req, n);
	free(req);
	if (rv == -1 || stream_head(s, &type, &rid, &rest) == -1)
		return -1;
	if (rid != id)
		return stream_fail(s, "the server answered an SFTP request we did "
		    "not make");
	if (type == FXP_STATUS) {
		if (stream_status(s, rest, &p->sftp_status) == -1)
			return -1;
		return p->sftp_status == FX_OK ? stream_fail(s, "the server gave "
		    "no handle") : -1;
	}
	if (type != FXP_HANDLE || rest < 4 || rest > sizeof(b))
		return stream_fail(s, "the server sent a malformed SFTP handle");
	if (stream_recv(s, b, rest) == -1)
		return -1;
	if ((s->hlen = get_u32(b)) != rest - 4)
		return stream_fail(s, "the server sent a malformed SFTP handle");
	memcpy(s->handle, b + 4, s->hlen);
	return 0;
}

/* CLOSE, or EXTENDED fsync@openssh.com, on the open handle. */
static int
stream_handle_op(struct sftp_stream *s, struct sftp_stream_put *p, int fsync_op)
{
	static const char	 ext[] = "fsync@openssh.com";
	unsigned char		 req[4 + 1 + 4 + 4 + sizeof(ext) + 4 + STREAM_HANDLE_MAX];
	uint32_t		 id = ++s->next_id;
	size_t			 n = 9;

	p->failed = fsync_op ? "fsync" : "close";
	req[4] = fsync_op ? FXP_EXTENDED : FXP_CLOSE;
	put_u32(req + 5, id);
	if (fsync_op) {
		put_u32(req + n, sizeof(ext) - 1);
		memcpy(req + n + 4, ext, sizeof(ext) - 1);
		n += 4 + sizeof(ext) - 1;
	}
	put_u32(req + n, s->hlen);
	memcpy(req + n + 4, s->handle, s->hlen);
	n += 4 + s->hlen;
	put_u32(req, (uint32_t)(n - 4));
	return stream_simple(s, req, n, id, &p->sftp_status);
}

/* The next write: up to s->wchunk bytes of the file, read here. */
static int
pipe_write(struct sftp_stream *s, struct stream_pipe *pp)
{
	struct sftp_stream_put	*p = pp->put;
	struct stream_req	*q = &pp->w[pp->whead % STREAM_WRITES];
	size_t			 hdr = 4 + 1 + 4 + 4 + s->hlen + 8 + 4;
	uint64_t		 left = p->size - pp->woff;
	size_t			 want = left < s->wchunk ? (size_t)left : s->wchunk;
	ssize_t			 n;

	do
		n = pread(p->fd, pp->wbuf + hdr, want, (off_t)pp->woff);
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		p->local = 1;
		p->failed = "read";
		return n == 0 ? stream_fail(s, "the file became shorter while it "
		    "was being sent") : stream_fail(s, "%s", strerror(errno));
	}
	q->id = ++s->next_id;
	q->off = pp->woff;
	q->len = (uint32_t)n;
	q->done = 0;
	put_u32(pp->wbuf, (uint32_t)(hdr - 4 + (size_t)n));
	pp->wbuf[4] = FXP_WRITE;
	put_u32(pp->wbuf + 5, q->id);
	put_u32(pp->wbuf + 9, s->hlen);
	memcpy(pp->wbuf + 13, s->handle, s->hlen);
	put_u64(pp->wbuf + 13 + s->hlen, pp->woff);
	put_u32(pp->wbuf + 21 + s->hlen, (uint32_t)n);
	if (!p->readback)	/* else what is read back is hashed */
		sha256_update(pp->hash, pp->wbuf + hdr, (size_t)n);
	p->failed = "write";
	if (stream_send(s, pp->wbuf, hdr + (size_t)n) == -1)
		return -1;
	pp->woff += (uint64_t)n;
	pp->whead++;
	return 0;
}

/* The next read of what the server has acknowledged. */
static int
pipe_read(struct sftp_stream *s, struct stream_pipe *pp)
{
	struct stream_req	*q = &pp->r[pp->rhead % pp->nr];
	unsigned char		 req[4 + 1 + 4 + 4 + STREAM_HANDLE_MAX + 8 + 4];
	uint64_t		 left = pp->acked - pp->roff;
	size_t			 n = 13 + s->hlen + 12;

	q->id = ++s->next_id;
	q->off = pp->roff;
	q->len = left < s->rchunk ? (uint32_t)left : s->rchunk;
	q->got = 0;
	q->done = q->stale = 0;
	put_u32(req, (uint32_t)(n - 4));
	req[4] = FXP_READ;
	put_u32(req + 5, q->id);
	put_u32(req + 9, s->hlen);
	memcpy(req + 13, s->handle, s->hlen);
	put_u64(req + 13 + s->hlen, pp->roff);
	put_u32(req + 21 + s->hlen, q->len);
	pp->put->failed = "read back";
	if (stream_send(s, req, n) == -1)
		return -1;
	pp->roff += q->len;
	pp->rhead++;
	return 0;
}

static struct stream_req *
pipe_find(struct stream_req *ring, size_t size, size_t tail, size_t head,
    uint32_t id)
{
	for (size_t i = tail; i != head; i++)
		if (ring[i % size].id == id && !ring[i % size].done)
			return &ring[i % size];
	return NULL;
}

/* Hash the reads that are complete, in file order. */
static void
pipe_hash_reads(struct sftp_stream *s, struct stream_pipe *pp)
{
	struct sftp_stream_put	*p = pp->put;

	while (pp->rtail != pp->rhead && pp->r[pp->rtail % pp->nr].done) {
		struct stream_req *q = &pp->r[pp->rtail++ % pp->nr];

		if (q->stale)
			continue;
		sha256_update(pp->hash, q->buf, q->got);
		p->read_size += q->got;
		if (q->got < q->len) {
			/* A short read (allowed): ask again from where it
			 * stopped, what was asked after it dropped, and ask
			 * no more than that at a time from now on. */
			for (size_t i = pp->rtail; i != pp->rhead; i++)
				pp->r[i % pp->nr].stale = 1;
			pp->roff = q->off + q->got;
			if (q->got >= STREAM_MIN_CHUNK)
				s->rchunk = q->got;
		}
	}
}

static int
pipe_answer_write(struct sftp_stream *s, struct stream_pipe *pp,
    struct stream_req *q, uint8_t type, uint32_t rest)
{
	struct sftp_stream_put	*p = pp->put;
	int			 code;

	p->failed = "write";
	if (type != FXP_STATUS)
		return stream_fail(s, "the server answered a write with SFTP type "
		    "%u", type);
	if (stream_status(s, rest, &code) == -1)
		return -1;
	if (code != FX_OK) {
		p->sftp_status = code;
		return -1;
	}
	q->done = 1;
	/* The ring is in file order: what is acknowledged from the start. */
	while (pp->wtail != pp->whead && pp->w[pp->wtail % STREAM_WRITES].done)
		pp->acked += pp->w[pp->wtail++ % STREAM_WRITES].len;
	return 0;
}

static int
pipe_answer_read(struct sftp_stream *s, struct stream_pipe *pp,
    struct stream_req *q, uint8_t type, uint32_t rest)
{
	struct sftp_stream_put	*p = pp->put;
	unsigned char		 b[4];
	uint32_t		 dlen;
	int			 code;

	p->failed = "read back";
	if (type == FXP_STATUS) {
		if (stream_status(s, rest, &code) == -1)
			return -1;
		p->sftp_status = code;
		if (code == FX_EOF)
			return stream_fail(s, "the file on the server ends at %llu "
			    "bytes, before what was written", (unsigned long long)q->off);
		return -1;
	}
	if (type != FXP_DATA || rest < 4 || stream_recv(s, b, 4) == -1)
		return type != FXP_DATA || rest < 4 ? stream_fail(s, "the server "
		    "answered a read with SFTP type %u", type) : -1;
	dlen = get_u32(b);
	if (dlen == 0 || dlen > q->len || dlen != rest - 4)
		return stream_fail(s, "the server answered a read of %u bytes with "
		    "%u", q->len, dlen);
	if (stream_recv(s, q->buf, dlen) == -1)
		return -1;
	q->got = dlen;
	q->done = 1;
	pipe_hash_reads(s, pp);
	return 0;
}

/* Wait for one answer and take it. */
static int
pipe_answer(struct sftp_stream *s, struct stream_pipe *pp)
{
	struct stream_req	*q;
	uint8_t			 type;
	uint32_t		 id, rest;

	if (stream_head(s, &type, &id, &rest) == -1)
		return -1;
	if ((q = pipe_find(pp->w, STREAM_WRITES, pp->wtail, pp->whead, id)))
		return pipe_answer_write(s, pp, q, type, rest);
	if ((q = pipe_find(pp->r, pp->nr, pp->rtail, pp->rhead, id)))
		return pipe_answer_read(s, pp, q, type, rest);
	return stream_fail(s, "the server answered an SFTP request we did not "
	    "make (id %u)", id);
}

/* Send the whole file, reading back what is acknowledged as it goes. */
static int
pipe_run(struct sftp_stream *s, struct stream_pipe *pp)
{
	struct sftp_stream_put	*p = pp->put;

	for (;;) {
		while (pp->woff < p->size && pp->whead - pp->wtail < pp->nw)
			if (pipe_write(s, pp) == -1)
				return -1;
		while (p->readback && pp->roff < pp->acked &&
		    pp->rhead - pp->rtail < pp->nr)
			if (pipe_read(s, pp) == -1)
				return -1;
		if (pp->whead == pp->wtail && pp->rhead == pp->rtail &&
		    (!p->readback || pp->roff >= p->size))
			return 0;
		if (time(NULL) > p->deadline) {
			p->failed = "send";
			return stream_fail(s, "the transfer took longer than "
			    "transfer_timeout");
		}
		if (pipe_answer(s, pp) == -1)
			return -1;
	}
}

static int
pipe_setup(struct sftp_stream *s, struct stream_pipe *pp,
    struct sftp_stream_put *p)
{
	memset(pp, 0, sizeof(*pp));
	pp->put = p;
	if ((pp->wbuf = malloc(64 + STREAM_HANDLE_MAX + s->wchunk)) == NULL)
		return -1;
	/* One buffer for each read in flight, each of a full read (reads
	 * only shrink).  nw, nr <= STREAM_WRITES, STREAM_READS: chunks are
	 * never under STREAM_MIN_CHUNK. */
	pp->nw = STREAM_WBYTES / s->wchunk;
	pp->nr = STREAM_RBYTES / s->rchunk;
	for (size_t i = 0; p->readback && i < pp->nr; i++)
		if ((pp->r[i].buf = malloc(s->rchunk)) == NULL)
			return -1;
	pp->hash = sha256_new();
	return 0;
}

static void
pipe_free(struct stream_pipe *pp)
{
	char	hex[65];

	if (pp->hash)
		sha256_final(pp->hash, hex);
	free(pp->wbuf);
	for (size_t i = 0; i < STREAM_READS; i++)
		free(pp->r[i].buf);
}

/*
 * Create P->path, send the file, read it back if asked, fsync where the
 * server can, close.  0 when all of it went through; -1 with err, and
 * p->failed and p->sftp_status saying where.  After -1 the channel may
 * be out of step (answers still on their way): free the stream.
 */
int
sftp_stream_put(struct sftp_stream *s, struct sftp_stream_put *p, char *err,
    size_t errlen)
{
	struct stream_pipe	pp;
	int			rv = -1;

	s->err = err;
	s->errlen = errlen;
	p->sftp_status = -1;
	p->local = 0;
	p->read_size = 0;
	if (stream_create(s, p) == -1)
		return -1;
	if (pipe_setup(s, &pp, p) == -1)
		stream_fail(s, "out of memory");
	else if (pipe_run(s, &pp) == 0) {
		sha256_final(pp.hash, p->readback ? p->read_sha256 : p->sent_sha256);
		pp.hash = NULL;
		if ((!s->fsync_ext || stream_handle_op(s, p, 1) == 0) &&
		    stream_handle_op(s, p, 0) == 0)
			rv = 0;
	}
	pipe_free(&pp);
	return rv;
}
