/*
 * The "smime" transport: e-mail signed and encrypted with S/MIME (CMS),
 * sent over SMTP with STARTTLS required.  Loaded by the daemon (config,
 * check), run in a worker process (init, deliver, probe).
 *
 * The message: a multipart/mixed body (a text part from a template, each
 * output file as a base64 attachment), signed with the gateway's
 * certificate (detached, multipart/signed), then encrypted for the
 * recipient's certificate (CMS EnvelopedData, AES-256-CBC, RSA key
 * transport: PKCS#1 v1.5, or RSAES-OAEP with key_transport=rsa-oaep),
 * CRLF line endings throughout.  The signature advertises only AES in its
 * SMIMECapabilities.  The message is made in one pass over the output
 * files (read, hashed, base64, digested for the signature, encrypted,
 * base64 again) into one unlinked temporary file that libcurl then reads:
 * a 50 MB output is never held in memory more than a chunk at a time.
 *
 * The recipient's directory entry:
 *	address		the e-mail address
 *	cert		the recipient's certificate (PEM; roictl reads it from
 *			a file with --param cert=@FILE)
 *	mdn		yes: ask for a disposition notification (Direct)
 *	key_transport	rsa-pkcs1 (default) or rsa-oaep
 *	cert_sha256	the certificate's fingerprint, pinned at verification;
 *			every send compares it (a changed cert is held)
 * The certificate is checked when the recipient is verified (probe) and
 * again before each send: validity dates, an RSA key of 2048 bits or
 * more, key usage allowing key encipherment, extended key usage allowing
 * e-mail protection, the address in the certificate, and, when
 * trust_anchors is configured, a chain to one of them.  Any failure is a
 * PERMFAIL before a connection is made.
 *
 * SMTP answers: 4xx, connection failures and timeouts are TEMPFAIL; 5xx,
 * a server without STARTTLS, a server certificate that does not verify
 * are PERMFAIL, each with the server's words.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <immintrin.h>

#include <curl/curl.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <roigate/transport.h>

#include "util.h"

#define SMIME_MIN_BITS	2048
#define B64_LINE	57		/* input bytes per 76-character line */

struct smime_state {
	char		*relay;		/* smtp://host:port */
	char		*ca_file;	/* verifies the relay's certificate */
	char		*from;
	char		*from_name;
	char		*cert_file, *key_file;
	char		*auth_file;	/* optional "user:password", mode 0600 */
	char		*anchors;	/* optional CA file for recipient certs */
	char		*template;
	char		*helo;		/* domain for Message-IDs */
	long		 connect_timeout, timeout;
	X509		*cert;
	EVP_PKEY	*key;
	char		 user[256], pass[256];
};

/* One delivery's scratch: the message file, the server's answers. */
struct msg {
	int	out;			/* the whole message, as sent */
	char	reply[512];		/* the server's last "250" */
	char	refusal[512];		/* its first 4xx or 5xx */
	char	msgid[160];
	char	fpr[80];		/* recipient certificate fingerprint */
};

static void *
smime_create(void)
{
	struct smime_state	*st = calloc(1, sizeof(*st));

	if (st) {
		st->connect_timeout = 30;
		st->timeout = 300;
	}
	return st;
}

static int
set_str(char **dst, const char *v)
{
	free(*dst);
	return (*dst = strdup(v)) ? 0 : -1;
}

static int
smime_config(void *p, const char *key, const char *value, char *err, size_t errlen)
{
	struct smime_state	*st = p;
	static const struct { const char *key; size_t off; int path; } keys[] = {
		{ "relay", offsetof(struct smime_state, relay), 0 },
		{ "ca_file", offsetof(struct smime_state, ca_file), 1 },
		{ "from", offsetof(struct smime_state, from), 0 },
		{ "from_name", offsetof(struct smime_state, from_name), 0 },
		{ "cert", offsetof(struct smime_state, cert_file), 1 },
		{ "key", offsetof(struct smime_state, key_file), 1 },
		{ "auth_file", offsetof(struct smime_state, auth_file), 1 },
		{ "trust_anchors", offsetof(struct smime_state, anchors), 1 },
		{ "template", offsetof(struct smime_state, template), 1 },
		{ "domain", offsetof(struct smime_state, helo), 0 },
	};
	char	*end;
	long	 v;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key) != 0)
			continue;
		if (keys[i].path && value[0] != '/') {
			snprintf(err, errlen, "%s: \"%.100s\" must be an absolute path",
			    key, value);
			return -1;
		}
		return set_str((char **)((char *)st + keys[i].off), value);
	}
	if (!strcmp(key, "connect_timeout") || !strcmp(key, "timeout")) {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || *value == '\0' || *end != '\0' || v < 1 || v > 3600) {
			snprintf(err, errlen, "%s: \"%.40s\" must be 1 to 3600 seconds",
			    key, value);
			return -1;
		}
		*(key[0] == 'c' ? &st->connect_timeout : &st->timeout) = v;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%.100s\" for the smime transport (keys: "
	    "relay, ca_file, from, from_name, cert, key, auth_file, trust_anchors, "
	    "template, domain, connect_timeout, timeout)", key);
	return -1;
}

