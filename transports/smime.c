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
 * base64 again; three threads, see sign_and_encrypt) into a memory file
 * (tmpfile_fd) that libcurl then reads: the process holds no more than a
 * few chunks of a 50 MB output at a time.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SMIME_X86	1		/* AVX2 and SHA instructions, if present */
#else
#define SMIME_X86	0
#endif

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
 * processor has AVX2, a whole line is encoded 24 bytes at a time
 * (b64_line_avx2).
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
#if SMIME_X86
	__builtin_cpu_init();
	b64_avx2 = __builtin_cpu_supports("avx2");
#endif
}

#if SMIME_X86
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
#endif

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

#if SMIME_X86
	if (n == B64_LINE && b64_avx2) {
		b64_line_avx2(o, in);
		return 78;
	}
#endif
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

/*
 * SHA-256 of two streams at once.  Each byte of an attachment is hashed
 * twice: as read (its SHA-256, compared with the one the daemon recorded)
 * and as base64 text (the digest the signature covers).  The SHA
 * instructions wait on each other within one stream, so a block of each
 * stream interleaved costs little more than one: sha2_update2 hashes the
 * two together where the processor has them, and through OpenSSL one after
 * the other where it has not.  A wrong digest fails every send (the file's
 * differs from the daemon's, the signature does not verify), which
 * tests/integration/test_smime.py would see.
 */
struct sha2 {
	uint32_t	 h[8];
	uint64_t	 len;		/* bytes hashed */
	size_t		 nbuf;
	unsigned char	 buf[64];
	EVP_MD_CTX	*evp;		/* without the SHA instructions */
};

static int	sha_ni = -1;		/* the processor has them (sha2_init) */

#if SMIME_X86
static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define SHA_NI	__attribute__((target("sha,sse4.1,ssse3")))

/* The state as the instructions hold it: ABEF in s0, CDGH in s1. */
SHA_NI static inline __attribute__((always_inline)) void
sha_ni_load(const uint32_t h[8], __m128i *s0, __m128i *s1)
{
	__m128i	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xb1);

	*s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1b);
	*s0 = _mm_alignr_epi8(t, *s1, 8);
	*s1 = _mm_blend_epi16(*s1, t, 0xf0);
}

SHA_NI static inline __attribute__((always_inline)) void
sha_ni_store(uint32_t h[8], __m128i s0, __m128i s1)
{
	__m128i	t = _mm_shuffle_epi32(s0, 0x1b);

	s1 = _mm_shuffle_epi32(s1, 0xb1);
	_mm_storeu_si128((__m128i *)h, _mm_blend_epi16(t, s1, 0xf0));
	_mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(s1, t, 8));
}

/* Rounds 4g..4g+3 of the block at p; w holds its last four message
 * groups. */
SHA_NI static inline __attribute__((always_inline)) void
sha_ni_group(__m128i *s0, __m128i *s1, __m128i w[4], const unsigned char *p,
    int g)
{
	const __m128i	bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
			    0x0405060700010203ULL);
	__m128i		m;

	if (g < 4)
		w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)),
		    bswap);
	else
		w[g & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(
		    _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]),
		    _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4)), w[(g + 3) & 3]);
	m = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&sha_k[4 * g]));
	*s1 = _mm_sha256rnds2_epu32(*s1, *s0, m);
	*s0 = _mm_sha256rnds2_epu32(*s0, *s1, _mm_shuffle_epi32(m, 0x0e));
}

