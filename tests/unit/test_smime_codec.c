/*
 * Unit tests for the smime transport's own base64 and SHA-256
 * (transports/smime.c, included for its static functions): each against
 * OpenSSL (EVP_EncodeBlock, EVP_Digest), with the AVX2 and SHA instruction
 * paths where this processor has them and with the fallbacks every
 * processor takes otherwise.
 */
#include "../../transports/smime.c"

#include <setjmp.h>
#include <cmocka.h>

static unsigned char	data_a[300000], data_b[300000];

static int
setup(void **state)
{
	srand(19);
	for (size_t i = 0; i < sizeof(data_a); i++) {
		data_a[i] = (unsigned char)rand();
		data_b[i] = (unsigned char)rand();
	}
	b64_init();
	return 0;
}

/* What RFC 2045 lines are: 57 bytes each as EVP_EncodeBlock has them,
 * then CRLF. */
static size_t
reference_lines(unsigned char *o, const unsigned char *in, size_t n)
{
	size_t	k = 0;

	for (size_t off = 0; off < n; off += B64_LINE) {
		k += (size_t)EVP_EncodeBlock(o + k, in + off,
		    (int)(n - off < B64_LINE ? n - off : B64_LINE));
		o[k++] = '\r';
		o[k++] = '\n';
	}
	return k;
}

static void
base64_lines_as_openssl(int avx2)
{
	static unsigned char	ours[B64_OUT(4000)], theirs[B64_OUT(4000)];
	int			had = b64_avx2;

	b64_avx2 = avx2 && had;
	for (int i = 0; i < 5000; i++) {
		/* Every length up to four lines, then random ones. */
		size_t n = i < 4 * B64_LINE ? (size_t)i + 1 : 1 + (size_t)rand() % 4000;
		const unsigned char *in = data_a + rand() % 1000;
		size_t k = b64_lines(ours, in, n);

		assert_int_equal(k, reference_lines(theirs, in, n));
		assert_memory_equal(ours, theirs, k);
	}
	b64_avx2 = had;
}

static void
test_base64_lines(void **state)
{
	base64_lines_as_openssl(1);
}

static void
test_base64_lines_without_avx2(void **state)
{
	base64_lines_as_openssl(0);
}

/* Two streams of random lengths, fed in random pieces, some to one stream
 * alone, against OpenSSL's digests of the whole of each. */
static void
sha256_as_openssl(int instructions)
{
	int	had = sha_ni;

	for (int i = 0; i < 400; i++) {
		struct sha2	ca, cb;
		unsigned char	ma[32], mb[32], ra[32], rb[32];
		size_t		na = (size_t)rand() % sizeof(data_a);
		size_t		nb = (size_t)rand() % sizeof(data_b), pa = 0, pb = 0;

		if (i % 3 == 0) {		/* short ones: padding, one block */
			na = (size_t)i % 130;
			nb = (size_t)(i * 7) % 130;
		}
		sha_ni = instructions ? -1 : 0;	/* -1: as the processor has */
		assert_int_equal(sha2_init(&ca), 0);
		assert_int_equal(sha2_init(&cb), 0);
		while (pa < na || pb < nb) {
			size_t ka = (size_t)rand() % (i % 2 ? 100 : 70000);
			size_t kb = (size_t)rand() % (i % 2 ? 130 : 90000);

			ka = ka < na - pa ? ka : na - pa;
			kb = kb < nb - pb ? kb : nb - pb;
			if (rand() % 4 == 0)
				assert_int_equal(sha2_update(&ca, data_a + pa, ka), 0);
			else {
				assert_int_equal(sha2_update2(&ca, data_a + pa, ka, &cb,
				    data_b + pb, kb), 0);
				pb += kb;
			}
			pa += ka;
		}
		assert_int_equal(sha2_final(&ca, ma), 0);
		assert_int_equal(sha2_final(&cb, mb), 0);
		assert_int_equal(EVP_Digest(data_a, na, ra, NULL, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_Digest(data_b, nb, rb, NULL, EVP_sha256(), NULL), 1);
		assert_memory_equal(ma, ra, 32);
		assert_memory_equal(mb, rb, 32);
	}
	sha_ni = had;
}

static void
test_sha256_two_streams(void **state)
{
	sha256_as_openssl(1);
}

static void
test_sha256_two_streams_without_instructions(void **state)
{
	sha256_as_openssl(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_lines),
		cmocka_unit_test(test_base64_lines_without_avx2),
		cmocka_unit_test(test_sha256_two_streams),
		cmocka_unit_test(test_sha256_two_streams_without_instructions),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
