/*
 * The SQLite store (daemon only): jobs, job events, the verified
 * recipient directory, the disclosure log and the audit log.  This is
 * the only file in roigate that contains SQL.
 *
 * WAL with synchronous=FULL: a commit is on disk when it returns.  The
 * schema version lives in PRAGMA user_version; each migration is one
 * more entry in `migrations`, applied in its own transaction.  Triggers
 * make the disclosure log and the audit log append-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* sqlite3_preupdate_hook (Debian's SQLite is built with it): store_watch_jobs. */
#define SQLITE_ENABLE_PREUPDATE_HOOK
#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "util.h"

struct store {
	sqlite3		*db;
	char		 err[512];
	int		 code;		/* SQLite's primary result code of err */
	store_sealer	 sealer;	/* NULL: entries get no mac */
	void		*sealer_arg;
	int		 version;	/* schema version, once opened */
};

#define GENESIS_HASH	"0000000000000000000000000000000000000000000000000000000000000000"

/* The triggers that keep the disclosure log append-only, as created; the
 * verifier compares what the database holds with these texts. */
#define TRIGGER_NO_UPDATE	"CREATE TRIGGER disclosures_no_update BEFORE UPDATE ON disclosures" \
	" BEGIN SELECT RAISE(ABORT, 'disclosure log is append-only'); END"
#define TRIGGER_NO_DELETE	"CREATE TRIGGER disclosures_no_delete BEFORE DELETE ON disclosures" \
	" BEGIN SELECT RAISE(ABORT, 'disclosure log is append-only'); END"
#define TRIGGER_HEAD		"CREATE TRIGGER disclosures_head AFTER INSERT ON disclosures" \
	" BEGIN UPDATE counters SET value = NEW.seq WHERE name = 'disclosure_head'; END"
#define TRIGGER_FORWARD		"CREATE TRIGGER counters_forward BEFORE UPDATE ON counters" \
	" WHEN NEW.value < OLD.value" \
	" BEGIN SELECT RAISE(ABORT, 'counters only move forward'); END"
#define TRIGGER_NO_DEL_COUNTER	"CREATE TRIGGER counters_no_delete BEFORE DELETE ON counters" \
	" BEGIN SELECT RAISE(ABORT, 'counters are never deleted'); END"

static const char *const migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO counters VALUES ('job_id', 0);"
	"CREATE TABLE jobs ("
	" id INTEGER PRIMARY KEY, packet_id TEXT NOT NULL UNIQUE,"
	" state TEXT NOT NULL, transport TEXT NOT NULL, recipient_id TEXT NOT NULL,"
	" mrn TEXT, patient_name TEXT, request_ref TEXT, source TEXT,"
	" manifest TEXT NOT NULL, created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL, next_at INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" remote_id TEXT, output_sha256 TEXT, pages INTEGER NOT NULL DEFAULT -1,"
	" sent_at INTEGER NOT NULL DEFAULT 0, delivered_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_due ON jobs(state, next_at);"
	"CREATE INDEX jobs_delivered ON jobs(delivered_at);"
	"CREATE INDEX jobs_errors ON jobs(updated_at) WHERE last_error IS NOT NULL"
	" AND last_error <> '';"
	"CREATE TABLE job_events ("
	" id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs(id),"
	" at INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL,"
	" actor TEXT NOT NULL, reason TEXT);"
	"CREATE INDEX job_events_job ON job_events(job_id);"
	"CREATE TABLE recipients ("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL, organization TEXT,"
	" transport TEXT NOT NULL, address TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}',"
	" verified INTEGER NOT NULL DEFAULT 0, verified_by TEXT, verified_at INTEGER NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
	"CREATE TABLE disclosures ("
	" seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, job_id INTEGER NOT NULL,"
	" packet_id TEXT, mrn TEXT, patient_name TEXT, recipient_id TEXT,"
	" recipient_name TEXT, recipient_address TEXT, description TEXT,"
	" purpose TEXT, basis TEXT, authorization_id TEXT, transport TEXT,"
	" remote_id TEXT, outcome TEXT NOT NULL, detail TEXT, pages INTEGER,"
	" output_sha256 TEXT, accountable INTEGER NOT NULL,"
	" prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
	"CREATE INDEX disclosures_mrn ON disclosures(mrn);"
	"CREATE INDEX disclosures_recipient ON disclosures(recipient_id);"
	"CREATE INDEX disclosures_at ON disclosures(at);"
	"CREATE INDEX disclosures_job ON disclosures(job_id);"
	TRIGGER_NO_UPDATE ";"
	TRIGGER_NO_DELETE ";"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY, at INTEGER NOT NULL, uid INTEGER, gid INTEGER,"
	" pid INTEGER, role TEXT, op TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL,"
	" detail TEXT);"
	"CREATE INDEX audit_at ON audit(at);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",

	/* 2: the disclosure log's head (last seq) kept beside it, so that
	 * entries removed from the end are noticed too. */
	"INSERT INTO counters VALUES ('disclosure_head',"
	" (SELECT COALESCE(MAX(seq), 0) FROM disclosures));"
	TRIGGER_HEAD ";"
	TRIGGER_FORWARD ";"
	TRIGGER_NO_DEL_COUNTER ";",

	/* 3: the redactions the pipeline applied for the latest attempt of a
	 * job: where, and which pattern; never the text covered. */
	"CREATE TABLE redactions ("
	" job_id INTEGER NOT NULL REFERENCES jobs(id), attempt INTEGER NOT NULL,"
	" doc INTEGER NOT NULL, page INTEGER NOT NULL, x REAL NOT NULL,"
	" y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL, pattern TEXT NOT NULL);"
	"CREATE INDEX redactions_job ON redactions(job_id);",

	/* 4: the uid that submitted a job over the socket (NULL for the
	 * spool), so that a submit-only caller sees its own jobs and no one
	 * else's.  Jobs from before are filled in from their "accepted"
	 * event, whose actor is "uid N (name)". */
	"ALTER TABLE jobs ADD COLUMN submit_uid INTEGER;"
	"UPDATE jobs SET submit_uid = (SELECT CAST(substr(e.actor, 5) AS INTEGER)"
	" FROM job_events e WHERE e.job_id = jobs.id AND e.to_state = 'accepted'"
	" AND e.actor LIKE 'uid %' ORDER BY e.id LIMIT 1) WHERE source = 'socket';"
	"CREATE INDEX jobs_submit_uid ON jobs(submit_uid) WHERE submit_uid IS NOT NULL;",

	/* 5: facts about this database, fixed when it is made: its instance
	 * id (random), which fax tags, archive names and outbox names carry,
	 * so that nothing repeats across databases or gateways. */
	"CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"INSERT INTO meta VALUES ('instance', lower(hex(randomblob(8))));"
	"CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta"
	" BEGIN SELECT RAISE(ABORT, 'meta is written once'); END;"
	"CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta"
	" BEGIN SELECT RAISE(ABORT, 'meta is written once'); END;",

	/* 6: a job's next attempt in milliseconds (a backoff of 250 ms is
	 * waited, not rounded to no wait or to a second). */
	"UPDATE jobs SET next_at = next_at * 1000;",

	/*
	 * 7: waiting jobs by transport and recipient, in the order a
	 * per-recipient summary reads them (metrics, alerts, qshape): a scrape
	 * with 100,000 waiting jobs walks this index instead of sorting the
	 * table.
	 */
	"CREATE INDEX jobs_waiting ON jobs(state, transport, recipient_id, created_at,"
	" sent_at);",
	/* 8: forward-secure sealing (src/seal.c, docs/disclosure-log.md).
	 * The audit log gets a hash chain like the disclosure log's (the rows
	 * already there are chained by migration_8_after, which also puts the
	 * audit log's UPDATE trigger back); each entry of both gets a mac made
	 * with the sealing key of its epoch; the seals of the epochs, and the
	 * range of entries each covers, are append-only. */
	"DROP TRIGGER audit_no_update;"
	"ALTER TABLE audit ADD COLUMN prev_hash TEXT;"
	"ALTER TABLE audit ADD COLUMN hash TEXT;"
	"ALTER TABLE audit ADD COLUMN mac TEXT;"
	"ALTER TABLE disclosures ADD COLUMN mac TEXT;"
	"CREATE TABLE seals (epoch INTEGER PRIMARY KEY, start_at INTEGER NOT NULL,"
	" end_at INTEGER NOT NULL, prev_seal TEXT NOT NULL, seal TEXT NOT NULL);"
	"CREATE TABLE seal_ranges (epoch INTEGER NOT NULL, name TEXT NOT NULL,"
	" first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, head TEXT NOT NULL,"
	" PRIMARY KEY (epoch, name));"
	"CREATE TRIGGER seals_no_update BEFORE UPDATE ON seals"
	" BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;"
	"CREATE TRIGGER seals_no_delete BEFORE DELETE ON seals"
	" BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;"
	"CREATE TRIGGER seal_ranges_no_update BEFORE UPDATE ON seal_ranges"
	" BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;"
	"CREATE TRIGGER seal_ranges_no_delete BEFORE DELETE ON seal_ranges"
	" BEGIN SELECT RAISE(ABORT, 'seals are append-only'); END;",

	/*
	 * 9: the privacy officer's records (docs/accounting.md), sealed like
	 * the disclosure log: accounting suspensions of 164.528(a)(2), one
	 * row per request (action "suspend") and one per early end ("end",
	 * ref = the suspension's seq); never edited.  An index for the
	 * accounting of one patient's accountable entries.
	 */
	"CREATE TABLE suspensions (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" action TEXT NOT NULL, ref INTEGER, agency TEXT, mrn TEXT, oral INTEGER,"
	" until_at INTEGER, actor TEXT, note TEXT,"
	" prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT);"
	"CREATE TRIGGER suspensions_no_update BEFORE UPDATE ON suspensions"
	" BEGIN SELECT RAISE(ABORT, 'suspensions are append-only'); END;"
	"CREATE TRIGGER suspensions_no_delete BEFORE DELETE ON suspensions"
	" BEGIN SELECT RAISE(ABORT, 'suspensions are append-only'); END;"
	"CREATE INDEX disclosures_accounting ON disclosures(mrn, accountable, job_id, seq);"
	/* Incidents (a misdirected fax, ...) and their four-factor risk
	 * assessments (164.402(2)), sealed; an assessment is never edited, a
	 * new one supersedes it. */
	"CREATE TABLE incidents (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" kind TEXT NOT NULL, job_id INTEGER NOT NULL, note TEXT, actor TEXT,"
	" discovered_at INTEGER NOT NULL, disclosures TEXT, recipient_id TEXT,"
	" containment TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT);"
	"CREATE TRIGGER incidents_no_update BEFORE UPDATE ON incidents"
	" BEGIN SELECT RAISE(ABORT, 'incidents are append-only'); END;"
	"CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents"
	" BEGIN SELECT RAISE(ABORT, 'incidents are append-only'); END;"
	"CREATE TABLE assessments (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" incident INTEGER NOT NULL, nature TEXT, unauthorized_person TEXT,"
	" acquired_viewed TEXT, mitigation TEXT, determination TEXT NOT NULL,"
	" actor TEXT, supersedes INTEGER,"
	" prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT);"
	"CREATE TRIGGER assessments_no_update BEFORE UPDATE ON assessments"
	" BEGIN SELECT RAISE(ABORT, 'assessments are append-only'); END;"
	"CREATE TRIGGER assessments_no_delete BEFORE DELETE ON assessments"
	" BEGIN SELECT RAISE(ABORT, 'assessments are append-only'); END;",

	/*
	 * 10: retention (src/retention.c, docs/disclosure-log.md).  Records
	 * older than [retention] records are removed only by roictl prune,
	 * under a sealed prune record written first: for each sealed table
	 * the last entry removed (always the last entry of a sealed epoch),
	 * that epoch, and the chain hash there, so that what remains still
	 * verifies from the cut on.  Prune records themselves are never
	 * removed.
	 */
	"CREATE TABLE prunes (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
	" actor TEXT, before_at INTEGER NOT NULL, cuts TEXT NOT NULL,"
	" prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT);"
	"CREATE TRIGGER prunes_no_update BEFORE UPDATE ON prunes"
	" BEGIN SELECT RAISE(ABORT, 'prune records are append-only'); END;"
	"CREATE TRIGGER prunes_no_delete BEFORE DELETE ON prunes"
	" BEGIN SELECT RAISE(ABORT, 'prune records are append-only'); END;",

	/*
	 * 11: the waiting jobs by age, so that `roictl status` finds the
	 * oldest in one step of an index instead of walking every waiting
	 * job (200,000 after an outage took 15 ms a request).  Partial: it
	 * holds only the waiting jobs, and costs nothing for the finished.
	 */
	"CREATE INDEX jobs_waiting_age ON jobs(created_at)"
	" WHERE state IN ('queued', 'deferred');",

	/*
	 * 12: request deadlines (src/requests.c, docs/requests.md).  The one
	 * 30-day extension of a patient's access request (164.524(b)(2)),
	 * sealed; the unique index keeps it to one.
	 */
	"CREATE TABLE request_extensions (seq INTEGER PRIMARY KEY,"
	" at INTEGER NOT NULL, request_id TEXT NOT NULL, reason TEXT NOT NULL,"
	" actor TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT);"
	"CREATE UNIQUE INDEX request_extensions_once ON request_extensions(request_id);"
	"CREATE TRIGGER request_extensions_no_update BEFORE UPDATE ON request_extensions"
	" BEGIN SELECT RAISE(ABORT, 'extensions are append-only'); END;"
	"CREATE TRIGGER request_extensions_no_delete BEFORE DELETE ON request_extensions"
	" BEGIN SELECT RAISE(ABORT, 'extensions are append-only'); END;"
	/* The open requests are found among the requests with a job not
	 * delivered (few), not by grouping every job: status asks for the
	 * oldest on each request. */
	"CREATE INDEX jobs_request ON jobs(request_ref);"
	"CREATE INDEX jobs_request_undelivered ON jobs(request_ref)"
	" WHERE state <> 'delivered';",

	/*
	 * 13: the oldest open request for `roictl status` by one walk of an
	 * index from the oldest undelivered job's request (its received_on,
	 * YYYY-MM-DD as the manifest parser insists, read from the job's own
	 * manifest), not by reading the manifest of every open request
	 * (200,000 waiting took 2.2 s a status).
	 */
	"ALTER TABLE jobs ADD COLUMN request_received_on TEXT GENERATED ALWAYS"
	" AS (json_extract(manifest, '$.request.received_on')) VIRTUAL;"
	"CREATE INDEX jobs_request_age ON jobs(request_received_on)"
	" WHERE state <> 'delivered' AND request_ref IS NOT NULL;",
};
#define SCHEMA_VERSION	((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const state_names[JOB_NSTATES] = {
	[JOB_QUEUED] = "queued", [JOB_RENDERING] = "rendering",
	[JOB_SENDING] = "sending", [JOB_AWAITING] = "awaiting_confirmation",
	[JOB_DEFERRED] = "deferred", [JOB_DELIVERED] = "delivered",
	[JOB_FAILED] = "failed", [JOB_HELD] = "held", [JOB_CANCELLED] = "cancelled",
};