/* n blocks of a into ha and, if two, n blocks of b into hb, interleaved. */
SHA_NI static inline __attribute__((always_inline)) void
sha_ni_blocks(uint32_t ha[8], const unsigned char *a, uint32_t hb[8],
    const unsigned char *b, size_t n, int two)
{
	__m128i	a0, a1, b0 = _mm_setzero_si128(), b1 = b0, ka0, ka1, kb0, kb1;
	__m128i	wa[4], wb[4];

	sha_ni_load(ha, &a0, &a1);
	if (two)
		sha_ni_load(hb, &b0, &b1);
	for (; n > 0; n--) {
		ka0 = a0, ka1 = a1, kb0 = b0, kb1 = b1;
#pragma GCC unroll 16
		for (int g = 0; g < 16; g++) {
			sha_ni_group(&a0, &a1, wa, a, g);
			if (two)
				sha_ni_group(&b0, &b1, wb, b, g);
		}
		a0 = _mm_add_epi32(a0, ka0);
		a1 = _mm_add_epi32(a1, ka1);
		a += 64;
		if (two) {
			b0 = _mm_add_epi32(b0, kb0);
			b1 = _mm_add_epi32(b1, kb1);
			b += 64;
		}
	}
	sha_ni_store(ha, a0, a1);
	if (two)
		sha_ni_store(hb, b0, b1);
}

SHA_NI static void
sha_ni_x1(uint32_t h[8], const unsigned char *p, size_t n)
{
	sha_ni_blocks(h, p, NULL, NULL, n, 0);
}

SHA_NI static void
sha_ni_x2(uint32_t ha[8], const unsigned char *a, uint32_t hb[8],
    const unsigned char *b, size_t n)
{
	sha_ni_blocks(ha, a, hb, b, n, 1);
}
#else
/* Never called: sha_ni is 0 without the instructions. */
static void
sha_ni_x1(uint32_t h[8], const unsigned char *p, size_t n)
{
	abort();
}

static void
sha_ni_x2(uint32_t ha[8], const unsigned char *a, uint32_t hb[8],
    const unsigned char *b, size_t n)
{
	abort();
}
#endif

static int
sha2_init(struct sha2 *c)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
	    0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	if (sha_ni == -1) {
#if SMIME_X86
		__builtin_cpu_init();
		sha_ni = __builtin_cpu_supports("sha") &&
		    __builtin_cpu_supports("sse4.1");
#else
		sha_ni = 0;
#endif
	}
	memset(c, 0, sizeof(*c));
	memcpy(c->h, iv, sizeof(iv));
	if (sha_ni)
		return 0;
	if ((c->evp = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->evp, EVP_sha256(), NULL) != 1)
		return -1;
	return 0;
}

/* Fill c's partial block, if it has one, from *p. */
static void
sha2_fill(struct sha2 *c, const unsigned char **p, size_t *n)
{
	size_t	k;

	c->len += *n;
	if (c->nbuf == 0)
		return;
	k = 64 - c->nbuf < *n ? 64 - c->nbuf : *n;
	memcpy(c->buf + c->nbuf, *p, k);
	c->nbuf += k;
	*p += k;
	*n -= k;
	if (c->nbuf == 64) {
		sha_ni_x1(c->h, c->buf, 1);
		c->nbuf = 0;
	}
}

/* n bytes at p, of which c's partial block (if any) is already full or
 * all of them went in; whole blocks hashed, the rest kept. */
static void
sha2_rest(struct sha2 *c, const unsigned char *p, size_t n)
{
	if (n >= 64) {
		sha_ni_x1(c->h, p, n / 64);
		p += n - n % 64;
		n %= 64;
	}
	memcpy(c->buf + c->nbuf, p, n);
	c->nbuf += n;
}

static int
sha2_update(struct sha2 *c, const void *p, size_t n)
{
	const unsigned char	*q = p;

	if (!sha_ni)
		return n == 0 || EVP_DigestUpdate(c->evp, p, n) == 1 ? 0 : -1;
	sha2_fill(c, &q, &n);
	if (n > 0)
		sha2_rest(c, q, n);
	return 0;
}

/* na bytes at a into ca and nb at b into cb, the whole blocks of both
 * together. */