/* The signing key, read as a secret (see read_secret_file). */
static EVP_PKEY *
load_key(const char *path, char *err, size_t errlen)
{
	char		 pem[32768];
	size_t		 len;
	EVP_PKEY	*key = NULL;
	BIO		*b;

	if (read_secret_file("key", path, "private key", pem, sizeof(pem), &len,
	    err, errlen) == -1)
		return NULL;
	if ((b = BIO_new_mem_buf(pem, (int)len)) != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	OPENSSL_cleanse(pem, sizeof(pem));
	if (key == NULL)
		snprintf(err, errlen, "key %s: not a PEM private key (without a "
		    "passphrase)", path);
	return key;
}

static int
load_identity(struct smime_state *st, char *err, size_t errlen)
{
	FILE	*fp;

	if ((st->key = load_key(st->key_file, err, errlen)) == NULL)
		return -1;
	/* The certificate is public: no secret's checks. */
	if ((fp = fopen(st->cert_file, "re")) == NULL ||
	    (st->cert = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "cert %s: not a PEM certificate", st->cert_file);
		if (fp)
			fclose(fp);
		return -1;
	}
	fclose(fp);
	if (X509_check_private_key(st->cert, st->key) != 1) {
		snprintf(err, errlen, "key %s does not belong to cert %s",
		    st->key_file, st->cert_file);
		return -1;
	}
	if (st->auth_file == NULL)
		return 0;
	return read_secret_pair("auth_file", st->auth_file, st->user,
	    sizeof(st->user), st->pass, sizeof(st->pass), err, errlen);
}

static int
smime_check(void *p, char *err, size_t errlen)
{
	struct smime_state	*st = p;

	if (!st->relay || !st->ca_file || !st->from || !st->cert_file || !st->key_file) {
		snprintf(err, errlen, "the smime transport needs relay, ca_file, from, "
		    "cert and key");
		return -1;
	}
	if (strncmp(st->relay, "smtp://", 7) != 0) {
		snprintf(err, errlen, "relay: \"%.100s\" must be smtp://HOST[:PORT] "
		    "(STARTTLS is always required)", st->relay);
		return -1;
	}
	if (access(st->ca_file, R_OK) == -1) {
		snprintf(err, errlen, "ca_file %s: %s", st->ca_file, strerror(errno));
		return -1;
	}
	if (load_identity(st, err, errlen) == -1)
		return -1;
	X509_free(st->cert);
	EVP_PKEY_free(st->key);
	st->cert = NULL;
	st->key = NULL;
	explicit_bzero(st->pass, sizeof(st->pass));
	return 0;
}

static int
smime_init(void *p, char *err, size_t errlen)
{
	struct smime_state	*st = p;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl could not be initialised");
		return -1;
	}
	return load_identity(st, err, errlen);
}

static const char *
param(const struct transport_recipient *rc, const char *key)
{
	for (size_t i = 0; i < rc->nparams; i++)
		if (strcmp(rc->params[i].key, key) == 0)
			return rc->params[i].value;
	return NULL;
}

/* The recipient's key transport: RSA PKCS#1 v1.5 (the default, which
 * every client reads) or RSAES-OAEP (key_transport=rsa-oaep). */
static int
key_transport(const struct transport_recipient *rc, int *oaep, char *err,
    size_t errlen)
{
	const char	*kt = param(rc, "key_transport");

	*oaep = kt && strcmp(kt, "rsa-oaep") == 0;
	if (kt == NULL || *oaep || strcmp(kt, "rsa-pkcs1") == 0)
		return 0;
	snprintf(err, errlen, "recipient %s: key_transport \"%.40s\" is neither "
	    "rsa-pkcs1 nor rsa-oaep", rc->id, kt);
	return -1;
}

/*
 * The certificate on file must be the one an administrator verified: its
 * SHA-256 was pinned (cert_sha256) at verification.  One that changed
 * since is refused, whoever changed it.
 */
static int
cert_pin_ok(const struct transport_recipient *rc, const char *fpr, char *err,
    size_t errlen)
{
	const char	*pin = param(rc, "cert_sha256");

	if (pin == NULL)
		snprintf(err, errlen, "recipient %s has no pinned certificate "
		    "(cert_sha256); verify it with roictl recipient verify %s",
		    rc->id, rc->id);
	else if (strcasecmp(pin, fpr) != 0)
		snprintf(err, errlen, "recipient %s: the certificate on file (%s) is "
		    "not the one verified (%s); it changed after verification: "
		    "confirm it with the recipient, then verify again", rc->id, fpr,
		    pin);
	else
		return 1;
	return 0;
}

/*
 * The recipient's certificate, checked; NULL with the reason in err.
 */