const char *
job_state_name(enum job_state s)
{
	return (unsigned)s < JOB_NSTATES ? state_names[s] : "unknown";
}

int
job_state_parse(const char *s, enum job_state *out)
{
	for (int i = 0; i < JOB_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (enum job_state)i;
			return 0;
		}
	return -1;
}

int
job_state_final(enum job_state s)
{
	return s == JOB_DELIVERED || s == JOB_FAILED || s == JOB_CANCELLED;
}

static char *
dupcol(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? xstrdup((const char *)t) : NULL;
}

static void
seterr(struct store *s)
{
	strlcpy_(s->err, sqlite3_errmsg(s->db), sizeof(s->err));
	s->code = sqlite3_errcode(s->db) & 0xff;
}

int
store_temporary_error(struct store *s)
{
	return s->code == SQLITE_BUSY || s->code == SQLITE_LOCKED ||
	    s->code == SQLITE_FULL || s->code == SQLITE_IOERR ||
	    s->code == SQLITE_CANTOPEN || s->code == SQLITE_NOMEM;
}

const char *
store_errmsg(struct store *s)
{
	return s->err;
}

static int
exec(struct store *s, const char *sql)
{
	char	*msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		strlcpy_(s->err, msg ? msg : "unknown error", sizeof(s->err));
		s->code = sqlite3_errcode(s->db) & 0xff;
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
prep(struct store *s, const char *sql)
{
	sqlite3_stmt	*st = NULL;

	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK) {
		seterr(s);
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows; finalize it. */
static int
step_done(struct store *s, sqlite3_stmt *st)
{
	int	rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int
store_schema_version(struct store *s)
{
	sqlite3_stmt	*st = prep(s, "PRAGMA user_version");
	int		 v = -1;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int	migration_8_after(struct store *);

static int
store_migrate(struct store *s)
{
	char	sql[64];
	int	v = store_schema_version(s);

	if (v < 0)
		return -1;
	if (v > SCHEMA_VERSION) {
		snprintf(s->err, sizeof(s->err), "the database has schema version %d, "
		    "newer than this roigated (%d): upgrade roigated", v,
		    SCHEMA_VERSION);
		return -1;
	}
	for (; v < SCHEMA_VERSION; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec(s, "BEGIN IMMEDIATE") == -1)
			return -1;
		if (exec(s, migrations[v]) == -1 ||
		    (v + 1 == 8 && migration_8_after(s) == -1) ||
		    exec(s, sql) == -1 || exec(s, "COMMIT") == -1) {
			char saved[sizeof(s->err)];
			strlcpy_(saved, s->err, sizeof(saved));
			exec(s, "ROLLBACK");
			snprintf(s->err, sizeof(s->err), "migration to schema %d: %.400s",
			    v + 1, saved);
			return -1;
		}
		log_info("database schema migrated to version %d", v + 1);
	}
	s->version = v;
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store	*s = xcalloc(1, sizeof(*s));
	int		 fd;

	/* Created 0600 before SQLite sees it: the file holds PHI. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
		bsnprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(s);
		return NULL;
	}
	close(fd);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		bsnprintf(err, errlen, "%s: %s", path, s->db ?
		    sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	/* Short: the daemon's one thread must keep answering while another
	 * process holds the database; a busy write is retried later. */
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
	if (exec(s, "PRAGMA journal_mode=WAL") == -1 ||
	    exec(s, "PRAGMA synchronous=FULL") == -1 ||
	    exec(s, "PRAGMA foreign_keys=ON") == -1 || store_migrate(s) == -1) {
		bsnprintf(err, errlen, "%s: %s", path, s->err);
		goto fail;
	}
	return s;
fail:
	sqlite3_close(s->db);
	free(s);
	return NULL;
}

int
store_quick_check(struct store *s, char *why, size_t whylen)
{
	sqlite3_stmt	*st = prep(s, "PRAGMA quick_check(5)");
	const char	*v;
	struct buf	 b;
	int		 rc, rv;

	if (st == NULL) {
		bsnprintf(why, whylen, "%.300s", s->err);
		return -1;
	}
	buf_init(&b);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((v = (const char *)sqlite3_column_text(st, 0)) != NULL &&
		    strcmp(v, "ok") != 0)
			buf_printf(&b, "%s%.200s", b.len ? "; " : "", v);
	if (rc != SQLITE_DONE)
		buf_printf(&b, "%s%.200s", b.len ? "; " : "", sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	rv = b.len ? -1 : 0;
	if (rv == -1)
		bsnprintf(why, whylen, "%s", buf_cstr(&b));
	buf_free(&b);
	return rv;
}

int
store_instance_id(struct store *s, char out[STORE_INSTANCE_LEN + 1])
{
	sqlite3_stmt	*st = prep(s, "SELECT value FROM meta WHERE name = 'instance'");
	const char	*v;
	int		 rv = -1;

	if (st && sqlite3_step(st) == SQLITE_ROW &&
	    (v = (const char *)sqlite3_column_text(st, 0)) != NULL &&
	    strlen(v) == STORE_INSTANCE_LEN && strspn(v, "0123456789abcdef") ==
	    STORE_INSTANCE_LEN) {
		memcpy(out, v, STORE_INSTANCE_LEN + 1);
		rv = 0;
	} else if (st)
		snprintf(s->err, sizeof(s->err), "the database has no valid instance id");
	sqlite3_finalize(st);
	return rv;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
}

int
store_begin(struct store *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

int
store_commit(struct store *s)
{
	return exec(s, "COMMIT");
}

int
store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return 0;
	return exec(s, "ROLLBACK");
}

int
store_next_job_id(struct store *s, int64_t *id)
{
	sqlite3_stmt	*st;
	int		 rv = -1;

	st = prep(s, "UPDATE counters SET value = value + 1 WHERE name = 'job_id' "
	    "RETURNING value");
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		rv = 0;
	} else if (st)
		seterr(s);
	sqlite3_finalize(st);
	return rv;
}

int
store_reserve_job_id(struct store *s, int64_t *id)
{
	if (store_begin(s) == -1)
		return -1;
	if (store_next_job_id(s, id) == 0 && store_commit(s) == 0)
		return 0;
	store_rollback(s);
	return -1;
}

int
store_job_manifest(struct store *s, int64_t id, char **text)
{
	sqlite3_stmt	*st = prep(s, "SELECT manifest FROM jobs WHERE id = ?");
	int		 rc;

	*text = NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*text = dupcol(st, 0);
	else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int
add_event(struct store *s, int64_t id, const char *from, const char *to,
    const char *actor, const char *reason)
{
	sqlite3_stmt	*st = prep(s, "INSERT INTO job_events (job_id, at, "
	    "from_state, to_state, actor, reason) VALUES (?, ?, ?, ?, ?, ?)");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_wall());
	bind_text(st, 3, from);
	bind_text(st, 4, to);
	bind_text(st, 5, actor);
	bind_text(st, 6, reason);
	return step_done(s, st);
}

int
store_job_insert(struct store *s, const struct job *j, const char *actor,
    const char *reason)
{
	sqlite3_stmt	*st = prep(s, "INSERT INTO jobs (id, packet_id, state, "
	    "transport, recipient_id, mrn, patient_name, request_ref, source, "
	    "manifest, created_at, updated_at, next_at, attempts, pages) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, j->id);
	bind_text(st, 2, j->packet_id);
	bind_text(st, 3, job_state_name(j->state));
	bind_text(st, 4, j->transport);
	bind_text(st, 5, j->recipient_id);
	bind_text(st, 6, j->mrn);
	bind_text(st, 7, j->patient_name);
	bind_text(st, 8, j->request_ref);
	bind_text(st, 9, j->source);
	bind_text(st, 10, j->manifest);
	sqlite3_bind_int64(st, 11, j->created_at);
	sqlite3_bind_int64(st, 12, j->updated_at);
	sqlite3_bind_int64(st, 13, j->next_at);
	sqlite3_bind_int(st, 14, j->attempts);
	sqlite3_bind_int(st, 15, j->pages);
	if (step_done(s, st) == -1 ||
	    add_event(s, j->id, NULL, "accepted", actor, reason) == -1 ||
	    add_event(s, j->id, "accepted", job_state_name(j->state), actor,
	    reason) == -1)
		return -1;
	return 0;
}

#define JOB_COLS "id, packet_id, state, transport, recipient_id, mrn, " \
	"patient_name, request_ref, source, manifest, created_at, updated_at, " \
	"next_at, attempts, last_error, remote_id, output_sha256, pages, sent_at"

static void
job_row(sqlite3_stmt *st, struct job *j)
{
	enum job_state	state = JOB_QUEUED;

	memset(j, 0, sizeof(*j));
	j->id = sqlite3_column_int64(st, 0);
	j->packet_id = dupcol(st, 1);
	job_state_parse((const char *)sqlite3_column_text(st, 2), &state);
	j->state = state;
	j->transport = dupcol(st, 3);
	j->recipient_id = dupcol(st, 4);
	j->mrn = dupcol(st, 5);
	j->patient_name = dupcol(st, 6);
	j->request_ref = dupcol(st, 7);
	j->source = dupcol(st, 8);
	j->manifest = dupcol(st, 9);
	j->created_at = sqlite3_column_int64(st, 10);
	j->updated_at = sqlite3_column_int64(st, 11);
	j->next_at = sqlite3_column_int64(st, 12);
	j->attempts = sqlite3_column_int(st, 13);
	j->last_error = dupcol(st, 14);
	j->remote_id = dupcol(st, 15);
	j->output_sha256 = dupcol(st, 16);
	j->pages = sqlite3_column_int(st, 17);
	j->sent_at = sqlite3_column_int64(st, 18);
}

void
job_free(struct job *j)
{
	free(j->packet_id);
	free(j->transport);
	free(j->recipient_id);
	free(j->mrn);
	free(j->patient_name);
	free(j->request_ref);
	free(j->source);
	free(j->manifest);
	free(j->last_error);
	free(j->remote_id);
	free(j->output_sha256);
	memset(j, 0, sizeof(*j));
}

int
store_job_get(struct store *s, int64_t id, struct job *j)
{
	sqlite3_stmt	*st = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ?");
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job_row(st, j);
	else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_job_exists(struct store *s, int64_t id)
{
	sqlite3_stmt	*st = prep(s, "SELECT 1 FROM jobs WHERE id = ?");
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_job_by_packet(struct store *s, const char *packet_id, int64_t *id,
    int64_t *created_at)
{
	sqlite3_stmt	*st = prep(s, "SELECT id, created_at FROM jobs "
	    "WHERE packet_id = ?");
	int		 rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, packet_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*created_at = sqlite3_column_int64(st, 1);
	} else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_job_set_state(struct store *s, int64_t id, enum job_state to,
    const struct job_update *u, const char *actor, const char *reason)
{
	struct job	 old;
	sqlite3_stmt	*st;
	int64_t		 now = now_wall();
	int		 rv;

	if ((rv = store_job_get(s, id, &old)) != 1) {
		if (rv == 0)
			snprintf(s->err, sizeof(s->err), "no job %lld", (long long)id);
		return -1;
	}
	st = prep(s, "UPDATE jobs SET state = ?, updated_at = ?,"
	    " next_at = CASE WHEN ?3 >= 0 THEN ?3 ELSE next_at END,"
	    " attempts = CASE WHEN ?4 >= 0 THEN ?4 ELSE attempts END,"
	    " last_error = COALESCE(?5, last_error),"
	    " remote_id = COALESCE(?6, remote_id),"
	    " output_sha256 = COALESCE(?7, output_sha256),"
	    " pages = CASE WHEN ?8 >= 0 THEN ?8 ELSE pages END,"
	    " sent_at = CASE WHEN ?9 >= 0 THEN ?9 ELSE sent_at END,"
	    " delivered_at = CASE WHEN ?1 = 'delivered' THEN ?2 ELSE delivered_at END"
	    " WHERE id = ?10");
	if (st == NULL) {
		job_free(&old);
		return -1;
	}
	bind_text(st, 1, job_state_name(to));
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, u ? u->next_at : -1);
	sqlite3_bind_int(st, 4, u ? u->attempts : -1);
	bind_text(st, 5, u ? u->last_error : NULL);
	bind_text(st, 6, u ? u->remote_id : NULL);
	bind_text(st, 7, u ? u->output_sha256 : NULL);
	sqlite3_bind_int(st, 8, u ? u->pages : -1);
	sqlite3_bind_int64(st, 9, u ? u->sent_at : -1);
	sqlite3_bind_int64(st, 10, id);
	rv = step_done(s, st);
	if (rv == 0)
		rv = add_event(s, id, job_state_name(old.state), job_state_name(to),
		    actor, reason);
	job_free(&old);
	return rv;
}

static int
jobs_query(struct store *s, sqlite3_stmt *st, store_job_cb cb, void *arg)
{
	struct job	j;
	int		rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		job_row(st, &j);
		int stop = cb(&j, arg);
		job_free(&j);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		seterr(s);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

#define DUE_STATES "('queued', 'deferred', 'awaiting_confirmation')"

int
store_jobs_due(struct store *s, int64_t now, int limit, store_job_cb cb,
    void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE state IN "
	    DUE_STATES " AND next_at <= ? ORDER BY next_at, id LIMIT ?");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, limit);
	return jobs_query(s, st, cb, arg);
}

int
store_job_set_next(struct store *s, int64_t id, int64_t next_at)
{
	sqlite3_stmt	*st = prep(s, "UPDATE jobs SET next_at = ? WHERE id = ?");
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, next_at);
	sqlite3_bind_int64(st, 2, id);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_job_due_for(struct store *s, int64_t now, const char *recipient_id,
    const char *transport, int awaiting, int64_t *id)
{
	sqlite3_stmt	*st = prep(s, awaiting ?
	    "SELECT id FROM jobs WHERE state = 'awaiting_confirmation' AND "
	    "recipient_id = ? AND transport = ? AND next_at <= ? "
	    "ORDER BY next_at, id LIMIT 1" :
	    "SELECT id FROM jobs WHERE state IN "
	    "('queued', 'deferred') AND recipient_id = ? AND transport = ? AND "
	    "next_at <= ? ORDER BY next_at, id LIMIT 1");
	int		 rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, recipient_id);
	bind_text(st, 2, transport);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_next_due(struct store *s, int64_t *at)
{
	sqlite3_stmt	*st = prep(s, "SELECT MIN(next_at) FROM jobs WHERE state IN "
	    DUE_STATES);
	int		 rv = -1;

	if (st == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		rv = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : 1;
		*at = sqlite3_column_int64(st, 0);
	} else
		seterr(s);
	sqlite3_finalize(st);
	return rv;
}

int
store_jobs_in_state(struct store *s, enum job_state state, store_job_cb cb,
    void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE state = ? "
	    "ORDER BY id");

	if (st == NULL)
		return -1;
	bind_text(st, 1, job_state_name(state));
	return jobs_query(s, st, cb, arg);
}

int
store_jobs_list(struct store *s, int state, const char *transport, int limit,
    store_job_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT " JOB_COLS " FROM jobs"
	    " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR transport = ?2)"
	    " ORDER BY id DESC LIMIT ?3");

	if (st == NULL)
		return -1;
	bind_text(st, 1, state >= 0 ? job_state_name((enum job_state)state) : NULL);
	bind_text(st, 2, transport);
	sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
	return jobs_query(s, st, cb, arg);
}

/* The submitter of a job; jobs from the spool have none. */
int
store_job_set_submitter(struct store *s, int64_t id, int64_t uid)
{
	sqlite3_stmt	*st = prep(s, "UPDATE jobs SET submit_uid = ? WHERE id = ?");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	sqlite3_bind_int64(st, 2, id);
	return step_done(s, st);
}

int
store_job_submitted_by(struct store *s, int64_t id, int64_t uid)
{
	sqlite3_stmt	*st = prep(s, "SELECT 1 FROM jobs WHERE id = ? AND "
	    "submit_uid = ?");
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_jobs_list_by(struct store *s, int64_t uid, int state,
    const char *transport, int limit, store_job_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT " JOB_COLS " FROM jobs"
	    " WHERE submit_uid = ?4 AND (?1 IS NULL OR state = ?1)"
	    " AND (?2 IS NULL OR transport = ?2) ORDER BY id DESC LIMIT ?3");

	if (st == NULL)
		return -1;
	bind_text(st, 1, state >= 0 ? job_state_name((enum job_state)state) : NULL);
	bind_text(st, 2, transport);
	sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
	sqlite3_bind_int64(st, 4, uid);
	return jobs_query(s, st, cb, arg);
}

int
store_job_events(struct store *s, int64_t id, store_event_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT at, from_state, to_state, actor, reason "
	    "FROM job_events WHERE job_id = ? ORDER BY id");
	struct job_event e;
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.at = sqlite3_column_int64(st, 0);
		e.from_state = dupcol(st, 1);
		e.to_state = dupcol(st, 2);
		e.actor = dupcol(st, 3);
		e.reason = dupcol(st, 4);
		int stop = cb(&e, arg);
		free(e.from_state);
		free(e.to_state);
		free(e.actor);
		free(e.reason);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_redactions_set(struct store *s, int64_t job_id, int attempt,
    const struct store_redaction *r, size_t n)
{
	sqlite3_stmt	*del = prep(s, "DELETE FROM redactions WHERE job_id = ?");
	sqlite3_stmt	*ins = NULL;
	int		 rc;

	if (del == NULL)
		return -1;
	sqlite3_bind_int64(del, 1, job_id);
	rc = sqlite3_step(del);
	sqlite3_finalize(del);
	if (rc != SQLITE_DONE || (ins = prep(s, "INSERT INTO redactions (job_id, "
	    "attempt, doc, page, x, y, w, h, pattern) VALUES (?, ?, ?, ?, ?, ?, ?, "
	    "?, ?)")) == NULL) {
		if (rc != SQLITE_DONE)
			seterr(s);
		return -1;
	}
	rc = SQLITE_DONE;
	for (size_t i = 0; rc == SQLITE_DONE && i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, job_id);
		sqlite3_bind_int(ins, 2, attempt);
		sqlite3_bind_int(ins, 3, r[i].doc);
		sqlite3_bind_int(ins, 4, r[i].page);
		sqlite3_bind_double(ins, 5, r[i].x);
		sqlite3_bind_double(ins, 6, r[i].y);
		sqlite3_bind_double(ins, 7, r[i].w);
		sqlite3_bind_double(ins, 8, r[i].h);
		sqlite3_bind_text(ins, 9, r[i].pattern, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(ins);
	}
	if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(ins);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_job_redactions(struct store *s, int64_t job_id, store_redaction_cb cb,
    void *arg)
{
	sqlite3_stmt		*st = prep(s, "SELECT attempt, doc, page, x, y, w, h, "
	    "pattern FROM redactions WHERE job_id = ? ORDER BY rowid");
	struct store_redaction	 r;
	int			 rc, attempt;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, job_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		attempt = sqlite3_column_int(st, 0);
		r.doc = sqlite3_column_int(st, 1);
		r.page = sqlite3_column_int(st, 2);
		r.x = sqlite3_column_double(st, 3);
		r.y = sqlite3_column_double(st, 4);
		r.w = sqlite3_column_double(st, 5);
		r.h = sqlite3_column_double(st, 6);
		strlcpy_(r.pattern, (const char *)sqlite3_column_text(st, 7) ?
		    (const char *)sqlite3_column_text(st, 7) : "", sizeof(r.pattern));
		if (cb(&r, attempt, arg))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
count_rows(struct store *s, const char *sql, struct store_count **out,
    size_t *n)
{
	sqlite3_stmt	*st = prep(s, sql);
	int		 rc;

	*out = NULL;
	*n = 0;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = xreallocarray(*out, *n + 1, sizeof(**out));
		(*out)[*n].key = dupcol(st, 0);
		(*out)[*n].count = sqlite3_column_int64(st, 1);
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A count or time (never negative); 0 if no row, -1 on error. */
static int64_t
scalar(struct store *s, const char *sql, int64_t bind)
{
	sqlite3_stmt	*st = prep(s, sql);
	int64_t		 v = 0;
	int		 rc;

	if (st == NULL)
		return -1;
	if (sqlite3_bind_parameter_count(st) > 0)
		sqlite3_bind_int64(st, 1, bind);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE) {
		seterr(s);
		v = -1;
	}
	sqlite3_finalize(st);
	return v;
}

static int
collect_error(const struct job *j, void *arg)
{
	struct store_status	*out = arg;
	struct job		*c;

	out->last_errors = xreallocarray(out->last_errors, out->nlast_errors + 1,
	    sizeof(*out->last_errors));
	c = &out->last_errors[out->nlast_errors++];
	memset(c, 0, sizeof(*c));
	c->id = j->id;
	c->state = j->state;
	c->last_error = xstrdup(j->last_error ? j->last_error : "");
	c->updated_at = j->updated_at;
	c->transport = xstrdup(j->transport ? j->transport : "");
	return 0;
}

int
store_status_counts(struct store *s, struct store_status *out)
{
	memset(out, 0, sizeof(*out));
	/* Every state is counted by the (state, next_at) index. */
	if (count_rows(s, "SELECT state, COUNT(*) FROM jobs GROUP BY state",
	    &out->by_state, &out->nby_state) == -1 ||
	    count_rows(s, "SELECT transport, COUNT(*) FROM jobs WHERE state NOT IN "
	    "('delivered', 'failed', 'cancelled') GROUP BY transport",
	    &out->by_transport, &out->nby_transport) == -1)
		return -1;
	return 0;
}

int
store_status(struct store *s, int64_t now, struct store_status *out)
{
	if (store_status_counts(s, out) == -1)
		return -1;
	return store_status_recent(s, now, out);
}

int
store_status_recent(struct store *s, int64_t now, struct store_status *out)
{
	sqlite3_stmt	*st;

	/* Each by an index: the oldest waiting job is the first entry of
	 * jobs_waiting_age (named, or SQLite walks jobs_waiting instead), the
	 * last hour a range of jobs_delivered, the errors the last five of
	 * jobs_errors. */
	out->oldest_queued_at = scalar(s, "SELECT COALESCE(MIN(created_at), 0) "
	    "FROM jobs INDEXED BY jobs_waiting_age WHERE state IN ('queued', "
	    "'deferred')", 0);
	out->delivered_last_hour = scalar(s, "SELECT COUNT(*) FROM jobs WHERE "
	    "delivered_at >= ?", now - 3600);
	if (out->oldest_queued_at == -1 || out->delivered_last_hour == -1)
		return -1;
	st = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE last_error IS NOT NULL "
	    "AND last_error <> '' ORDER BY updated_at DESC LIMIT 5");
	if (st == NULL || jobs_query(s, st, collect_error, out) == -1)
		return -1;
	return 0;
}

void
store_status_free(struct store_status *st)
{
	for (size_t i = 0; i < st->nby_state; i++)
		free(st->by_state[i].key);
	for (size_t i = 0; i < st->nby_transport; i++)
		free(st->by_transport[i].key);
	for (size_t i = 0; i < st->nlast_errors; i++)
		job_free(&st->last_errors[i]);
	free(st->by_state);
	free(st->by_transport);
	free(st->last_errors);
	memset(st, 0, sizeof(*st));
}

/* Recipients. */

#define RCPT_COLS "id, name, organization, transport, address, params, " \
	"verified, verified_by, verified_at, disabled, created_at"

static void
recipient_row(sqlite3_stmt *st, struct recipient *r)
{
	r->id = dupcol(st, 0);
	r->name = dupcol(st, 1);
	r->organization = dupcol(st, 2);
	r->transport = dupcol(st, 3);
	r->address = dupcol(st, 4);
	r->params = dupcol(st, 5);
	r->verified = sqlite3_column_int(st, 6);
	r->verified_by = dupcol(st, 7);
	r->verified_at = sqlite3_column_int64(st, 8);
	r->disabled = sqlite3_column_int(st, 9);
	r->created_at = sqlite3_column_int64(st, 10);
}

void
recipient_free(struct recipient *r)
{
	free(r->id);
	free(r->name);
	free(r->organization);
	free(r->transport);
	free(r->address);
	free(r->params);
	free(r->verified_by);
	memset(r, 0, sizeof(*r));
}

int
store_recipient_add(struct store *s, const struct recipient *r)
{
	sqlite3_stmt	*st = prep(s, "INSERT INTO recipients (id, name, organization,"
	    " transport, address, params, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");

	if (st == NULL)
		return -1;
	bind_text(st, 1, r->id);
	bind_text(st, 2, r->name);
	bind_text(st, 3, r->organization);
	bind_text(st, 4, r->transport);
	bind_text(st, 5, r->address);
	bind_text(st, 6, r->params ? r->params : "{}");
	sqlite3_bind_int64(st, 7, now_wall());
	return step_done(s, st);
}

int
store_recipient_update(struct store *s, const struct recipient *r)
{
	sqlite3_stmt	*st = prep(s, "UPDATE recipients SET name = ?, organization = ?,"
	    " transport = ?, address = ?, params = ?, verified = 0, verified_by = NULL,"
	    " verified_at = 0 WHERE id = ?");

	if (st == NULL)
		return -1;
	bind_text(st, 1, r->name);
	bind_text(st, 2, r->organization);
	bind_text(st, 3, r->transport);
	bind_text(st, 4, r->address);
	bind_text(st, 5, r->params ? r->params : "{}");
	bind_text(st, 6, r->id);
	if (step_done(s, st) == -1)
		return -1;
	return sqlite3_changes(s->db) == 1 ? 0 : -1;
}

int
store_recipient_get(struct store *s, const char *id, struct recipient *r)
{
	sqlite3_stmt	*st = prep(s, "SELECT " RCPT_COLS " FROM recipients WHERE id = ?");
	int		 rc;

	memset(r, 0, sizeof(*r));
	if (st == NULL)
		return -1;
	bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		recipient_row(st, r);
	else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_recipient_list(struct store *s, store_recipient_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT " RCPT_COLS " FROM recipients ORDER BY id");
	struct recipient r;
	int		 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		recipient_row(st, &r);
		int stop = cb(&r, arg);
		recipient_free(&r);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
recipient_set(struct store *s, const char *sql, const char *id, int flag,
    const char *by, int64_t at)
{
	sqlite3_stmt	*st = prep(s, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, flag);
	bind_text(st, 2, id);
	if (sqlite3_bind_parameter_count(st) > 2) {
		bind_text(st, 3, by);
		sqlite3_bind_int64(st, 4, at);
	}
	if (step_done(s, st) == -1)
		return -1;
	if (sqlite3_changes(s->db) != 1) {
		snprintf(s->err, sizeof(s->err), "no recipient %.64s", id);
		return -1;
	}
	return 0;
}

int
store_recipient_set_verified(struct store *s, const char *id, int verified,
    const char *by, int64_t at)
{
	return recipient_set(s, "UPDATE recipients SET verified = ?1, "
	    "verified_by = ?3, verified_at = ?4 WHERE id = ?2", id, verified, by, at);
}

int
store_recipient_set_disabled(struct store *s, const char *id, int disabled)
{
	return recipient_set(s, "UPDATE recipients SET disabled = ?1 WHERE id = ?2",
	    id, disabled, NULL, 0);
}

/* The disclosure log. */

#define DISC_COLS "seq, at, job_id, packet_id, mrn, patient_name, recipient_id, " \
	"recipient_name, recipient_address, description, purpose, basis, " \
	"authorization_id, transport, remote_id, outcome, detail, pages, " \
	"output_sha256, accountable, prev_hash, hash"

int
store_disclosure_last(struct store *s, int64_t *seq, char hash[65])
{
	return store_sealed_last(s, STORE_SEALED_DISCLOSURES, seq, hash);
}

int
store_disclosure_insert(struct store *s, const struct disclosure *d)
{
	sqlite3_stmt	*st = prep(s, "INSERT INTO disclosures (" DISC_COLS ", mac) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
	    " ?, ?)");
	const char	*text[] = { d->packet_id, d->mrn, d->patient_name,
	    d->recipient_id, d->recipient_name, d->recipient_address,
	    d->description, d->purpose, d->basis, d->authorization_id,
	    d->transport, d->remote_id, d->outcome, d->detail };
	char		 mac[65];

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, d->seq);
	sqlite3_bind_int64(st, 2, d->at);
	sqlite3_bind_int64(st, 3, d->job_id);
	for (int i = 0; i < 14; i++)
		bind_text(st, 4 + i, text[i] ? text[i] : "");
	sqlite3_bind_int(st, 18, d->pages);
	bind_text(st, 19, d->output_sha256 ? d->output_sha256 : "");
	sqlite3_bind_int(st, 20, d->accountable);
	bind_text(st, 21, d->prev_hash);
	bind_text(st, 22, d->hash);
	if (s->sealer) {
		s->sealer(d->hash, mac, s->sealer_arg);
		bind_text(st, 23, mac);
	}
	return step_done(s, st);
}

static void
disclosure_row(sqlite3_stmt *st, struct disclosure *d)
{
	char	**text[] = { &d->packet_id, &d->mrn, &d->patient_name,
	    &d->recipient_id, &d->recipient_name, &d->recipient_address,
	    &d->description, &d->purpose, &d->basis, &d->authorization_id,
	    &d->transport, &d->remote_id, &d->outcome, &d->detail };
	const unsigned char *h;

	memset(d, 0, sizeof(*d));
	d->seq = sqlite3_column_int64(st, 0);
	d->at = sqlite3_column_int64(st, 1);
	d->job_id = sqlite3_column_int64(st, 2);
	for (int i = 0; i < 14; i++)
		*text[i] = dupcol(st, 3 + i);
	d->pages = sqlite3_column_int(st, 17);
	d->output_sha256 = dupcol(st, 18);
	d->accountable = sqlite3_column_int(st, 19);
	if ((h = sqlite3_column_text(st, 20)) != NULL)
		strlcpy_(d->prev_hash, (const char *)h, sizeof(d->prev_hash));
	if ((h = sqlite3_column_text(st, 21)) != NULL)
		strlcpy_(d->hash, (const char *)h, sizeof(d->hash));
}

void
disclosure_free(struct disclosure *d)
{
	char	*text[] = { d->packet_id, d->mrn, d->patient_name, d->recipient_id,
	    d->recipient_name, d->recipient_address, d->description, d->purpose,
	    d->basis, d->authorization_id, d->transport, d->remote_id, d->outcome,
	    d->detail, d->output_sha256 };

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		free(text[i]);
	memset(d, 0, sizeof(*d));
}

int
store_disclosure_iter(struct store *s, const struct disclosure_filter *f,
    store_disclosure_cb cb, void *arg)
{
	sqlite3_stmt		*st = prep(s, "SELECT " DISC_COLS " FROM disclosures"
	    " WHERE (?1 IS NULL OR mrn = ?1) AND (?2 IS NULL OR recipient_id = ?2)"
	    " AND (?3 = 0 OR at >= ?3) AND (?4 = 0 OR at < ?4)"
	    " AND (?5 = 0 OR job_id = ?5) ORDER BY seq");
	struct disclosure	 d;
	int			 rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, f ? f->mrn : NULL);
	bind_text(st, 2, f ? f->recipient_id : NULL);
	sqlite3_bind_int64(st, 3, f ? f->since : 0);
	sqlite3_bind_int64(st, 4, f ? f->until : 0);
	sqlite3_bind_int64(st, 5, f ? f->job_id : 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		disclosure_row(st, &d);
		int stop = cb(&d, arg);
		disclosure_free(&d);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_disclosure_guarded(struct store *s)
{
	static const struct { const char *name, *sql; } want[] = {
		{ "disclosures_no_update", TRIGGER_NO_UPDATE },
		{ "disclosures_no_delete", TRIGGER_NO_DELETE },
		{ "disclosures_head", TRIGGER_HEAD },
		{ "counters_forward", TRIGGER_FORWARD },
		{ "counters_no_delete", TRIGGER_NO_DEL_COUNTER },
	};
	const size_t	 n = sizeof(want) / sizeof(want[0]);
	sqlite3_stmt	*st;
	const char	*sql;
	size_t		 i;
	int		 ok = 1;

	_Static_assert(sizeof(want) / sizeof(want[0]) == 5, "one ? a trigger");
	/* Present, and as created: a trigger replaced by one of the same name
	 * that does nothing guards nothing.  One walk of the schema (each
	 * `roictl status` asks), the triggers in the order of want. */
	if ((st = prep(s, "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
	    " AND name IN (?1, ?2, ?3, ?4, ?5) ORDER BY CASE name WHEN ?1 THEN 1"
	    " WHEN ?2 THEN 2 WHEN ?3 THEN 3 WHEN ?4 THEN 4 ELSE 5 END")) == NULL)
		return 0;
	for (i = 0; i < n; i++)
		sqlite3_bind_text(st, (int)i + 1, want[i].name, -1, SQLITE_STATIC);
	for (i = 0; ok && i < n; i++)
		ok = sqlite3_step(st) == SQLITE_ROW &&
		    (sql = (const char *)sqlite3_column_text(st, 0)) != NULL &&
		    strcmp(sql, want[i].sql) == 0;
	sqlite3_finalize(st);
	return ok;
}

int64_t
store_disclosure_head(struct store *s)
{
	sqlite3_stmt	*st = prep(s, "SELECT value FROM counters WHERE name = "
	    "'disclosure_head' AND typeof(value) = 'integer'");
	int64_t		 v = -1;

	if (st == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int64_t
store_disclosure_malformed(struct store *s)
{
	/* What the hash cannot see once a value is read back as C text or
	 * integer: a number stored as text or real, a hash of another length,
	 * text cut at an embedded NUL, a blob. */
	/* The row's number, not its seq (seq itself may be what is wrong):
	 * above 0 whenever a row is found. */
	return scalar(s, "SELECT CASE WHEN rowid > 0 THEN rowid ELSE 1 END"
	    " FROM disclosures WHERE"
	    " typeof(seq) <> 'integer' OR typeof(at) <> 'integer'"
	    " OR typeof(job_id) <> 'integer' OR typeof(accountable) <> 'integer'"
	    " OR typeof(pages) NOT IN ('integer', 'null')"
	    " OR typeof(hash) <> 'text' OR length(hash) <> 64"
	    " OR typeof(prev_hash) <> 'text' OR length(prev_hash) <> 64"
	    " OR typeof(outcome) <> 'text'"
	    " OR typeof(packet_id) NOT IN ('text', 'null')"
	    " OR typeof(mrn) NOT IN ('text', 'null')"
	    " OR typeof(patient_name) NOT IN ('text', 'null')"
	    " OR typeof(recipient_id) NOT IN ('text', 'null')"
	    " OR typeof(recipient_name) NOT IN ('text', 'null')"
	    " OR typeof(recipient_address) NOT IN ('text', 'null')"
	    " OR typeof(description) NOT IN ('text', 'null')"
	    " OR typeof(purpose) NOT IN ('text', 'null')"
	    " OR typeof(basis) NOT IN ('text', 'null')"
	    " OR typeof(authorization_id) NOT IN ('text', 'null')"
	    " OR typeof(transport) NOT IN ('text', 'null')"
	    " OR typeof(remote_id) NOT IN ('text', 'null')"
	    " OR typeof(detail) NOT IN ('text', 'null')"
	    " OR typeof(output_sha256) NOT IN ('text', 'null')"
	    " OR instr(CAST(COALESCE(packet_id, '') || COALESCE(mrn, '') ||"
	    "  COALESCE(patient_name, '') || COALESCE(recipient_id, '') ||"
	    "  COALESCE(recipient_name, '') || COALESCE(recipient_address, '') ||"
	    "  COALESCE(description, '') || COALESCE(purpose, '') ||"
	    "  COALESCE(basis, '') || COALESCE(authorization_id, '') ||"
	    "  COALESCE(transport, '') || COALESCE(remote_id, '') ||"
	    "  COALESCE(outcome, '') || COALESCE(detail, '') ||"
	    "  COALESCE(output_sha256, '') || COALESCE(hash, '') ||"
	    "  COALESCE(prev_hash, '') AS BLOB), x'00') > 0"
	    " ORDER BY rowid LIMIT 1", 0);
}

/* The audit log. */

int
store_audit_add(struct store *s, const struct audit_entry *a)
{
	char		 num[4][24];
	const char	*v[9];

	/* Through the sealed-records path: chained and mac'd like any other
	 * sealed table. */
	snprintf(num[0], sizeof(num[0]), "%lld", (long long)(a->at ? a->at : now_wall()));
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)a->uid);
	snprintf(num[2], sizeof(num[2]), "%lld", (long long)a->gid);
	snprintf(num[3], sizeof(num[3]), "%lld", (long long)a->pid);
	v[0] = num[0]; v[1] = num[1]; v[2] = num[2]; v[3] = num[3];
	v[4] = a->role; v[5] = a->op; v[6] = a->target; v[7] = a->outcome;
	v[8] = a->detail;
	return store_sealed_append(s, STORE_SEALED_AUDIT, v, NULL);
}

int
store_audit_iter(struct store *s, int64_t since, int limit, store_audit_cb cb,
    void *arg)
{
	sqlite3_stmt		*st = prep(s, "SELECT * FROM (SELECT id, at, uid, gid,"
	    " pid, role, op, target, outcome, detail FROM audit WHERE at >= ?"
	    " ORDER BY id DESC LIMIT ?) ORDER BY id");
	struct audit_entry	 a;
	int			 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		a.id = sqlite3_column_int64(st, 0);
		a.at = sqlite3_column_int64(st, 1);
		a.uid = sqlite3_column_int64(st, 2);
		a.gid = sqlite3_column_int64(st, 3);
		a.pid = sqlite3_column_int64(st, 4);
		a.role = dupcol(st, 5);
		a.op = dupcol(st, 6);
		a.target = dupcol(st, 7);
		a.outcome = dupcol(st, 8);
		a.detail = dupcol(st, 9);
		int stop = cb(&a, arg);
		free(a.role);
		free(a.op);
		free(a.target);
		free(a.outcome);
		free(a.detail);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Operations: summaries for metrics, alerts and qshape (no PHI). */

/* After a loop of sqlite3_step (stopped early: SQLITE_ROW): finalize. */
static int
rows_end(struct store *s, sqlite3_stmt *st, int rc)
{
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* "'queued', 'deferred'" for a mask of states (fixed names, no input). */
static void
state_list(unsigned mask, char *out, size_t len)
{
	size_t	n = 0;

	out[0] = '\0';
	for (int i = 0; i < JOB_NSTATES && n < len; i++)
		if (mask & (1u << i))
			n += (size_t)snprintf(out + n, len - n, "%s'%s'", n ? ", " : "",
			    state_names[i]);
	if (n == 0)
		snprintf(out, len, "''");
}

int
store_jobs_by_state(struct store *s, int64_t counts[JOB_NSTATES])
{
	sqlite3_stmt	*st = prep(s, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
	enum job_state	 js;
	int		 rc;

	for (int i = 0; i < JOB_NSTATES; i++)
		counts[i] = 0;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (job_state_parse((const char *)sqlite3_column_text(st, 0), &js) == 0)
			counts[js] = sqlite3_column_int64(st, 1);
	if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One state at a time: each is one walk of the jobs_waiting index, in
 * group order, with no sort (both states in one query would sort). */
int
store_jobs_grouped(struct store *s, unsigned mask, store_group_cb cb, void *arg)
{
	struct store_group	 g;
	sqlite3_stmt		*st;
	int			 rc = SQLITE_DONE, stop = 0;

	for (int i = 0; i < JOB_NSTATES && !stop; i++) {
		if (!(mask & (1u << i)))
			continue;
		st = prep(s, "SELECT transport, recipient_id, COUNT(*), MIN(created_at),"
		    " MIN(NULLIF(sent_at, 0)), MIN(id) FROM jobs WHERE state = ?"
		    " GROUP BY transport, recipient_id");
		if (st == NULL)
			return -1;
		bind_text(st, 1, state_names[i]);
		g.state = (enum job_state)i;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			g.transport = (const char *)sqlite3_column_text(st, 0);
			g.recipient_id = (const char *)sqlite3_column_text(st, 1);
			g.count = sqlite3_column_int64(st, 2);
			g.oldest_created = sqlite3_column_int64(st, 3);
			g.oldest_sent = sqlite3_column_int64(st, 4);
			g.oldest_id = sqlite3_column_int64(st, 5);
			if ((stop = cb(&g, arg)) != 0)
				break;
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			seterr(s);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int
store_jobs_brief(struct store *s, unsigned mask, store_brief_cb cb, void *arg)
{
	struct store_brief	 b;
	sqlite3_stmt		*st;
	char			 states[256], sql[512];
	int			 rc;

	state_list(mask, states, sizeof(states));
	snprintf(sql, sizeof(sql), "SELECT id, state, transport, recipient_id,"
	    " created_at, next_at, last_error FROM jobs WHERE state IN (%s)"
	    " ORDER BY id", states);
	if ((st = prep(s, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		b.id = sqlite3_column_int64(st, 0);
		if (job_state_parse((const char *)sqlite3_column_text(st, 1),
		    &b.state) == -1)
			continue;
		b.transport = (const char *)sqlite3_column_text(st, 2);
		b.recipient_id = (const char *)sqlite3_column_text(st, 3);
		b.created_at = sqlite3_column_int64(st, 4);
		b.next_at = sqlite3_column_int64(st, 5);
		b.last_error = (const char *)sqlite3_column_text(st, 6);
		if (cb(&b, arg))
			break;
	}
	return rows_end(s, st, rc);
}

int
store_outcome_counts(struct store *s, store_outcome_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT COALESCE(transport, ''), outcome,"
	    " COUNT(*), COALESCE(SUM(pages), 0) FROM disclosures"
	    " GROUP BY transport, outcome");
	int		 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), arg))
			break;
	return rows_end(s, st, rc);
}

int
store_delivery_latencies(struct store *s, store_latency_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT delivered_at - created_at FROM jobs"
	    " WHERE delivered_at > 0 AND state = 'delivered'");
	int		 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(sqlite3_column_int64(st, 0), arg))
			break;
	return rows_end(s, st, rc);
}

/*
 * Sealed records.  A sealed table has a sequence column (its INTEGER
 * PRIMARY KEY), prev_hash, hash and mac columns, append-only triggers, and
 * an entry here with its canonical columns: hash = hex SHA-256 of
 * prev_hash (64 hex characters) followed by every canonical column, the
 * sequence first, as a netstring "LEN:BYTES," (integers as decimal text,
 * NULL as the empty string).  For the disclosure log this is exactly
 * disclosure_hash().  The seals (src/seal.c) commit to each table's range
 * and head; a table added here is sealed from the next epoch on.
 */
static const char *const disclosure_cols[] = { "seq", "at", "job_id",
	"packet_id", "mrn", "patient_name", "recipient_id", "recipient_name",
	"recipient_address", "description", "purpose", "basis",
	"authorization_id", "transport", "remote_id", "outcome", "detail",
	"pages", "output_sha256", "accountable", NULL };
static const char *const audit_cols[] = { "id", "at", "uid", "gid", "pid",
	"role", "op", "target", "outcome", "detail", NULL };
static const char *const suspension_cols[] = { "seq", "at", "action", "ref",
	"agency", "mrn", "oral", "until_at", "actor", "note", NULL };
static const char *const incident_cols[] = { "seq", "at", "kind", "job_id",
	"note", "actor", "discovered_at", "disclosures", "recipient_id",
	"containment", NULL };
static const char *const assessment_cols[] = { "seq", "at", "incident",
	"nature", "unauthorized_person", "acquired_viewed", "mitigation",
	"determination", "actor", "supersedes", NULL };
static const char *const prune_cols[] = { "seq", "at", "actor", "before_at",
	"cuts", NULL };
static const char *const extension_cols[] = { "seq", "at", "request_id",
	"reason", "actor", NULL };

static const struct sealed_table {
	const char		*name;		/* table, and its name in the seals */
	const char *const	*cols;		/* cols[0] is the sequence, cols[1] "at" */
	int			 since;		/* the schema that made it */
} sealed_tables[STORE_SEALED_N] = {
	[STORE_SEALED_DISCLOSURES] = { "disclosures", disclosure_cols, 1 },
	[STORE_SEALED_AUDIT] = { "audit", audit_cols, 8 },
	[STORE_SEALED_SUSPENSIONS] = { "suspensions", suspension_cols, 9 },
	[STORE_SEALED_INCIDENTS] = { "incidents", incident_cols, 9 },
	[STORE_SEALED_ASSESSMENTS] = { "assessments", assessment_cols, 9 },
	[STORE_SEALED_PRUNES] = { "prunes", prune_cols, 10 },
	[STORE_SEALED_EXTENSIONS] = { "request_extensions", extension_cols, 12 },
};

/* A copy of an older schema (roigate-verify) lacks the later tables: they
 * read as empty. */
static int
sealed_exists(struct store *s, enum store_sealed t)
{
	return s->version >= sealed_tables[t].since;
}

const char *
store_sealed_name(enum store_sealed t)
{
	return (unsigned)t < STORE_SEALED_N ? sealed_tables[t].name : "unknown";
}

static void
canon_add(struct buf *b, const void *p, size_t n)
{
	char	num[24], *e = num + sizeof(num);
	size_t	v = n;

	/* No printf here: verification runs this for every column of
	 * every row. */
	*--e = ':';
	do
		*--e = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	buf_add(b, e, (size_t)(num + sizeof(num) - e));
	if (n)
		buf_add(b, p, n);
	buf_add(b, ",", 1);
}

static void
sealed_hash(const char *prev, const struct buf *canon, char out[65])
{
	struct sha256_ctx	*c = sha256_new();

	sha256_update(c, prev, strlen(prev));
	sha256_update(c, canon->data, canon->len);
	sha256_final(c, out);
}

/* "SELECT c0, ..., cN" or "c0, ..., cN" into b. */
static void
sealed_cols(struct buf *b, const struct sealed_table *t)
{
	for (size_t i = 0; t->cols[i]; i++)
		buf_printf(b, "%s%s", i ? ", " : "", t->cols[i]);
}

/* A table whose every entry was pruned goes on from the cut. */
static int
sealed_last_pruned(struct store *s, enum store_sealed t, int64_t *seq,
    char hash[65])
{
	struct store_prune	p;
	int			rv;

	if ((rv = store_prune_last(s, &p)) != 1)
		return rv;
	if (p.t[t].cut <= 0)
		return 0;
	*seq = p.t[t].cut;
	strlcpy_(hash, p.t[t].head, 65);
	return 1;
}

int
store_sealed_last(struct store *s, enum store_sealed t, int64_t *seq,
    char hash[65])
{
	struct buf	 q;
	sqlite3_stmt	*st;
	int		 rc;

	*seq = 0;
	strlcpy_(hash, GENESIS_HASH, 65);
	if (!sealed_exists(s, t))
		return 0;
	buf_init(&q);
	buf_printf(&q, "SELECT %s, hash FROM %s ORDER BY %s DESC LIMIT 1",
	    sealed_tables[t].cols[0], sealed_tables[t].name, sealed_tables[t].cols[0]);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		if (sqlite3_column_text(st, 1))
			strlcpy_(hash, (const char *)sqlite3_column_text(st, 1), 65);
	} else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && t != STORE_SEALED_PRUNES)
		return sealed_last_pruned(s, t, seq, hash);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_sealed_append(struct store *s, enum store_sealed t,
    const char *const *values, int64_t *seqp)
{
	const struct sealed_table	*tb = &sealed_tables[t];
	struct buf			 q, canon;
	sqlite3_stmt			*st = NULL;
	char				 prev[65], hash[65], mac[65], num[24];
	int64_t				 seq;
	size_t				 i, n;
	int				 rv = -1;

	buf_init(&q);
	buf_init(&canon);
	if (store_sealed_last(s, t, &seq, prev) == -1)
		goto fail;
	seq++;
	snprintf(num, sizeof(num), "%lld", (long long)seq);
	canon_add(&canon, num, strlen(num));
	for (n = 1; tb->cols[n]; n++)
		canon_add(&canon, values[n - 1] ? values[n - 1] : "",
		    values[n - 1] ? strlen(values[n - 1]) : 0);
	sealed_hash(prev, &canon, hash);
	buf_printf(&q, "INSERT INTO %s (", tb->name);
	sealed_cols(&q, tb);
	buf_addstr(&q, ", prev_hash, hash, mac) VALUES (?");
	for (i = 1; i < n + 3; i++)
		buf_addstr(&q, ", ?");
	buf_addstr(&q, ")");
	if ((st = prep(s, buf_cstr(&q))) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, seq);
	for (i = 1; i < n; i++)
		bind_text(st, (int)i + 1, values[i - 1]);
	bind_text(st, (int)n + 1, prev);
	bind_text(st, (int)n + 2, hash);
	if (s->sealer) {
		s->sealer(hash, mac, s->sealer_arg);
		bind_text(st, (int)n + 3, mac);
	}
	rv = step_done(s, st);
	if (rv == 0 && seqp)
		*seqp = seq;
fail:
	buf_free(&q);
	buf_free(&canon);
	return rv;
}

/*
 * What the hash cannot see: the canonical text of a blob, of a real or of a
 * number stored as text can be the very bytes written, yet SQL compares it
 * otherwise (WHERE incident = 3 passes over a blob '3', so an assessment
 * leaves its incident); a hash or mark longer than 64 characters reads
 * back cut.  Called before any column is read as text.
 */
static int
sealed_row_malformed(sqlite3_stmt *st, int ncol)
{
	for (int i = 0; i < ncol; i++) {
		const char	*decl = sqlite3_column_decltype(st, i);
		int		 type = sqlite3_column_type(st, i);

		if (i < 3) {	/* prev_hash, hash, mac (none before sealing) */
			if (type == SQLITE_NULL ? i != 2 : type != SQLITE_TEXT ||
			    sqlite3_column_bytes(st, i) != 64)
				return 1;
		} else if (type != SQLITE_NULL && type != (decl &&
		    strcasecmp(decl, "INTEGER") == 0 ? SQLITE_INTEGER : SQLITE_TEXT))
			return 1;
	}
	return 0;
}

int
store_sealed_iter(struct store *s, enum store_sealed t, int64_t after,
    store_sealed_cb cb, void *arg)
{
	const struct sealed_table	*tb = &sealed_tables[t];
	struct store_sealed_row		 r;
	struct buf			 q, canon;
	sqlite3_stmt			*st;
	const unsigned char		*v;
	int				 rc, ncol;

	if (!sealed_exists(s, t))
		return 0;
	buf_init(&q);
	buf_addstr(&q, "SELECT prev_hash, hash, mac, ");
	sealed_cols(&q, tb);
	buf_printf(&q, " FROM %s WHERE %s > ? ORDER BY %s", tb->name, tb->cols[0],
	    tb->cols[0]);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	ncol = sqlite3_column_count(st);
	buf_init(&canon);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		canon.len = 0;
		r.malformed = sealed_row_malformed(st, ncol);
		r.seq = sqlite3_column_int64(st, 3);
		for (int i = 0; i < 3; i++) {
			char *dst = i == 0 ? r.prev_hash : i == 1 ? r.hash : r.mac;
			if ((v = sqlite3_column_text(st, i)) != NULL)
				strlcpy_(dst, (const char *)v, 65);
		}
		for (int i = 3; i < ncol; i++) {
			/* Bytes as stored, NULs included: an edit that hides
			 * behind a NUL changes the hash. */
			v = sqlite3_column_text(st, i);
			canon_add(&canon, v ? (const char *)v : "",
			    v ? (size_t)sqlite3_column_bytes(st, i) : 0);
		}
		r.canonical = canon.data;
		r.canonical_len = canon.len;
		if (cb(&r, arg))
			break;
	}
	buf_free(&canon);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_sealed_hash_at(struct store *s, enum store_sealed t, int64_t seq,
    char hash[65])
{
	struct buf	 q;
	sqlite3_stmt	*st;
	int		 rc;

	hash[0] = '\0';
	if (!sealed_exists(s, t))
		return 0;
	buf_init(&q);
	buf_printf(&q, "SELECT hash FROM %s WHERE %s = ?", sealed_tables[t].name,
	    sealed_tables[t].cols[0]);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, seq);
	hash[0] = '\0';
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0))
		strlcpy_(hash, (const char *)sqlite3_column_text(st, 0), 65);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/*
 * SQLite's integrity_check of one sealed table and its indexes: 1 with the
 * first problem in why, 0 sound, -1.  The chains are read from the table
 * itself, but a query by patient (the accounting of disclosures) reads an
 * index: an index edited to leave an entry out hides it from that query
 * while the chain still verifies.  quick_check does not compare indexes
 * with their tables.
 */
int
store_sealed_integrity(struct store *s, enum store_sealed t, char *why,
    size_t whylen)
{
	struct buf	 q;
	sqlite3_stmt	*st;
	const char	*v;
	int		 rc, bad = 0;

	why[0] = '\0';
	if (!sealed_exists(s, t))
		return 0;
	buf_init(&q);
	buf_printf(&q, "PRAGMA integrity_check(%s)", sealed_tables[t].name);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (v = (const char *)sqlite3_column_text(st, 0)) != NULL &&
	    strcmp(v, "ok") != 0) {
		bsnprintf(why, whylen, "%.200s", v);
		bad = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? bad : -1;
}

/* The seal of an epoch: 1, 0 if there is none, -1. */
int
store_seal_at(struct store *s, int64_t epoch, char seal[65])
{
	sqlite3_stmt	*st = prep(s, "SELECT seal FROM seals WHERE epoch = ?");
	int		 rc;

	seal[0] = '\0';
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, epoch);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0))
		strlcpy_(seal, (const char *)sqlite3_column_text(st, 0), 65);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

void
store_set_sealer(struct store *s, store_sealer fn, void *arg)
{
	s->sealer = fn;
	s->sealer_arg = arg;
}

/* Chain the audit rows written before schema 8, then guard the table
 * again (the trigger was dropped by the migration for this). */
static int
migration_8_after(struct store *s)
{
	struct buf	 canon, q;
	sqlite3_stmt	*st, *up;
	char		 prev[65] = GENESIS_HASH, hash[65];
	const unsigned char *v;
	int		 rc;

	buf_init(&canon);
	buf_init(&q);
	buf_addstr(&q, "SELECT ");
	sealed_cols(&q, &sealed_tables[STORE_SEALED_AUDIT]);
	buf_addstr(&q, " FROM audit ORDER BY id");
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL || (up = prep(s, "UPDATE audit SET prev_hash = ?, hash = ?"
	    " WHERE id = ?")) == NULL) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		canon.len = 0;
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			v = sqlite3_column_text(st, i);
			canon_add(&canon, v ? (const char *)v : "",
			    v ? (size_t)sqlite3_column_bytes(st, i) : 0);
		}
		sealed_hash(prev, &canon, hash);
		sqlite3_reset(up);
		bind_text(up, 1, prev);
		bind_text(up, 2, hash);
		sqlite3_bind_int64(up, 3, sqlite3_column_int64(st, 0));
		if (sqlite3_step(up) != SQLITE_DONE) {
			seterr(s);
			rc = SQLITE_ERROR;
			break;
		}
		strlcpy_(prev, hash, sizeof(prev));
	}
	buf_free(&canon);
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	if (rc != SQLITE_DONE)
		return -1;
	return exec(s, "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END");
}

