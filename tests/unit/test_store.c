/* Unit tests for src/store.c over a real SQLite file: schema and pragmas,
 * jobs and their events, recipients, status counts, and the append-only
 * guards on the disclosure and audit logs. */
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

#include "store.h"
#include "util.h"

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct store	*s;
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));
	char		 err[512];

	assert_non_null(test_mkdtemp(f->dir, sizeof(f->dir), "roigate-test-store"));
	snprintf(f->path, sizeof(f->path), "%s/roigate.db", f->dir);
	f->s = store_open(f->path, err, sizeof(err));
	assert_non_null(f->s);
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

/* One value from a separate connection, as any SQLite client sees it. */
static char *
raw_text(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*out = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* Run SQL on a separate connection; the SQLite result code. */
static int
raw_exec(const char *path, const char *sql, char *msg, size_t len)
{
	sqlite3	*db;
	char	*e = NULL;
	int	 rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &e);
	if (msg)
		snprintf(msg, len, "%s", e ? e : "");
	sqlite3_free(e);
	sqlite3_close(db);
	return rc;
}

static void
test_open_sets_wal_and_schema(void **state)
{
	struct fixture	*f = *state;
	char		*mode, err[512];
	struct store	*again;

	mode = raw_text(f->path, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	assert_int_equal(store_schema_version(f->s), 2);
	mode = raw_text(f->path, "PRAGMA user_version");
	assert_string_equal(mode, "2");
	free(mode);
	/* Opening again migrates nothing and keeps the version. */
	again = store_open(f->path, err, sizeof(err));
	assert_non_null(again);
	assert_int_equal(store_schema_version(again), 2);
	store_close(again);
}

static void
test_newer_schema_is_refused(void **state)
{
	struct fixture	*f = *state;
	char		 err[512];

	assert_int_equal(raw_exec(f->path, "PRAGMA user_version = 99", NULL, 0),
	    SQLITE_OK);
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "99"));
}

static void
add_job(struct store *s, const char *packet_id, int64_t *id)
{
	struct job	j;

	assert_int_equal(store_reserve_job_id(s, id), 0);
	memset(&j, 0, sizeof(j));
	j.id = *id;
	j.packet_id = (char *)packet_id;
	j.state = JOB_QUEUED;
	j.transport = "local";
	j.recipient_id = "records-desk";
	j.mrn = "TEST-000123";
	j.patient_name = "Zoë Testpatient";
	j.request_ref = "REQ-1";
	j.source = "spool";
	j.manifest = "{}";
	j.created_at = j.updated_at = j.next_at = 1795000000;
	j.pages = -1;
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_job_insert(s, &j, "spool", "taken from the spool"), 0);
	assert_int_equal(store_commit(s), 0);
}

struct events {
	char	 line[16][128];
	int	 n;
};

static int
collect_event(const struct job_event *e, void *arg)
{
	struct events	*ev = arg;

	snprintf(ev->line[ev->n++], sizeof(ev->line[0]), "%s>%s by %s: %s",
	    e->from_state ? e->from_state : "-", e->to_state, e->actor,
	    e->reason ? e->reason : "");
	return 0;
}

