/*
 * The SQLite store (roigate.db): jobs, job events, recipients, the
 * disclosure log and the audit log.  This interface is the only way into
 * the database; src/store.c is the only file that contains SQL.  Only the
 * daemon opens the store.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum job_state {
	JOB_QUEUED = 0,
	JOB_RENDERING,
	JOB_SENDING,
	JOB_AWAITING,		/* awaiting_confirmation */
	JOB_DEFERRED,
	JOB_DELIVERED,
	JOB_FAILED,
	JOB_HELD,
	JOB_CANCELLED,
	JOB_NSTATES
};

const char	*job_state_name(enum job_state);	/* "awaiting_confirmation" */
int		 job_state_parse(const char *, enum job_state *);
int		 job_state_final(enum job_state);	/* delivered, failed, cancelled */

struct job {
	int64_t		 id;
	char		*packet_id;
	enum job_state	 state;
	char		*transport;	/* transport instance name */
	char		*recipient_id;
	char		*mrn;		/* PHI */
	char		*patient_name;	/* PHI */
	char		*request_ref;
	char		*source;	/* "spool" or "socket" */
	char		*manifest;	/* the manifest JSON as accepted */
	int64_t		 created_at;	/* unix seconds */
	int64_t		 updated_at;
	int64_t		 next_at;	/* next attempt or poll, unix milliseconds */
	int		 attempts;
	char		*last_error;
	char		*remote_id;
	char		*output_sha256;
	int		 pages;
	int64_t		 sent_at;	/* when an async transport accepted it */
};

void	job_free(struct job *);	/* frees the members, not the struct */

/* What a state change writes besides the state; NULL/-1 = leave as is. */
struct job_update {
	int64_t		 next_at;	/* -1: unchanged */
	int		 attempts;	/* -1: unchanged */
	const char	*last_error;	/* NULL: unchanged, "" clears */
	const char	*remote_id;
	const char	*output_sha256;
	int		 pages;		/* -1: unchanged */
	int64_t		 sent_at;	/* -1: unchanged */
};
#define JOB_UPDATE_NONE { -1, -1, NULL, NULL, NULL, -1, -1 }

struct job_event {
	int64_t		 at;
	char		*from_state;
	char		*to_state;
	char		*actor;		/* "daemon", "spool", "uid 1000", ... */
	char		*reason;
};

struct recipient {
	char		*id;
	char		*name;
	char		*organization;
	char		*transport;	/* transport instance name */
	char		*address;
	char		*params;	/* JSON object of strings, "{}" if none */
	int		 verified;
	char		*verified_by;
	int64_t		 verified_at;
	int		 disabled;
	int64_t		 created_at;
};
void	recipient_free(struct recipient *);

struct disclosure {
	int64_t		 seq;		/* assigned by disclosure_append */
	int64_t		 at;
	int64_t		 job_id;
	char		*packet_id;
	char		*mrn;
	char		*patient_name;
	char		*recipient_id;
	char		*recipient_name;
	char		*recipient_address;
	char		*description;	/* what was sent, in brief */
	char		*purpose;
	char		*basis;
	char		*authorization_id;	/* "" if none */
	char		*transport;
	char		*remote_id;
	char		*outcome;	/* attempt, sent, delivered, deferred, failed, interrupted */
	char		*detail;
	int		 pages;
	char		*output_sha256;
	int		 accountable;	/* 164.528 accounting applies */
	char		 prev_hash[65];
	char		 hash[65];
};
void	disclosure_free(struct disclosure *);

struct disclosure_filter {
	const char	*mrn;		/* NULL: any */
	const char	*recipient_id;
	int64_t		 since;		/* unix seconds, 0: any */
	int64_t		 until;		/* 0: any */
	int64_t		 job_id;	/* 0: any */
};