/* The seals of the epochs. */

int
store_seal_insert(struct store *s, const struct store_seal *z)
{
	sqlite3_stmt	*st = prep(s, "INSERT INTO seals (epoch, start_at, end_at,"
	    " prev_seal, seal) VALUES (?, ?, ?, ?, ?)");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, z->epoch);
	sqlite3_bind_int64(st, 2, z->start_at);
	sqlite3_bind_int64(st, 3, z->end_at);
	bind_text(st, 4, z->prev_seal);
	bind_text(st, 5, z->seal);
	if (step_done(s, st) == -1)
		return -1;
	for (int t = 0; t < STORE_SEALED_N; t++) {
		if (!z->range[t].present)
			continue;
		if ((st = prep(s, "INSERT INTO seal_ranges (epoch, name, first_seq,"
		    " last_seq, head) VALUES (?, ?, ?, ?, ?)")) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, z->epoch);
		bind_text(st, 2, sealed_tables[t].name);
		sqlite3_bind_int64(st, 3, z->range[t].first);
		sqlite3_bind_int64(st, 4, z->range[t].last);
		bind_text(st, 5, z->range[t].head);
		if (step_done(s, st) == -1)
			return -1;
	}
	return 0;
}

/* The ranges of the seal in z (epoch set); 0 / -1. */
static int
seal_ranges(struct store *s, struct store_seal *z)
{
	sqlite3_stmt	*st = prep(s, "SELECT name, first_seq, last_seq, head FROM"
	    " seal_ranges WHERE epoch = ?");
	const char	*name;
	int		 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, z->epoch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int known = 0;
		name = (const char *)sqlite3_column_text(st, 0);
		for (int t = 0; name && t < STORE_SEALED_N; t++) {
			if (strcmp(name, sealed_tables[t].name) != 0)
				continue;
			known = 1;
			z->range[t].present = 1;
			z->range[t].first = sqlite3_column_int64(st, 1);
			z->range[t].last = sqlite3_column_int64(st, 2);
			if (sqlite3_column_text(st, 3))
				strlcpy_(z->range[t].head, (const char *)
				    sqlite3_column_text(st, 3), 65);
		}
		/* A range of a table this roigate does not know: the seal
		 * cannot be recomputed; the verifier says so. */
		if (!known)
			z->unknown_ranges++;
	}
	if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_seal_iter(struct store *s, int newest_only, store_seal_cb cb, void *arg)
{
	sqlite3_stmt		*st = prep(s, newest_only ?
	    "SELECT epoch, start_at, end_at, prev_seal, seal FROM seals ORDER BY"
	    " epoch DESC LIMIT 1" :
	    "SELECT epoch, start_at, end_at, prev_seal, seal FROM seals ORDER BY"
	    " epoch");
	struct store_seal	 z;
	int			 rc, stop = 0;

	if (st == NULL)
		return -1;
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&z, 0, sizeof(z));
		z.epoch = sqlite3_column_int64(st, 0);
		z.start_at = sqlite3_column_int64(st, 1);
		z.end_at = sqlite3_column_int64(st, 2);
		if (sqlite3_column_text(st, 3))
			strlcpy_(z.prev_seal, (const char *)sqlite3_column_text(st, 3), 65);
		if (sqlite3_column_text(st, 4))
			strlcpy_(z.seal, (const char *)sqlite3_column_text(st, 4), 65);
		if (seal_ranges(s, &z) == -1) {
			sqlite3_finalize(st);
			return -1;
		}
		stop = cb(&z, arg);
	}
	if (!stop && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return stop || rc == SQLITE_DONE ? 0 : -1;
}

