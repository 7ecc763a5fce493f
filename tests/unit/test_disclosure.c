/* Unit tests for src/disclosure.c: the hash chain against an independently
 * computed value, verification of an intact log, and a table of tamperings
 * (each done with plain SQL after dropping the guards) that verification
 * must name; and the 164.528 accountability rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "tmpdir.h"

#include "disclosure.h"
#include "store.h"
#include "util.h"

static void
fill(struct disclosure *d, int64_t job, const char *outcome)
{
	memset(d, 0, sizeof(*d));
	d->at = 1795000000;
	d->job_id = job;
	d->packet_id = "ROI-KAT-1";
	d->mrn = "TEST-000123";
	d->patient_name = "Zoë Testpatient";
	d->recipient_id = "records-desk";
	d->recipient_name = "Records Desk";
	d->recipient_address = "records-desk";
	d->description = "1 document: lab (2026-10-14)";
	d->purpose = "continuity of care";
	d->basis = "authorization";
	d->authorization_id = "AUTH-1";
	d->transport = "local";
	d->remote_id = "";
	d->outcome = (char *)outcome;
	d->detail = "";
	d->pages = 3;
	d->output_sha256 = "abababababababababababababababababababababababababababababababab";
	d->accountable = 0;
}

/* The value docs/disclosure-log.md shows how to recompute: SHA-256 over
 * prev_hash and the fields as netstrings (computed with Python hashlib). */
static void
test_hash_known_answer(void **state)
{
	struct disclosure	d;
	char			h[65];

	fill(&d, 7, "attempt");
	d.seq = 1;
	memset(d.prev_hash, '0', 64);
	d.prev_hash[64] = '\0';
	disclosure_hash(&d, h);
	assert_string_equal(h,
	    "b609b9ba8f80dde5a1e7465db02839c155a0ead94332bed773f354543cb6ad41");
	/* Any field changes the hash. */
	d.pages = 4;
	disclosure_hash(&d, h);
	assert_string_not_equal(h,
	    "b609b9ba8f80dde5a1e7465db02839c155a0ead94332bed773f354543cb6ad41");
}

static void
test_accountable_table(void **state)
{
	static const struct {
		const char	*basis;
		int		 accountable;
	} cases[] = {
		{ "patient_access", 0 }, { "authorization", 0 }, { "treatment", 0 },
		{ "payment", 0 }, { "operations", 0 }, { "subpoena", 1 },
		{ "court_order", 1 }, { "required_by_law", 1 }, { "something_new", 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (disclosure_accountable(cases[i].basis) != cases[i].accountable)
			fail_msg("%s: want %d", cases[i].basis, cases[i].accountable);
}

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*s;
};

static int
setup(void **state)
{
	struct fixture		*f = calloc(1, sizeof(*f));
	struct disclosure	 d;
	static const char *const outcomes[] = { "attempt", "deferred", "attempt",
	    "delivered", "attempt" };
	char			 err[512];

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "roigate-test-disclosure"));
	snprintf(f->path, sizeof(f->path), "%s/roigate.db", f->dir);
	assert_non_null(f->s = store_open(f->path, err, sizeof(err)));
	assert_int_equal(store_begin(f->s), 0);
	for (int i = 0; i < 5; i++) {
		fill(&d, 1 + i / 4, outcomes[i]);
		assert_int_equal(disclosure_append(f->s, &d), 0);
		assert_int_equal(d.seq, i + 1);
	}
	assert_int_equal(store_commit(f->s), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	store_close(f->s);
	assert_int_equal(test_rmtree(f->dir), 0);
	free(f);
	return 0;
}

struct chain {
	char	hash[8][65];
	char	prev[8][65];
	int	n;
};

static int
collect(const struct disclosure *d, void *arg)
{
	struct chain	*c = arg;
	char		 h[65];

	disclosure_hash(d, h);
	assert_string_equal(h, d->hash);
	snprintf(c->hash[c->n], sizeof(c->hash[0]), "%s", d->hash);
	snprintf(c->prev[c->n], sizeof(c->prev[0]), "%s", d->prev_hash);
	c->n++;
	return 0;
}

static void
test_intact_chain_verifies(void **state)
{
	struct fixture	*f = *state;
	struct chain	 c = { .n = 0 };
	int64_t		 count = 0;
	char		 err[300] = "";

	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 5);
	assert_int_equal(store_disclosure_iter(f->s, NULL, collect, &c), 0);
	assert_int_equal(c.n, 5);
	for (int i = 0; i < 64; i++)
		assert_int_equal(c.prev[0][i], '0');
	for (int i = 1; i < 5; i++)
		assert_string_equal(c.prev[i], c.hash[i - 1]);
}

static void
test_tampering_table(void **state)
{
	static const struct {
		const char	*sql;	/* run after the guards are dropped */
		const char	*want;	/* in verify's message */
	} cases[] = {
		{ "UPDATE disclosures SET recipient_address = 'attacker' WHERE seq = 3",
		    "entry 3: contents do not match its hash" },
		{ "UPDATE disclosures SET at = at + 1 WHERE seq = 2",
		    "entry 2: contents do not match its hash" },
		{ "UPDATE disclosures SET prev_hash = hash WHERE seq = 4",
		    "entry 4: previous-hash link broken" },
		{ "DELETE FROM disclosures WHERE seq = 3", "entry 3 is missing" },
		{ "DELETE FROM disclosures WHERE seq = 5",
		    "entry 5 is missing from the end of the log" },
		{ "DELETE FROM disclosures WHERE seq >= 4",
		    "entries 4 to 5 are missing from the end of the log" },
		{ "UPDATE disclosures SET outcome = 'delivered' WHERE seq = 5",
		    "entry 5: contents do not match its hash" },
	};
	struct fixture	*f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char		 dir[64], path[128], cmd[300], err[300] = "";
		sqlite3		*db;
		struct store	*s;
		int64_t		 count = 0;
		char		*e = NULL;

		/* A fresh copy of the intact log for each case. */
		assert_non_null(test_mkdtemp(dir, sizeof(dir), "roigate-test-tamper"));
		snprintf(path, sizeof(path), "%s/roigate.db", dir);
		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		snprintf(cmd, sizeof(cmd), "VACUUM INTO '%s'", path);
		assert_int_equal(sqlite3_exec(db, cmd, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);

		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		if (sqlite3_exec(db, "DROP TRIGGER disclosures_no_update;"
		    "DROP TRIGGER disclosures_no_delete;", NULL, NULL, &e) != SQLITE_OK ||
		    sqlite3_exec(db, cases[i].sql, NULL, NULL, &e) != SQLITE_OK)
			fail_msg("%s: %s", cases[i].sql, e);
		sqlite3_close(db);

		assert_non_null(s = store_open(path, err, sizeof(err)));
		assert_int_equal(disclosure_verify(s, &count, err, sizeof(err)), -1);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].sql, err,
			    cases[i].want);
		store_close(s);
		assert_int_equal(test_rmtree(dir), 0);
	}
}

static void
test_missing_guards_fail_verification(void **state)
{
	struct fixture	*f = *state;
	sqlite3		*db;
	int64_t		 count;
	char		 err[300];

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER disclosures_no_update",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "append-only are missing"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_known_answer),
		cmocka_unit_test(test_accountable_table),
		cmocka_unit_test_setup_teardown(test_intact_chain_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampering_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_guards_fail_verification,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
