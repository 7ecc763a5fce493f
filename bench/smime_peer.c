/*
 * bench/smime_peer: what `openssl cms -sign -binary -stream | openssl cms
 * -encrypt -aes256 -binary -stream` does, as library calls in one process
 * (the calls apps/cms.c makes: CMS_sign with CMS_STREAM, SMIME_write_CMS to
 * a file; then CMS_encrypt of that file, SMIME_write_CMS), timed with the
 * same boundaries as bench/smime_build: from reading the recipient's
 * certificate to the last byte written, the signing key already loaded.
 *
 *	smime_peer CERT KEY RECIPIENT_CERT FILE TMP OUT
 * Prints the seconds taken.
 */
#include <stdio.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>

static X509 *
read_cert(const char *path)
{
	BIO	*b = BIO_new_file(path, "r");
	X509	*c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return c;
}

int
main(int argc, char *argv[])
{
	const int		 flags = CMS_BINARY | CMS_STREAM | CMS_DETACHED;
	struct timespec		 t0, t1;
	STACK_OF(X509)		*to;
	CMS_ContentInfo		*cms;
	EVP_PKEY		*key;
	X509			*cert, *rcert;
	BIO			*in, *out, *kb;

	if (argc != 7) {
		fprintf(stderr, "usage: smime_peer CERT KEY RECIPIENT_CERT FILE TMP OUT\n");
		return 64;
	}
	kb = BIO_new_file(argv[2], "r");
	if ((cert = read_cert(argv[1])) == NULL || kb == NULL ||
	    (key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)) == NULL)
		goto fail;
	BIO_free(kb);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* openssl cms -sign -binary -stream -in FILE -signer CERT -inkey KEY */
	if ((in = BIO_new_file(argv[4], "rb")) == NULL ||
	    (out = BIO_new_file(argv[5], "wb")) == NULL ||
	    (cms = CMS_sign(cert, key, NULL, in, flags)) == NULL ||
	    SMIME_write_CMS(out, cms, in, flags) != 1)
		goto fail;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	/* | openssl cms -encrypt -aes256 -binary -stream RECIPIENT_CERT */
	if ((rcert = read_cert(argv[3])) == NULL || (to = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(to, rcert) ||
	    (in = BIO_new_file(argv[5], "rb")) == NULL ||
	    (out = BIO_new_file(argv[6], "wb")) == NULL ||
	    (cms = CMS_encrypt(to, in, EVP_aes_256_cbc(), CMS_BINARY | CMS_STREAM)) == NULL ||
	    SMIME_write_CMS(out, cms, in, CMS_BINARY | CMS_STREAM) != 1 ||
	    BIO_flush(out) != 1)
		goto fail;
	BIO_free(out);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
fail:
	ERR_print_errors_fp(stderr);
	return 1;
}