static int
seal_copy(const struct store_seal *z, void *arg)
{
	*(struct store_seal *)arg = *z;
	return 1;
}

int
store_seal_last(struct store *s, struct store_seal *z)
{
	memset(z, 0, sizeof(*z));
	z->epoch = -1;
	if (store_seal_iter(s, 1, seal_copy, z) == -1)
		return -1;
	return z->epoch >= 0 ? 1 : 0;
}

struct store *
store_open_readonly(const char *path, char *err, size_t errlen)
{
	struct store	*s = xcalloc(1, sizeof(*s));
	int		 v;

	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		bsnprintf(err, errlen, "%s: %s", path, s->db ?
		    sqlite3_errmsg(s->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((v = store_schema_version(s)) < 8 || v > SCHEMA_VERSION) {
		bsnprintf(err, errlen, "%s: schema version %d: %s", path, v, v < 8 ?
		    "made before sealing existed (roigate schema 8)" :
		    "newer than this program: upgrade it");
		goto fail;
	}
	s->version = v;
	return s;
fail:
	sqlite3_close(s->db);
	free(s);
	return NULL;
}

/*
 * The accounting of disclosures (src/accounting.c): one patient's
 * accountable entries, a job's entries together in order, with the
 * request each job answered.  The index disclosures_accounting (schema 9)
 * serves it: 10,000 entries among 1,000,000 are read without a scan.
 */
int
store_accounting_iter(struct store *s, const char *mrn, int64_t until,
    store_accounting_cb cb, void *arg)
{
	sqlite3_stmt		*st = prep(s, "SELECT " DISC_COLS ", (SELECT"
	    " request_ref FROM jobs WHERE jobs.id = job_id) FROM disclosures"
	    " WHERE mrn = ?1 AND accountable = 1 AND (?2 = 0 OR at < ?2)"
	    " ORDER BY job_id, seq");
	struct disclosure	 d;
	int			 rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, mrn);
	sqlite3_bind_int64(st, 2, until);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *ref = sqlite3_column_text(st, 22);
		int stop;

		disclosure_row(st, &d);
		stop = cb(&d, ref ? (const char *)ref : "", arg);
		disclosure_free(&d);
		if (stop)
			break;
	}
	return rows_end(s, st, rc);
}

