/* Unit tests for src/disclosure.c: the hash chain against an independently
 * computed value, verification of an intact log, and a table of tamperings
 * (each done with plain SQL after dropping the guards, some with the guards
 * put back afterwards) that verification must name; and the 164.528
 * accountability rule. */
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
	/* Unknown, missing or differently spelled bases fail safe: accountable. */
	assert_int_equal(disclosure_accountable(NULL), 1);
	assert_int_equal(disclosure_accountable(""), 1);
	assert_int_equal(disclosure_accountable("Treatment"), 1);
	assert_int_equal(disclosure_accountable("treatment "), 1);
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

/* The CREATE statement of one trigger as the intact log at path holds it. */
static void
trigger_sql(const char *path, const char *name, char *buf, size_t len)
{
	sqlite3		*db;
	sqlite3_stmt	*st;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master "
	    "WHERE type = 'trigger' AND name = ?", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true((size_t)snprintf(buf, len, "%s",
	    (const char *)sqlite3_column_text(st, 0)) < len);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Copy the intact log, drop the two UPDATE/DELETE guards, run sql on the
 * copy with plain SQLite, with restore put the two guards back exactly as
 * the intact log holds them, then verify the copy through the store:
 * verify's return value, with its message in err. */
static int
tamper_copy_verify(const struct fixture *f, const char *sql, int restore,
    int64_t *count, char *err, size_t errlen)
{
	char		 dir[64], path[128], cmd[300], upd[300], del[300];
	sqlite3		*db;
	struct store	*s;
	char		*e = NULL;
	int		 rv;

	trigger_sql(f->path, "disclosures_no_update", upd, sizeof(upd));
	trigger_sql(f->path, "disclosures_no_delete", del, sizeof(del));
	assert_non_null(test_mkdtemp(dir, sizeof(dir), "roigate-test-tamper"));
	snprintf(path, sizeof(path), "%s/roigate.db", dir);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(cmd, sizeof(cmd), "VACUUM INTO '%s'", path);
	assert_int_equal(sqlite3_exec(db, cmd, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, "DROP TRIGGER disclosures_no_update;"
	    "DROP TRIGGER disclosures_no_delete;", NULL, NULL, &e) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
		fail_msg("%s: %s", sql, e);
	if (restore && (sqlite3_exec(db, upd, NULL, NULL, &e) != SQLITE_OK ||
	    sqlite3_exec(db, del, NULL, NULL, &e) != SQLITE_OK))
		fail_msg("putting the guards back after %s: %s", sql, e);
	sqlite3_close(db);

	err[0] = '\0';
	*count = -1;
	assert_non_null(s = store_open(path, err, errlen));
	rv = disclosure_verify(s, count, err, errlen);
	store_close(s);
	assert_int_equal(test_rmtree(dir), 0);
	return rv;
}

/* The same, the guards left dropped. */
static int
tamper_and_verify(const struct fixture *f, const char *sql, int64_t *count,
    char *err, size_t errlen)
{
	return tamper_copy_verify(f, sql, 0, count, err, errlen);
}

struct tamper_case {
	const char	*sql;	/* run after the guards are dropped */
	const char	*want;	/* in verify's message */
};

/* Each case on a fresh copy of the log: verification fails, naming it. */
static void
expect_each(struct fixture *f, const struct tamper_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char	err[300];
		int64_t	count;

		if (tamper_and_verify(f, cases[i].sql, &count, err, sizeof(err)) != -1 ||
		    strstr(err, cases[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].sql, err,
			    cases[i].want);
	}
}

static void
test_tampering_table(void **state)
{
	static const struct tamper_case cases[] = {
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
		/* Edits the hash cannot see once values are read back as C
		 * numbers and strings. */
		{ "UPDATE disclosures SET at = at || ' (edited)' WHERE seq = 2",
		    "entry 2: a field holds a value of the wrong type" },
		{ "UPDATE disclosures SET pages = pages || ' pages' WHERE seq = 3",
		    "entry 3: a field holds a value of the wrong type" },
		{ "UPDATE disclosures SET detail = detail || char(0) || 'hidden' "
		  "WHERE seq = 4", "entry 4: a field holds a value of the wrong type "
		  "or a hidden NUL byte" },
		{ "UPDATE disclosures SET hash = hash || 'ff' WHERE seq = 5",
		    "entry 5: a field holds a value" },
		{ "UPDATE disclosures SET recipient_address = CAST(recipient_address "
		  "AS BLOB) WHERE seq = 1", "entry 1: a field holds a value" },
		/* The counter beside the log. */
		{ "DROP TRIGGER counters_no_delete;"
		  "DELETE FROM counters WHERE name = 'disclosure_head'",
		    "the counter of entries kept beside the log is missing or altered" },
		{ "UPDATE counters SET value = '5 entries' WHERE name = 'disclosure_head'",
		    "the counter of entries kept beside the log is missing or altered" },
		{ "DROP TRIGGER counters_forward;"
		  "UPDATE counters SET value = 3 WHERE name = 'disclosure_head'",
		    "the log holds 5 entries but only 3 were appended through roigate: "
		    "entries 4 to 5 were added by other means" },
	};
	expect_each(*state, cases, sizeof(cases) / sizeof(cases[0]));
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

/* The brief's case: one field of entry 3 changed with plain SQL once the
 * guards are gone; every hashed column is covered, and verification names
 * entry 3 whichever it is. */
static void
test_tamper_entry3_every_field(void **state)
{
	static const char *const sets[] = {
		"at = at + 60", "job_id = 99", "packet_id = 'ROI-OTHER'",
		"mrn = 'TEST-999999'", "patient_name = 'Someone Else'",
		"recipient_id = 'attacker'", "recipient_name = 'Attacker'",
		"recipient_address = 'attacker'", "description = '0 documents'",
		"purpose = 'marketing'", "basis = 'subpoena'",
		"authorization_id = 'AUTH-2'", "transport = 'sftp'",
		"remote_id = 'R-1'", "outcome = 'failed'", "detail = 'edited'",
		"pages = 30", "output_sha256 = 'cdcd'", "accountable = 1",
		"hash = '" "0000000000000000000000000000000000000000000000000000000000000000" "'",
	};
	struct fixture	*f = *state;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		char	sql[200], err[300];
		int64_t	count;

		snprintf(sql, sizeof(sql), "UPDATE disclosures SET %s WHERE seq = 3",
		    sets[i]);
		if (tamper_and_verify(f, sql, &count, err, sizeof(err)) != -1 ||
		    strstr(err, "entry 3: contents do not match its hash") == NULL)
			fail_msg("%s: got \"%s\"", sql, err);
	}
}

static void
test_tamper_first_bad_entry_is_named(void **state)
{
	static const struct tamper_case cases[] = {
		/* Two entries edited: the first is named. */
		{ "UPDATE disclosures SET detail = 'x' WHERE seq IN (3, 5)",
		    "entry 3: contents do not match" },
		/* Edited and its own hash recomputed to match: the next link breaks. */
		{ "UPDATE disclosures SET prev_hash = '"
		  "1111111111111111111111111111111111111111111111111111111111111111"
		  "' WHERE seq = 1", "entry 1: previous-hash link broken" },
		/* Two entries swapped by sequence number. */
		{ "UPDATE disclosures SET seq = -2 WHERE seq = 2;"
		  "UPDATE disclosures SET seq = 2 WHERE seq = 3;"
		  "UPDATE disclosures SET seq = 3 WHERE seq = -2",
		    "entry 2: previous-hash link broken" },
		/* Renumbered from 1. */
		{ "UPDATE disclosures SET seq = seq + 10", "entry 1 is missing" },
		/* The whole log emptied: the head remembers 5. */
		{ "DELETE FROM disclosures", "entries 1 to 5 are missing from the end" },
	};
	expect_each(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Deleting from the end, each time with every guard put back afterwards
 * exactly as it was, so that only the verifier's own checks can notice:
 * the head counter beside the log, and the counter's trigger. */
static void
test_delete_last_entry_is_detected(void **state)
{
	static const struct {
		const char	*sql;
		const char	*want;	/* verify's whole message */
	} cases[] = {
		{ "DELETE FROM disclosures WHERE seq = 5",
		    "entry 5 is missing from the end of the log: it was removed" },
		{ "DELETE FROM disclosures WHERE seq >= 4",
		    "entries 4 to 5 are missing from the end of the log: they were "
		    "removed" },
		/* The head wound back as well: that needs the counter's own
		 * trigger dropped, and its absence is what gives it away. */
		{ "DELETE FROM disclosures WHERE seq = 5;"
		  "DROP TRIGGER counters_forward;"
		  "UPDATE counters SET value = 4 WHERE name = 'disclosure_head'",
		    "the triggers that make the disclosure log append-only are "
		    "missing or altered: someone removed or replaced them" },
	};
	struct fixture	*f = *state;
	char		 err[300], fwd[300], sql[600];
	int64_t		 count;

	assert_int_equal(store_disclosure_head(f->s), 5);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (tamper_copy_verify(f, cases[i].sql, 1, &count, err,
		    sizeof(err)) != -1 || strcmp(err, cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].sql, err,
			    cases[i].want);
		assert_int_equal(count, -1);
	}
	/* The boundary (docs/disclosure-log.md, "What it cannot see"): with
	 * the counter's trigger put back too, the shortened log verifies. */
	trigger_sql(f->path, "counters_forward", fwd, sizeof(fwd));
	snprintf(sql, sizeof(sql), "%s;%s", cases[2].sql, fwd);
	assert_int_equal(tamper_copy_verify(f, sql, 1, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 4);
}

/* The guards alone removed (no entry touched): the copy still fails. */
/* A guard replaced by a trigger of the same name that does nothing. */
static void
test_guard_replaced_by_a_decoy(void **state)
{
	struct fixture	*f = *state;
	sqlite3		*db;
	int64_t		 count;
	char		 err[300];

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TRIGGER disclosures_no_delete;"
	    "CREATE TRIGGER disclosures_no_delete BEFORE DELETE ON disclosures "
	    "WHEN 0 BEGIN SELECT RAISE(ABORT, 'disclosure log is append-only'); "
	    "END", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "append-only are missing or altered"));
}

static void
test_guards_dropped_only(void **state)
{
	struct fixture	*f = *state;
	char		 err[300];
	int64_t		 count;

	assert_int_equal(tamper_and_verify(f, "SELECT 1", &count, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "append-only are missing"));
}

static void
test_empty_log_and_genesis(void **state)
{
	char			 dir[64], path[128], err[300] = "";
	struct store		*s;
	struct disclosure	 d;
	int64_t			 count = -1, before;

	assert_non_null(test_mkdtemp(dir, sizeof(dir), "roigate-test-disclosure"));
	snprintf(path, sizeof(path), "%s/roigate.db", dir);
	assert_non_null(s = store_open(path, err, sizeof(err)));
	assert_int_equal(disclosure_verify(s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_disclosure_head(s), 0);

	/* at == 0 is filled in with the time of the append. */
	fill(&d, 1, "attempt");
	d.at = 0;
	before = now_wall();
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(disclosure_append(s, &d), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(d.seq, 1);
	assert_true(d.at >= before && d.at <= now_wall());
	for (int i = 0; i < 64; i++)
		assert_int_equal(d.prev_hash[i], '0');
	assert_int_equal(strlen(d.prev_hash), 64);
	assert_int_equal(strlen(d.hash), 64);
	assert_int_equal(disclosure_verify(s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_disclosure_head(s), 1);
	store_close(s);
	assert_int_equal(test_rmtree(dir), 0);
}

/* An append rolled back with its transaction leaves no gap: the next
 * append takes the same seq and links to entry 5. */
static void
test_rollback_leaves_no_gap(void **state)
{
	struct fixture		*f = *state;
	struct disclosure	 d;
	struct chain		 c = { .n = 0 };
	char			 err[300] = "", h5[65];
	int64_t			 seq, count;

	assert_int_equal(store_disclosure_last(f->s, &seq, h5), 1);
	assert_int_equal(seq, 5);
	assert_int_equal(store_begin(f->s), 0);
	fill(&d, 3, "attempt");
	assert_int_equal(disclosure_append(f->s, &d), 0);
	assert_int_equal(d.seq, 6);
	assert_int_equal(store_rollback(f->s), 0);
	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 5);
	assert_int_equal(store_disclosure_head(f->s), 5);

	assert_int_equal(store_begin(f->s), 0);
	fill(&d, 3, "sent");
	assert_int_equal(disclosure_append(f->s, &d), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(d.seq, 6);
	assert_string_equal(d.prev_hash, h5);
	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 6);
	assert_int_equal(store_disclosure_iter(f->s, NULL, collect, &c), 0);
	assert_int_equal(c.n, 6);
	assert_string_equal(c.hash[5], d.hash);
}

/* A seq given by the caller is ignored: append assigns the next one. */
static void
test_append_assigns_seq_and_chain(void **state)
{
	struct fixture		*f = *state;
	struct disclosure	 d;
	char			 h[65], err[300] = "";
	int64_t			 count;

	fill(&d, 9, "attempt");
	d.seq = 42;
	snprintf(d.prev_hash, sizeof(d.prev_hash), "bogus");
	snprintf(d.hash, sizeof(d.hash), "bogus");
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(disclosure_append(f->s, &d), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(d.seq, 6);
	disclosure_hash(&d, h);
	assert_string_equal(h, d.hash);
	assert_int_equal(disclosure_verify(f->s, &count, err, sizeof(err)), 0);
	assert_int_equal(count, 6);
}

static int
count_rows(const struct disclosure *d, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_iter_filters_table(void **state)
{
	static const struct {
		struct disclosure_filter	 f;
		int				 want;
	} cases[] = {
		{ { NULL, NULL, 0, 0, 0 }, 5 },
		{ { "TEST-000123", NULL, 0, 0, 0 }, 5 },
		{ { "TEST-000999", NULL, 0, 0, 0 }, 0 },
		{ { NULL, "records-desk", 0, 0, 0 }, 5 },
		{ { NULL, "nobody", 0, 0, 0 }, 0 },
		{ { NULL, NULL, 0, 0, 1 }, 4 },		/* job 1: entries 1-4 */
		{ { NULL, NULL, 0, 0, 2 }, 1 },
		{ { NULL, NULL, 1795000000, 0, 0 }, 5 },	/* since is inclusive */
		{ { NULL, NULL, 1795000001, 0, 0 }, 0 },
		{ { NULL, NULL, 0, 1795000000, 0 }, 0 },	/* until is exclusive */
		{ { NULL, NULL, 0, 1795000001, 0 }, 5 },
	};
	struct fixture	*f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int	n = 0;

		assert_int_equal(store_disclosure_iter(f->s, &cases[i].f, count_rows,
		    &n), 0);
		if (n != cases[i].want)
			fail_msg("case %zu: %d entries, want %d", i, n, cases[i].want);
	}
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
		cmocka_unit_test_setup_teardown(test_tamper_entry3_every_field, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tamper_first_bad_entry_is_named,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_last_entry_is_detected,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_guards_dropped_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_replaced_by_a_decoy, setup,
		    teardown),
		cmocka_unit_test(test_empty_log_and_genesis),
		cmocka_unit_test_setup_teardown(test_rollback_leaves_no_gap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_append_assigns_seq_and_chain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_iter_filters_table, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