struct audit_entry {
	int64_t		 id;
	int64_t		 at;
	int64_t		 uid;
	int64_t		 gid;
	int64_t		 pid;
	char		*role;		/* roles the caller held */
	char		*op;
	char		*target;
	char		*outcome;	/* "ok", "denied", "error" */
	char		*detail;
};

struct store_count {
	char		*key;		/* state or transport */
	int64_t		 count;
};

struct store_status {
	struct store_count	*by_state;
	size_t			 nby_state;
	struct store_count	*by_transport;	/* jobs not in a final state */
	size_t			 nby_transport;
	int64_t			 oldest_queued_at;	/* 0 if none waiting */
	int64_t			 delivered_last_hour;
	struct job		*last_errors;	/* up to 5, newest first, id/state/last_error/updated_at */
	size_t			 nlast_errors;
};
void	store_status_free(struct store_status *);

/* Open (creating and migrating) the database; NULL and err on failure. */
struct store	*store_open(const char *path, char *err, size_t errlen);
/* Open a copy for reading only (roigate-verify): no migration, schema 8
 * or later (tables of later schemas read as empty); NULL and err. */
struct store	*store_open_readonly(const char *path, char *err, size_t errlen);
void		 store_close(struct store *);
const char	*store_errmsg(struct store *);
int		 store_schema_version(struct store *);

/* How long a write waits for a lock another process holds before it fails
 * (SQLITE_BUSY) and is retried by the caller on a backoff. */
#define STORE_BUSY_MS	250
/* 1 if the last error was the database being busy or locked, or full. */
int	store_temporary_error(struct store *);

/* PRAGMA quick_check: 0, or -1 with what SQLite found. */
int	store_quick_check(struct store *, char *why, size_t whylen);
/* The database's instance id: 16 hex digits, random, made with it. */
#define STORE_INSTANCE_LEN	16
int	store_instance_id(struct store *, char out[STORE_INSTANCE_LEN + 1]);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK.  0 / -1. */
int	store_begin(struct store *);
int	store_commit(struct store *);
int	store_rollback(struct store *);

/* Reserve a job id (its own committed transaction). */
int	store_reserve_job_id(struct store *, int64_t *id);
/* The same inside a transaction the caller holds. */
int	store_next_job_id(struct store *, int64_t *id);
/* The stored manifest text of job id: 1 and *text (free it), 0, -1. */
int	store_job_manifest(struct store *, int64_t id, char **text);
/* Insert a job with the id, state and fields in j, plus its first events. */
int	store_job_insert(struct store *, const struct job *j, const char *actor,
	    const char *reason);
/* 1 found (j filled, job_free it), 0 not found, -1 error. */
int	store_job_get(struct store *, int64_t id, struct job *j);
/* 1 if the packet_id is known (id and created_at filled), 0 if not, -1 error. */
int	store_job_by_packet(struct store *, const char *packet_id, int64_t *id,
	    int64_t *created_at);
/* Change the state, apply u, and append a job event.  0 / -1. */
int	store_job_set_state(struct store *, int64_t id, enum job_state to,
	    const struct job_update *u, const char *actor, const char *reason);

typedef int (*store_job_cb)(const struct job *, void *arg);	/* non-zero stops */
/* Jobs in queued/deferred/awaiting whose next_at <= now (ms), oldest first. */
int	store_jobs_due(struct store *, int64_t now, int limit, store_job_cb, void *);
/* Move a job's next attempt or poll (no state change, no event). */
int	store_job_set_next(struct store *, int64_t id, int64_t next_at);
/* The oldest queued or deferred job (awaiting: the oldest job awaiting
 * confirmation whose poll is due) for this recipient and transport; a
 * worker that just finished one may take it: 1 found, 0 none, -1. */
int	store_job_due_for(struct store *, int64_t now, const char *recipient_id,
	    const char *transport, int awaiting, int64_t *id);