/* Suspensions of the accounting (164.528(a)(2)): sealed rows. */
int
store_suspension_add(struct store *s, const struct store_suspension *u,
    int64_t *seq)
{
	char		 at[24], ref[24], oral[4], until[24];
	const char	*v[9];

	snprintf(at, sizeof(at), "%lld", (long long)u->at);
	snprintf(ref, sizeof(ref), "%lld", (long long)u->ref);
	snprintf(oral, sizeof(oral), "%d", u->oral ? 1 : 0);
	snprintf(until, sizeof(until), "%lld", (long long)u->until_at);
	v[0] = at;
	v[1] = u->action;
	v[2] = u->ref ? ref : NULL;
	v[3] = u->agency;
	v[4] = u->mrn;
	v[5] = oral;
	v[6] = u->until_at ? until : NULL;
	v[7] = u->actor;
	v[8] = u->note;
	return store_sealed_append(s, STORE_SEALED_SUSPENSIONS, v, seq);
}

int
store_suspension_iter(struct store *s, store_suspension_cb cb, void *arg)
{
	sqlite3_stmt		*st = prep(s, "SELECT seq, at, action, ref, agency,"
	    " mrn, oral, until_at, actor, note FROM suspensions ORDER BY seq");
	struct store_suspension	 u;
	int			 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&u, 0, sizeof(u));
		u.seq = sqlite3_column_int64(st, 0);
		u.at = sqlite3_column_int64(st, 1);
		u.action = (const char *)sqlite3_column_text(st, 2);
		u.ref = sqlite3_column_int64(st, 3);
		u.agency = (const char *)sqlite3_column_text(st, 4);
		u.mrn = (const char *)sqlite3_column_text(st, 5);
		u.oral = sqlite3_column_int(st, 6);
		u.until_at = sqlite3_column_int64(st, 7);
		u.actor = (const char *)sqlite3_column_text(st, 8);
		u.note = (const char *)sqlite3_column_text(st, 9);
		if (cb(&u, arg))
			break;
	}
	return rows_end(s, st, rc);
}