static X509 *
recipient_cert(struct smime_state *st, const struct transport_recipient *rc,
    char fpr[80], char *err, size_t errlen)
{
	const char	*pem = param(rc, "cert");
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	EVP_PKEY	*pk;
	BIO		*b;
	X509		*c = NULL;
	int		 oaep;

	if (pem == NULL) {
		snprintf(err, errlen, "recipient %s has no certificate on file (add "
		    "--param cert=@FILE.pem)", rc->id);
		return NULL;
	}
	if ((b = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		BIO_free(b);
		snprintf(err, errlen, "recipient %s: the certificate on file is not a "
		    "PEM certificate", rc->id);
		return NULL;
	}
	BIO_free(b);
	X509_digest(c, EVP_sha256(), md, &mdlen);
	strlcpy_(fpr, "SHA256:", 80);
	for (unsigned i = 0; i < mdlen && 7 + 2 * i + 2 < 80; i++)
		snprintf(fpr + 7 + 2 * i, 3, "%02x", md[i]);
	pk = X509_get0_pubkey(c);
	if (X509_cmp_current_time(X509_get0_notBefore(c)) > 0)
		snprintf(err, errlen, "recipient %s: certificate %s is not valid yet",
		    rc->id, fpr);
	else if (X509_cmp_current_time(X509_get0_notAfter(c)) < 0)
		snprintf(err, errlen, "recipient %s: certificate %s has expired",
		    rc->id, fpr);
	else if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		snprintf(err, errlen, "recipient %s: certificate %s has no RSA key "
		    "(RSA key transport is required)", rc->id, fpr);
	else if (EVP_PKEY_get_bits(pk) < SMIME_MIN_BITS)
		snprintf(err, errlen, "recipient %s: certificate %s has a %d-bit key; "
		    "at least %d bits are required", rc->id, fpr,
		    EVP_PKEY_get_bits(pk), SMIME_MIN_BITS);
	else if ((X509_get_extension_flags(c) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(c) & KU_KEY_ENCIPHERMENT))
		snprintf(err, errlen, "recipient %s: certificate %s does not allow key "
		    "encipherment (key usage)", rc->id, fpr);
	else if ((X509_get_extension_flags(c) & EXFLAG_XKUSAGE) &&
	    !(X509_get_extended_key_usage(c) & XKU_SMIME))
		snprintf(err, errlen, "recipient %s: certificate %s is not for e-mail "
		    "protection (extended key usage)", rc->id, fpr);
	else if (X509_check_email(c, rc->address, 0, 0) != 1)
		snprintf(err, errlen, "recipient %s: certificate %s is not for %s",
		    rc->id, fpr, rc->address);
	else if (key_transport(rc, &oaep, err, errlen) == 0)
		err[0] = '\0';
	if (err[0] == '\0' && st->anchors) {
		X509_STORE	*store = X509_STORE_new();
		X509_STORE_CTX	*ctx = X509_STORE_CTX_new();

		if (store == NULL || ctx == NULL ||
		    X509_STORE_load_file(store, st->anchors) != 1 ||
		    X509_STORE_CTX_init(ctx, store, c, NULL) != 1)
			snprintf(err, errlen, "trust_anchors %s cannot be loaded",
			    st->anchors);
		else {
			X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
			if (X509_verify_cert(ctx) != 1)
				snprintf(err, errlen, "recipient %s: certificate %s does not "
				    "chain to the trust anchors: %s", rc->id, fpr,
				    X509_verify_cert_error_string(
				    X509_STORE_CTX_get_error(ctx)));
		}
		X509_STORE_CTX_free(ctx);
		X509_STORE_free(store);
	}
	if (err[0]) {
		X509_free(c);
		return NULL;
	}
	return c;
}

/* An unlinked temporary file. */
static int
tmpfile_fd(void)
{
	const char	*dir = getenv("TMPDIR");
	int		 fd;

	/* In memory first: the sender's sandbox may write no folder. */
	if ((fd = memfd_create("roigate-smime", MFD_CLOEXEC)) != -1)
		return fd;
	return open(dir && dir[0] == '/' ? dir : "/tmp", O_TMPFILE | O_RDWR |
	    O_CLOEXEC, 0600);
}

static int
fd_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fd_printf(int fd, const char *fmt, ...)
{
	char	*s;
	va_list	 ap;
	int	 n, rv;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rv = write_all(fd, s, (size_t)n);
	free(s);
	return rv;
}

/* The body text: the template with its fields filled in, CRLF lines. */
static int
body_text(struct smime_state *st, const struct transport_message *m,
    struct buf *out)
{
	char		 path[PATH_MAX], num[16];
	struct buf	 t;
	int		 tfd;
	const char	*p;

	if (st->template)
		strlcpy_(path, st->template, sizeof(path));
	else
		snprintf(path, sizeof(path), "%s/email.txt", TEMPLATE_DIR);
	buf_init(&t);
	if ((tfd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    read_file_fd(tfd, 64 * 1024, &t) == -1) {
		if (tfd != -1)
			close(tfd);
		buf_free(&t);
		return -1;
	}
	close(tfd);
	snprintf(num, sizeof(num), "%zu", m->nfiles);
	for (p = buf_cstr(&t); *p; p++) {
		const char *v = NULL;
		size_t skip = 0;
		if (!strncmp(p, "{request_ref}", 13))
			v = m->request_ref ? m->request_ref : "", skip = 13;
		else if (!strncmp(p, "{packet_id}", 11))
			v = m->packet_id, skip = 11;
		else if (!strncmp(p, "{files}", 7))
			v = num, skip = 7;
		else if (!strncmp(p, "{from_name}", 11))
			v = st->from_name ? st->from_name : st->from, skip = 11;
		if (v) {
			buf_addstr(out, v);
			p += skip - 1;
		} else if (*p == '\n')
			buf_add(out, "\r\n", 2);
		else if (*p != '\r')
			buf_add(out, p, 1);
	}
	buf_free(&t);
	return 0;
}

/*
 * Base64 in 76-character CRLF lines (RFC 2045).  Every byte sent is
 * encoded twice (the attachment, then the envelope), so three bytes
 * become four characters by two lookups in a table of character pairs
 * rather than EVP_EncodeBlock's one character at a time; and where the
 * processor has AVX2, a whole line's first 48 bytes are encoded 24 at a
 * time (b64_line_avx2).
 */
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static char b64_pair[4096][2];
static int b64_avx2;		/* the processor has AVX2 (b64_init) */

static void
b64_init(void)
{
	for (int i = 0; i < 4096; i++) {
		b64_pair[i][0] = b64_alphabet[i >> 6];
		b64_pair[i][1] = b64_alphabet[i & 63];
	}
	__builtin_cpu_init();
	b64_avx2 = __builtin_cpu_supports("avx2");
}

/*
 * 24 bytes as 32 characters at o, in AVX2 registers (the method of Mula
 * and Lemire, "Faster Base64 Encoding and Decoding Using AVX2
 * Instructions", 2018): v holds them as 12 in bytes 4..15 of its low lane
 * and 12 in bytes 0..11 of its high lane; each 3 bytes are spread into four
 * 6-bit values, and each value becomes its character by adding the offset
 * of its range of the alphabet.
 */
__attribute__((target("avx2"))) static inline void
b64_24_avx2(unsigned char *o, __m256i v)
{
	__m256i	t0, t1, idx;

	v = _mm256_shuffle_epi8(v, _mm256_set_epi8(
	    10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
	    14, 15, 13, 14, 11, 12, 10, 11, 8, 9, 7, 8, 5, 6, 4, 5));
	t0 = _mm256_mulhi_epu16(_mm256_and_si256(v, _mm256_set1_epi32(0x0fc0fc00)),
	    _mm256_set1_epi32(0x04000040));
	t1 = _mm256_mullo_epi16(_mm256_and_si256(v, _mm256_set1_epi32(0x003f03f0)),
	    _mm256_set1_epi32(0x01000010));
	v = _mm256_or_si256(t0, t1);		/* 32 values of 0..63 */
	/* The ranges A-Z, a-z, 0-9, +, /: index 0, 1, 2..11, 12, 13. */
	idx = _mm256_sub_epi8(_mm256_subs_epu8(v, _mm256_set1_epi8(51)),
	    _mm256_cmpgt_epi8(v, _mm256_set1_epi8(25)));
	v = _mm256_add_epi8(v, _mm256_shuffle_epi8(_mm256_setr_epi8(
	    65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0,
	    65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0), idx));
	_mm256_storeu_si256((__m256i *)o, v);
}

/*
 * A whole line (B64_LINE bytes) in three steps that read only the line:
 * bytes 0..23 and 24..47 (each loaded from its start, 32 bytes), then
 * 33..56 (loaded from 25, the line's last 32 bytes), whose characters
 * overlap the second step's by 8 with the same values.
 */
__attribute__((target("avx2"))) static void
b64_line_avx2(unsigned char *o, const unsigned char *in)
{
	const __m256i	head = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6);
	const __m256i	tail = _mm256_setr_epi32(0, 2, 3, 4, 5, 6, 7, 0);

	b64_24_avx2(o, _mm256_permutevar8x32_epi32(
	    _mm256_loadu_si256((const __m256i *)in), head));
	b64_24_avx2(o + 32, _mm256_permutevar8x32_epi32(
	    _mm256_loadu_si256((const __m256i *)(in + 24)), head));
	b64_24_avx2(o + 44, _mm256_permutevar8x32_epi32(
	    _mm256_loadu_si256((const __m256i *)(in + 25)), tail));
	o[76] = '\r';
	o[77] = '\n';
}

static void
b64_pairs(unsigned char *p, const unsigned char *in, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i += 3, p += 4) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
		    in[i + 2];

		memcpy(p, b64_pair[v >> 12], 2);
		memcpy(p + 2, b64_pair[v & 0xfff], 2);
	}
}