/* Earliest next_at (ms) among queued/deferred/awaiting jobs: 1 found, 0 none. */
int	store_next_due(struct store *, int64_t *at);
int	store_jobs_in_state(struct store *, enum job_state, store_job_cb, void *);
/* Listing: state < 0 any, transport NULL any; newest first, limit 0 = all. */
int	store_jobs_list(struct store *, int state, const char *transport,
	    int limit, store_job_cb, void *);
/* 1 if a job with this id exists (any state). */
int	store_job_exists(struct store *, int64_t id);
/* Who submitted a job over the socket (migration 4): record it; 1 if
 * job id was submitted by uid, 0 if not (or by the spool, or no such job);
 * the jobs uid submitted, as store_jobs_list. */
int	store_job_set_submitter(struct store *, int64_t id, int64_t uid);
int	store_job_submitted_by(struct store *, int64_t id, int64_t uid);
int	store_jobs_list_by(struct store *, int64_t uid, int state,
	    const char *transport, int limit, store_job_cb, void *);

typedef int (*store_event_cb)(const struct job_event *, void *arg);
int	store_job_events(struct store *, int64_t id, store_event_cb, void *);

int	store_status(struct store *, int64_t now, struct store_status *out);
/* Only the jobs by state and the unfinished ones by transport. */
int	store_status_counts(struct store *, struct store_status *out);
/* Only what the counts leave out: the oldest waiting job, the last hour's
 * deliveries, the last errors (by_state and by_transport left empty). */
int	store_status_recent(struct store *, int64_t now, struct store_status *out);

/* Told of every change to a job's state or transport (NULL before an
 * insert, after a delete), then of the end of its transaction. */
struct store_job_watch {
	void	(*change)(void *arg, const char *old_state, const char *old_transport,
		    const char *new_state, const char *new_transport);
	void	(*end)(void *arg, int committed);
	void	*arg;
};
/* One watcher for the process; called between transactions.  0 / -1. */
int	store_watch_jobs(struct store *, const struct store_job_watch *);

/* Recipients: the verified directory. */
int	store_recipient_add(struct store *, const struct recipient *);	/* -1 if exists */
int	store_recipient_get(struct store *, const char *id, struct recipient *);	/* 1/0/-1 */
typedef int (*store_recipient_cb)(const struct recipient *, void *arg);
int	store_recipient_list(struct store *, store_recipient_cb, void *);
int	store_recipient_set_verified(struct store *, const char *id, int verified,
	    const char *by, int64_t at);
int	store_recipient_set_disabled(struct store *, const char *id, int disabled);
/* Update address/params (e.g. a pinned key), clears verified. */
int	store_recipient_update(struct store *, const struct recipient *);

/* Disclosure log rows (use disclosure_append, which chains them). */
int	store_disclosure_last(struct store *, int64_t *seq, char hash[65]);	/* 1/0/-1 */
int	store_disclosure_insert(struct store *, const struct disclosure *);
typedef int (*store_disclosure_cb)(const struct disclosure *, void *arg);
/* In sequence order. */
int	store_disclosure_iter(struct store *, const struct disclosure_filter *,
	    store_disclosure_cb, void *);
/* 1 if the UPDATE/DELETE triggers are all present. */
int	store_disclosure_guarded(struct store *);
/* The last seq ever appended, as recorded beside the log; -1 on error. */
int64_t	store_disclosure_head(struct store *);	/* -1: missing or not a number */
/* The first entry with a value of the wrong type or with an embedded NUL
 * (edited outside roigate), 0 if none, -1 if it cannot be read. */
int64_t	store_disclosure_malformed(struct store *);

/* Audit log. */
int	store_audit_add(struct store *, const struct audit_entry *);
typedef int (*store_audit_cb)(const struct audit_entry *, void *arg);
int	store_audit_iter(struct store *, int64_t since, int limit, store_audit_cb, void *);

/* The redactions applied for the latest attempt of a job (replacing any
 * earlier attempt's); where and which pattern, never the text covered. */
