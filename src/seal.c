/*
 * Forward-secure sealing (roigated; the verifier also in roigate-verify).
 * The model is systemd-journald's Forward Secure Sealing:
 *
 *   verification key K0: 32 random bytes, printed once at --setup-seal
 *   for the privacy officer, never stored on the machine;
 *   sealing key of epoch 0:   E0   = HMAC-SHA256(K0, "roigate seal evolve" || be64(0))
 *   sealing key of epoch n+1: En+1 = HMAC-SHA256(En, "roigate seal evolve" || be64(n+1))
 *   mac of a sealed row:      HMAC-SHA256(En, "roigate entry" || row hash)
 *   seal of epoch n:          HMAC-SHA256(En, netstrings of "roigate seal v1",
 *       instance, n, start, end, then per sealed table: name, first, last,
 *       head hash; then the previous epoch's seal)
 *
 * The daemon keeps only the current En, in state_dir/seal.key (0600,
 * O_NOFOLLOW), overwritten in place and fsynced when the epoch ends, so a
 * thief of today's key cannot compute yesterday's: old entries and old
 * seals cannot be remade.  The verifier, holding K0, recomputes every
 * En and checks each entry's mac with the key of the epoch whose seal
 * range holds it, never a later one (journald's CVE-2023-31439).
 * An epoch with no entries is sealed too; epochs missed while the daemon
 * was down are sealed (empty) at start, so the chain of epochs has no gap.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "seal.h"
#include "store.h"
#include "util.h"

#define GENESIS	"0000000000000000000000000000000000000000000000000000000000000000"
#define EVOLVE	"roigate seal evolve"
#define KEYFILE_MAX	1024
/* How far ahead of the verifier's clock a time may be (seconds). */
#define SEAL_CLOCK_SLACK	300