static int
sha2_update2(struct sha2 *ca, const void *a, size_t na, struct sha2 *cb,
    const void *b, size_t nb)
{
	const unsigned char	*pa = a, *pb = b;
	size_t			 both;

	if (!sha_ni)
		return sha2_update(ca, a, na) == 0 && sha2_update(cb, b, nb) == 0 ?
		    0 : -1;
	sha2_fill(ca, &pa, &na);
	sha2_fill(cb, &pb, &nb);
	/* A stream with bytes left has an empty partial block now. */
	if ((both = na / 64 < nb / 64 ? na / 64 : nb / 64) > 0) {
		sha_ni_x2(ca->h, pa, cb->h, pb, both);
		pa += 64 * both, na -= 64 * both;
		pb += 64 * both, nb -= 64 * both;
	}
	if (na > 0)
		sha2_rest(ca, pa, na);
	if (nb > 0)
		sha2_rest(cb, pb, nb);
	return 0;
}

static void
sha2_free(struct sha2 *c)
{
	EVP_MD_CTX_free(c->evp);
	c->evp = NULL;
}

/* The digest; c is done with. */
static int
sha2_final(struct sha2 *c, unsigned char md[32])
{
	unsigned char	pad[72] = { 0x80 };
	uint64_t	bits = c->len * 8;
	size_t		k = (c->nbuf < 56 ? 56 : 120) - c->nbuf;
	unsigned int	n = 0;
	int		rv;

	if (!sha_ni) {
		rv = EVP_DigestFinal_ex(c->evp, md, &n) == 1 && n == 32 ? 0 : -1;
		sha2_free(c);
		return rv;
	}
	for (int i = 0; i < 8; i++)
		pad[k + i] = (unsigned char)(bits >> (56 - 8 * i));
	sha2_update(c, pad, k + 8);
	for (int i = 0; i < 8; i++) {
		md[4 * i] = (unsigned char)(c->h[i] >> 24);
		md[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
		md[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
		md[4 * i + 3] = (unsigned char)c->h[i];
	}
	return 0;
}

/*
 * The signed entity's way to the envelope: what is written to the BIO
 * is added to the signature's digest and passed on; an attachment's
 * base64 is digested beside the file it encodes (send_attachment) and
 * passed on directly.
 */
struct ring;
static unsigned char	*ring_space(struct ring *, size_t);
static void		 ring_commit(struct ring *, size_t);

struct signed_content {
	struct sha2	 md;
	BIO		*next;		/* the encrypting thread's ring, */
	struct ring	*ring;		/* into which base64 is written directly */
};

static BIO_METHOD	*signed_method;

static int
signed_write(BIO *b, const char *data, int len)
{
	struct signed_content	*sc = BIO_get_data(b);
	size_t			 n = len > 0 ? (size_t)len : 0;

	return sha2_update(&sc->md, data, n) == 0 && put(sc->next, data, n) == 0 ?
	    len : -1;
}

/* One attachment, base64 in 76-character CRLF lines, into the signed
 * content; the file hashed as it is read, beside its base64.  -1: it
 * could not be read (errno); -2: the stages after it failed. */
static int
send_attachment(BIO *sig, struct signed_content *sc,
    const struct transport_file *f, const char *boundary, char hex[65])
{
	enum { CHUNK = B64_LINE * 2048 };	/* 116,736 bytes in, 159,744 out */
	static const char	 xd[] = "0123456789abcdef";
	struct sha2		 h;
	unsigned char		*in = malloc(CHUNK), *enc;
	unsigned char		 md[32];
	size_t			 have = 0, k;
	off_t			 off = 0;
	ssize_t			 n;
	int			 rv = -1;

	hex[0] = '\0';
	if (sha2_init(&h) == -1)
		goto done;
	if (in == NULL)
		goto done;
	if (BIO_printf(sig, "--%s\r\nContent-Type: "
	    "%s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n", boundary,
	    f->content_type, f->name, f->name) < 0) {
		rv = -2;
		goto done;
	}
	do {
		if ((n = pread(f->fd, in + have, CHUNK - have, off)) == -1) {
			if (errno == EINTR)
				continue;
			goto done;
		}
		off += n;
		have += (size_t)n;
		/* Whole chunks are whole lines: only the last line is short. */
		if (have == CHUNK || n == 0) {
			if ((enc = ring_space(sc->ring, B64_OUT(CHUNK))) == NULL) {
				rv = -2;
				goto done;
			}
			k = b64_lines(enc, in, have);
			if (sha2_update2(&h, in, have, &sc->md, enc, k) == -1) {
				rv = -2;
				goto done;
			}
			ring_commit(sc->ring, k);
			have = 0;
		}
	} while (n != 0);
	if (sha2_final(&h, md) == -1)
		goto done;
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = xd[md[i] >> 4];
		hex[2 * i + 1] = xd[md[i] & 15];
	}
	hex[64] = '\0';
	rv = 0;
done:
	sha2_free(&h);
	free(in);
	return rv;
}

/* The multipart/mixed entity that is signed: the text, the attachments. */
static int
send_inner(struct smime_state *st, const struct transport_message *m, BIO *sig,
    struct signed_content *sc, char *hexes[], char *err, size_t errlen)
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
		    (rv = send_attachment(sig, sc, &m->files[i], boundary,
		    hexes[i])) == -2)
			return -1;	/* the stage that failed says why */
		else if (rv == -1) {
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

/*
 * The signature over the signed entity's digest, as CMS_dataFinal makes
 * it from the digest it computes: the messageDigest and contentType
 * attributes, then the SignerInfo signed (with the signing time).
 */
static int
sign_digest(CMS_ContentInfo *sign, struct sha2 *md)
{
	CMS_SignerInfo	*si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(sign), 0);
	unsigned char	 d[32];

	return si != NULL && sha2_final(md, d) == 0 &&
	    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
	    V_ASN1_OCTET_STRING, d, sizeof(d)) == 1 &&
	    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	    OBJ_nid2obj(NID_pkcs7_data), -1) == 1 &&
	    CMS_SignerInfo_sign(si) == 1 ? 0 : -1;
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
 * The work runs in three threads, as the openssl pipeline's processes
 * share the two cores: this one reads, hashes, encodes and digests the
 * content; the second encrypts it into the EnvelopedData's DER; the third
 * encodes that in base64 lines and writes the file (a small message, or
 * one processor: all three in this one, each ring "direct").  Between
 * each two, a ring of a few chunks (2 MB, whatever the size of the
 * message; 1 MB and 8 MB measured no different on a busy machine).
 */