struct store_redaction {
	int	doc;		/* 1-based, in manifest order */
	int	page;		/* 1-based */
	double	x, y, w, h;	/* points (PDF, text) or pixels (images), from the top-left */
	char	pattern[24];	/* ssn, ..., "regex", or "rect" */
};
int	store_redactions_set(struct store *, int64_t job_id, int attempt,
	    const struct store_redaction *, size_t n);
typedef int (*store_redaction_cb)(const struct store_redaction *, int attempt,
	    void *arg);
int	store_job_redactions(struct store *, int64_t job_id, store_redaction_cb,
	    void *arg);

/*
 * Operations (metrics, alerts, qshape): summaries that never carry PHI,
 * only ids, transports, counts and times.
 */
/* Jobs by state: counts[state] for every state. */
int	store_jobs_by_state(struct store *, int64_t counts[JOB_NSTATES]);
/* Jobs in the states in mask (1 << state), grouped by state, transport
 * and recipient (one state after another): the count, the oldest
 * created_at and sent_at, the oldest job id. */
struct store_group {
	enum job_state	 state;
	const char	*transport;
	const char	*recipient_id;
	int64_t		 count;
	int64_t		 oldest_created;
	int64_t		 oldest_sent;	/* 0 when none was sent */
	int64_t		 oldest_id;
};
typedef int (*store_group_cb)(const struct store_group *, void *arg);
int	store_jobs_grouped(struct store *, unsigned state_mask, store_group_cb,
	    void *);
/* Each job in a state of mask, light: no manifest, no PHI. */
struct store_brief {
	int64_t		 id;
	enum job_state	 state;
	const char	*transport;
	const char	*recipient_id;
	int64_t		 created_at;
	int64_t		 next_at;
	const char	*last_error;
};
typedef int (*store_brief_cb)(const struct store_brief *, void *arg);
int	store_jobs_brief(struct store *, unsigned state_mask, store_brief_cb,
	    void *);
/* The daily reconciliation (src/daily.c): every event before `to` of the
 * jobs that lived in [from, to) (made before `to`, and not finished before
 * `from`), job by job, each job's events in order; no PHI. */
struct store_day_event {
	int64_t		 job_id;
	const char	*packet_id;
	const char	*transport;
	const char	*recipient_id;
	const char	*request_ref;
	const char	*remote_id;
	int64_t		 sent_at;
	int64_t		 at;
	const char	*to_state;
	const char	*reason;
};
typedef int (*store_day_cb)(const struct store_day_event *, void *arg);
int	store_day_events(struct store *, int64_t from, int64_t to, store_day_cb,
	    void *);
/* The disclosure log's outcomes counted by transport (metrics at start). */
typedef int (*store_outcome_cb)(const char *transport, const char *outcome,
	    int64_t count, int64_t pages, void *arg);
int	store_outcome_counts(struct store *, store_outcome_cb, void *);
/* Seconds from acceptance to delivery of every delivered job. */
typedef int (*store_latency_cb)(int64_t seconds, void *arg);
int	store_delivery_latencies(struct store *, store_latency_cb, void *);

/*
 * Sealed records (schema 8): tables whose rows are hash-chained and
 * covered by the epoch seals of src/seal.c.  A row's hash is SHA-256 of
 * prev_hash and the netstrings of its canonical columns (src/store.c has
 * the lists); its mac is made with the sealing key of the epoch it was
 * written in.  To make a new table tamper-evident (incidents,
 * suspensions): create it in a migration with a sequence INTEGER PRIMARY
 * KEY, prev_hash, hash and mac columns and UPDATE/DELETE triggers; add it
 * to enum store_sealed and to sealed_tables[] in store.c; write its rows
 * only with store_sealed_append.  Sealing and verification then cover it.
 */
