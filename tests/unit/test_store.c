/* Unit tests for src/store.c over a real SQLite file: schema and pragmas,
 * jobs and their events, recipients, status counts, and the append-only
 * guards on the disclosure and audit logs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	assert_int_equal(store_schema_version(f->s), 13);
	mode = raw_text(f->path, "PRAGMA user_version");
	assert_string_equal(mode, "13");
	free(mode);
	/* Opening again migrates nothing and keeps the version. */
	again = store_open(f->path, err, sizeof(err));
	assert_non_null(again);
	assert_int_equal(store_schema_version(again), 13);
	store_close(again);
}

/* Each database is made with its own random instance id, kept for good. */
static void
test_instance_id_is_random_and_fixed(void **state)
{
	struct fixture	*f = *state;
	char		 a[STORE_INSTANCE_LEN + 1], b[STORE_INSTANCE_LEN + 1];
	char		 other[PATH_MAX], err[512];
	struct store	*s2;

	assert_int_equal(store_instance_id(f->s, a), 0);
	assert_int_equal(strlen(a), 16);
	assert_int_equal(strspn(a, "0123456789abcdef"), 16);
	snprintf(other, sizeof(other), "%s.other", f->path);
	assert_non_null(s2 = store_open(other, err, sizeof(err)));
	assert_int_equal(store_instance_id(s2, b), 0);
	assert_string_not_equal(a, b);
	store_close(s2);
	unlink(other);
	/* Written once: an update or delete is refused. */
	char *r = raw_text(f->path, "UPDATE meta SET value = 'x'");
	free(r);
	assert_int_equal(store_instance_id(f->s, b), 0);
	assert_string_equal(a, b);
	assert_int_equal(store_quick_check(f->s, err, sizeof(err)), 0);
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

struct reds {
	struct store_redaction	r[4];
	int			attempt[4];
	int			n;
};

static int
collect_red(const struct store_redaction *r, int attempt, void *arg)
{
	struct reds *x = arg;

	x->attempt[x->n] = attempt;
	x->r[x->n++] = *r;
	return 0;
}

/* The latest attempt's redactions replace the earlier ones, in order. */
static void
test_redactions_replace_per_attempt(void **state)
{
	struct fixture		*f = *state;
	struct store_redaction	 a[2] = {
		{ 1, 2, 72, 96.5, 200, 18, "ssn" },
		{ 3, 1, 150, 200, 600, 40, "rect" },
	};
	struct reds		 got = { .n = 0 };
	int64_t			 id;

	add_job(f->s, "ROI-RED-1", &id);
	assert_int_equal(store_redactions_set(f->s, id, 1, a, 2), 0);
	assert_int_equal(store_redactions_set(f->s, id, 2, a + 1, 1), 0);
	assert_int_equal(store_job_redactions(f->s, id, collect_red, &got), 0);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.attempt[0], 2);
	assert_int_equal(got.r[0].doc, 3);
	assert_true(got.r[0].w == 600 && got.r[0].h == 40);
	assert_string_equal(got.r[0].pattern, "rect");
	/* None for a job that had none. */
	got.n = 0;
	assert_int_equal(store_job_redactions(f->s, id + 99, collect_red, &got), 0);
	assert_int_equal(got.n, 0);
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

/* The count of each state, the zero ones included, as `roictl status`
 * shows them: every state the store names is one of the nine, named once,
 * and a state it does not name has no job. */
static void
test_status_counts(void **state)
{
	/* Distinct counts, so that one state's jobs counted as another's show. */
	static const enum job_state to[] = { JOB_QUEUED, JOB_DEFERRED,
	    JOB_DEFERRED, JOB_DEFERRED, JOB_DELIVERED, JOB_DELIVERED, JOB_FAILED,
	    JOB_HELD };
	static const int64_t want[JOB_NSTATES] = {
		[JOB_QUEUED] = 1, [JOB_RENDERING] = 0, [JOB_SENDING] = 0,
		[JOB_AWAITING] = 0, [JOB_DEFERRED] = 3, [JOB_DELIVERED] = 2,
		[JOB_FAILED] = 1, [JOB_HELD] = 1, [JOB_CANCELLED] = 0,
	};
	struct fixture		*f = *state;
	struct store_status	 st;
	int64_t			 got[JOB_NSTATES] = { 0 }, id;
	int			 named[JOB_NSTATES] = { 0 };
	char			 pid[32];

	for (size_t i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
		struct job_update	u = JOB_UPDATE_NONE;

		snprintf(pid, sizeof(pid), "ROI-S-%zu", i);
		add_job(f->s, pid, &id);
		if (to[i] == JOB_FAILED)
			u.last_error = "recipient refuses";
		if (to[i] == JOB_QUEUED)
			continue;
		assert_int_equal(store_begin(f->s), 0);
		assert_int_equal(store_job_set_state(f->s, id, to[i], &u, "daemon",
		    "test"), 0);
		assert_int_equal(store_commit(f->s), 0);
	}
	assert_int_equal(store_status(f->s, now_wall(), &st), 0);
	for (size_t i = 0; i < st.nby_state; i++) {
		enum job_state	s;

		if (job_state_parse(st.by_state[i].key, &s) == -1)
			fail_msg("status names a state \"%s\" roictl does not know",
			    st.by_state[i].key);
		if (named[s]++)
			fail_msg("status names %s twice", st.by_state[i].key);
		got[s] = st.by_state[i].count;
	}
	for (int s = 0; s < JOB_NSTATES; s++)
		if (got[s] != want[s])
			fail_msg("%s: %lld jobs, want %lld", job_state_name(s),
			    (long long)got[s], (long long)want[s]);
	/* Jobs in progress by transport: all but the final ones. */
	assert_int_equal(st.nby_transport, 1);
	assert_string_equal(st.by_transport[0].key, "local");
	assert_int_equal(st.by_transport[0].count, 5);
	assert_int_equal(st.oldest_queued_at, 1795000000);
	assert_int_equal(st.nlast_errors, 1);
	assert_string_equal(st.last_errors[0].last_error, "recipient refuses");
	assert_int_equal(st.last_errors[0].state, JOB_FAILED);
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

/* The store's own connection, caught as SQLite opens it: journal_mode and
 * synchronous are per connection, so another client cannot see them. */
static sqlite3	*caught_db;

static int
catch_db(sqlite3 *db, char **msg, const struct sqlite3_api_routines *api)
{
	caught_db = db;
	return SQLITE_OK;
}

static long long
conn_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
test_open_pragmas_on_store_connection(void **state)
{
	static const struct {
		const char	*sql;
		const char	*want;
	} cases[] = {
		{ "PRAGMA journal_mode", "wal" },
		{ "PRAGMA synchronous", "2" },		/* FULL */
		{ "PRAGMA foreign_keys", "1" },
	};
	struct fixture	*f = *state;
	struct store	*s;
	struct stat	 sb;
	char		 err[512];

	caught_db = NULL;
	assert_int_equal(sqlite3_auto_extension((void (*)(void))catch_db), SQLITE_OK);
	s = store_open(f->path, err, sizeof(err));
	sqlite3_cancel_auto_extension((void (*)(void))catch_db);
	assert_non_null(s);
	assert_non_null(caught_db);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sqlite3_stmt	*st;
		assert_int_equal(sqlite3_prepare_v2(caught_db, cases[i].sql, -1, &st,
		    NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		if (strcmp((const char *)sqlite3_column_text(st, 0), cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].sql,
			    sqlite3_column_text(st, 0), cases[i].want);
		sqlite3_finalize(st);
	}
	assert_int_equal(conn_int(caught_db, "PRAGMA user_version"),
	    store_schema_version(s));
	store_close(s);
	/* The file holds PHI: owner only. */
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

static void
test_schema_version_is_latest(void **state)
{
	struct fixture	*f = *state;
	int		 v = store_schema_version(f->s);
	char		 sql[64], want[32], err[512];

	/* One past what store_open migrated to is refused as newer than this
	 * build: so the fresh database is at the latest version. */
	assert_true(v >= 1);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
	assert_int_equal(raw_exec(f->path, sql, NULL, 0), SQLITE_OK);
	assert_null(store_open(f->path, err, sizeof(err)));
	snprintf(want, sizeof(want), "version %d, newer", v + 1);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "(%d)", v);
	assert_non_null(strstr(err, want));
}

static void
test_reopen_is_idempotent(void **state)
{
	struct fixture		*f = *state;
	struct recipient	 r, got;
	struct disclosure	 d;
	struct job		 j;
	char			*before, *after, err[512];
	int64_t			 id, id2;
	int			 v = store_schema_version(f->s);

	add_job(f->s, "ROI-R-1", &id);
	memset(&r, 0, sizeof(r));
	r.id = "desk";
	r.name = "Desk";
	r.transport = "local";
	r.address = "desk";
	assert_int_equal(store_recipient_add(f->s, &r), 0);
	memset(&d, 0, sizeof(d));
	d.seq = 1;
	d.at = 1795000000;
	d.job_id = id;
	d.outcome = "attempt";
	snprintf(d.prev_hash, sizeof(d.prev_hash), "0");
	snprintf(d.hash, sizeof(d.hash), "1");
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_disclosure_insert(f->s, &d), 0);
	assert_int_equal(store_commit(f->s), 0);
	before = raw_text(f->path, "SELECT group_concat(type || ':' || name, ' ') "
	    "FROM (SELECT type, name FROM sqlite_master ORDER BY type, name)");
	assert_non_null(before);
	store_close(f->s);

	for (int i = 0; i < 2; i++) {
		assert_non_null(f->s = store_open(f->path, err, sizeof(err)));
		assert_int_equal(store_schema_version(f->s), v);
		after = raw_text(f->path, "SELECT group_concat(type || ':' || name, ' ') "
		    "FROM (SELECT type, name FROM sqlite_master ORDER BY type, name)");
		assert_string_equal(after, before);
		free(after);
		assert_true(store_disclosure_guarded(f->s));
		assert_int_equal(store_disclosure_head(f->s), 1);
		assert_int_equal(store_job_get(f->s, id, &j), 1);
		assert_string_equal(j.packet_id, "ROI-R-1");
		job_free(&j);
		assert_int_equal(store_recipient_get(f->s, "desk", &got), 1);
		recipient_free(&got);
		if (i == 0)
			store_close(f->s);
	}
	free(before);
	/* Job ids keep counting from where they were. */
	assert_int_equal(store_reserve_job_id(f->s, &id2), 0);
	assert_int_equal(id2, id + 1);
}

static void
test_job_roundtrip_and_updates(void **state)
{
	struct fixture		*f = *state;
	struct job_update	 u = JOB_UPDATE_NONE;
	struct events		 ev = { .n = 0 };
	struct job		 j;
	int64_t			 id, found, at;

	add_job(f->s, "ROI-F-1", &id);
	assert_int_equal(store_job_exists(f->s, id), 1);
	assert_int_equal(store_job_exists(f->s, id + 100), 0);
	assert_int_equal(store_job_get(f->s, id, &j), 1);
	assert_int_equal(j.id, id);
	assert_string_equal(j.packet_id, "ROI-F-1");
	assert_string_equal(j.transport, "local");
	assert_string_equal(j.recipient_id, "records-desk");
	assert_string_equal(j.mrn, "TEST-000123");
	assert_string_equal(j.request_ref, "REQ-1");
	assert_string_equal(j.source, "spool");
	assert_string_equal(j.manifest, "{}");
	assert_int_equal(j.created_at, 1795000000);
	assert_int_equal(j.updated_at, 1795000000);
	assert_int_equal(j.next_at, 1795000000);
	assert_int_equal(j.attempts, 0);
	assert_int_equal(j.pages, -1);
	assert_null(j.last_error);
	assert_null(j.remote_id);
	job_free(&j);
	assert_int_equal(store_job_by_packet(f->s, "ROI-F-1", &found, &at), 1);
	assert_int_equal(found, id);
	assert_int_equal(at, 1795000000);

	u.remote_id = "FAX-77";
	u.output_sha256 = "abab";
	u.pages = 12;
	u.sent_at = 1795000050;
	u.last_error = "first try failed";
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_job_set_state(f->s, id, JOB_AWAITING, &u, "uid 1000",
	    "accepted by the fax service"), 0);
	assert_int_equal(store_commit(f->s), 0);
	/* NONE leaves everything; "" clears last_error. */
	u = (struct job_update)JOB_UPDATE_NONE;
	u.last_error = "";
	assert_int_equal(store_begin(f->s), 0);
	assert_int_equal(store_job_set_state(f->s, id, JOB_DELIVERED, &u, "daemon",
	    NULL), 0);
	assert_int_equal(store_commit(f->s), 0);
	assert_int_equal(store_job_get(f->s, id, &j), 1);
	assert_int_equal(j.state, JOB_DELIVERED);
	assert_string_equal(j.remote_id, "FAX-77");
	assert_string_equal(j.output_sha256, "abab");
	assert_int_equal(j.pages, 12);
	assert_int_equal(j.sent_at, 1795000050);
	assert_int_equal(j.next_at, 1795000000);
	assert_string_equal(j.last_error, "");
	assert_true(j.updated_at >= now_wall() - 60);
	job_free(&j);

	assert_int_equal(store_job_events(f->s, id, collect_event, &ev), 0);
	assert_int_equal(ev.n, 4);
	assert_string_equal(ev.line[2],
	    "queued>awaiting_confirmation by uid 1000: accepted by the fax service");
	assert_string_equal(ev.line[3], "awaiting_confirmation>delivered by daemon: ");

	/* No such job: refused, named, and no event written for it. */
	assert_int_equal(store_job_set_state(f->s, 9999, JOB_FAILED, NULL, "daemon",
	    "x"), -1);
	assert_non_null(strstr(store_errmsg(f->s), "no job 9999"));
	ev.n = 0;
	assert_int_equal(store_job_events(f->s, 9999, collect_event, &ev), 0);
	assert_int_equal(ev.n, 0);
}

static void
test_status_table(void **state)
{
	static const struct {
		const char	*packet;
		const char	*transport;
		enum job_state	 to;	/* JOB_QUEUED: left as inserted */
		const char	*error;
	} jobs[] = {
		{ "ROI-T-1", "local", JOB_QUEUED, NULL },
		{ "ROI-T-2", "local", JOB_QUEUED, NULL },
		{ "ROI-T-3", "fax", JOB_DEFERRED, "busy" },
		{ "ROI-T-4", "fax", JOB_AWAITING, NULL },
		{ "ROI-T-5", "local", JOB_DELIVERED, NULL },
		{ "ROI-T-6", "fax", JOB_DELIVERED, NULL },
		{ "ROI-T-7", "fax", JOB_FAILED, "refused" },
		{ "ROI-T-8", "local", JOB_HELD, "needs review" },
		{ "ROI-T-9", "local", JOB_CANCELLED, NULL },
	};
	static const struct {
		const char	*key;
		int64_t		 count;
	} by_state[] = {
		{ "queued", 2 }, { "deferred", 1 }, { "awaiting_confirmation", 1 },
		{ "delivered", 2 }, { "failed", 1 }, { "held", 1 }, { "cancelled", 1 },
	}, by_transport[] = {
		{ "local", 3 }, { "fax", 2 },	/* not delivered/failed/cancelled */
	};
	struct fixture		*f = *state;
	struct store_status	 st;
	size_t			 seen = 0;

	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		struct job		 j;
		struct job_update	 u = JOB_UPDATE_NONE;
		int64_t			 id;

		assert_int_equal(store_reserve_job_id(f->s, &id), 0);
		memset(&j, 0, sizeof(j));
		j.id = id;
		j.packet_id = (char *)jobs[i].packet;
		j.state = JOB_QUEUED;
		j.transport = (char *)jobs[i].transport;
		j.recipient_id = "records-desk";
		j.manifest = "{}";
		j.created_at = j.updated_at = j.next_at = 1795000000 + (int64_t)i;
		assert_int_equal(store_begin(f->s), 0);
		assert_int_equal(store_job_insert(f->s, &j, "socket", "submitted"), 0);
		u.last_error = jobs[i].error;
		if (jobs[i].to != JOB_QUEUED)
			assert_int_equal(store_job_set_state(f->s, id, jobs[i].to, &u,
			    "daemon", "test"), 0);
		assert_int_equal(store_commit(f->s), 0);
	}
	assert_int_equal(store_status(f->s, now_wall(), &st), 0);
	assert_int_equal(st.nby_state, sizeof(by_state) / sizeof(by_state[0]));
	for (size_t i = 0; i < sizeof(by_state) / sizeof(by_state[0]); i++) {
		size_t k;
		for (k = 0; k < st.nby_state; k++)
			if (strcmp(st.by_state[k].key, by_state[i].key) == 0)
				break;
		if (k == st.nby_state || st.by_state[k].count != by_state[i].count)
			fail_msg("state %s: want %lld", by_state[i].key,
			    (long long)by_state[i].count);
	}
	assert_int_equal(st.nby_transport, 2);
	for (size_t i = 0; i < 2; i++)
		for (size_t k = 0; k < st.nby_transport; k++)
			if (strcmp(st.by_transport[k].key, by_transport[i].key) == 0) {
				assert_int_equal(st.by_transport[k].count,
				    by_transport[i].count);
				seen++;
			}
	assert_int_equal(seen, 2);
	/* Oldest waiting: the first queued job (queued and deferred count). */
	assert_int_equal(st.oldest_queued_at, 1795000000);
	assert_int_equal(st.delivered_last_hour, 2);
	assert_int_equal(st.nlast_errors, 3);
	store_status_free(&st);
	assert_int_equal(store_status(f->s, now_wall() + 7200, &st), 0);
	assert_int_equal(st.delivered_last_hour, 0);
	store_status_free(&st);
	/* The two queued jobs taken by workers: the oldest still waiting is
	 * the deferred one (its index entry follows the job's state). */
	for (int64_t id = 1; id <= 2; id++) {
		struct job_update	 u = JOB_UPDATE_NONE;

		assert_int_equal(store_begin(f->s), 0);
		assert_int_equal(store_job_set_state(f->s, id, JOB_RENDERING, &u,
		    "daemon", "test"), 0);
		assert_int_equal(store_commit(f->s), 0);
	}
	assert_int_equal(store_status(f->s, now_wall(), &st), 0);
	assert_int_equal(st.oldest_queued_at, 1795000002);
	store_status_free(&st);
}