/*
 * Rows of a sealed table as text, in order (incidents, assessments):
 * values[i] is canonical column i (the sequence first), NULL for NULL.
 * where_col/where_val: only rows whose column equals it (NULL: all).
 */
int
store_sealed_rows(struct store *s, enum store_sealed t, const char *where_col,
    int64_t where_val, store_row_cb cb, void *arg)
{
	const struct sealed_table	*tb = &sealed_tables[t];
	const char			*v[16];
	struct buf			 q;
	sqlite3_stmt			*st;
	int				 rc, n;

	buf_init(&q);
	buf_addstr(&q, "SELECT ");
	sealed_cols(&q, tb);
	buf_printf(&q, " FROM %s", tb->name);
	if (where_col)
		buf_printf(&q, " WHERE %s = ?", where_col);
	buf_printf(&q, " ORDER BY %s", tb->cols[0]);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	if (where_col)
		sqlite3_bind_int64(st, 1, where_val);
	n = sqlite3_column_count(st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < n && i < 16; i++)
			v[i] = (const char *)sqlite3_column_text(st, i);
		if (cb(v, n, arg))
			break;
	}
	return rows_end(s, st, rc);
}

/*
 * Watching the jobs table (one watcher for the process): each row's state
 * and transport before and after each change (SQLite's pre-update hook,
 * so no code path that writes a job can forget to report it), and the
 * end of each transaction, committed or rolled back.
 */