#define RING_SLOTS	8
/* Attachments smaller than this in all go through the stages in one thread:
 * handing 1 MB on between threads costs more CPU than it saves (12 ms in
 * one, 15 in three, measured), and more again on a busy machine. */
#define SMIME_THREADS_FROM	(4 * 1024 * 1024)
#define RING_CHUNK	(256 * 1024)

struct ring {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned char	*slot[RING_SLOTS];
	size_t		 len[RING_SLOTS];
	size_t		 fill;		/* of the slot being written */
	unsigned	 head, tail;	/* slots produced, consumed */
	int		 closed, abandoned, failed;
	int		 direct;	/* no thread: each slot to r->to when full */
	/* The consumer's: where each slot goes, what it does at the end
	 * (ok: all of it arrived), its outcome. */
	BIO		*to;
	int		(*finish)(struct ring *, int ok);
	void		*arg;
	int		 rv;
	char		 why[256];	/* its error, if any */
};

static BIO_METHOD	*ring_method;

/* Why the consumer failed, told once, when it fails (errno is its own,
 * OpenSSL's errors are its thread's). */
static void
ring_why(struct ring *r)
{
	if (r->why[0] != '\0')
		return;
	if (ERR_peek_error() != 0)
		ERR_error_string_n(ERR_peek_error(), r->why, sizeof(r->why));
	else
		strlcpy_(r->why, strerror(errno), sizeof(r->why));
}