static int
collect_recipient(const struct recipient *r, void *arg)
{
	struct events	*ev = arg;

	snprintf(ev->line[ev->n++], sizeof(ev->line[0]), "%s:%d:%d", r->id,
	    r->verified, r->disabled);
	return 0;
}

static void
test_recipients_unknown_and_list(void **state)
{
	static const char *const ids[] = { "zeta-clinic", "alpha-desk", "mid-fax" };
	struct fixture		*f = *state;
	struct recipient	 r, got;
	struct events		 ev = { .n = 0 };

	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i < 3; i++) {
		r.id = (char *)ids[i];
		r.name = "Someone";
		r.transport = "local";
		r.address = (char *)ids[i];
		r.params = NULL;		/* stored as "{}" */
		assert_int_equal(store_recipient_add(f->s, &r), 0);
	}
	/* Adding an existing id fails and leaves the first one alone. */
	r.id = "alpha-desk";
	r.address = "somewhere-else";
	assert_int_equal(store_recipient_add(f->s, &r), -1);
	assert_int_equal(store_recipient_get(f->s, "alpha-desk", &got), 1);
	assert_string_equal(got.address, "alpha-desk");
	assert_string_equal(got.params, "{}");
	assert_true(got.created_at >= now_wall() - 60);
	recipient_free(&got);

	assert_int_equal(store_recipient_set_verified(f->s, "mid-fax", 1, "uid 0",
	    1795000000), 0);
	assert_int_equal(store_recipient_set_disabled(f->s, "zeta-clinic", 1), 0);
	assert_int_equal(store_recipient_list(f->s, collect_recipient, &ev), 0);
	assert_int_equal(ev.n, 3);
	assert_string_equal(ev.line[0], "alpha-desk:0:0");
	assert_string_equal(ev.line[1], "mid-fax:1:0");
	assert_string_equal(ev.line[2], "zeta-clinic:0:1");
	/* Enabled again. */
	assert_int_equal(store_recipient_set_disabled(f->s, "zeta-clinic", 0), 0);
	assert_int_equal(store_recipient_get(f->s, "zeta-clinic", &got), 1);
	assert_false(got.disabled);
	recipient_free(&got);

	/* Unknown ids are refused by every setter. */
	assert_int_equal(store_recipient_set_verified(f->s, "nobody", 1, "uid 0", 1), -1);
	assert_non_null(strstr(store_errmsg(f->s), "no recipient nobody"));
	assert_int_equal(store_recipient_set_disabled(f->s, "nobody", 1), -1);
	r.id = "nobody";
	assert_int_equal(store_recipient_update(f->s, &r), -1);
	assert_int_equal(store_recipient_get(f->s, "nobody", &got), 0);
}

