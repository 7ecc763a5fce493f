/*
 * The "sftp" transport: delivers a packet's files to a partner's SFTP
 * server with libssh.  Loaded by the daemon (config, check), run in a
 * worker process (init, deliver).
 *
 * The recipient's directory entry says where:
 *	address		sftp://USER@HOST[:PORT]/FOLDER
 *	host_key	SHA256:... (as `ssh-keygen -lf` prints it): required
 *	pattern		remote file name, default "{file}"
 *			({packet_id}, {date} as YYYYMMDD, {file}, {n}, {job})
 *	overwrite	no (default) | yes
 *	verify		size | readback (default: the transport's setting)
 * The transport's own section says how:
 *	identity	private key file (ed25519 or RSA, no passphrase), mode
 *			0600 or stricter and owned by the daemon's user
 *	connect_timeout, timeout, transfer_timeout	seconds
 *	verify		size | readback (default readback)
 *
 * Each file is written as NAME.part (mode 0600) over a second SFTP
 * channel with the writes pipelined and, with verify=readback, read back
 * and hashed while it is sent (sftp_stream.c); fsynced where the server
 * offers fsync@openssh.com, closed, checked (size with stat, and the
 * read-back SHA-256), and renamed to NAME, which must not exist unless
 * overwrite is set.  A retry after a crash removes a stale
 * .part and finds files already delivered (same size, and the same
 * SHA-256 read back from the server, as this job's file), so a packet is
 * never delivered twice under two names; a file it cannot read back is
 * never taken as delivered (the job is held).
 *
 * Connection refused, timeouts, a lost connection and write failures
 * (disk full) are TEMPFAIL; a refused key, permission denied, a missing
 * folder, an existing different file and a host key that does not match
 * the pinned one are PERMFAIL, and the last two hold the job for an
 * administrator.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <roigate/transport.h>

#include "sftp_stream.h"
#include "util.h"

#define SFTP_CHUNK	(255 * 1024)	/* 256 KiB makes OpenSSH drop the channel */
#define SFTP_MAX_FILES	1000
/*
 * libssh's own ciphers, AES-GCM first (its default puts ChaCha20-Poly1305
 * first).  AES-GCM is what FIPS 140 allows, and with AES-NI it costs both
 * ends a fraction of ChaCha20-Poly1305's CPU: on these machines the
 * client and the server share two cores, and a read-back doubles what
 * crosses the connection.  A server without AES-GCM still gets the rest.
 */
#define SFTP_CIPHERS	"aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
			"chacha20-poly1305@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"

struct sftp_state {
	char	*identity;
	long	 connect_timeout;	/* seconds */
	long	 timeout;		/* each operation */
	long	 transfer_timeout;	/* the whole delivery */
	int	 readback;		/* verify by reading back (else size) */
	ssh_key	 key;			/* loaded in init (worker) */
	/* The connection kept after a delivery, for the worker's next job
	 * to the same recipient (same user, host, port and pinned key). */
	ssh_session	 ssh;
	sftp_session	 sftp;
	struct sftp_stream *stream;	/* the upload channel, opened once */
	char		 cache_key[1024];
	char		 cache_offered[128], cache_banner[128];
};

/* One delivery in progress. */
struct conn {
	struct sftp_state		*st;
	const struct transport_message	*m;
	struct transport_receipt	*r;
	char				 user[128], host[256], folder[1024];
	int				 port;
	const char			*pin, *pattern;
	int				 overwrite, readback;
	ssh_session			 ssh;
	sftp_session			 sftp;
	struct sftp_stream		*stream;	/* see sftp_stream.h */
	char				 offered[128];	/* the server's fingerprint */
	char				 banner[128];
	time_t				 deadline;
};

static void *
sftpt_create(void)
{
	struct sftp_state	*st = calloc(1, sizeof(*st));

	if (st) {
		st->connect_timeout = 20;
		st->timeout = 60;
		st->transfer_timeout = 3600;
		st->readback = 1;
	}
	return st;
}

