/*
 * Unit tests of src/seal.c: the key evolution and the marks against
 * vectors computed independently (Python's hmac), the verification key's
 * text form, and the seal of a real store verified and refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "disclosure.h"
#include "seal.h"
#include "store.h"
#include "util.h"

static void
hex(const uint8_t *p, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void
test_key_evolution_vectors(void **state)
{
	uint8_t	k0[32], k[32];
	char	h[65], mac[65], a64[65];

	for (int i = 0; i < 32; i++)
		k0[i] = (uint8_t)i;
	seal_key_first(k0, k);
	hex(k, h);
	assert_string_equal(h, "73de66bc877818e531572fc1a0e2c8aff282dca5b27abeb213197260dcc752f2");
	seal_key_evolve(k, 1);
	hex(k, h);
	assert_string_equal(h, "78b27d8e2668775bc8dcd5423af51c37b5232e4ae57fae2bb67b56398bf24f48");
	memset(a64, 'a', 64);
	a64[64] = '\0';
	seal_entry_mac(k, a64, mac);
	assert_string_equal(mac, "5237804253be022527678d471499b74fb272e5283a3564c4fdb2e8f53fc0dbf8");
}

static void
test_vkey_text(void **state)
{
	static const struct { const char *mutate; int ok; } cases[] = {
		{ NULL, 1 }, { "upper", 1 }, { "flip", 0 }, { "short", 0 },
	};
	uint8_t	k0[32], back[32];
	char	text[128], err[200];

	for (int i = 0; i < 32; i++)
		k0[i] = (uint8_t)(i * 7);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		seal_vkey_format(k0, text, sizeof(text));
		assert_int_equal(strlen(text), 4 + 9 * 9);
		if (cases[c].mutate && strcmp(cases[c].mutate, "upper") == 0)
			for (char *p = text; *p; p++)
				*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
		if (cases[c].mutate && strcmp(cases[c].mutate, "flip") == 0)
			text[10] = text[10] == '0' ? '1' : '0';
		if (cases[c].mutate && strcmp(cases[c].mutate, "short") == 0)
			text[20] = '\0';
		assert_int_equal(seal_vkey_parse(text, back, err, sizeof(err)),
		    cases[c].ok ? 0 : -1);
		if (cases[c].ok)
			assert_memory_equal(back, k0, 32);
	}
}

/* The generic canonical form reproduces disclosure_hash, and a seal made
 * by hand over a store verifies with K0 and is refused with another key. */
static void
test_seal_over_store(void **state)
{
	char			 path[] = "/tmp/roigate-seal-XXXXXX", db[64], err[300];
	char			 inst[STORE_INSTANCE_LEN + 1];
	struct store		*s;
	struct disclosure	 d;
	struct store_seal	 z;
	struct seal_verdict	 v;
	uint8_t			 k0[32], other[32], e0[32];
	char			 mac[65];

	assert_non_null(mkdtemp(path));
	snprintf(db, sizeof(db), "%s/t.db", path);
	assert_non_null(s = store_open(db, err, sizeof(err)));
	assert_int_equal(store_instance_id(s, inst), 0);
	memset(k0, 1, sizeof(k0));
	memset(other, 2, sizeof(other));
	seal_key_first(k0, e0);
	memset(&z, 0, sizeof(z));
	for (int i = 0; i < 3; i++) {
		memset(&d, 0, sizeof(d));
		d.job_id = i + 1;
		d.outcome = "delivered";
		d.recipient_address = "fax:+15550100";
		assert_int_equal(disclosure_append(s, &d), 0);
	}
	/* Written before the set-up: no mac; the seal's head covers them. */
	z.epoch = 0;
	z.start_at = 100;
	z.end_at = 200;
	memset(z.prev_seal, '0', 64);
	for (int t = 0; t < STORE_SEALED_N; t++) {
		z.range[t].present = 1;
		z.range[t].first = 1;
		assert_int_not_equal(store_sealed_last(s, t, &z.range[t].last,
		    z.range[t].head), -1);
	}
	z.range[STORE_SEALED_DISCLOSURES].first = 4;	/* all three pre-setup */
	z.range[STORE_SEALED_AUDIT].first = 1;
	seal_compute(e0, inst, &z, z.seal);
	assert_int_equal(store_seal_insert(s, &z), 0);
	seal_verify(s, k0, &v);
	assert_int_equal(v.code, SEAL_INTACT);
	assert_int_equal(v.entries[STORE_SEALED_DISCLOSURES], 3);
	seal_verify(s, other, &v);
	assert_int_equal(v.code, SEAL_WRONG_KEY);
	(void)mac;
	store_close(s);
	unlink(db);
	snprintf(err, sizeof(err), "rm -rf %s", path);
	assert_int_equal(system(err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_evolution_vectors),
		cmocka_unit_test(test_vkey_text),
		cmocka_unit_test(test_seal_over_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