/* n bytes (at most B64_LINE) as one line into o; its length with CRLF. */
static size_t
b64_line(unsigned char *o, const unsigned char *in, size_t n)
{
	unsigned char	*p = o;
	size_t		 i;

	if (n == B64_LINE && b64_avx2) {
		b64_line_avx2(o, in);
		return 78;
	}
	b64_pairs(p, in, n);
	i = n - n % 3;
	p += i / 3 * 4;
	if (n - i == 1) {
		*p++ = b64_alphabet[in[i] >> 2];
		*p++ = b64_alphabet[(in[i] & 3) << 4];
		*p++ = '=';
		*p++ = '=';
	} else if (n - i == 2) {
		*p++ = b64_alphabet[in[i] >> 2];
		*p++ = b64_alphabet[(in[i] & 3) << 4 | in[i + 1] >> 4];
		*p++ = b64_alphabet[(in[i + 1] & 15) << 2];
		*p++ = '=';
	}
	*p++ = '\r';
	*p++ = '\n';
	return (size_t)(p - o);
}

/* n bytes as whole lines, the last one short; the length written (o has
 * room for B64_OUT(n)). */
#define B64_OUT(n)	(((n) / B64_LINE + 1) * 78)
static size_t
b64_lines(unsigned char *o, const unsigned char *in, size_t n)
{
	size_t	k = 0;

	for (; n > 0; in += B64_LINE, n -= n < B64_LINE ? n : B64_LINE)
		k += b64_line(o + k, in, n < B64_LINE ? n : B64_LINE);
	return k;
}

/*
 * The last link of the chain: a BIO that writes what reaches it (the
 * EnvelopedData's DER, as OpenSSL streams it) to the message file as base64
 * lines, so the envelope is encoded and given CRLFs in one pass.
 */
struct b64_sink {
	int		fd;
	int		failed;
	size_t		npend, nout;
	unsigned char	pend[B64_LINE];
	unsigned char	out[128 * 1024];
};

static BIO_METHOD	*sink_method;

static int
sink_line(struct b64_sink *s, const unsigned char *in, size_t n)
{
	if (s->nout + 78 > sizeof(s->out)) {
		if (write_all(s->fd, s->out, s->nout) == -1) {
			s->failed = 1;
			return -1;
		}
		s->nout = 0;
	}
	s->nout += b64_line(s->out + s->nout, in, n);
	return 0;
}

static int
sink_write(BIO *b, const char *data, int len)
{
	struct b64_sink		*s = BIO_get_data(b);
	const unsigned char	*p = (const unsigned char *)data;
	size_t			 n = len > 0 ? (size_t)len : 0, k;

	if (s->failed)
		return -1;
	if (s->npend) {
		k = B64_LINE - s->npend < n ? B64_LINE - s->npend : n;
		memcpy(s->pend + s->npend, p, k);
		s->npend += k;
		p += k;
		n -= k;
		if (s->npend < B64_LINE)
			return len;
		s->npend = 0;
		if (sink_line(s, s->pend, B64_LINE) == -1)
			return -1;
	}
	for (; n >= B64_LINE; p += B64_LINE, n -= B64_LINE)
		if (sink_line(s, p, B64_LINE) == -1)
			return -1;
	memcpy(s->pend, p, n);
	s->npend = n;
	return len;
}

static long
sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH;
}

static int
sink_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* The short last line, and what is still buffered, to the file. */
static int
sink_finish(struct b64_sink *s)
{
	if (!s->failed && s->npend && sink_line(s, s->pend, s->npend) == -1)
		return -1;
	s->npend = 0;
	if (s->failed || write_all(s->fd, s->out, s->nout) == -1)
		return -1;
	s->nout = 0;
	return 0;
}

/* A BIO of our own: write goes to wr with data; it makes its method the
 * first time (*m), kept for the process. */
static BIO *
own_bio(BIO_METHOD **m, const char *name, int (*wr)(BIO *, const char *, int),
    void *data)
{
	BIO	*b;

	if (*m == NULL &&
	    ((*m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    name)) == NULL ||
	    BIO_meth_set_write(*m, wr) != 1 ||
	    BIO_meth_set_ctrl(*m, sink_ctrl) != 1 ||
	    BIO_meth_set_create(*m, sink_create) != 1))
		return NULL;
	if ((b = BIO_new(*m)) != NULL)
		BIO_set_data(b, data);
	return b;
}