static int
parse_seconds(const char *key, const char *value, long max, long *out, char *err,
    size_t errlen)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || *value == '\0' || *end != '\0' || v < 1 || v > max) {
		snprintf(err, errlen, "%s: \"%.40s\" must be a number of seconds from "
		    "1 to %ld", key, value, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_verify(const char *value, int *readback)
{
	if (strcmp(value, "readback") == 0)
		*readback = 1;
	else if (strcmp(value, "size") == 0)
		*readback = 0;
	else
		return -1;
	return 0;
}

static int
sftpt_config(void *p, const char *key, const char *value, char *err, size_t errlen)
{
	struct sftp_state	*st = p;

	if (strcmp(key, "identity") == 0) {
		if (value[0] != '/') {
			snprintf(err, errlen, "identity: \"%.100s\" must be an absolute "
			    "path", value);
			return -1;
		}
		free(st->identity);
		return (st->identity = strdup(value)) ? 0 : -1;
	}
	if (strcmp(key, "connect_timeout") == 0)
		return parse_seconds(key, value, 600, &st->connect_timeout, err, errlen);
	if (strcmp(key, "timeout") == 0)
		return parse_seconds(key, value, 3600, &st->timeout, err, errlen);
	if (strcmp(key, "transfer_timeout") == 0)
		return parse_seconds(key, value, 86400, &st->transfer_timeout, err,
		    errlen);
	if (strcmp(key, "verify") == 0) {
		if (parse_verify(value, &st->readback) == -1) {
			snprintf(err, errlen, "verify: \"%.40s\" must be size or "
			    "readback", value);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%.100s\" for the sftp transport (keys: "
	    "identity, connect_timeout, timeout, transfer_timeout, verify)", key);
	return -1;
}

/* The private key, read as a secret (see read_secret_file): the daemon's
 * own, that nobody else may read or change. */
static int
load_key(struct sftp_state *st, ssh_key *key, char *err, size_t errlen)
{
	char	text[32768];
	size_t	len;
	int	rc;

	if (read_secret_file("identity", st->identity, "private key", text,
	    sizeof(text), &len, err, errlen) == -1)
		return -1;
	rc = ssh_pki_import_privkey_base64(text, NULL, NULL, NULL, key);
	explicit_bzero(text, sizeof(text));
	if (rc != SSH_OK) {
		snprintf(err, errlen, "identity %s is not a private key libssh can "
		    "read without a passphrase (ed25519 or RSA)", st->identity);
		return -1;
	}
	return 0;
}

static int
sftpt_check(void *p, char *err, size_t errlen)
{
	struct sftp_state	*st = p;
	ssh_key			 key = NULL;

	if (st->identity == NULL) {
		snprintf(err, errlen, "the sftp transport needs identity = KEYFILE "
		    "(passwords are not supported)");
		return -1;
	}
	if (load_key(st, &key, err, errlen) == -1)
		return -1;
	ssh_key_free(key);
	return 0;
}

static int
sftpt_init(void *p, char *err, size_t errlen)
{
	struct sftp_state	*st = p;

	if (ssh_init() != SSH_OK) {
		snprintf(err, errlen, "libssh could not be initialised");
		return -1;
	}
	return load_key(st, &st->key, err, errlen);
}

static const char *
param(const struct transport_recipient *rc, const char *key)
{
	for (size_t i = 0; i < rc->nparams; i++)
		if (strcmp(rc->params[i].key, key) == 0)
			return rc->params[i].value;
	return NULL;
}

static enum transport_status
fail(struct conn *c, enum transport_status s, int hold, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum transport_status
fail(struct conn *c, enum transport_status s, int hold, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(c->r->detail, sizeof(c->r->detail), fmt, ap);
	va_end(ap);
	strlcpy_(c->r->status, s == TRANSPORT_PERMFAIL ? "refused" : "error",
	    sizeof(c->r->status));
	c->r->hold = (uint8_t)hold;
	return s;
}

/* sftp://USER@HOST[:PORT]/FOLDER */
static int
parse_address(struct conn *c, const char *a)
{
	const char	*at, *slash, *colon;
	char		*end;
	long		 port = 22;

	if (strncmp(a, "sftp://", 7) != 0)
		return -1;
	a += 7;
	if ((at = strchr(a, '@')) == NULL || at == a ||
	    (size_t)(at - a) >= sizeof(c->user))
		return -1;
	memcpy(c->user, a, (size_t)(at - a));
	c->user[at - a] = '\0';
	if ((slash = strchr(at + 1, '/')) == NULL)
		return -1;
	colon = memchr(at + 1, ':', (size_t)(slash - at - 1));
	if (colon) {
		port = strtol(colon + 1, &end, 10);
		if (end != slash || port < 1 || port > 65535)
			return -1;
	} else
		colon = slash;
	if (colon == at + 1 || (size_t)(colon - at - 1) >= sizeof(c->host))
		return -1;
	memcpy(c->host, at + 1, (size_t)(colon - at - 1));
	c->host[colon - at - 1] = '\0';
	c->port = (int)port;
	if (strlen(slash) >= sizeof(c->folder) || strstr(slash, "/../") ||
	    (strlen(slash) >= 3 && strcmp(slash + strlen(slash) - 3, "/..") == 0))
		return -1;
	strlcpy_(c->folder, slash, sizeof(c->folder));
	/* "/" stays; "/in/" loses its trailing slash. */
	for (size_t n = strlen(c->folder); n > 1 && c->folder[n - 1] == '/'; n--)
		c->folder[n - 1] = '\0';
	return 0;
}

/* The remote name for file i: the pattern with its fields filled in. */
static int
remote_name(struct conn *c, size_t i, char *out, size_t len)
{
	const char	*p = c->pattern;
	char		 date[16];
	time_t		 now = time(NULL);
	struct tm	 tm;
	size_t		 o = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	while (*p) {
		char		 num[32];
		const char	*v = NULL;
		size_t		 skip = 0;

		if (strncmp(p, "{packet_id}", 11) == 0)
			v = c->m->packet_id, skip = 11;
		else if (strncmp(p, "{file}", 6) == 0)
			v = c->m->files[i].name, skip = 6;
		else if (strncmp(p, "{date}", 6) == 0)
			v = date, skip = 6;
		else if (strncmp(p, "{n}", 3) == 0) {
			snprintf(num, sizeof(num), "%zu", i + 1);
			v = num, skip = 3;
		} else if (strncmp(p, "{job}", 5) == 0) {
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)c->m->job_id);
			v = num, skip = 5;
		}
		if (v) {
			size_t n = strlen(v);
			if (o + n >= len)
				return -1;
			memcpy(out + o, v, n);
			o += n;
			p += skip;
		} else {
			if (o + 1 >= len)
				return -1;
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return valid_filename(out) ? 0 : -1;
}

static enum transport_status
ssh_status(struct conn *c, const char *what)
{
	return fail(c, TRANSPORT_TEMPFAIL, 0, "%s %s:%d: %s", what, c->host, c->port,
	    ssh_get_error(c->ssh));
}

/* Connect, check the host key against the pin, authenticate, open SFTP. */
static enum transport_status
open_session(struct conn *c)
{
	ssh_key		 srv = NULL;
	unsigned char	*hash = NULL;
	size_t		 hlen = 0;
	char		*fp;
	long		 t;
	int		 yes = 1, no = 0, rc;

	if ((c->ssh = ssh_new()) == NULL)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "out of memory");
	t = c->st->connect_timeout;
	if (ssh_options_set(c->ssh, SSH_OPTIONS_HOST, c->host) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_PORT, &c->port) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_USER, c->user) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &t) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_NODELAY, &yes) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_CIPHERS_C_S, SFTP_CIPHERS) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_CIPHERS_S_C, SFTP_CIPHERS) < 0 ||
	    ssh_options_set(c->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0)
		return fail(c, TRANSPORT_PERMFAIL, 1, "bad connection settings for "
		    "%s:%d: %s", c->host, c->port, ssh_get_error(c->ssh));
	if (ssh_connect(c->ssh) != SSH_OK)
		return ssh_status(c, "cannot connect to");
	if (ssh_get_serverbanner(c->ssh))
		strlcpy_(c->banner, ssh_get_serverbanner(c->ssh), sizeof(c->banner));
	if (ssh_get_server_publickey(c->ssh, &srv) != SSH_OK ||
	    ssh_get_publickey_hash(srv, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0) {
		ssh_key_free(srv);
		return ssh_status(c, "no host key from");
	}
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(srv);
	if (fp == NULL)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "out of memory");
	strlcpy_(c->offered, fp, sizeof(c->offered));
	ssh_string_free_char(fp);
	if (c->pin == NULL)		/* a probe: nothing pinned yet */
		return TRANSPORT_OK;
	if (strcmp(c->offered, c->pin) != 0)
		return fail(c, TRANSPORT_PERMFAIL, 1, "host key mismatch at %s:%d: "
		    "the server offered %s but %s is pinned for this recipient; "
		    "nothing was sent (an attack, or a key change the partner must "
		    "confirm before the pin is updated)", c->host, c->port,
		    c->offered, c->pin);
	t = c->st->timeout;
	ssh_options_set(c->ssh, SSH_OPTIONS_TIMEOUT, &t);
	rc = ssh_userauth_publickey(c->ssh, NULL, c->st->key);
	if (rc == SSH_AUTH_DENIED || rc == SSH_AUTH_PARTIAL)
		return fail(c, TRANSPORT_PERMFAIL, 0, "%s:%d refused our key for user "
		    "%s (install our public key in its authorized_keys)", c->host,
		    c->port, c->user);
	if (rc != SSH_AUTH_SUCCESS)
		return ssh_status(c, "authentication failed at");
	if ((c->sftp = sftp_new(c->ssh)) == NULL)
		return ssh_status(c, "cannot open an SFTP channel to");
	if (sftp_init(c->sftp) != SSH_OK)
		return ssh_status(c, "the SFTP subsystem failed at");
	return TRANSPORT_OK;
}