static void
hexify(const uint8_t *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void
evolve_step(const uint8_t in[SEAL_KEY_LEN], int64_t n, uint8_t out[SEAL_KEY_LEN])
{
	uint8_t		msg[sizeof(EVOLVE) - 1 + 8];
	uint64_t	be = htobe64((uint64_t)n);
	unsigned	len = SEAL_KEY_LEN;

	memcpy(msg, EVOLVE, sizeof(EVOLVE) - 1);
	memcpy(msg + sizeof(EVOLVE) - 1, &be, 8);
	HMAC(EVP_sha256(), in, SEAL_KEY_LEN, msg, sizeof(msg), out, &len);
}

void
seal_key_first(const uint8_t vkey[SEAL_KEY_LEN], uint8_t key[SEAL_KEY_LEN])
{
	evolve_step(vkey, 0, key);
}

void
seal_key_evolve(uint8_t key[SEAL_KEY_LEN], int64_t next_epoch)
{
	uint8_t	next[SEAL_KEY_LEN];

	evolve_step(key, next_epoch, next);
	memcpy(key, next, SEAL_KEY_LEN);
	OPENSSL_cleanse(next, sizeof(next));
}

void
seal_entry_mac(const uint8_t key[SEAL_KEY_LEN], const char *hash, char out[65])
{
	uint8_t		msg[13 + 64], mac[32];
	size_t		n = strnlen(hash, 64);
	unsigned	len = sizeof(mac);

	memcpy(msg, "roigate entry", 13);
	memcpy(msg + 13, hash, n);
	HMAC(EVP_sha256(), key, SEAL_KEY_LEN, msg, 13 + n, mac, &len);
	hexify(mac, sizeof(mac), out);
}

static void
ns(struct buf *b, const char *s)
{
	buf_printf(b, "%zu:%s,", strlen(s), s);
}

static void
nn(struct buf *b, long long v)
{
	char	num[24];

	snprintf(num, sizeof(num), "%lld", v);
	ns(b, num);
}

void
seal_compute(const uint8_t key[SEAL_KEY_LEN], const char *instance,
    const struct store_seal *z, char out[65])
{
	struct buf	b;
	uint8_t		mac[32];
	unsigned	len = sizeof(mac);

	buf_init(&b);
	ns(&b, "roigate seal v1");
	ns(&b, instance);
	nn(&b, z->epoch);
	nn(&b, z->start_at);
	nn(&b, z->end_at);
	for (int t = 0; t < STORE_SEALED_N; t++) {
		if (!z->range[t].present)
			continue;
		ns(&b, store_sealed_name(t));
		nn(&b, z->range[t].first);
		nn(&b, z->range[t].last);
		ns(&b, z->range[t].head);
	}
	ns(&b, z->prev_seal);
	HMAC(EVP_sha256(), key, SEAL_KEY_LEN, (const unsigned char *)b.data, b.len,
	    mac, &len);
	hexify(mac, sizeof(mac), out);
	buf_free(&b);
}

static void
vkey_check(const uint8_t vkey[SEAL_KEY_LEN], char out[9])
{
	struct sha256_ctx	*c = sha256_new();
	char			 hex[65];

	sha256_update(c, "roigate verification key", 24);
	sha256_update(c, vkey, SEAL_KEY_LEN);
	sha256_final(c, hex);
	memcpy(out, hex, 8);
	out[8] = '\0';
}

void
seal_vkey_format(const uint8_t vkey[SEAL_KEY_LEN], char *out, size_t outlen)
{
	char	hex[65], check[9];
	size_t	o = 0;

	hexify(vkey, SEAL_KEY_LEN, hex);
	vkey_check(vkey, check);
	o += snprintf(out + o, outlen - o, "RGV1");
	for (int g = 0; g < 8 && o < outlen; g++)
		o += snprintf(out + o, outlen - o, "-%.8s", hex + 8 * g);
	if (o < outlen)
		snprintf(out + o, outlen - o, "-%s", check);
	explicit_bzero(hex, sizeof(hex));
}

int
seal_vkey_parse(const char *text, uint8_t vkey[SEAL_KEY_LEN], char *err,
    size_t errlen)
{
	char	digits[80], check[9];
	size_t	n = 0;
	int	rv = -1;

	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	if (strncasecmp(text, "RGV1", 4) != 0) {
		bsnprintf(err, errlen, "this is not a roigate verification key (it "
		    "starts with RGV1-)");
		return -1;
	}
	for (text += 4; *text; text++) {
		if (strchr(" \t\r\n-", *text))
			continue;
		if (!strchr("0123456789abcdefABCDEF", *text) || n == 72) {
			bsnprintf(err, errlen, "the verification key is mistyped: it "
			    "holds 72 hexadecimal digits after RGV1");
			goto fail;
		}
		digits[n++] = (char)(*text | 0x20);
	}
	if (n != 72) {
		bsnprintf(err, errlen, "the verification key is mistyped: it holds "
		    "72 hexadecimal digits after RGV1, this one %zu", n);
		goto fail;
	}
	digits[n] = '\0';
	if (unhex(digits, vkey, SEAL_KEY_LEN) == -1)
		goto fail;
	vkey_check(vkey, check);
	if (memcmp(check, digits + 64, 8) != 0) {
		bsnprintf(err, errlen, "the verification key is mistyped: its last "
		    "group (the checksum) does not match the others");
		OPENSSL_cleanse(vkey, SEAL_KEY_LEN);
		goto fail;
	}
	rv = 0;
fail:
	explicit_bzero(digits, sizeof(digits));
	return rv;
}

void
seal_checkpoint_format(const char *instance, const struct store_seal *z,
    char *out, size_t outlen)
{
	char	when[32];
	size_t	o;

	time_iso(z->end_at, when, sizeof(when));
	o = (size_t)snprintf(out, outlen, "roigate-checkpoint v1 instance=%s "
	    "epoch=%lld end=%s", instance, (long long)z->epoch, when);
	for (int t = 0; t < STORE_SEALED_N && o < outlen; t++)
		if (z->range[t].present)
			o += (size_t)snprintf(out + o, outlen - o, " %s=%lld:%s",
			    store_sealed_name(t), (long long)z->range[t].last,
			    z->range[t].head);
	if (o < outlen)
		snprintf(out + o, outlen - o, " seal=%s", z->seal);
}

/*
 * The daemon's sealing state.  The key file is one fixed-size record, so
 * that evolving overwrites the old key's bytes in place (then fsync).
 */
static struct {
	int		 active;
	int		 fd;
	struct store	*store;
	char		 instance[STORE_INSTANCE_LEN + 1];
	uint8_t		 key[SEAL_KEY_LEN];
	int64_t		 epoch;
	int64_t		 start;		/* unix seconds */
	int64_t		 first[STORE_SEALED_N];
	int64_t		 interval;	/* seconds */
} sl = { .fd = -1 };

static int
keyfile_format(char *out, size_t outlen)
{
	char	hex[65];
	int	n;
	size_t	o;

	hexify(sl.key, SEAL_KEY_LEN, hex);
	n = snprintf(out, outlen, "roigate sealing key v1\ninstance %s\n"
	    "epoch %020lld\nstart %020lld\n", sl.instance, (long long)sl.epoch,
	    (long long)sl.start);
	o = (size_t)n;
	for (int t = 0; t < STORE_SEALED_N && o < outlen; t++)
		o += (size_t)snprintf(out + o, outlen - o, "first %s %020lld\n",
		    store_sealed_name(t), (long long)sl.first[t]);
	if (o < outlen)
		o += (size_t)snprintf(out + o, outlen - o, "key %s\n", hex);
	explicit_bzero(hex, sizeof(hex));
	return o < outlen ? (int)o : -1;
}

static int
keyfile_write(void)
{
	char	rec[KEYFILE_MAX];
	int	n, rv = -1;

	if ((n = keyfile_format(rec, sizeof(rec))) == -1)
		goto fail;
	if (pwrite(sl.fd, rec, (size_t)n, 0) != n || ftruncate(sl.fd, n) == -1 ||
	    fsync(sl.fd) == -1)
		goto fail;
	rv = 0;
fail:
	explicit_bzero(rec, sizeof(rec));
	return rv;
}

static int
keyfile_parse(char *text, char *err, size_t errlen)
{
	char	*line, *save = NULL, hex[65] = "", name[32];
	long long v;
	int	 got = 0, rv = -1;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "instance %16s", sl.instance) == 1)
			got |= 1;
		else if (sscanf(line, "epoch %lld", &v) == 1)
			sl.epoch = v, got |= 2;
		else if (sscanf(line, "start %lld", &v) == 1)
			sl.start = v, got |= 4;
		else if (sscanf(line, "key %64s", hex) == 1)
			got |= 8;
		else if (sscanf(line, "first %31s %lld", name, &v) == 2) {
			for (int t = 0; t < STORE_SEALED_N; t++)
				if (strcmp(name, store_sealed_name(t)) == 0)
					sl.first[t] = v;
		}
	}
	if (got != 15 || strlen(hex) != 64 || unhex(hex, sl.key, SEAL_KEY_LEN) == -1)
		bsnprintf(err, errlen, "the sealing key file is damaged");
	else
		rv = 0;
	explicit_bzero(hex, sizeof(hex));
	return rv;
}