static CMS_ContentInfo *
sign_partial(struct smime_state *st, int flags)
{
	STACK_OF(X509_ALGOR)	*caps = sk_X509_ALGOR_new_null();
	CMS_ContentInfo		*cms;
	CMS_SignerInfo		*si;

	if (caps == NULL || (cms = CMS_sign(NULL, NULL, NULL, NULL,
	    flags | CMS_PARTIAL)) == NULL) {
		sk_X509_ALGOR_free(caps);
		return NULL;
	}
	if ((si = CMS_add1_signer(cms, st->cert, st->key, EVP_sha256(),
	    flags | CMS_NOSMIMECAP)) == NULL ||
	    PKCS7_simple_smimecap(caps, NID_aes_256_cbc, -1) != 1 ||
	    PKCS7_simple_smimecap(caps, NID_aes_128_cbc, -1) != 1 ||
	    CMS_add_smimecap(si, caps) != 1) {
		CMS_ContentInfo_free(cms);
		cms = NULL;
	}
	sk_X509_ALGOR_pop_free(caps, X509_ALGOR_free);
	return cms;
}

/* An EnvelopedData for the recipient (AES-256-CBC), its key transported
 * with RSA PKCS#1 v1.5 or, if the recipient asks, RSAES-OAEP (SHA-256,
 * MGF1 with SHA-256); finished by streaming. */
static CMS_ContentInfo *
encrypt_partial(X509 *rcert, int oaep, int flags)
{
	CMS_ContentInfo		*cms;
	CMS_RecipientInfo	*ri;
	EVP_PKEY_CTX		*pctx;

	if ((cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(),
	    flags | CMS_PARTIAL)) == NULL)
		return NULL;
	if ((ri = CMS_add1_recipient_cert(cms, rcert, flags |
	    (oaep ? CMS_KEY_PARAM : 0))) == NULL)
		goto fail;
	if (oaep && ((pctx = CMS_RecipientInfo_get0_pkey_ctx(ri)) == NULL ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0))
		goto fail;
	return cms;
fail:
	CMS_ContentInfo_free(cms);
	return NULL;
}

static void
message_id(struct smime_state *st, char *out, size_t len)
{
	unsigned char	r[12];
	char		hex[25];
	const char	*dom = st->helo;

	if (dom == NULL && (dom = strchr(st->from, '@')) != NULL)
		dom++;
	RAND_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	snprintf(out, len, "<roigate.%ld.%s@%s>", (long)time(NULL), hex,
	    dom ? dom : "localhost");
}

static int
put(BIO *b, const void *p, size_t n)
{
	return n == 0 || BIO_write(b, p, (int)n) == (int)n ? 0 : -1;
}

/* One attachment, base64 in 76-character CRLF lines, into the signed
 * content; the file hashed as it is read. */
static int
send_attachment(BIO *sig, const struct transport_file *f, const char *boundary,
    char hex[65])
{
	enum { CHUNK = B64_LINE * 2048 };	/* 116,736 bytes in, 159,744 out */
	struct sha256_ctx	*h = sha256_new();
	unsigned char		*in = malloc(CHUNK), *enc = malloc(B64_OUT(CHUNK));
	size_t			 have = 0;
	off_t			 off = 0;
	ssize_t			 n;
	int			 rv = -1;

	if (in == NULL || enc == NULL || BIO_printf(sig, "--%s\r\nContent-Type: "
	    "%s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n", boundary,
	    f->content_type, f->name, f->name) < 0)
		goto done;
	do {
		if ((n = pread(f->fd, in + have, CHUNK - have, off)) == -1) {
			if (errno == EINTR)
				continue;
			goto done;
		}
		sha256_update(h, in + have, (size_t)n);
		off += n;
		have += (size_t)n;
		/* Whole chunks are whole lines: only the last line is short. */
		if ((have == CHUNK || n == 0) &&
		    put(sig, enc, b64_lines(enc, in, have)) == -1)
			goto done;
		if (have == CHUNK)
			have = 0;
	} while (n != 0);
	rv = 0;
done:
	sha256_final(h, hex);
	free(in);
	free(enc);
	return rv;
}