/* An SFTP error E (SSH_FX_*, or -1 for none): which side of the line is
 * it on?  TEXT says what else is known. */
static enum transport_status
sftpt_code_status(struct conn *c, const char *what, const char *path, int e,
    const char *text)
{
	switch (e) {
	case SSH_FX_PERMISSION_DENIED:
		return fail(c, TRANSPORT_PERMFAIL, 0, "%s %s on %s: permission "
		    "denied", what, path, c->host);
	case SSH_FX_NO_SUCH_FILE:
	case SSH_FX_NO_SUCH_PATH:
		return fail(c, TRANSPORT_PERMFAIL, 0, "%s %s on %s: no such file or "
		    "folder", what, path, c->host);
	default:
		/* Failure (often a full disk), lost connection, timeout. */
		return fail(c, TRANSPORT_TEMPFAIL, 0, "%s %s on %s: %s (SFTP status "
		    "%d)", what, path, c->host, text, e);
	}
}

static enum transport_status
sftpt_status(struct conn *c, const char *what, const char *path)
{
	return sftpt_code_status(c, what, path, sftp_get_error(c->sftp),
	    ssh_get_error(c->ssh));
}

/*
 * SHA-256 and size of a remote file, by reading it back.  Reads are
 * pipelined (SFTP_READS_AHEAD requests in flight): one at a time, each
 * would wait a round trip.
 */