enum store_sealed {
	STORE_SEALED_DISCLOSURES = 0,
	STORE_SEALED_AUDIT,
	STORE_SEALED_SUSPENSIONS,	/* schema 9 */
	STORE_SEALED_INCIDENTS,		/* schema 9 */
	STORE_SEALED_ASSESSMENTS,	/* schema 9 */
	STORE_SEALED_PRUNES,		/* schema 10: never pruned itself */
	STORE_SEALED_EXTENSIONS,	/* schema 9: request_extensions */
	STORE_SEALED_N
};
const char	*store_sealed_name(enum store_sealed);	/* the table's name */

struct store_sealed_row {
	int64_t		 seq;
	char		 prev_hash[65];	/* "" if NULL */
	char		 hash[65];
	char		 mac[65];	/* "" if none (written before sealing) */
	const char	*canonical;	/* the netstrings hashed after prev_hash */
	size_t		 canonical_len;
	int		 malformed;	/* a value not of its column's type */
};
typedef int (*store_sealed_cb)(const struct store_sealed_row *, void *arg);
/* Rows with seq > after, in order; the callback's non-zero stops. */
int	store_sealed_iter(struct store *, enum store_sealed, int64_t after,
	    store_sealed_cb, void *arg);
/* The last row's seq and hash: 1, or 0 with seq 0 and the genesis hash. */
int	store_sealed_last(struct store *, enum store_sealed, int64_t *seq,
	    char hash[65]);
/* The hash of row seq: 1, 0 if there is no such row, -1. */
int	store_sealed_hash_at(struct store *, enum store_sealed, int64_t seq,
	    char hash[65]);
/* SQLite's integrity_check of the table and its indexes: 1 (the first
 * problem in why), 0 sound, -1. */
int	store_sealed_integrity(struct store *, enum store_sealed, char *why,
	    size_t whylen);
/* Append a row: values are the canonical columns after the sequence, as
 * text (NULL allowed); seq, prev_hash, hash and mac are filled in. */
int	store_sealed_append(struct store *, enum store_sealed,
	    const char *const *values, int64_t *seq);
/* Called for each sealed row inserted, to fill its mac (src/seal.c). */
typedef void (*store_sealer)(const char hash[65], char mac[65], void *arg);
void	store_set_sealer(struct store *, store_sealer, void *arg);

/* One epoch's seal and the range of each sealed table it covers. */
struct store_seal {
	int64_t		 epoch;
	int64_t		 start_at, end_at;	/* unix seconds */
	struct {
		int	 present;
		int64_t	 first, last;	/* written in this epoch; last < first: none */
		char	 head[65];	/* the chain's hash at last */
	} range[STORE_SEALED_N];
	int		 unknown_ranges;	/* ranges of tables not known here */
	char		 prev_seal[65];
	char		 seal[65];
};
int	store_seal_insert(struct store *, const struct store_seal *);
/* 1 and the newest seal, 0 if none, -1. */
int	store_seal_last(struct store *, struct store_seal *);
/* The seal of one epoch: 1, 0 if there is none, -1. */
int	store_seal_at(struct store *, int64_t epoch, char seal[65]);
typedef int (*store_seal_cb)(const struct store_seal *, void *arg);
/* All seals by epoch (or only the newest); non-zero from cb stops. */
int	store_seal_iter(struct store *, int newest_only, store_seal_cb, void *arg);

/*
 * The accounting of disclosures (schema 9, src/accounting.c).
 */
/* One patient's accountable entries with at < until (0: any), a job's
 * entries together in seq order, with the job's request reference. */
typedef int (*store_accounting_cb)(const struct disclosure *,
	    const char *request_ref, void *arg);
int	store_accounting_iter(struct store *, const char *mrn, int64_t until,
	    store_accounting_cb, void *);