static void
test_jobs_and_events(void **state)
{
	struct fixture		*f = *state;
	struct job_update	 u = JOB_UPDATE_NONE;
	struct events		 ev = { .n = 0 };
	struct job		 j;
	int64_t			 id, id2, found, at;

	add_job(f->s, "ROI-U-1", &id);
	add_job(f->s, "ROI-U-2", &id2);
	assert_true(id2 > id);
	assert_int_equal(store_job_get(f->s, id, &j), 1);
	assert_string_equal(j.packet_id, "ROI-U-1");
	assert_string_equal(j.patient_name, "Zoë Testpatient");
	assert_int_equal(j.state, JOB_QUEUED);
	job_free(&j);
	assert_int_equal(store_job_get(f->s, 9999, &j), 0);

	assert_int_equal(store_job_by_packet(f->s, "ROI-U-2", &found, &at), 1);
	assert_int_equal(found, id2);
	assert_int_equal(store_job_by_packet(f->s, "ROI-U-3", &found, &at), 0);

	u.attempts = 1;
	u.last_error = "line busy";
	u.next_at = 1795000100;
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_job_set_state(f->s, id, JOB_DEFERRED, &u, "daemon",
	    "tempfail: line busy"), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(store_job_get(f->s, id, &j), 1);
	assert_int_equal(j.state, JOB_DEFERRED);
	assert_int_equal(j.attempts, 1);
	assert_string_equal(j.last_error, "line busy");
	assert_int_equal(j.next_at, 1795000100);
	job_free(&j);

	assert_int_equal(store_job_events(f->s, id, collect_event, &ev), 0);
	assert_int_equal(ev.n, 3);
	assert_string_equal(ev.line[0], "->accepted by spool: taken from the spool");
	assert_string_equal(ev.line[1], "accepted>queued by spool: taken from the spool");
	assert_string_equal(ev.line[2], "queued>deferred by daemon: tempfail: line busy");

	/* A second job with the same packet_id is refused by the schema. */
	{
		struct job	dup;
		int64_t		did;
		assert_int_equal(store_reserve_job_id(f->s, &did), 0);
		memset(&dup, 0, sizeof(dup));
		dup.id = did;
		dup.packet_id = "ROI-U-1";
		dup.state = JOB_QUEUED;
		dup.transport = "local";
		dup.recipient_id = "records-desk";
		dup.manifest = "{}";
		assert_int_equal(store_begin(f->s), 0);
		assert_int_equal(store_job_insert(f->s, &dup, "spool", "x"), -1);
		assert_int_equal(store_rollback(f->s), 0);
	}
}

static void
test_state_names_table(void **state)
{
	static const struct {
		enum job_state	 s;
		const char	*name;
		int		 final;
	} cases[] = {
		{ JOB_QUEUED, "queued", 0 }, { JOB_RENDERING, "rendering", 0 },
		{ JOB_SENDING, "sending", 0 },
		{ JOB_AWAITING, "awaiting_confirmation", 0 },
		{ JOB_DEFERRED, "deferred", 0 }, { JOB_DELIVERED, "delivered", 1 },
		{ JOB_FAILED, "failed", 1 }, { JOB_HELD, "held", 0 },
		{ JOB_CANCELLED, "cancelled", 1 },
	};
	enum job_state	s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(job_state_name(cases[i].s), cases[i].name);
		assert_int_equal(job_state_parse(cases[i].name, &s), 0);
		assert_int_equal(s, cases[i].s);
		assert_int_equal(!!job_state_final(cases[i].s), cases[i].final);
	}
	assert_int_equal(job_state_parse("lost", &s), -1);
}

static void
test_status_counts(void **state)
{
	struct fixture		*f = *state;
	struct job_update	 u = JOB_UPDATE_NONE;
	struct store_status	 st;
	int64_t			 a, b, c;

	add_job(f->s, "ROI-S-1", &a);
	add_job(f->s, "ROI-S-2", &b);
	add_job(f->s, "ROI-S-3", &c);
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_job_set_state(f->s, a, JOB_DELIVERED, &u, "daemon",
	    "ok"), 0);
	u.last_error = "recipient refuses";
	assert_int_equal(store_job_set_state(f->s, b, JOB_FAILED, &u, "daemon",
	    "permfail"), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(store_status(f->s, now_wall(), &st), 0);
	for (size_t i = 0; i < st.nby_state; i++) {
		if (!strcmp(st.by_state[i].key, "queued") ||
		    !strcmp(st.by_state[i].key, "delivered") ||
		    !strcmp(st.by_state[i].key, "failed"))
			assert_int_equal(st.by_state[i].count, 1);
	}
	assert_int_equal(st.oldest_queued_at, 1795000000);
	assert_true(st.nlast_errors >= 1);
	assert_string_equal(st.last_errors[0].last_error, "recipient refuses");
	store_status_free(&st);
}