#define SFTP_READ_CHUNK		(64 * 1024)
#define SFTP_READS_AHEAD	32

static int
remote_hash(struct conn *c, const char *path, char hex[65], uint64_t *size)
{
	struct sha256_ctx	*h = sha256_new();
	uint32_t		 ids[SFTP_READS_AHEAD];
	sftp_file		 f;
	char			*buf = malloc(SFTP_READ_CHUNK);
	size_t			 head = 0, tail = 0;
	int			 n = 0, eof = 0, rv = 0;

	*size = 0;
	if (buf == NULL || (f = sftp_open(c->sftp, path, O_RDONLY, 0)) == NULL) {
		free(buf);
		sha256_final(h, hex);
		return -1;
	}
	for (;;) {
		/* Keep the pipe full until the end of the file shows. */
		while (!eof && head - tail < SFTP_READS_AHEAD) {
			int id = sftp_async_read_begin(f, SFTP_READ_CHUNK);
			if (id < 0) {
				rv = -1;
				break;
			}
			ids[head++ % SFTP_READS_AHEAD] = (uint32_t)id;
		}
		if (rv == -1 || tail == head)
			break;
		n = sftp_async_read(f, buf, SFTP_READ_CHUNK, ids[tail++ % SFTP_READS_AHEAD]);
		if (n < 0) {
			rv = -1;
			break;
		}
		if (n == 0)		/* end of file: drain what is in flight */
			eof = 1;
		else {
			sha256_update(h, buf, (size_t)n);
			*size += (uint64_t)n;
			if (n < SFTP_READ_CHUNK)
				eof = 1;
		}
	}
	sftp_close(f);
	free(buf);
	sha256_final(h, hex);
	return rv;
}