/* Hand the slot being filled to the consumer; wait for a free one. */
static int
ring_publish(struct ring *r)
{
	if (r->direct) {
		if (!r->failed && put(r->to, r->slot[0], r->fill) == -1) {
			r->failed = 1;
			ring_why(r);
		}
		r->fill = 0;
		return r->failed ? -1 : 0;
	}
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

/* Room for n bytes (at most RING_CHUNK) in the slot being filled, for
 * ring_commit; NULL if the consumer failed. */
static unsigned char *
ring_space(struct ring *r, size_t n)
{
	if (RING_CHUNK - r->fill < n && ring_publish(r) == -1)
		return NULL;
	return r->slot[r->head % RING_SLOTS] + r->fill;
}

static void
ring_commit(struct ring *r, size_t n)
{
	r->fill += n;
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

/* The consumer's end: r->finish, and the reason if it failed. */
static void
ring_end(struct ring *r, int ok)
{
	if ((r->rv = r->finish(r, ok)) == -1)
		ring_why(r);
}

/* The consumer: each slot to r->to; at the end, r->finish. */
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
		if (!(ok = put(r->to, r->slot[r->tail % RING_SLOTS],
		    r->len[r->tail % RING_SLOTS]) == 0))
			ring_why(r);
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
	ring_end(r, ok);
	return NULL;
}

/* No more content (ok) or give up (!ok); the consumer's outcome. */
static int
ring_close(struct ring *r, pthread_t th, int ok)
{
	if (ok && r->fill > 0 && ring_publish(r) == -1)
		ok = 0;
	if (r->direct) {
		ring_end(r, ok);
		return ok ? r->rv : -1;
	}
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

/* The two consumers' chains and threads (sign_and_encrypt). */
struct stages {
	struct ring	*cipher, *lines;	/* to the encrypting, the writing thread */
	pthread_t	 cipher_th, lines_th;
	BIO		*env;		/* the CMS chain, its last link lines_bio */
	BIO		*lines_bio;	/* writes into the lines ring */
	BIO		*sink;		/* base64 lines to the file */
	struct b64_sink	*s;
};

/* The writing thread's end: the last line, then the one after it. */
static int
lines_finish(struct ring *r, int ok)
{
	struct stages	*sg = r->arg;

	return ok && sink_finish(sg->s) == 0 &&
	    write_all(sg->s->fd, "\r\n", 2) != -1 ? 0 : -1;
}

/* The encrypting thread's end: the EnvelopedData's last blocks and
 * end-of-contents, then the writing thread's end. */
static int
cipher_finish(struct ring *r, int ok)
{
	struct stages	*sg = r->arg;
	int		 rv;

	ok = ok && BIO_flush(sg->env) == 1;
	unstack(sg->env, sg->lines_bio);
	sg->env = NULL;
	/* A failure to write is the cause of the failure to encrypt into it. */
	if ((rv = ring_close(sg->lines, sg->lines_th, ok)) == -1 &&
	    sg->lines->why[0])
		strlcpy_(r->why, sg->lines->why, sizeof(r->why));
	return ok ? rv : -1;
}

/*
 * Sign (detached, multipart/signed) and encrypt, in one pass over the
 * data and never more than a few chunks in memory:
 *	inner entity -> SHA-256 for the signature -> ring ->
 *	[thread] AES-256-CBC and the EnvelopedData's DER (BIO_new_CMS) ->
 *	ring -> [thread] base64 lines -> mm->out
 * The signature is computed at the end of the content and follows it.
 */
static int
sign_and_encrypt(struct smime_state *st, const struct transport_message *m,
    X509 *rcert, int oaep, struct msg *mm, char *hexes[], char *err,
    size_t errlen)
{
	const int	 flags = CMS_STREAM | CMS_BINARY;
	struct stages	 sg;
	CMS_ContentInfo	*env = NULL, *sign = NULL;
	BIO		*rb = NULL, *sigbio = NULL;
	struct signed_content sc;
	char		 sb[40];
	unsigned char	 rnd[16];
	uint64_t	 total = 0;
	int		 rv = -1, ok;

	err[0] = '\0';
	memset(&sg, 0, sizeof(sg));
	if (sha2_init(&sc.md) == -1) {
		snprintf(err, errlen, "SHA-256 cannot be set up");
		return -1;
	}
	RAND_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(sb + 2 * i, 3, "%02X", rnd[i]);
	sg.s = calloc(1, sizeof(*sg.s));
	sg.cipher = ring_new();
	sg.lines = ring_new();
	if (sg.s == NULL || !ring_ok(sg.cipher) || !ring_ok(sg.lines) ||
	    (sg.s->fd = mm->out, (sg.sink = own_bio(&sink_method,
	    "roigate base64 lines", sink_write, sg.s)) == NULL) ||
	    (sg.lines_bio = own_bio(&ring_method, "roigate ring", ring_write,
	    sg.lines)) == NULL ||
	    (env = encrypt_partial(rcert, oaep, flags)) == NULL ||
	    (sg.env = BIO_new_CMS(sg.lines_bio, env)) == NULL ||
	    (rb = own_bio(&ring_method, "roigate ring", ring_write,
	    sg.cipher)) == NULL)
		goto fail;
	sc.next = rb;
	sc.ring = sg.cipher;
	sg.lines->to = sg.sink;
	sg.lines->finish = lines_finish;
	sg.lines->arg = &sg;
	sg.cipher->to = sg.env;
	sg.cipher->finish = cipher_finish;
	sg.cipher->arg = &sg;
	for (size_t i = 0; i < m->nfiles; i++)
		total += m->files[i].size > 0 ? (uint64_t)m->files[i].size : 0;
	sg.lines->direct = sg.cipher->direct = total < SMIME_THREADS_FROM ||
	    sysconf(_SC_NPROCESSORS_ONLN) < 2;
	if (!sg.lines->direct &&
	    pthread_create(&sg.lines_th, NULL, ring_consume, sg.lines) != 0)
		goto fail;
	if (!sg.cipher->direct &&
	    pthread_create(&sg.cipher_th, NULL, ring_consume, sg.cipher) != 0) {
		ring_close(sg.lines, sg.lines_th, 0);
		goto fail;
	}
	ok = BIO_printf(rb, "MIME-Version: 1.0\r\nContent-Type: multipart/signed;"
	    " protocol=\"application/pkcs7-signature\"; micalg=\"sha-256\"; "
	    "boundary=\"----%s\"\r\n\r\nThis is an S/MIME signed message\r\n\r\n"
	    "------%s\r\n", sb, sb) >= 0 &&
	    (sign = sign_partial(st, flags | CMS_DETACHED)) != NULL &&
	    (sigbio = own_bio(&signed_method, "roigate signed content",
	    signed_write, &sc)) != NULL &&
	    send_inner(st, m, sigbio, &sc, hexes, err, errlen) == 0 &&
	    sign_digest(sign, &sc.md) == 0 &&
	    send_signature(sign, rb, sb) == 0;
	BIO_free(sigbio);
	/* Joins the encrypting thread, which joins the writing one. */
	rv = ring_close(sg.cipher, sg.cipher_th, ok);
	if (rv == -1 && err[0] == '\0' && sg.cipher->why[0])
		snprintf(err, errlen, "encrypting or writing the message failed: %s",
		    sg.cipher->why);
fail:
	if (rv == -1 && err[0] == '\0') {
		unsigned long e = ERR_get_error();
		snprintf(err, errlen, "signing or encrypting failed: %s",
		    e ? ERR_error_string(e, NULL) : strerror(errno));
	}
	BIO_free(rb);
	if (sg.env)
		unstack(sg.env, sg.lines_bio);
	BIO_free(sg.lines_bio);
	BIO_free(sg.sink);
	CMS_ContentInfo_free(sign);
	CMS_ContentInfo_free(env);
	ring_free(sg.cipher);
	ring_free(sg.lines);
	free(sg.s);
	sha2_free(&sc.md);
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
	BIO_meth_free(signed_method);
	sink_method = ring_method = signed_method = NULL;
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