static void
test_recipients(void **state)
{
	struct fixture		*f = *state;
	struct recipient	 r, got;

	memset(&r, 0, sizeof(r));
	r.id = "records-desk";
	r.name = "Records Desk";
	r.organization = "Example Clinic";
	r.transport = "local";
	r.address = "records-desk";
	r.params = "{}";
	r.created_at = now_wall();
	assert_int_equal(store_recipient_add(f->s, &r), 0);
	assert_int_equal(store_recipient_add(f->s, &r), -1);	/* exists */
	assert_int_equal(store_recipient_get(f->s, "records-desk", &got), 1);
	assert_false(got.verified);
	assert_false(got.disabled);
	assert_string_equal(got.address, "records-desk");
	recipient_free(&got);
	assert_int_equal(store_recipient_set_verified(f->s, "records-desk", 1,
	    "uid 0", 1795000000), 0);
	assert_int_equal(store_recipient_get(f->s, "records-desk", &got), 1);
	assert_true(got.verified);
	assert_string_equal(got.verified_by, "uid 0");
	recipient_free(&got);
	/* Changing the address takes the verification away. */
	r.address = "other-desk";
	assert_int_equal(store_recipient_update(f->s, &r), 0);
	assert_int_equal(store_recipient_get(f->s, "records-desk", &got), 1);
	assert_false(got.verified);
	assert_string_equal(got.address, "other-desk");
	recipient_free(&got);
	assert_int_equal(store_recipient_set_disabled(f->s, "records-desk", 1), 0);
	assert_int_equal(store_recipient_get(f->s, "records-desk", &got), 1);
	assert_true(got.disabled);
	recipient_free(&got);
	assert_int_equal(store_recipient_get(f->s, "nobody", &got), 0);
}

static void
test_logs_are_append_only(void **state)
{
	static const struct {
		const char	*sql;
		const char	*want;	/* in SQLite's error message */
	} cases[] = {
		{ "UPDATE disclosures SET recipient_name = 'x'", "append-only" },
		{ "DELETE FROM disclosures", "append-only" },
		{ "UPDATE audit SET outcome = 'ok'", "append-only" },
		{ "DELETE FROM audit", "append-only" },
		{ "UPDATE counters SET value = 0 WHERE name = 'disclosure_head'",
		    "only move forward" },
		{ "DELETE FROM counters", "never deleted" },
	};
	struct fixture		*f = *state;
	struct disclosure	 d;
	struct audit_entry	 a;
	char			 msg[256];

	memset(&d, 0, sizeof(d));
	d.seq = 1;
	d.at = 1795000000;
	d.job_id = 1;
	d.outcome = "attempt";
	snprintf(d.prev_hash, sizeof(d.prev_hash), "0");
	snprintf(d.hash, sizeof(d.hash), "1");
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_disclosure_insert(f->s, &d), 0);
	assert_int_equal(store_commit(f->s), 0);
	memset(&a, 0, sizeof(a));
	a.op = "status";
	a.outcome = "denied";
	assert_int_equal(store_audit_add(f->s, &a), 0);
	assert_int_equal(store_disclosure_head(f->s), 1);
	assert_true(store_disclosure_guarded(f->s));

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_not_equal(raw_exec(f->path, cases[i].sql, msg, sizeof(msg)),
		    SQLITE_OK);
		if (strstr(msg, cases[i].want) == NULL)
			fail_msg("%s: got \"%s\"", cases[i].sql, msg);
	}
	assert_int_equal(raw_exec(f->path, "DROP TRIGGER disclosures_no_delete",
	    NULL, 0), SQLITE_OK);
	assert_false(store_disclosure_guarded(f->s));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_sets_wal_and_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs_and_events, setup, teardown),
		cmocka_unit_test(test_state_names_table),
		cmocka_unit_test_setup_teardown(test_status_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_are_append_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