/*
 * Is the file already there, complete (a retry after a lost answer)?
 * THERE_SAME only when its size and its SHA-256, read back, are those of
 * what this job sends now; a file that cannot be read back is never
 * taken as delivered.
 */
enum there { THERE_NOT, THERE_SAME, THERE_OTHER, THERE_UNREADABLE };

static enum there
already_there(struct conn *c, const struct transport_file *tf, const char *path)
{
	sftp_attributes	 a = sftp_stat(c->sftp, path);
	char		 hex[65];
	uint64_t	 size;
	int		 same;

	if (a == NULL)
		return THERE_NOT;	/* not there (or not visible) */
	same = a->size == (uint64_t)tf->size;
	sftp_attributes_free(a);
	if (!same)
		return THERE_OTHER;
	if (remote_hash(c, path, hex, &size) == -1)
		return THERE_UNREADABLE;
	return size == (uint64_t)tf->size && strcmp(hex, tf->sha256) == 0 ?
	    THERE_SAME : THERE_OTHER;
}

/* The upload channel, opened at the first file of a connection. */
static enum transport_status
stream_ready(struct conn *c)
{
	char	err[512];

	if (c->stream)
		return TRANSPORT_OK;
	if ((c->stream = sftp_stream_open(c->ssh, c->st->timeout, err,
	    sizeof(err))) == NULL)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "%s:%d: %s", c->host, c->port,
		    err);
	return TRANSPORT_OK;
}

/*
 * Send the file as PART over the upload channel, read back as it goes
 * with verify=readback; fsynced and closed.  On failure the channel is
 * dropped (answers may still be on their way).
 */
static enum transport_status
send_part(struct conn *c, const struct transport_file *tf, const char *part,
    struct sftp_stream_put *sp)
{
	char			 err[512], what[32];
	enum transport_status	 rv;

	if ((rv = stream_ready(c)) != TRANSPORT_OK)
		return rv;
	memset(sp, 0, sizeof(*sp));
	sp->fd = tf->fd;
	sp->size = (uint64_t)tf->size;
	sp->path = part;
	sp->readback = c->readback;
	sp->deadline = c->deadline;
	if (sftp_stream_put(c->stream, sp, err, sizeof(err)) == 0)
		return TRANSPORT_OK;
	sftp_stream_free(c->stream);
	c->stream = NULL;
	if (sp->local)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "cannot read %s: %s", tf->name,
		    err);
	if (time(NULL) > c->deadline)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "the transfer to %s took "
		    "longer than transfer_timeout (%ld s)", c->host,
		    c->st->transfer_timeout);
	(void)bsnprintf(what, sizeof(what), "cannot %s", sp->failed ? sp->failed :
	    "send");
	return sftpt_code_status(c, what, part, sp->sftp_status, err);
}