/* A suspension of the accounting (164.528(a)(2)), or its early end. */
struct store_suspension {
	int64_t		 seq;
	int64_t		 at;
	const char	*action;	/* "suspend" or "end" */
	int64_t		 ref;		/* end: the suspension's seq */
	const char	*agency;
	const char	*mrn;		/* NULL: every patient */
	int		 oral;
	int64_t		 until_at;	/* unix seconds, exclusive */
	const char	*actor;
	const char	*note;
};
int	store_suspension_add(struct store *, const struct store_suspension *,
	    int64_t *seq);
typedef int (*store_suspension_cb)(const struct store_suspension *, void *);
int	store_suspension_iter(struct store *, store_suspension_cb, void *);
/* A sealed table's rows as text (the canonical columns, sequence first),
 * optionally only those whose column where_col equals where_val. */
typedef int (*store_row_cb)(const char *const *values, int n, void *arg);
/* Request deadlines (src/requests.c): the requests still open, as
 * docs/requests.md counts them (no job delivered, one still to do, or a
 * failure after the last delivery), each with the ids of its jobs ("4,5",
 * in no order) and the manifest of its newest job.  The jobs table is
 * grouped by its columns; only open requests' manifests are read. */
/* The received_on (YYYY-MM-DD) of the oldest open request: 1, 0 if
 * none is open, -1 on error. */
int	store_oldest_open_request(struct store *, char *received_on, size_t);
typedef int (*store_open_request_cb)(const char *request_id, const char *jobs,
	    const char *manifest, void *arg);
int	store_open_requests(struct store *, store_open_request_cb, void *);
/* Request deadlines (src/requests.c): the one extension of a request, a
 * sealed row: 0, 1 if the request has one already, -1. */
int	store_request_extend(struct store *, const char *request_id, int64_t at,
	    const char *reason, const char *actor);
typedef int (*store_extension_cb)(const char *request_id, int64_t at,
	    const char *reason, const char *actor, void *arg);
int	store_request_extensions(struct store *, store_extension_cb, void *);
int	store_sealed_rows(struct store *, enum store_sealed, const char *where_col,
	    int64_t where_val, store_row_cb, void *);

/*
 * Retention (schema 10, src/retention.c): a prune record, sealed, says
 * for each sealed table up to which entry the entries were removed; the
 * cut is always the last entry of a sealed epoch, whose seal holds the
 * chain hash there, so that the rest verifies from the cut on.
 */
struct store_prune {
	int64_t		 seq;
	int64_t		 at;		/* when it was recorded */
	char		 actor[96];	/* "uid 0 (root)" */
	int64_t		 before;	/* epochs that ended by then may go */
	struct {
		int64_t	 cut;		/* last entry removed; 0: none */
		int64_t	 epoch;		/* the sealed epoch that ends at cut */
		char	 head[65];	/* the chain hash at cut */
	} t[STORE_SEALED_N];
};
/* Append it (sealed); seq filled in.  Inside the caller's transaction. */
int	store_prune_add(struct store *, struct store_prune *);
/* Every prune record, oldest first; cb's non-zero stops.  A record whose
 * cuts do not parse is passed with seq set and every cut -1. */
typedef int (*store_prune_cb)(const struct store_prune *, void *arg);
int	store_prune_iter(struct store *, store_prune_cb, void *);
/* The newest prune record: 1, 0 if none (all cuts 0), -1. */
int	store_prune_last(struct store *, struct store_prune *);
/* The newest seal whose epoch ended at or before t: 1, 0 if none, -1. */
int	store_seal_ended_by(struct store *, int64_t t, struct store_seal *);
/* Entries of a table with after < seq <= upto: how many, and the times of
 * the first and last (0 if none). */
int	store_sealed_span(struct store *, enum store_sealed, int64_t after,
	    int64_t upto, int64_t *count, int64_t *first_at, int64_t *last_at);
/* Remove at most limit entries with seq <= upto, oldest first, in one
 * transaction of its own (the table's append-only trigger is lifted for
 * it and put back as it was): the number removed, or -1. */
int64_t	store_sealed_remove(struct store *, enum store_sealed, int64_t upto,
	    int limit);

#endif