static struct {
	struct store_job_watch	w;
	int			state_col, transport_col;
} store_watch;

static const char *
watch_col(sqlite3 *db, int old, int col)
{
	sqlite3_value	*v;

	if ((old ? sqlite3_preupdate_old(db, col, &v) :
	    sqlite3_preupdate_new(db, col, &v)) != SQLITE_OK)
		return NULL;
	return (const char *)sqlite3_value_text(v);
}

static void
watch_preupdate(void *arg, sqlite3 *db, int op, const char *zdb,
    const char *table, sqlite3_int64 k1, sqlite3_int64 k2)
{
	const char	*os = NULL, *ot = NULL, *ns = NULL, *nt = NULL;

	if (strcmp(table, "jobs") != 0 || strcmp(zdb, "main") != 0)
		return;
	if (op != SQLITE_INSERT) {
		os = watch_col(db, 1, store_watch.state_col);
		ot = watch_col(db, 1, store_watch.transport_col);
	}
	if (op != SQLITE_DELETE) {
		ns = watch_col(db, 0, store_watch.state_col);
		nt = watch_col(db, 0, store_watch.transport_col);
	}
	if (op == SQLITE_UPDATE && os && ns && ot && nt && strcmp(os, ns) == 0 &&
	    strcmp(ot, nt) == 0)
		return;		/* neither moved */
	store_watch.w.change(store_watch.w.arg, os, ot, ns, nt);
}

static int
watch_commit(void *arg)
{
	store_watch.w.end(store_watch.w.arg, 1);
	return 0;
}

static void
watch_rollback(void *arg)
{
	store_watch.w.end(store_watch.w.arg, 0);
}

int
store_watch_jobs(struct store *s, const struct store_job_watch *w)
{
	sqlite3_stmt	*st;

	/* Between transactions only: a change already made would be missed. */
	if (!sqlite3_get_autocommit(s->db) ||
	    (st = prep(s, "SELECT cid, name FROM pragma_table_info('jobs')")) == NULL)
		return -1;
	store_watch.state_col = store_watch.transport_col = -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);

		if (name && strcmp(name, "state") == 0)
			store_watch.state_col = sqlite3_column_int(st, 0);
		else if (name && strcmp(name, "transport") == 0)
			store_watch.transport_col = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	if (store_watch.state_col == -1 || store_watch.transport_col == -1)
		return -1;
	store_watch.w = *w;
	sqlite3_preupdate_hook(s->db, watch_preupdate, NULL);
	sqlite3_commit_hook(s->db, watch_commit, NULL);
	sqlite3_rollback_hook(s->db, watch_rollback, NULL);
	return 0;
}

/*
 * Retention (schema 10): prune records and the removal they allow.
 * A record's cuts column is "NAME=CUT:EPOCH:HEAD" for each table cut,
 * separated by spaces, in the order of enum store_sealed.
 */
int
store_prune_add(struct store *s, struct store_prune *p)
{
	struct buf	 cuts;
	char		 num[2][24];
	const char	*v[4];
	int		 rv;

	buf_init(&cuts);
	for (int t = 0; t < STORE_SEALED_N; t++)
		if (p->t[t].cut > 0)
			buf_printf(&cuts, "%s%s=%lld:%lld:%s", cuts.len ? " " : "",
			    sealed_tables[t].name, (long long)p->t[t].cut,
			    (long long)p->t[t].epoch, p->t[t].head);
	snprintf(num[0], sizeof(num[0]), "%lld", (long long)p->at);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)p->before);
	v[0] = num[0];
	v[1] = p->actor;
	v[2] = num[1];
	v[3] = buf_cstr(&cuts);
	rv = store_sealed_append(s, STORE_SEALED_PRUNES, v, &p->seq);
	buf_free(&cuts);
	return rv;
}