/* Upload one file as PATH.part, check it, rename it to PATH. */
static enum transport_status
put_file(struct conn *c, const struct transport_file *tf, const char *path,
    int *skipped)
{
	struct sftp_stream_put	 sp;
	char			 part[PATH_MAX];
	sftp_attributes		 a;
	uint64_t		 rsize;
	enum there		 there;
	enum transport_status	 rv;

	*skipped = 0;
	if ((there = already_there(c, tf, path)) == THERE_SAME) {
		*skipped = 1;
		return TRANSPORT_OK;
	}
	if (there == THERE_UNREADABLE) {
		if (!ssh_is_connected(c->ssh))
			return fail(c, TRANSPORT_TEMPFAIL, 0, "the connection to %s was "
			    "lost while %s was read back", c->host, path);
		return fail(c, TRANSPORT_PERMFAIL, 1, "%s is on %s with the size of "
		    "this job's file, but cannot be read back to compare its SHA-256; "
		    "not taken as delivered and not replaced: check it with the "
		    "partner, then release the job", path, c->host);
	}
	if (there == THERE_OTHER && !c->overwrite)
		return fail(c, TRANSPORT_PERMFAIL, 1, "%s already exists on %s with "
		    "other content; refusing to replace it (set overwrite=yes on "
		    "the recipient if the partner wants that)", path, c->host);
	if (snprintf(part, sizeof(part), "%s.part", path) >= (int)sizeof(part))
		return fail(c, TRANSPORT_PERMFAIL, 1, "remote path too long");
	/* A .part left by an interrupted attempt is never delivered. */
	(void)sftp_unlink(c->sftp, part);
	if ((rv = send_part(c, tf, part, &sp)) != TRANSPORT_OK)
		return rv;
	if (!c->readback && strcmp(sp.sent_sha256, tf->sha256) != 0)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "%s changed while it was being "
		    "sent (hash mismatch)", tf->name);
	/* Verify what the server holds before it gets its final name. */
	/* The file was just written and closed: no answer here is final (a
	 * status left over from a broken connection is no verdict). */
	if ((a = sftp_stat(c->sftp, part)) == NULL)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "cannot check %s on %s after "
		    "writing it: %s (SFTP status %d)", part, c->host,
		    ssh_get_error(c->ssh), sftp_get_error(c->sftp));
	rsize = a->size;
	sftp_attributes_free(a);
	if (rsize != (uint64_t)tf->size)
		return fail(c, TRANSPORT_TEMPFAIL, 0, "%s on %s holds %llu bytes, not "
		    "%lld", part, c->host, (unsigned long long)rsize,
		    (long long)tf->size);
	/* Read back while it was sent: every byte, hashed in file order. */
	if (c->readback && (strcmp(sp.read_sha256, tf->sha256) != 0 ||
	    sp.read_size != (uint64_t)tf->size))
		return fail(c, TRANSPORT_TEMPFAIL, 0, "%s read back from %s does "
		    "not match what was sent", part, c->host);
	if (there == THERE_OTHER && sftp_unlink(c->sftp, path) != 0)
		return sftpt_status(c, "cannot replace", path);
	if (sftp_rename(c->sftp, part, path) != 0)
		return sftpt_status(c, "cannot rename to", path);
	return TRANSPORT_OK;
}

static void
session_free(ssh_session *ssh, sftp_session *sftp, struct sftp_stream **stream)
{
	sftp_stream_free(*stream);
	*stream = NULL;
	if (*sftp)
		sftp_free(*sftp);
	if (*ssh) {
		ssh_disconnect(*ssh);
		ssh_free(*ssh);
	}
	*sftp = NULL;
	*ssh = NULL;
}

static void
conn_close(struct conn *c)
{
	session_free(&c->ssh, &c->sftp, &c->stream);
}

static void
cache_drop(struct sftp_state *st)
{
	session_free(&st->ssh, &st->sftp, &st->stream);
	st->cache_key[0] = '\0';
}

/* Take the kept connection if it leads to the same place, still open. */
static int
cache_take(struct sftp_state *st, struct conn *c, const char *key)
{
	if (st->ssh == NULL || strcmp(st->cache_key, key) != 0 ||
	    !ssh_is_connected(st->ssh)) {
		cache_drop(st);
		return 0;
	}
	c->ssh = st->ssh;
	c->sftp = st->sftp;
	c->stream = st->stream;
	strlcpy_(c->offered, st->cache_offered, sizeof(c->offered));
	strlcpy_(c->banner, st->cache_banner, sizeof(c->banner));
	st->ssh = NULL;
	st->sftp = NULL;
	st->stream = NULL;
	return 1;
}