static void
test_guarded_names_each_trigger(void **state)
{
	static const char *const triggers[] = { "disclosures_no_update",
	    "disclosures_no_delete", "disclosures_head", "counters_forward",
	    "counters_no_delete" };
	struct fixture	*f = *state;

	assert_true(store_disclosure_guarded(f->s));
	for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++) {
		char	 q[160], drop[96], *sql;

		snprintf(q, sizeof(q), "SELECT sql FROM sqlite_master WHERE "
		    "type = 'trigger' AND name = '%s'", triggers[i]);
		if ((sql = raw_text(f->path, q)) == NULL)
			fail_msg("trigger %s is not in the schema", triggers[i]);
		snprintf(drop, sizeof(drop), "DROP TRIGGER %s", triggers[i]);
		assert_int_equal(raw_exec(f->path, drop, NULL, 0), SQLITE_OK);
		if (store_disclosure_guarded(f->s))
			fail_msg("%s dropped, still reported guarded", triggers[i]);
		assert_int_equal(raw_exec(f->path, sql, NULL, 0), SQLITE_OK);
		assert_true(store_disclosure_guarded(f->s));
		free(sql);
	}
}

static int
collect_audit(const struct audit_entry *a, void *arg)
{
	struct events	*ev = arg;

	snprintf(ev->line[ev->n++], sizeof(ev->line[0]), "%lld %s %s %s",
	    (long long)a->uid, a->op, a->target ? a->target : "-", a->outcome);
	return 0;
}