/* The cuts column into p; -1 if it does not parse. */
static int
prune_cuts_parse(const char *text, struct store_prune *p)
{
	char	*copy = xstrdup(text), *tok, *save = NULL, name[32], head[65];
	long long cut, epoch;
	int	 rv = 0, t;

	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (sscanf(tok, "%31[a-z]=%lld:%lld:%64[0-9a-f]", name, &cut, &epoch,
		    head) != 4 || strlen(head) != 64 || cut <= 0) {
			rv = -1;
			break;
		}
		for (t = 0; t < STORE_SEALED_N; t++)
			if (strcmp(name, sealed_tables[t].name) == 0)
				break;
		if (t == STORE_SEALED_N || t == STORE_SEALED_PRUNES || p->t[t].cut) {
			rv = -1;
			break;
		}
		p->t[t].cut = cut;
		p->t[t].epoch = epoch;
		strlcpy_(p->t[t].head, head, sizeof(p->t[t].head));
	}
	free(copy);
	return rv;
}

int
store_prune_iter(struct store *s, store_prune_cb cb, void *arg)
{
	sqlite3_stmt		*st;
	struct store_prune	 p;
	int			 rc, stop = 0;

	if (!sealed_exists(s, STORE_SEALED_PRUNES))
		return 0;
	if ((st = prep(s, "SELECT seq, at, actor, before_at, cuts FROM prunes"
	    " ORDER BY seq")) == NULL)
		return -1;
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&p, 0, sizeof(p));
		p.seq = sqlite3_column_int64(st, 0);
		p.at = sqlite3_column_int64(st, 1);
		if (sqlite3_column_text(st, 2))
			strlcpy_(p.actor, (const char *)sqlite3_column_text(st, 2),
			    sizeof(p.actor));
		p.before = sqlite3_column_int64(st, 3);
		if (sqlite3_column_text(st, 4) == NULL || prune_cuts_parse(
		    (const char *)sqlite3_column_text(st, 4), &p) == -1)
			for (int t = 0; t < STORE_SEALED_N; t++)
				p.t[t].cut = -1;
		stop = cb(&p, arg);
	}
	if (!stop && rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	return stop || rc == SQLITE_DONE ? 0 : -1;
}

static int
prune_copy(const struct store_prune *p, void *arg)
{
	*(struct store_prune *)arg = *p;
	return 0;
}

int
store_prune_last(struct store *s, struct store_prune *p)
{
	memset(p, 0, sizeof(*p));
	if (store_prune_iter(s, prune_copy, p) == -1)
		return -1;
	return p->seq > 0 ? 1 : 0;
}

int
store_seal_ended_by(struct store *s, int64_t t, struct store_seal *z)
{
	sqlite3_stmt	*st = prep(s, "SELECT epoch, start_at, end_at, prev_seal,"
	    " seal FROM seals WHERE end_at <= ? ORDER BY epoch DESC LIMIT 1");
	int		 rc;

	memset(z, 0, sizeof(*z));
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, t);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		z->epoch = sqlite3_column_int64(st, 0);
		z->start_at = sqlite3_column_int64(st, 1);
		z->end_at = sqlite3_column_int64(st, 2);
		if (sqlite3_column_text(st, 3))
			strlcpy_(z->prev_seal, (const char *)sqlite3_column_text(st, 3), 65);
		if (sqlite3_column_text(st, 4))
			strlcpy_(z->seal, (const char *)sqlite3_column_text(st, 4), 65);
	} else if (rc != SQLITE_DONE)
		seterr(s);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW && seal_ranges(s, z) == -1)
		return -1;
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_sealed_span(struct store *s, enum store_sealed t, int64_t after,
    int64_t upto, int64_t *count, int64_t *first_at, int64_t *last_at)
{
	const struct sealed_table	*tb = &sealed_tables[t];
	struct buf			 q;
	sqlite3_stmt			*st;
	int				 rc;

	*count = *first_at = *last_at = 0;
	if (!sealed_exists(s, t))
		return 0;
	buf_init(&q);
	buf_printf(&q, "SELECT COUNT(*), COALESCE(MIN(%s), 0), COALESCE(MAX(%s),"
	    " 0) FROM %s WHERE %s > ? AND %s <= ?", tb->cols[1], tb->cols[1],
	    tb->name, tb->cols[0], tb->cols[0]);
	st = prep(s, buf_cstr(&q));
	buf_free(&q);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, upto);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		*first_at = sqlite3_column_int64(st, 1);
		*last_at = sqlite3_column_int64(st, 2);
	} else
		seterr(s);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* The text of a table's append-only DELETE trigger, as the database holds
 * it (malloc'd), or NULL with err set. */
static char *
delete_trigger(struct store *s, const struct sealed_table *tb, char *name,
    size_t namelen)
{
	sqlite3_stmt	*st;
	char		*sql = NULL;

	snprintf(name, namelen, "%s_no_delete", tb->name);
	if ((st = prep(s, "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
	    " AND name = ? AND tbl_name = ?")) == NULL)
		return NULL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, tb->name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		sql = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		snprintf(s->err, sizeof(s->err), "the append-only trigger %s is "
		    "missing: the %s table was tampered with; nothing removed",
		    name, tb->name);
	sqlite3_finalize(st);
	return sql;
}

int64_t
store_sealed_remove(struct store *s, enum store_sealed t, int64_t upto,
    int limit)
{
	const struct sealed_table	*tb = &sealed_tables[t];
	struct buf			 q;
	sqlite3_stmt			*st = NULL;
	char				 name[64], *trigger = NULL;
	int64_t				 n = -1;

	if (t == STORE_SEALED_PRUNES || !sealed_exists(s, t))
		return 0;
	buf_init(&q);
	if (store_begin(s) == -1)
		goto done;
	if ((trigger = delete_trigger(s, tb, name, sizeof(name))) == NULL)
		goto fail;
	/* Lifted only inside this transaction, and only for the rows the
	 * sealed prune record names. */
	buf_printf(&q, "DROP TRIGGER %s", name);
	if (exec(s, buf_cstr(&q)) == -1)
		goto fail;
	q.len = 0;
	buf_printf(&q, "DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s <= ?"
	    " ORDER BY %s LIMIT ?)", tb->name, tb->cols[0], tb->cols[0], tb->name,
	    tb->cols[0], tb->cols[0]);
	if ((st = prep(s, buf_cstr(&q))) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, upto);
	sqlite3_bind_int(st, 2, limit);
	if (step_done(s, st) == -1)
		goto fail;
	n = sqlite3_changes(s->db);
	if (exec(s, trigger) == -1 || store_commit(s) == -1) {
		n = -1;
		goto fail;
	}
	goto done;
fail:
	store_rollback(s);
done:
	free(trigger);
	buf_free(&q);
	return n;
}

/* A request's extension, a sealed row: 0, 1 if it had one already, -1. */
int
store_request_extend(struct store *s, const char *request_id, int64_t at,
    const char *reason, const char *actor)
{
	sqlite3_stmt	*st = prep(s, "SELECT 1 FROM request_extensions WHERE"
	    " request_id = ?");
	const char	*v[4];
	char		 when[24];
	int		 rc;

	if (st == NULL)
		return -1;
	bind_text(st, 1, request_id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE) {
		seterr(s);
		return -1;
	}
	snprintf(when, sizeof(when), "%lld", (long long)at);
	v[0] = when;
	v[1] = request_id;
	v[2] = reason;
	v[3] = actor;
	return store_sealed_append(s, STORE_SEALED_EXTENSIONS, v, NULL);
}

int
store_request_extensions(struct store *s, store_extension_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT request_id, at, reason, actor FROM"
	    " request_extensions ORDER BY seq");
	int		 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(st, 0),
		    sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st,
		    2), (const char *)sqlite3_column_text(st, 3), arg))
			break;
	return rows_end(s, st, rc);
}

int
store_day_events(struct store *s, int64_t from, int64_t to, store_day_cb cb,
    void *arg)
{
	/* A job finished before the day has no part in it: its last change
	 * (updated_at) is before the day and its state is final. */
	sqlite3_stmt		*st = prep(s, "SELECT j.id, j.packet_id, j.transport,"
	    " j.recipient_id, j.request_ref, j.remote_id, j.sent_at, e.at,"
	    " e.to_state, e.reason FROM jobs j JOIN job_events e ON e.job_id = j.id"
	    " WHERE j.created_at < ?2 AND (j.updated_at >= ?1 OR j.state NOT IN"
	    " ('delivered', 'failed', 'cancelled')) AND e.at < ?2"
	    " ORDER BY j.id, e.id");
	struct store_day_event	 e;
	int			 rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, to);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e.job_id = sqlite3_column_int64(st, 0);
		e.packet_id = (const char *)sqlite3_column_text(st, 1);
		e.transport = (const char *)sqlite3_column_text(st, 2);
		e.recipient_id = (const char *)sqlite3_column_text(st, 3);
		e.request_ref = (const char *)sqlite3_column_text(st, 4);
		e.remote_id = (const char *)sqlite3_column_text(st, 5);
		e.sent_at = sqlite3_column_int64(st, 6);
		e.at = sqlite3_column_int64(st, 7);
		e.to_state = (const char *)sqlite3_column_text(st, 8);
		e.reason = (const char *)sqlite3_column_text(st, 9);
		if (cb(&e, arg))
			break;
	}
	return rows_end(s, st, rc);
}

/* Is request ref open (as store_open_requests decides)?  1, 0 or -1. */
static int
request_is_open(struct store *s, const char *ref)
{
	sqlite3_stmt	*st = prep(s, "SELECT"
	    " MAX(CASE WHEN state = 'delivered' THEN id END) AS delivered,"
	    " MAX(CASE WHEN state = 'failed' THEN id END) AS failed,"
	    " SUM(state NOT IN ('delivered', 'failed', 'cancelled')) AS pending"
	    " FROM jobs WHERE request_ref = ?");
	int		 rc, open = 0;

	if (st == NULL)
		return -1;
	bind_text(st, 1, ref);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		open = sqlite3_column_type(st, 0) == SQLITE_NULL ||
		    sqlite3_column_int64(st, 2) > 0 ||
		    sqlite3_column_int64(st, 1) > sqlite3_column_int64(st, 0);
	else {
		seterr(s);
		open = -1;
	}
	sqlite3_finalize(st);
	return open;
}

int
store_oldest_open_request(struct store *s, char *received_on, size_t len)
{
	/* Every open request has an undelivered job: the first such job, by
	 * its request's date, whose request is open is the oldest. */
	sqlite3_stmt	*st = prep(s, "SELECT request_ref, request_received_on"
	    " FROM jobs INDEXED BY jobs_request_age WHERE state <> 'delivered'"
	    " AND request_ref IS NOT NULL AND request_received_on IS NOT NULL"
	    " ORDER BY request_received_on");
	int		 rc, rv = 0, open;

	if (st == NULL)
		return -1;
	while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *ref = (const char *)sqlite3_column_text(st, 0);

		if (ref == NULL || ref[0] == '\0')
			continue;
		if ((open = request_is_open(s, ref)) == -1)
			rv = -1;
		else if (open) {
			strlcpy_(received_on, (const char *)sqlite3_column_text(st,
			    1), len);
			rv = 1;
		}
	}
	if (rv == 0 && rc != SQLITE_DONE) {
		seterr(s);
		rv = -1;
	}
	sqlite3_finalize(st);
	return rv;
}

int
store_open_requests(struct store *s, store_open_request_cb cb, void *arg)
{
	sqlite3_stmt	*st = prep(s, "SELECT r.request_ref, r.jobs, (SELECT"
	    " manifest FROM jobs WHERE id = r.newest) FROM (SELECT request_ref,"
	    " group_concat(id) AS jobs, MAX(id) AS newest,"
	    " MAX(CASE WHEN state = 'delivered' THEN id END) AS delivered,"
	    " MAX(CASE WHEN state = 'failed' THEN id END) AS failed,"
	    " SUM(state NOT IN ('delivered', 'failed', 'cancelled')) AS pending"
	    " FROM jobs WHERE request_ref IN (SELECT request_ref FROM jobs"
	    " WHERE state <> 'delivered' AND request_ref IS NOT NULL AND"
	    " request_ref <> '') GROUP BY request_ref) r"
	    " WHERE r.delivered IS NULL OR r.pending > 0"
	    " OR COALESCE(r.failed, 0) > r.delivered");
	int		 rc;

	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2), arg))
			break;
	return rows_end(s, st, rc);
}