static void
cache_keep(struct sftp_state *st, struct conn *c, const char *key)
{
	cache_drop(st);
	st->ssh = c->ssh;
	st->sftp = c->sftp;
	st->stream = c->stream;
	c->ssh = NULL;
	c->sftp = NULL;
	c->stream = NULL;
	strlcpy_(st->cache_key, key, sizeof(st->cache_key));
	strlcpy_(st->cache_offered, c->offered, sizeof(st->cache_offered));
	strlcpy_(st->cache_banner, c->banner, sizeof(st->cache_banner));
}

static enum transport_status
sftpt_deliver(void *p, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct sftp_state	*st = p;
	struct conn		 c;
	const char		*v, *names[SFTP_MAX_FILES], *hexes[SFTP_MAX_FILES];
	char			 path[PATH_MAX], name[NAME_MAX + 1], when[32];
	char			 key[1024];
	int			 reused = 0;
	enum transport_status	 rv;
	unsigned long long	 bytes = 0;
	size_t			 skipped = 0;
	int			 skip;

	memset(&c, 0, sizeof(c));
	c.st = st;
	c.m = m;
	c.r = r;
	c.readback = st->readback;
	c.deadline = time(NULL) + st->transfer_timeout;
	if (parse_address(&c, m->recipient->address) == -1)
		return fail(&c, TRANSPORT_PERMFAIL, 1, "recipient address \"%.200s\" "
		    "must look like sftp://USER@HOST[:PORT]/FOLDER",
		    m->recipient->address);
	if ((c.pin = param(m->recipient, "host_key")) == NULL ||
	    strncmp(c.pin, "SHA256:", 7) != 0)
		return fail(&c, TRANSPORT_PERMFAIL, 1, "recipient %s has no pinned "
		    "host key: add --param host_key=SHA256:... (as ssh-keygen -lf "
		    "prints it) and verify the recipient again", m->recipient->id);
	c.pattern = (v = param(m->recipient, "pattern")) ? v : "{file}";
	c.overwrite = (v = param(m->recipient, "overwrite")) && !strcmp(v, "yes");
	if ((v = param(m->recipient, "verify")) && parse_verify(v, &c.readback) == -1)
		return fail(&c, TRANSPORT_PERMFAIL, 1, "recipient %s: verify must be "
		    "size or readback", m->recipient->id);
	if (m->nfiles > SFTP_MAX_FILES)
		return fail(&c, TRANSPORT_PERMFAIL, 1, "too many files");
	for (size_t i = 0; i < m->nfiles; i++)
		if (remote_name(&c, i, name, sizeof(name)) == -1)
			return fail(&c, TRANSPORT_PERMFAIL, 1, "recipient %s: pattern "
			    "\"%.100s\" does not give a plain file name",
			    m->recipient->id, c.pattern);

	(void)bsnprintf(key, sizeof(key), "%s|%s|%s|%d|%s", m->recipient->id,
	    c.user, c.host, c.port, c.pin);
	reused = cache_take(st, &c, key);
	if (!reused && (rv = open_session(&c)) != TRANSPORT_OK)
		goto done;
	{
		sftp_attributes a = sftp_stat(c.sftp, c.folder);
		if (a == NULL && reused) {
			/* The kept connection went stale: start afresh, once. */
			conn_close(&c);
			reused = 0;
			if ((rv = open_session(&c)) != TRANSPORT_OK)
				goto done;
			a = sftp_stat(c.sftp, c.folder);
		}
		if (a == NULL) {
			rv = sftpt_status(&c, "cannot use folder", c.folder);
			goto done;
		}
		if (a->type != SSH_FILEXFER_TYPE_DIRECTORY) {
			sftp_attributes_free(a);
			rv = fail(&c, TRANSPORT_PERMFAIL, 0, "%s on %s is not a folder",
			    c.folder, c.host);
			goto done;
		}
		sftp_attributes_free(a);
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		remote_name(&c, i, name, sizeof(name));
		snprintf(path, sizeof(path), "%s%s%s", c.folder,
		    strcmp(c.folder, "/") ? "/" : "", name);
		if ((rv = put_file(&c, &m->files[i], path, &skip)) != TRANSPORT_OK)
			goto done;
		skipped += (size_t)skip;
		bytes += (unsigned long long)m->files[i].size;
		names[i] = m->files[i].name;
		hexes[i] = m->files[i].sha256;
	}
	sha256_listing(names, hexes, m->nfiles, r->sha256);
	r->completed_at = time(NULL);
	time_iso(r->completed_at, when, sizeof(when));
	(void)bsnprintf(r->remote_id, sizeof(r->remote_id), "sftp://%s@%s:%d%s", c.user,
	    c.host, c.port, c.folder);
	strlcpy_(r->status, "delivered", sizeof(r->status));
	(void)bsnprintf(r->detail, sizeof(r->detail), "%zu file%s, %llu bytes, to %s "
	    "(%s%s); verified by %s; server %s, host key %s%s; completed %s",
	    m->nfiles, m->nfiles == 1 ? "" : "s", bytes, r->remote_id,
	    skipped ? "already there: " : "as ", skipped ? "retry found them" :
	    c.pattern, c.readback ? "reading back" : "size", c.banner, c.offered,
	    reused ? " (connection reused)" : "", when);
	rv = TRANSPORT_OK;
	cache_keep(st, &c, key);
done:
	conn_close(&c);
	return rv;
}