/* The multipart/mixed entity that is signed: the text, the attachments. */
static int
send_inner(struct smime_state *st, const struct transport_message *m, BIO *sig,
    char *hexes[], char *err, size_t errlen)
{
	char		 boundary[64];
	unsigned char	 r[8];
	struct buf	 text;
	int		 rv;

	RAND_bytes(r, sizeof(r));
	snprintf(boundary, sizeof(boundary), "roigate-%02x%02x%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	buf_init(&text);
	rv = body_text(st, m, &text);
	if (rv == -1 || BIO_printf(sig, "Content-Type: multipart/mixed; boundary="
	    "\"%s\"\r\n\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", boundary, boundary) < 0 ||
	    put(sig, text.data, text.len) == -1) {
		buf_free(&text);
		snprintf(err, errlen, "cannot write the message text (template): %s",
		    strerror(errno));
		return -1;
	}
	buf_free(&text);
	for (size_t i = 0; i < m->nfiles; i++)
		if (put(sig, "\r\n", 2) == -1 ||
		    send_attachment(sig, &m->files[i], boundary, hexes[i]) == -1) {
			snprintf(err, errlen, "cannot read %s: %s", m->files[i].name,
			    strerror(errno));
			return -1;
		} else if (strcmp(hexes[i], m->files[i].sha256) != 0) {
			snprintf(err, errlen, "%s changed while it was being sent",
			    m->files[i].name);
			return -1;
		}
	if (BIO_printf(sig, "\r\n--%s--\r\n", boundary) < 0) {
		snprintf(err, errlen, "cannot write the message: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Free the filters stacked on top of b down to (not including) bottom. */
static void
unstack(BIO *b, BIO *bottom)
{
	while (b != NULL && b != bottom) {
		BIO *next = BIO_pop(b);

		BIO_free(b);
		b = next;
	}
}

/* The detached signature part after the content, then the closing
 * boundary (the layout SMIME_write_CMS gives, with CRLF lines). */
static int
send_signature(CMS_ContentInfo *sign, BIO *env, const char *sb)
{
	unsigned char	*der = NULL, *enc;
	int		 n, rv = -1;

	if ((n = i2d_CMS_ContentInfo(sign, &der)) <= 0)
		return -1;
	if ((enc = malloc(B64_OUT((size_t)n))) != NULL &&
	    BIO_printf(env, "\r\n------%s\r\nContent-Type: application/pkcs7-"
	    "signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n",
	    sb) >= 0 &&
	    put(env, enc, b64_lines(enc, der, (size_t)n)) == 0 &&
	    BIO_printf(env, "\r\n------%s--\r\n\r\n", sb) >= 0)
		rv = 0;
	free(enc);
	OPENSSL_free(der);
	return rv;
}

/*
 * The two halves of the work run in two threads, as the openssl
 * pipeline's two processes share the two cores: this one reads, hashes,
 * encodes and digests the content; the other encrypts it, encodes the
 * envelope and writes the file.  Between them, a ring of a few chunks
 * (a bounded 1 MB whatever the size of the message).
 */
#define RING_SLOTS	4
#define RING_CHUNK	(256 * 1024)

struct ring {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned char	*slot[RING_SLOTS];
	size_t		 len[RING_SLOTS];
	size_t		 fill;		/* of the slot being written */
	unsigned	 head, tail;	/* slots produced, consumed */
	int		 closed, abandoned, failed;
	/* The consumer's: the envelope chain, its sink, its outcome. */
	BIO		*env, *sink;
	struct b64_sink	*s;
	int		 rv;
	char		 why[256];	/* its error, if any */
};

static BIO_METHOD	*ring_method;

/* Hand the slot being filled to the consumer; wait for a free one. */
static int
ring_publish(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->len[r->head % RING_SLOTS] = r->fill;
	r->head++;
	pthread_cond_broadcast(&r->cv);
	while (r->head - r->tail == RING_SLOTS && !r->failed)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	r->fill = 0;
	return r->failed ? -1 : 0;
}

static int
ring_write(BIO *b, const char *data, int len)
{
	struct ring	*r = BIO_get_data(b);
	size_t		 n = len > 0 ? (size_t)len : 0, k;

	while (n > 0) {
		if (r->fill == RING_CHUNK && ring_publish(r) == -1)
			return -1;
		k = RING_CHUNK - r->fill < n ? RING_CHUNK - r->fill : n;
		memcpy(r->slot[r->head % RING_SLOTS] + r->fill, data, k);
		r->fill += k;
		data += k;
		n -= k;
	}
	return len;
}

/* The consumer: each slot into the envelope; at the end, finish it. */
static void *
ring_consume(void *arg)
{
	struct ring	*r = arg;
	int		 ok = 1;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->tail == r->head && !r->closed)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->tail == r->head || r->abandoned)
			break;
		pthread_mutex_unlock(&r->mu);
		ok = put(r->env, r->slot[r->tail % RING_SLOTS],
		    r->len[r->tail % RING_SLOTS]) == 0;
		pthread_mutex_lock(&r->mu);
		r->tail++;
		if (!ok)
			r->failed = 1;
		pthread_cond_broadcast(&r->cv);
		if (!ok)
			break;
	}
	ok = ok && !r->abandoned;
	pthread_mutex_unlock(&r->mu);
	/* The EnvelopedData's last blocks and end-of-contents, then the
	 * last base64 line. */
	if (ok && BIO_flush(r->env) == 1) {
		unstack(r->env, r->sink);
		r->env = NULL;
		r->rv = sink_finish(r->s) == 0 &&
		    write_all(r->s->fd, "\r\n", 2) != -1 ? 0 : -1;
	}
	if (r->rv == -1 && ERR_peek_error() != 0)
		ERR_error_string_n(ERR_peek_error(), r->why, sizeof(r->why));
	else if (r->rv == -1)
		strlcpy_(r->why, strerror(errno), sizeof(r->why));
	return NULL;
}

/* No more content (ok) or give up (!ok); the consumer's outcome. */
static int
ring_close(struct ring *r, pthread_t th, int ok)
{
	if (ok && r->fill > 0 && ring_publish(r) == -1)
		ok = 0;
	pthread_mutex_lock(&r->mu);
	r->closed = 1;
	r->abandoned = !ok;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(th, NULL);
	return ok ? r->rv : -1;
}

static struct ring *
ring_new(void)
{
	struct ring	*r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->rv = -1;
	for (int i = 0; i < RING_SLOTS; i++)
		if ((r->slot[i] = malloc(RING_CHUNK)) == NULL)
			return r;	/* ring_ok() says no */
	return r;
}

static int
ring_ok(const struct ring *r)
{
	return r != NULL && r->slot[RING_SLOTS - 1] != NULL;
}

static void
ring_free(struct ring *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < RING_SLOTS; i++)
		free(r->slot[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/*
 * Sign (detached, multipart/signed) and encrypt, in one pass over the
 * data and never more than a few chunks in memory:
 *	inner entity -> SHA-256 for the signature -> ring ->
 *	[thread] AES-256-CBC and the EnvelopedData's DER (BIO_new_CMS) ->
 *	base64 lines -> mm->out
 * The signature is computed at the end of the content and follows it.
 */
static int
sign_and_encrypt(struct smime_state *st, const struct transport_message *m,
    X509 *rcert, int oaep, struct msg *mm, char *hexes[], char *err,
    size_t errlen)
{
	const int	 flags = CMS_STREAM | CMS_BINARY;
	struct b64_sink	*s = calloc(1, sizeof(*s));
	struct ring	*r = ring_new();
	CMS_ContentInfo	*env = NULL, *sign = NULL;
	BIO		*sink = NULL, *envbio = NULL, *rb = NULL, *sigbio = NULL;
	pthread_t	 th;
	char		 sb[40];
	unsigned char	 rnd[16];
	int		 rv = -1, ok, started = 0;

	err[0] = '\0';
	RAND_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(sb + 2 * i, 3, "%02X", rnd[i]);
	if (s == NULL || !ring_ok(r) || (s->fd = mm->out,
	    (sink = own_bio(&sink_method, "roigate base64 lines", sink_write,
	    s)) == NULL) ||
	    (env = encrypt_partial(rcert, oaep, flags)) == NULL ||
	    (envbio = BIO_new_CMS(sink, env)) == NULL ||
	    (rb = own_bio(&ring_method, "roigate ring", ring_write, r)) == NULL)
		goto fail;
	r->env = envbio;
	r->sink = sink;
	r->s = s;
	if (pthread_create(&th, NULL, ring_consume, r) != 0)
		goto fail;
	started = 1;
	ok = BIO_printf(rb, "MIME-Version: 1.0\r\nContent-Type: multipart/signed;"
	    " protocol=\"application/pkcs7-signature\"; micalg=\"sha-256\"; "
	    "boundary=\"----%s\"\r\n\r\nThis is an S/MIME signed message\r\n\r\n"
	    "------%s\r\n", sb, sb) >= 0 &&
	    (sign = sign_partial(st, flags | CMS_DETACHED)) != NULL &&
	    (sigbio = CMS_dataInit(sign, rb)) != NULL &&
	    send_inner(st, m, sigbio, hexes, err, errlen) == 0 &&
	    CMS_dataFinal(sign, sigbio) == 1;
	unstack(sigbio, rb);
	ok = ok && send_signature(sign, rb, sb) == 0;
	rv = ring_close(r, th, ok);
	envbio = r->env;	/* NULL once the consumer finished it */
	if (rv == -1 && err[0] == '\0' && r->why[0])
		snprintf(err, errlen, "encrypting failed: %s", r->why);
fail:
	if (rv == -1 && err[0] == '\0') {
		unsigned long e = ERR_get_error();
		snprintf(err, errlen, "signing or encrypting failed: %s",
		    e ? ERR_error_string(e, NULL) : strerror(errno));
	}
	if (!started && r != NULL)
		r->env = envbio;
	BIO_free(rb);
	BIO_free_all(envbio ? envbio : sink);
	CMS_ContentInfo_free(sign);
	CMS_ContentInfo_free(env);
	ring_free(r);
	free(s);
	return rv;
}

/* The whole message into mm->out: the envelope's headers, then the
 * encrypted entity; -1 with err. */
static int
build_message(struct smime_state *st, const struct transport_message *m,
    X509 *rcert, struct msg *mm, char *hexes[], char *err, size_t errlen)
{
	const struct transport_recipient *rc = m->recipient;
	char		 date[64], fromh[600];
	time_t		 now = time(NULL);
	struct tm	 tm;
	const char	*mdn = param(rc, "mdn");
	int		 oaep;

	if (b64_pair[0][0] == '\0')
		b64_init();
	if (key_transport(rc, &oaep, err, errlen) == -1)
		return -1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	message_id(st, mm->msgid, sizeof(mm->msgid));
	if (st->from_name)
		snprintf(fromh, sizeof(fromh), "\"%s\" <%s>", st->from_name, st->from);
	else
		snprintf(fromh, sizeof(fromh), "%s", st->from);
	if (fd_printf(mm->out, "From: %s\r\nTo: %s\r\nSubject: Records release for "
	    "request %s (%s)\r\nDate: %s\r\nMessage-ID: %s\r\n", fromh,
	    rc->address, m->request_ref ? m->request_ref : "-", m->packet_id, date,
	    mm->msgid) == -1 ||
	    (mdn && strcmp(mdn, "yes") == 0 && fd_printf(mm->out,
	    "Disposition-Notification-To: %s\r\nDisposition-Notification-Options: "
	    "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n", st->from) == -1) ||
	    fd_printf(mm->out, "MIME-Version: 1.0\r\nContent-Disposition: attachment;"
	    " filename=\"smime.p7m\"\r\nContent-Type: application/pkcs7-mime; "
	    "smime-type=enveloped-data; name=\"smime.p7m\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n") == -1) {
		snprintf(err, errlen, "cannot write the message: %s", strerror(errno));
		return -1;
	}
	if (sign_and_encrypt(st, m, rcert, oaep, mm, hexes, err, errlen) == -1)
		return -1;
	if (lseek(mm->out, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "cannot write the message: %s", strerror(errno));
		return -1;
	}
	return 0;
}


static size_t
read_cb(char *buf, size_t size, size_t n, void *arg)
{
	ssize_t	r = read(*(int *)arg, buf, size * n);

	return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

/* The server's reply lines; the last one is what it said last. */
static size_t
header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct msg	*mm = arg;
	size_t		 len = size * n;

	char		*dst;
	size_t		 k;

	/* Keep the last "250" (the one after DATA names the queue id) and the
	 * first refusal (what follows it is only QUIT's "221"). */
	if (len > 3 && buf[0] == '2' && buf[1] == '5' && buf[2] == '0')
		dst = mm->reply;
	else if (len > 3 && (buf[0] == '4' || buf[0] == '5') && !mm->refusal[0])
		dst = mm->refusal;
	else
		return len;
	k = len < sizeof(mm->reply) - 1 ? len : sizeof(mm->reply) - 1;
	memcpy(dst, buf, k);
	dst[k] = '\0';
	dst[strcspn(dst, "\r\n")] = '\0';
	return len;
}

static enum transport_status
fail(struct transport_receipt *r, enum transport_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum transport_status
fail(struct transport_receipt *r, enum transport_status s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	strlcpy_(r->status, s == TRANSPORT_PERMFAIL ? "refused" : "error",
	    sizeof(r->status));
	return s;
}

static enum transport_status
smtp_send(struct smime_state *st, const struct transport_message *m,
    struct msg *mm, struct transport_receipt *r)
{
	struct curl_slist	*rcpt = NULL;
	char			 from[300], to[300], errbuf[CURL_ERROR_SIZE] = "";
	long			 code = 0;
	CURL			*c;
	CURLcode		 rc;

	if ((c = curl_easy_init()) == NULL)
		return fail(r, TRANSPORT_TEMPFAIL, "libcurl: out of memory");
	snprintf(from, sizeof(from), "<%s>", st->from);
	snprintf(to, sizeof(to), "<%s>", m->recipient->address);
	rcpt = curl_slist_append(rcpt, to);
	curl_easy_setopt(c, CURLOPT_URL, st->relay);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_CAINFO, st->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &mm->out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, mm);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, st->connect_timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, st->timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp");
	if (st->user[0]) {
		curl_easy_setopt(c, CURLOPT_USERNAME, st->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, st->pass);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return TRANSPORT_OK;
	/* The server said no: its class decides, its words are the reason. */
	if (code >= 400 && code < 600 && rc != CURLE_USE_SSL_FAILED)
		return fail(r, code < 500 ? TRANSPORT_TEMPFAIL : TRANSPORT_PERMFAIL,
		    "%s answered %s", st->relay, mm->refusal[0] ? mm->refusal : errbuf);
	switch (rc) {
	case CURLE_USE_SSL_FAILED:
		return fail(r, TRANSPORT_PERMFAIL, "%s offers no STARTTLS; nothing was "
		    "sent (plain text is never used)", st->relay);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return fail(r, TRANSPORT_PERMFAIL, "%s: its certificate does not verify "
		    "against %s: %s; nothing was sent", st->relay, st->ca_file, errbuf);
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
		return fail(r, TRANSPORT_TEMPFAIL, "%s: %s", st->relay,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	default:
		return fail(r, TRANSPORT_TEMPFAIL, "%s: %s", st->relay,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
}

static enum transport_status
smime_deliver(void *p, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct smime_state	*st = p;
	struct msg		 mm;
	char			 err[512] = "", when[32];
	char			 hexbuf[64][65], *hexes[64];
	const char		*names[64], *hx[64];
	enum transport_status	 rv;
	X509			*rcert;

	memset(&mm, 0, sizeof(mm));
	mm.out = -1;
	if (m->nfiles > 64)
		return fail(r, TRANSPORT_PERMFAIL, "too many files for one message");
	for (size_t i = 0; i < m->nfiles; i++)
		hexes[i] = hexbuf[i];
	/* The certificate first: a bad one never opens a connection. */
	if ((rcert = recipient_cert(st, m->recipient, mm.fpr, err, sizeof(err))) == NULL) {
		rv = fail(r, TRANSPORT_PERMFAIL, "%s", err);
		r->hold = 1;
		return rv;
	}
	if (!cert_pin_ok(m->recipient, mm.fpr, err, sizeof(err))) {
		rv = fail(r, TRANSPORT_PERMFAIL, "%s", err);
		r->hold = 1;
		goto done;
	}
	if ((mm.out = tmpfile_fd()) == -1) {
		rv = fail(r, TRANSPORT_TEMPFAIL, "no temporary file: %s",
		    strerror(errno));
		goto done;
	}
	if (build_message(st, m, rcert, &mm, hexes, err, sizeof(err)) == -1) {
		rv = fail(r, TRANSPORT_TEMPFAIL, "%s", err);
		goto done;
	}
	if ((rv = smtp_send(st, m, &mm, r)) != TRANSPORT_OK)
		goto done;
	for (size_t i = 0; i < m->nfiles; i++) {
		names[i] = m->files[i].name;
		hx[i] = hexes[i];
	}
	sha256_listing(names, hx, m->nfiles, r->sha256);
	r->completed_at = time(NULL);
	time_iso(r->completed_at, when, sizeof(when));
	strlcpy_(r->remote_id, mm.msgid, sizeof(r->remote_id));
	strlcpy_(r->status, "sent", sizeof(r->status));
	(void)bsnprintf(r->detail, sizeof(r->detail), "to %s, signed and encrypted "
	    "for certificate %s; attachments sha256 %s; server: %s; completed %s",
	    m->recipient->address, mm.fpr, r->sha256, mm.reply, when);
done:
	X509_free(rcert);
	if (mm.out != -1)
		close(mm.out);
	return rv;
}

/* For `roictl recipient verify`: check the certificate on file and show
 * it; its fingerprint is what gets pinned. */
static int
smime_probe(void *p, const struct transport_recipient *rc,
    struct transport_probe *out)
{
	struct smime_state	*st = p;
	char			 fpr[80], err[512] = "", subj[256];
	X509			*c;

	if ((c = recipient_cert(st, rc, fpr, err, sizeof(err))) == NULL) {
		strlcpy_(out->detail, err, sizeof(out->detail));
		return -1;
	}
	X509_NAME_oneline(X509_get_subject_name(c), subj, sizeof(subj));
	strlcpy_(out->param, "cert_sha256", sizeof(out->param));
	strlcpy_(out->value, fpr, sizeof(out->value));
	(void)bsnprintf(out->detail, sizeof(out->detail), "certificate %s for %s "
	    "(%s, RSA %d bits) is valid and usable for encryption", fpr,
	    rc->address, subj, EVP_PKEY_get_bits(X509_get0_pubkey(c)));
	X509_free(c);
	return 0;
}

static void
smime_shutdown(void *p)
{
	struct smime_state	*st = p;

	if (st == NULL)
		return;
	X509_free(st->cert);
	EVP_PKEY_free(st->key);
	explicit_bzero(st->pass, sizeof(st->pass));
	BIO_meth_free(sink_method);
	BIO_meth_free(ring_method);
	sink_method = ring_method = NULL;
	free(st->relay);
	free(st->ca_file);
	free(st->from);
	free(st->from_name);
	free(st->cert_file);
	free(st->key_file);
	free(st->auth_file);
	free(st->anchors);
	free(st->template);
	free(st->helo);
	free(st);
}

const struct transport_backend roigate_transport = {
	.name = "smime",
	.abi = TRANSPORT_ABI_VERSION,
	.caps = 0,
	.create = smime_create,
	.config = smime_config,
	.check = smime_check,
	.init = smime_init,
	.deliver = smime_deliver,
	.poll = NULL,
	.shutdown = smime_shutdown,
	.probe = smime_probe,
};