static void
test_audit_roundtrip(void **state)
{
	struct fixture		*f = *state;
	struct audit_entry	 a;
	struct events		 ev = { .n = 0 };

	memset(&a, 0, sizeof(a));
	a.at = 1795000000;
	a.uid = 1000;
	a.role = "operate";
	a.op = "hold";
	a.target = "42";
	a.outcome = "ok";
	assert_int_equal(store_audit_add(f->s, &a), 0);
	a.at = 1795000010;
	a.op = "cancel";
	a.outcome = "denied";
	assert_int_equal(store_audit_add(f->s, &a), 0);
	assert_int_equal(store_audit_iter(f->s, 0, 0, collect_audit, &ev), 0);
	assert_int_equal(ev.n, 2);
	assert_string_equal(ev.line[0], "1000 hold 42 ok");
	assert_string_equal(ev.line[1], "1000 cancel 42 denied");
	/* since and limit (the newest, still oldest first). */
	ev.n = 0;
	assert_int_equal(store_audit_iter(f->s, 1795000005, 0, collect_audit, &ev), 0);
	assert_int_equal(ev.n, 1);
	ev.n = 0;
	assert_int_equal(store_audit_iter(f->s, 0, 1, collect_audit, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_string_equal(ev.line[0], "1000 cancel 42 denied");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_sets_wal_and_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_instance_id_is_random_and_fixed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs_and_events, setup, teardown),
		cmocka_unit_test(test_state_names_table),
		cmocka_unit_test_setup_teardown(test_status_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_are_append_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_pragmas_on_store_connection,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version_is_latest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_roundtrip_and_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipients_unknown_and_list, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_guarded_names_each_trigger, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redactions_replace_per_attempt, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