/* For `roictl recipient verify`: the server's host key to pin, and
 * whether our key would be accepted. */
static int
sftpt_probe(void *p, const struct transport_recipient *rc,
    struct transport_probe *out)
{
	struct sftp_state		*st = p;
	struct transport_receipt	 r;
	struct transport_message	 m;
	struct conn			 c;
	const char			*auth;
	long				 t;
	int				 rv = -1;

	memset(&c, 0, sizeof(c));
	memset(&r, 0, sizeof(r));
	memset(&m, 0, sizeof(m));
	m.recipient = rc;
	c.st = st;
	c.m = &m;
	c.r = &r;
	if (parse_address(&c, rc->address) == -1) {
		snprintf(out->detail, sizeof(out->detail), "address \"%.200s\" must "
		    "look like sftp://USER@HOST[:PORT]/FOLDER", rc->address);
		return -1;
	}
	if (open_session(&c) != TRANSPORT_OK) {
		strlcpy_(out->detail, r.detail, sizeof(out->detail));
		goto done;
	}
	t = st->timeout;
	ssh_options_set(c.ssh, SSH_OPTIONS_TIMEOUT, &t);
	switch (ssh_userauth_publickey(c.ssh, NULL, st->key)) {
	case SSH_AUTH_SUCCESS:
		auth = "our key is accepted";
		break;
	case SSH_AUTH_DENIED:
	case SSH_AUTH_PARTIAL:
		auth = "our key is NOT accepted yet (the partner must install it)";
		break;
	default:
		auth = "could not try our key";
		break;
	}
	strlcpy_(out->param, "host_key", sizeof(out->param));
	strlcpy_(out->value, c.offered, sizeof(out->value));
	(void)bsnprintf(out->detail, sizeof(out->detail), "%s:%d (%s) offers host "
	    "key %s; %s for user %s", c.host, c.port, c.banner[0] ? c.banner :
	    "no banner", c.offered, auth, c.user);
	rv = 0;
done:
	conn_close(&c);
	return rv;
}

static void
sftpt_shutdown(void *p)
{
	struct sftp_state	*st = p;

	if (st == NULL)
		return;
	cache_drop(st);
	ssh_key_free(st->key);
	free(st->identity);
	free(st);
}

const struct transport_backend roigate_transport = {
	.name = "sftp",
	.abi = TRANSPORT_ABI_VERSION,
	.caps = 0,
	.create = sftpt_create,
	.config = sftpt_config,
	.check = sftpt_check,
	.init = sftpt_init,
	.deliver = sftpt_deliver,
	.poll = NULL,
	.shutdown = sftpt_shutdown,
	.probe = sftpt_probe,
};