static void
entry_sealer(const char hash[65], char mac[65], void *arg)
{
	seal_entry_mac(sl.key, hash, mac);
}

int
seal_setup(struct store *s, const char *state_dir, const char *instance,
    uint8_t vkey[SEAL_KEY_LEN], char *err, size_t errlen)
{
	struct store_seal	z;
	char			path[4096], hash[65];
	int			rv;

	if (bsnprintf(path, sizeof(path), "%s/" SEAL_KEY_FILE, state_dir) == -1)
		return -1;
	if ((rv = store_seal_last(s, &z)) == -1) {
		bsnprintf(err, errlen, "%s", store_errmsg(s));
		return -1;
	}
	if (rv == 1) {
		bsnprintf(err, errlen, "this database is sealed already (its last "
		    "seal is of epoch %lld): sealing is set up once; the verification "
		    "key made then still applies", (long long)z.epoch);
		return -1;
	}
	if (RAND_bytes(vkey, SEAL_KEY_LEN) != 1) {
		bsnprintf(err, errlen, "no random bytes for the key");
		return -1;
	}
	if ((sl.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		bsnprintf(err, errlen, errno == EEXIST ? "%s exists: sealing is set up "
		    "already" : "%s: %s", path, strerror(errno));
		return -1;
	}
	strlcpy_(sl.instance, instance, sizeof(sl.instance));
	seal_key_first(vkey, sl.key);
	sl.epoch = 0;
	sl.start = now_wall();
	/* Entries from before the set-up are covered by the first seal's
	 * head hash; those after it carry macs. */
	for (int t = 0; t < STORE_SEALED_N; t++) {
		int64_t last;
		if (store_sealed_last(s, t, &last, hash) == -1)
			goto fail;
		sl.first[t] = last + 1;
	}
	if (keyfile_write() == -1 || fsync_dir(state_dir) == -1) {
		bsnprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	rv = 0;
	goto done;
fail:
	rv = -1;
done:
	OPENSSL_cleanse(sl.key, sizeof(sl.key));
	close(sl.fd);
	sl.fd = -1;
	return rv;
}

/* Send the checkpoint to the system journal and to the log. */
static void
checkpoint(const struct store_seal *z)
{
	char	line[1024];

	seal_checkpoint_format(sl.instance, z, line, sizeof(line));
	log_info("%s", line);
	sd_journal_send("MESSAGE=roigate disclosure-log %s", line,
	    "MESSAGE_ID=" SEAL_CHECKPOINT_MESSAGE_ID, "PRIORITY=6",
	    "ROIGATE_CHECKPOINT=%s", line, "ROIGATE_EPOCH=%lld",
	    (long long)z->epoch, "SYSLOG_IDENTIFIER=roigated", NULL);
}

/* Seal the current epoch as ending at end, then evolve the key. */
static int
seal_epoch(int64_t end)
{
	struct store_seal	z, last;
	int			rv;

	memset(&z, 0, sizeof(z));
	z.epoch = sl.epoch;
	z.start_at = sl.start;
	z.end_at = end < sl.start ? sl.start : end;
	if ((rv = store_seal_last(sl.store, &last)) == -1)
		return -1;
	strlcpy_(z.prev_seal, rv == 1 ? last.seal : GENESIS, sizeof(z.prev_seal));
	for (int t = 0; t < STORE_SEALED_N; t++) {
		z.range[t].present = 1;
		z.range[t].first = sl.first[t];
		if (store_sealed_last(sl.store, t, &z.range[t].last,
		    z.range[t].head) == -1)
			return -1;
	}
	seal_compute(sl.key, sl.instance, &z, z.seal);
	if (store_begin(sl.store) == -1)
		return -1;
	if (store_seal_insert(sl.store, &z) == -1 || store_commit(sl.store) == -1) {
		store_rollback(sl.store);
		return -1;
	}
	checkpoint(&z);
	/* Now the old key goes: evolve, overwrite the file in place. */
	seal_key_evolve(sl.key, sl.epoch + 1);
	sl.epoch++;
	sl.start = z.end_at;
	for (int t = 0; t < STORE_SEALED_N; t++)
		sl.first[t] = z.range[t].last + 1;
	if (keyfile_write() == -1) {
		log_warn("sealing key file: the old key may still be on disk");
		return -1;
	}
	return 0;
}

int
seal_start(struct store *s, const char *state_dir, const char *instance,
    int64_t interval_ms, char *err, size_t errlen)
{
	struct store_seal	last;
	struct stat		st;
	char			path[4096], text[KEYFILE_MAX];
	ssize_t			n;
	int			rv;

	if (bsnprintf(path, sizeof(path), "%s/" SEAL_KEY_FILE, state_dir) == -1)
		return -1;
	if ((sl.fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		bsnprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* A core dump would keep this epoch's key after the file has moved
	 * on (systemd-coredump keeps it, readable by the daemon's user): the
	 * key of a past epoch, which remakes its entries and seals. */
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 }) == -1) {
		bsnprintf(err, errlen, "cannot turn core dumps off (setrlimit: %s): "
		    "one would keep the sealing key", strerror(errno));
		goto fail;
	}
	if (fstat(sl.fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 077) || st.st_uid != geteuid()) {
		bsnprintf(err, errlen, "%s must be a regular file of the daemon's "
		    "user with mode 0600", path);
		goto fail;
	}
	if ((n = pread(sl.fd, text, sizeof(text) - 1, 0)) <= 0) {
		bsnprintf(err, errlen, "%s: cannot read it", path);
		goto fail;
	}
	text[n] = '\0';
	rv = keyfile_parse(text, err, errlen);
	explicit_bzero(text, sizeof(text));
	if (rv == -1)
		goto fail;
	if (strcmp(sl.instance, instance) != 0) {
		bsnprintf(err, errlen, "%s belongs to another database (instance %s, "
		    "this one is %s)", path, sl.instance, instance);
		goto fail;
	}
	sl.store = s;
	sl.interval = interval_ms / 1000 > 0 ? interval_ms / 1000 : 1;
	if ((rv = store_seal_last(s, &last)) == -1)
		goto fail;
	/* The seal was written but the daemon stopped before the key
	 * evolved: evolve now. */
	while (rv == 1 && last.epoch >= sl.epoch) {
		seal_key_evolve(sl.key, sl.epoch + 1);
		sl.epoch++;
		sl.start = last.end_at;
		for (int t = 0; t < STORE_SEALED_N; t++)
			sl.first[t] = last.range[t].last + 1;
		if (keyfile_write() == -1)
			goto fail;
	}
	if (rv == 1 && last.epoch < sl.epoch - 1)
		log_warnx("the seals of epochs %lld to %lld are missing from the "
		    "database (restored from a backup?): verify-log will say so",
		    (long long)last.epoch + 1, (long long)sl.epoch - 1);
	sl.active = 1;
	store_set_sealer(s, entry_sealer, NULL);
	log_info("sealing: epoch %lld, every %lld s", (long long)sl.epoch,
	    (long long)sl.interval);
	return 0;
fail:
	OPENSSL_cleanse(sl.key, sizeof(sl.key));
	close(sl.fd);
	sl.fd = -1;
	return -1;
}

int
seal_active(void)
{
	return sl.active;
}

int
seal_tick(int64_t now, int64_t *next_ms)
{
	int64_t	end;

	while (sl.active && now >= (end = sl.start + sl.interval))
		if (seal_epoch(end) == -1)
			return -1;
	*next_ms = sl.active ? (sl.start + sl.interval - now) * 1000 : -1;
	if (*next_ms < 1)
		*next_ms = 1;
	return 0;
}

int
seal_close(int64_t now)
{
	int	rv;

	if (!sl.active)
		return 0;
	rv = seal_epoch(now);
	store_set_sealer(sl.store, NULL, NULL);
	OPENSSL_cleanse(sl.key, sizeof(sl.key));
	close(sl.fd);
	sl.fd = -1;
	sl.active = 0;
	return rv;
}

/*
 * Verification.
 */
struct vstate {
	struct store_seal	*z;
	size_t			 nz, cap;
	uint8_t			(*keys)[SEAL_KEY_LEN];	/* one per seal, +1 */
	enum store_sealed	 t;
	const char		*what;
	int64_t			 expect;
	char			 prev[65];
	size_t			 e;		/* seal holding the current entry */
	int			 bad;
	int			 in_cut;	/* at or past a row of the cut */
	struct seal_verdict	*v;
	/* Pruned: entries up to cut[t] are gone (or going), the chain goes
	 * on from cut_head[t]; the epoch each prune record was written in. */
	int64_t			 cut[STORE_SEALED_N];
	char			 cut_head[STORE_SEALED_N][65];
	size_t			*prune_e;
	size_t			 nprune_e, prune_cap;
};

static int
collect(const struct store_seal *z, void *arg)
{
	struct vstate	*vs = arg;

	if (vs->nz == vs->cap) {
		vs->cap = vs->cap ? vs->cap * 2 : 64;
		vs->z = xreallocarray(vs->z, vs->cap, sizeof(*vs->z));
	}
	vs->z[vs->nz++] = *z;
	return 0;
}

static const char *
table_words(enum store_sealed t)
{
	return t == STORE_SEALED_DISCLOSURES ? "disclosure log" :
	    t == STORE_SEALED_AUDIT ? "audit log" :
	    t == STORE_SEALED_PRUNES ? "prune records" : store_sealed_name(t);
}

static int
vbad(struct vstate *vs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
vbad(struct vstate *vs, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(vs->v->msg, sizeof(vs->v->msg), fmt, ap);
	va_end(ap);
	vs->v->code = SEAL_TAMPERED;
	vs->bad = 1;
	return 1;
}

/* One row of table vs->t: the chain, then the mac of its own epoch. */
static int
verify_row(const struct store_sealed_row *r, void *arg)
{
	struct vstate		*vs = arg;
	struct sha256_ctx	*c;
	char			 h[65], mac[65], when[32];
	const struct store_seal	*z;

	/* Named by a verified prune record: removed, or about to be.  What
	 * is left of a removal under way is the end of the cut (it goes
	 * oldest first): verified as any entry, but for the first one's link,
	 * which goes to an entry removed; it ends at the sealed cut. */
	if (r->seq <= vs->cut[vs->t] && !vs->in_cut) {
		vs->in_cut = 1;
		vs->expect = r->seq;
		strlcpy_(vs->prev, r->prev_hash, sizeof(vs->prev));
	}
	if (r->seq != vs->expect)
		return vbad(vs, "%s entry %lld is missing (the log goes from %lld to "
		    "%lld): it was removed", table_words(vs->t),
		    (long long)vs->expect, (long long)vs->expect - 1, (long long)r->seq);
	if (strcmp(r->prev_hash, vs->prev) != 0)
		return vbad(vs, "%s entry %lld: previous-hash link broken (entry "
		    "%lld was altered or removed)", table_words(vs->t),
		    (long long)r->seq, (long long)r->seq - 1);
	if (r->malformed)
		return vbad(vs, "%s entry %lld: a field holds a value of the wrong "
		    "type, or its hash or mark is not 64 characters (edited outside "
		    "roigate)", table_words(vs->t), (long long)r->seq);
	c = sha256_new();
	sha256_update(c, r->prev_hash, strlen(r->prev_hash));
	sha256_update(c, r->canonical, r->canonical_len);
	sha256_final(c, h);
	if (strcmp(h, r->hash) != 0)
		return vbad(vs, "%s entry %lld: contents do not match its hash (the "
		    "entry was altered)", table_words(vs->t), (long long)r->seq);
	while (vs->e < vs->nz && r->seq > vs->z[vs->e].range[vs->t].last)
		vs->e++;
	/* Entries from before sealing was set up have no mac; the first
	 * seal's head hash covers them. */
	if (r->seq >= vs->z[0].range[vs->t].first) {
		seal_entry_mac(vs->keys[vs->e], r->hash, mac);
		if (strcmp(mac, r->mac) != 0) {
			if (vs->e == vs->nz)
				return vbad(vs, "%s entry %lld (written after the last "
				    "seal): its mark does not match the current epoch's "
				    "key: it was changed or added by other means",
				    table_words(vs->t), (long long)r->seq);
			z = &vs->z[vs->e];
			time_iso(z->start_at, when, sizeof(when));
			return vbad(vs, "%s entry %lld: it does not match the seal "
			    "of the epoch it was written in (epoch %lld, from %s): "
			    "it was changed, or written in a later epoch and placed "
			    "here", table_words(vs->t), (long long)r->seq,
			    (long long)z->epoch, when);
		}
	}
	if (vs->e < vs->nz && r->seq == vs->z[vs->e].range[vs->t].last &&
	    strcmp(h, vs->z[vs->e].range[vs->t].head) != 0)
		return vbad(vs, "%s: the chain at entry %lld does not match the seal "
		    "of epoch %lld: entries before it were changed",
		    table_words(vs->t), (long long)r->seq,
		    (long long)vs->z[vs->e].epoch);
	if (r->seq == vs->cut[vs->t] && strcmp(h, vs->cut_head[vs->t]) != 0)
		return vbad(vs, "%s entry %lld, the last of a prune record's cut, "
		    "does not match the chain hash the record names",
		    table_words(vs->t), (long long)r->seq);
	if (r->seq <= vs->cut[vs->t])
		vs->v->awaiting[vs->t]++;
	else if (vs->e < vs->nz)
		vs->v->entries[vs->t]++;
	else
		vs->v->unsealed[vs->t]++;
	if (vs->t == STORE_SEALED_PRUNES) {
		if (vs->nprune_e == vs->prune_cap) {
			vs->prune_cap = vs->prune_cap ? vs->prune_cap * 2 : 16;
			vs->prune_e = xreallocarray(vs->prune_e, vs->prune_cap,
			    sizeof(*vs->prune_e));
		}
		vs->prune_e[vs->nprune_e++] = vs->e;
	}
	strlcpy_(vs->prev, h, sizeof(vs->prev));
	vs->expect++;
	return 0;
}

int
seal_prune_check(const struct store_prune *p, const struct store_seal *z,
    size_t nz, char *why, size_t whylen)
{
	int64_t	floor = time_years_before(p->at, SEAL_PRUNE_MIN_YEARS);
	char	when[32], sealed[32];

	time_iso(p->at, when, sizeof(when));
	for (int t = 0; t < STORE_SEALED_N; t++) {
		const struct store_seal *e;

		if (p->t[t].cut == 0)
			continue;
		if (p->t[t].cut < 0) {
			bsnprintf(why, whylen, "it is damaged (its cuts do not read)");
			return -1;
		}
		if (p->t[t].epoch < 0 || (size_t)p->t[t].epoch >= nz ||
		    !(e = &z[p->t[t].epoch])->range[t].present ||
		    e->range[t].last != p->t[t].cut ||
		    strcmp(e->range[t].head, p->t[t].head) != 0) {
			bsnprintf(why, whylen, "its cut of the %s at entry %lld is not "
			    "the end of sealed epoch %lld: the record was forged",
			    table_words(t), (long long)p->t[t].cut,
			    (long long)p->t[t].epoch);
			return -1;
		}
		if (e->end_at > floor) {
			time_iso(e->end_at, sealed, sizeof(sealed));
			bsnprintf(why, whylen, "it removed %s entries up to %lld, sealed "
			    "on %s, less than %d years before its date (%s): records "
			    "may go only after %d years; the record was forged",
			    table_words(t), (long long)p->t[t].cut, sealed,
			    SEAL_PRUNE_MIN_YEARS, when, SEAL_PRUNE_MIN_YEARS);
			return -1;
		}
	}
	return 0;
}

/* One prune record, its own entry verified: dated within the epoch it
 * was written in, its cuts at sealed epoch ends old enough. */
static int
verify_prune(const struct store_prune *p, void *arg)
{
	struct vstate	*vs = arg;
	char		 why[400], when[32];
	size_t		 e;
	int64_t		 lo, hi;

	if (p->seq < 1 || (size_t)p->seq > vs->nprune_e)
		return vbad(vs, "prune record %lld is not in the verified chain",
		    (long long)p->seq);
	e = vs->prune_e[p->seq - 1];
	/* An entry is written while its epoch is open; the seal may come a
	 * moment after the epoch's nominal end, hence the next one's end. */
	lo = e < vs->nz ? vs->z[e].start_at : vs->z[vs->nz - 1].end_at;
	hi = e + 1 < vs->nz ? vs->z[e + 1].end_at : now_wall() + SEAL_CLOCK_SLACK;
	if (p->at < lo - 1 || p->at > hi) {
		time_iso(p->at, when, sizeof(when));
		return vbad(vs, "prune record %lld is dated %s, outside the epoch it "
		    "was written in: it was forged", (long long)p->seq, when);
	}
	if (seal_prune_check(p, vs->z, vs->nz, why, sizeof(why)) == -1)
		return vbad(vs, "prune record %lld: %s", (long long)p->seq, why);
	for (int t = 0; t < STORE_SEALED_N; t++) {
		if (p->t[t].cut <= vs->cut[t])
			continue;
		vs->cut[t] = p->t[t].cut;
		strlcpy_(vs->cut_head[t], p->t[t].head, sizeof(vs->cut_head[t]));
		vs->v->pruned[t] = p->t[t].cut;
	}
	vs->v->pruned_at = p->at;
	strlcpy_(vs->v->pruned_by, p->actor, sizeof(vs->v->pruned_by));
	return 0;
}

struct first_row {
	int64_t	seq;
	char	hash[65], mac[65];
};

static int
grab_row(const struct store_sealed_row *r, void *arg)
{
	struct first_row	*f = arg;

	f->seq = r->seq;
	strlcpy_(f->hash, r->hash, sizeof(f->hash));
	strlcpy_(f->mac, r->mac, sizeof(f->mac));
	return 1;
}

/*
 * The first seal does not match the key: still this log's key if a later
 * seal, or the mark of the first entry a seal says was marked, matches one
 * of the keys it yields.  Then the first seal, or the instance id every
 * seal is made over, was altered: tampering must not pass for a wrong key.
 */
static int
key_fits(struct store *st, const struct vstate *vs, const char *inst)
{
	struct first_row	 f;
	char			 s[65];

	for (size_t i = 1; i < vs->nz; i++) {
		seal_compute(vs->keys[i], inst, &vs->z[i], s);
		if (strcmp(s, vs->z[i].seal) == 0)
			return 1;
	}
	for (int t = 0; t < STORE_SEALED_N; t++)
		for (size_t i = 0; i < vs->nz; i++) {
			const struct store_seal *z = &vs->z[i];

			if (!z->range[t].present || z->range[t].first < 1 ||
			    z->range[t].first > z->range[t].last)
				continue;
			f.seq = 0;
			if (store_sealed_iter(st, t, z->range[t].first - 1, grab_row,
			    &f) == 0 && f.seq == z->range[t].first) {
				seal_entry_mac(vs->keys[i], f.hash, s);
				if (strcmp(s, f.mac) == 0)
					return 1;
			}
			break;
		}
	return 0;
}

void
seal_verify(struct store *st, const uint8_t vkey[SEAL_KEY_LEN],
    struct seal_verdict *v)
{
	struct vstate		 vs;
	char			 s[65], when[32], inst[STORE_INSTANCE_LEN + 1];
	const struct store_seal	*z, *p;
	int64_t			 head;

	memset(v, 0, sizeof(*v));
	memset(&vs, 0, sizeof(vs));
	vs.v = v;
	if (store_instance_id(st, inst) == -1 ||
	    store_seal_iter(st, 0, collect, &vs) == -1) {
		v->code = SEAL_ERROR;
		bsnprintf(v->msg, sizeof(v->msg), "cannot read the database: %.300s",
		    store_errmsg(st));
		goto done;
	}
	if (vs.nz == 0) {
		v->code = SEAL_UNSEALED;
		bsnprintf(v->msg, sizeof(v->msg), "the log has no seal yet: sealing "
		    "is not set up, or its first epoch has not ended");
		goto done;
	}
	vs.keys = xreallocarray(NULL, vs.nz + 1, SEAL_KEY_LEN);
	seal_key_first(vkey, vs.keys[0]);
	for (size_t i = 1; i <= vs.nz; i++) {
		memcpy(vs.keys[i], vs.keys[i - 1], SEAL_KEY_LEN);
		seal_key_evolve(vs.keys[i], (int64_t)i);
	}
	z = &vs.z[0];
	if (z->epoch != 0) {
		bsnprintf(v->msg, sizeof(v->msg), "the seals of epochs 0 to %lld are "
		    "missing: they were removed", (long long)z->epoch - 1);
		v->code = SEAL_TAMPERED;
		goto done;
	}
	seal_compute(vs.keys[0], inst, z, s);
	if (strcmp(s, z->seal) != 0 && key_fits(st, &vs, inst)) {
		bsnprintf(v->msg, sizeof(v->msg), "the seal of epoch 0 does not "
		    "match, though the key fits later seals or marks of this log: "
		    "the seal, or the database's instance id, was altered");
		v->code = SEAL_TAMPERED;
		goto done;
	}
	if (strcmp(s, z->seal) != 0) {
		v->code = SEAL_WRONG_KEY;
		bsnprintf(v->msg, sizeof(v->msg), "this verification key does not "
		    "belong to this log: its first seal does not match");
		goto done;
	}
	for (size_t i = 0; i < vs.nz; i++) {
		z = &vs.z[i];
		p = i ? &vs.z[i - 1] : NULL;
		time_iso(z->start_at, when, sizeof(when));
		if (z->epoch != (int64_t)i) {
			bsnprintf(v->msg, sizeof(v->msg), "the seal of epoch %zu is "
			    "missing: it was removed", i);
			v->code = SEAL_TAMPERED;
			goto done;
		}
		seal_compute(vs.keys[i], inst, z, s);
		if (strcmp(s, z->seal) != 0 || z->unknown_ranges ||
		    strcmp(z->prev_seal, p ? p->seal : GENESIS) != 0) {
			bsnprintf(v->msg, sizeof(v->msg), "the seal of epoch %lld (from "
			    "%s) does not match: it was altered or made without the "
			    "sealing key of that epoch", (long long)z->epoch, when);
			v->code = SEAL_TAMPERED;
			goto done;
		}
		/* A seal dated ahead would let a prune record dated ahead pass
		 * as six years after what it cuts (src/retention.c). */
		if (z->end_at > now_wall() + SEAL_CLOCK_SLACK) {
			bsnprintf(v->msg, sizeof(v->msg), "the seal of epoch %lld ends "
			    "in the future: it was made with a forged time",
			    (long long)z->epoch);
			v->code = SEAL_TAMPERED;
			goto done;
		}
		if (z->end_at < z->start_at || (p && z->start_at < p->end_at)) {
			bsnprintf(v->msg, sizeof(v->msg), "epoch %lld (from %s) is out "
			    "of time order", (long long)z->epoch, when);
			v->code = SEAL_TAMPERED;
			goto done;
		}
		for (int t = 0; t < STORE_SEALED_N; t++)
			if (p && z->range[t].present && p->range[t].present &&
			    (z->range[t].first != p->range[t].last + 1 ||
			    z->range[t].last < p->range[t].last)) {
				bsnprintf(v->msg, sizeof(v->msg), "the seal of epoch "
				    "%lld does not continue the one before it",
				    (long long)z->epoch);
				v->code = SEAL_TAMPERED;
				goto done;
			}
	}
	v->epochs = (int64_t)vs.nz;
	v->last_seal_at = vs.z[vs.nz - 1].end_at;
	/* The prune records first: they say where the other chains begin. */
	for (int i = 0; i < STORE_SEALED_N && !vs.bad; i++) {
		enum store_sealed t = i == 0 ? STORE_SEALED_PRUNES :
		    i <= STORE_SEALED_PRUNES ? i - 1 : i;
		vs.t = t;
		vs.expect = vs.cut[t] + 1;
		vs.in_cut = 0;
		vs.e = 0;
		strlcpy_(vs.prev, vs.cut[t] ? vs.cut_head[t] : GENESIS, sizeof(vs.prev));
		if (store_sealed_iter(st, t, 0, verify_row, &vs) == -1 ||
		    (!vs.bad && t == STORE_SEALED_PRUNES &&
		    store_prune_iter(st, verify_prune, &vs) == -1)) {
			v->code = SEAL_ERROR;
			bsnprintf(v->msg, sizeof(v->msg), "cannot read the %s: %.300s",
			    table_words(t), store_errmsg(st));
			goto done;
		}
		if (!vs.bad && vs.expect - 1 < vs.z[vs.nz - 1].range[t].last)
			vbad(&vs, "%s entries %lld to %lld, sealed, are missing from "
			    "the end: they were removed", table_words(t),
			    (long long)vs.expect, (long long)vs.z[vs.nz - 1].range[t].last);
	}
	if (vs.bad)
		goto done;
	for (int t = 0; t < STORE_SEALED_N; t++) {
		char why[256];
		int rc = store_sealed_integrity(st, t, why, sizeof(why));

		if (rc == 0)
			continue;
		if (rc == -1) {
			v->code = SEAL_ERROR;
			bsnprintf(v->msg, sizeof(v->msg), "cannot check the %s's "
			    "indexes: %.300s", table_words(t), store_errmsg(st));
		} else
			vbad(&vs, "the %s's file structure is not sound (SQLite: %s): "
			    "an index that leaves entries out hides them from the "
			    "queries that read it, such as the accounting of "
			    "disclosures; the file was edited outside roigate",
			    table_words(t), why);
		goto done;
	}
	if ((head = store_disclosure_malformed(st)) == -1) {
		bsnprintf(v->msg, sizeof(v->msg), "cannot check the disclosure "
		    "log's fields: %.200s", store_errmsg(st));
		v->code = SEAL_ERROR;
	} else if (head > 0) {
		bsnprintf(v->msg, sizeof(v->msg), "disclosure log entry %lld: a field "
		    "holds a value of the wrong type or a hidden NUL byte (edited "
		    "outside roigate)", (long long)head);
		v->code = SEAL_TAMPERED;
	}
done:
	if (vs.keys)
		OPENSSL_cleanse(vs.keys, (vs.nz + 1) * SEAL_KEY_LEN);
	free(vs.keys);
	free(vs.z);
	free(vs.prune_e);
}

void
seal_verdict_tail(const struct seal_verdict *v, char *out, size_t outlen)
{
	char	when[32];
	int64_t	n = 0;

	for (int t = 0; t < STORE_SEALED_N; t++)
		n += v->unsealed[t];
	out[0] = '\0';
	if (n == 0 || v->epochs == 0)
		return;
	time_iso(v->last_seal_at, when, sizeof(when));
	bsnprintf(out, outlen, "not sealed yet (%lld entries after the last seal "
	    "of %s)", (long long)n, when);
}

void
seal_verdict_pruned(const struct seal_verdict *v, char *out, size_t outlen)
{
	char	when[32];
	size_t	o = 0;
	int64_t	left = 0;

	out[0] = '\0';
	for (int t = 0; t < STORE_SEALED_N && o < outlen; t++)
		if (v->pruned[t] > 0)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s entries 1 to "
			    "%lld", o ? ", " : "", table_words(t),
			    (long long)v->pruned[t]);
	if (o == 0 || o >= outlen)
		return;
	time_iso(v->pruned_at, when, sizeof(when));
	o += (size_t)snprintf(out + o, outlen - o, " pruned on %s by %s, under a "
	    "sealed record", when, v->pruned_by[0] ? v->pruned_by : "an unknown user");
	for (int t = 0; t < STORE_SEALED_N; t++)
		left += v->awaiting[t];
	if (left > 0 && o < outlen)
		snprintf(out + o, outlen - o, " (%lld of them still to be removed)",
		    (long long)left);
}

int
seal_checkpoint_verify(struct store *st, const char *line, char *msg,
    size_t msglen)
{
	char	*copy = xstrdup(line), *tok, *save = NULL, *eq, hash[65];
	char	 inst[STORE_INSTANCE_LEN + 1];
	struct store_prune pr;
	long long epoch = -1;
	int	 rv = -1, seen = 0;

	if (store_instance_id(st, inst) == -1 || store_prune_last(st, &pr) == -1) {
		bsnprintf(msg, msglen, "%s", store_errmsg(st));
		goto fail;
	}
	tok = strtok_r(copy, " \t\r\n", &save);
	if (tok == NULL || strcmp(tok, "roigate-checkpoint") != 0) {
		bsnprintf(msg, msglen, "this is not a roigate checkpoint line (it "
		    "starts with roigate-checkpoint)");
		goto fail;
	}
	while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
		if ((eq = strchr(tok, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(tok, "epoch") == 0 && sscanf(eq, "%lld", &epoch) != 1) {
			bsnprintf(msg, msglen, "the checkpoint line is damaged");
			goto fail;
		}
		/* Seals are never pruned: the one named must still be there,
		 * or the seals after the last entry were cut off. */
		if (strcmp(tok, "seal") == 0 && epoch >= 0) {
			int rc = store_seal_at(st, epoch, hash);

			if (rc == -1) {
				bsnprintf(msg, msglen, "%s", store_errmsg(st));
				goto fail;
			}
			if (rc == 0) {
				bsnprintf(msg, msglen, "the log no longer holds the seal "
				    "of epoch %lld of the checkpoint: seals were removed "
				    "from its end", epoch);
				goto fail;
			}
			if (strcmp(hash, eq) != 0) {
				bsnprintf(msg, msglen, "the seal of epoch %lld differs "
				    "from the checkpoint: it was remade", epoch);
				goto fail;
			}
		}
		if (strcmp(tok, "instance") == 0 && strcmp(eq, inst) != 0) {
			bsnprintf(msg, msglen, "this checkpoint is of another database "
			    "(instance %.20s, this one is %s)", eq, inst);
			goto fail;
		}
		for (int t = 0; t < STORE_SEALED_N; t++) {
			long long seq;
			char want[65];
			if (strcmp(tok, store_sealed_name(t)) != 0)
				continue;
			if (sscanf(eq, "%lld:%64s", &seq, want) != 2) {
				bsnprintf(msg, msglen, "the checkpoint line is damaged");
				goto fail;
			}
			seen++;
			/* Pruned since: only what remains can be checked. */
			if (seq == 0 || seq <= pr.t[t].cut)
				continue;
			if (store_sealed_hash_at(st, t, seq, hash) != 1) {
				bsnprintf(msg, msglen, "the %s no longer holds entry %lld "
				    "of the checkpoint: entries were removed from its end",
				    table_words(t), seq);
				goto fail;
			}
			if (strcmp(hash, want) != 0) {
				bsnprintf(msg, msglen, "the %s's entry %lld differs from the "
				    "checkpoint: the log was rewritten up to there",
				    table_words(t), seq);
				goto fail;
			}
		}
	}
	if (seen == 0) {
		bsnprintf(msg, msglen, "the checkpoint line names no entries");
		goto fail;
	}
	rv = 0;
fail:
	free(copy);
	return rv;
}
