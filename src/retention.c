/*
 * Retention (daemon, the event loop's one thread): what roigate keeps and
 * for how long, [retention] in roigate.conf.
 *
 *   jobs/ID    the accepted copy of a packet: removed `jobs` (30 days)
 *              after the job reached a final state (delivered, failed,
 *              cancelled); never while the job may still be sent
 *   archive/   the bytes of each attempt's output: removed `archive`
 *              (30 days) after they were made
 *   records    the sealed tables (disclosures, audit, suspensions,
 *              incidents, assessments): never removed by themselves;
 *              `roictl prune` removes those sealed `records` (six years
 *              at least, 45 CFR 164.316(b)(2)) before now
 *
 * A prune first commits a sealed prune record (src/store.c, schema 10)
 * naming, for each table, the last entry removed: always the last entry
 * of a sealed epoch, so that the epoch's seal vouches for the chain hash
 * there and what remains verifies from the cut on (src/seal.c).  The
 * removal itself then runs from a timer in transactions of at most
 * PRUNE_BATCH entries, so that the loop answers clients and sends between
 * them: a long removal never stalls the queue, and one cut short by a
 * stop is taken up again at start (the record says what is to go).  A
 * child process was the other way; it would hold the database's write
 * lock for the whole removal, which stalls the daemon just the same, and
 * would have to mark its record with a sealing key the parent may evolve
 * meanwhile.  Folders are removed the same way, PRUNE_FOLDERS per turn.
 *
 * Logs say what went in counts and dates, never whose records they were.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "retention.h"
#include "roigated.h"
#include "seal.h"
#include "store.h"
#include "util.h"

#define PRUNE_BATCH	500	/* entries in one transaction */
#define PRUNE_FOLDERS	20	/* jobs/ID folders in one turn */
#define SWEEP_EVERY_MS	(3600 * 1000)
#define FOLDER_DEPTH	4	/* a job folder is flat; a little slack */

static struct loop_timer	*sweep_timer;
static struct loop_timer	*remove_timer;
static struct {
	int		 active;
	int64_t		 seq;			/* the prune record */
	int64_t		 cut[STORE_SEALED_N];
	int64_t		 removed[STORE_SEALED_N];
} rm;

static const char *
table_words(enum store_sealed t)
{
	return t == STORE_SEALED_DISCLOSURES ? "disclosure" :
	    t == STORE_SEALED_AUDIT ? "audit" : store_sealed_name(t);
}

/* Remove what is in the folder fd (then closed), depth levels down. */
static int
remove_contents(int fd, int depth)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	int		 rv = 0, sub;

	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			rv = -1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (depth == 0 || (sub = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
			    remove_contents(sub, depth - 1) == -1 ||
			    unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == -1)
				rv = -1;
		} else if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			rv = -1;
	}
	closedir(d);
	return rv;
}

/* jobs/NAME and everything in it, never following a link. */
static int
remove_folder(int jobs, const char *name)
{
	int	fd;

	if ((fd = openat(jobs, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (remove_contents(fd, FOLDER_DEPTH) == -1)
		return -1;
	return unlinkat(jobs, name, AT_REMOVEDIR);
}

/* Bytes of the files in folder NAME (one level: a job folder is flat). */
static int64_t
folder_bytes(int jobs, const char *name)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	int64_t		 n = 0;
	int		 fd;

	if ((fd = openat(jobs, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			n += st.st_size;
	closedir(d);
	return n;
}

/* 1 if jobs/NAME is the folder of a job final for longer than the
 * retention period; 0 if not (a job still open, an unknown folder). */
static int
job_expired(const char *name, int64_t now)
{
	struct job	j;
	char		*end;
	long long	 id;
	int		 rv;

	errno = 0;
	id = strtoll(name, &end, 10);
	if (errno || end == name || *end != '\0' || id <= 0)
		return 0;
	/* A folder without a row is intake_recover()'s, never ours. */
	if (store_job_get(rg->store, id, &j) != 1)
		return 0;
	rv = job_state_final(j.state) &&
	    j.updated_at <= now - rg->conf->retention_jobs_ms / 1000;
	job_free(&j);
	return rv;
}

typedef int (*folder_cb)(int jobs, const char *name, void *arg);	/* non-zero stops */

/* Each expired job folder; -1 if jobs/ cannot be read. */
static int
expired_folders(int64_t now, folder_cb cb, void *arg)
{
	char		 path[PATH_MAX];
	struct dirent	*de;
	DIR		*d;

	if (rg->conf->retention_jobs_ms == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/jobs", rg->conf->state_dir);
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && job_expired(de->d_name, now) &&
		    cb(dirfd(d), de->d_name, arg))
			break;
	closedir(d);
	return 0;
}

struct sweep {
	int	 removed, failed;
	int64_t	 count, bytes;
};

static int
sweep_one(int jobs, const char *name, void *arg)
{
	struct sweep	*s = arg;

	if (remove_folder(jobs, name) == 0)
		s->removed++;
	else {
		log_warn("retention: cannot remove jobs/%s", name);
		s->failed++;
	}
	return s->removed + s->failed >= PRUNE_FOLDERS;
}

static int
count_one(int jobs, const char *name, void *arg)
{
	struct sweep	*s = arg;

	s->count++;
	s->bytes += folder_bytes(jobs, name);
	return 0;
}

/* Archived outputs older than the archive retention. */
static void
archive_expire(void)
{
	char		 path[PATH_MAX];
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	int64_t		 cutoff = now_wall() - rg->conf->archive_retention_ms / 1000;
	int		 n = 0;

	snprintf(path, sizeof(path), "%s/archive", rg->conf->state_dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode) || st.st_mtime >= cutoff)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		log_info("retention: removed %d archived output%s older than "
		    "[retention] archive", n, n == 1 ? "" : "s");
}

/* A turn of the sweep: archive/, then up to PRUNE_FOLDERS job folders;
 * again at once while there are more, else in an hour. */
static void
sweep(void *arg)
{
	struct sweep	s = { 0, 0, 0, 0 };
	char		path[PATH_MAX];

	archive_expire();
	if (expired_folders(now_wall(), sweep_one, &s) == -1)
		log_warn("retention: cannot read %s/jobs", rg->conf->state_dir);
	if (s.removed > 0) {
		snprintf(path, sizeof(path), "%s/jobs", rg->conf->state_dir);
		if (fsync_dir(path) == -1)
			log_warn("retention: %s", path);
		log_info("retention: removed the documents of %d finished job%s "
		    "(jobs/ID, older than [retention] jobs)", s.removed,
		    s.removed == 1 ? "" : "s");
	}
	/* More to go: the next turn after the events waiting now.  Failures
	 * alone wait for the hour, not a busy loop. */
	if (s.removed > 0 && s.removed + s.failed >= PRUNE_FOLDERS)
		loop_timer_set(sweep_timer, 0);
	else
		loop_timer_set(sweep_timer, SWEEP_EVERY_MS);
}

void
retention_sweep(void)
{
	sweep(NULL);
}

/* One turn of a prune's removal. */
static void
remove_turn(void *arg)
{
	int64_t	n;
	int	more = 0;

	for (int t = 0; t < STORE_SEALED_N && !more; t++) {
		if (rm.cut[t] <= 0)
			continue;
		if ((n = store_sealed_remove(rg->store, t, rm.cut[t], PRUNE_BATCH)) == -1) {
			/* Busy: again in a second.  Anything else: said, and
			 * tried again in a minute; the record stands. */
			int busy = store_temporary_error(rg->store);
			if (!busy)
				daemon_problem(PROBLEM_RETENTION, "prune %lld: cannot "
				    "remove %s entries: %.180s", (long long)rm.seq,
				    table_words(t), store_errmsg(rg->store));
			loop_timer_set(remove_timer, busy ? 1000 : 60000);
			return;
		}
		rm.removed[t] += n;
		more = n == PRUNE_BATCH;
	}
	if (more) {
		loop_timer_set(remove_timer, 0);
		return;
	}
	daemon_problem_clear(PROBLEM_RETENTION);
	log_info("retention: prune %lld done: removed %lld disclosure, %lld audit, "
	    "%lld suspension, %lld incident and %lld assessment entries",
	    (long long)rm.seq, (long long)rm.removed[STORE_SEALED_DISCLOSURES],
	    (long long)rm.removed[STORE_SEALED_AUDIT],
	    (long long)rm.removed[STORE_SEALED_SUSPENSIONS],
	    (long long)rm.removed[STORE_SEALED_INCIDENTS],
	    (long long)rm.removed[STORE_SEALED_ASSESSMENTS]);
	rm.active = 0;
}

static void
remove_start(const struct store_prune *p)
{
	memset(&rm, 0, sizeof(rm));
	rm.active = 1;
	rm.seq = p->seq;
	for (int t = 0; t < STORE_SEALED_N; t++)
		rm.cut[t] = t == STORE_SEALED_PRUNES ? 0 : p->t[t].cut;
	loop_timer_set(remove_timer, 0);
}

/* A removal a stop cut short: the newest record still names entries. */
static void
remove_resume(void)
{
	struct store_prune	p;
	int64_t			count, a, b, left = 0;

	if (store_prune_last(rg->store, &p) != 1)
		return;
	for (int t = 0; t < STORE_SEALED_N; t++)
		if (t != STORE_SEALED_PRUNES && p.t[t].cut > 0 &&
		    store_sealed_span(rg->store, t, 0, p.t[t].cut, &count, &a,
		    &b) == 0)
			left += count;
	if (left == 0)
		return;
	log_info("retention: prune %lld: %lld entries still to remove; removing "
	    "them", (long long)p.seq, (long long)left);
	remove_start(&p);
}

void
retention_init(void)
{
	char	path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/archive", rg->conf->state_dir);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		log_warn("cannot create %s", path);
	sweep_timer = loop_timer_new(sweep, NULL);
	remove_timer = loop_timer_new(remove_turn, NULL);
	sweep(NULL);
	remove_resume();
}

int
retention_plan(int64_t now, struct retention_plan *pl, char *why,
    size_t whylen)
{
	struct store_prune	 prev;
	struct store_seal	 z;
	struct sweep		 s = { 0, 0, 0, 0 };
	int64_t			 floor;
	int			 rv;

	memset(pl, 0, sizeof(*pl));
	pl->now = now;
	pl->epoch = -1;
	pl->removing = rm.active;
	/* Never younger than six calendar years, whatever the setting. */
	pl->before = now - rg->conf->retention_records_ms / 1000;
	if ((floor = time_years_before(now, SEAL_PRUNE_MIN_YEARS)) < pl->before)
		pl->before = floor;
	if (expired_folders(now, count_one, &s) == 0) {
		pl->job_folders = s.count;
		pl->job_bytes = s.bytes;
	}
	if (!seal_active()) {
		bsnprintf(why, whylen, "records are pruned only on a sealed log "
		    "(roigated --setup-seal): without seals a prune could not be "
		    "told from entries removed by someone else");
		return -1;
	}
	if (store_prune_last(rg->store, &prev) == -1 ||
	    (rv = store_seal_ended_by(rg->store, pl->before, &z)) == -1) {
		bsnprintf(why, whylen, "cannot read the database: %.200s",
		    store_errmsg(rg->store));
		return -1;
	}
	pl->rec.at = now;
	pl->rec.before = pl->before;
	for (int t = 0; t < STORE_SEALED_N; t++) {
		if (t == STORE_SEALED_PRUNES)
			continue;
		/* Each record carries every cut, the earlier ones too: the
		 * newest alone says where each chain begins. */
		pl->rec.t[t] = prev.t[t];
		pl->t[t].from = prev.t[t].cut + 1;
		pl->t[t].to = prev.t[t].cut;
		if (rv == 1 && z.range[t].present && z.range[t].last > prev.t[t].cut) {
			pl->rec.t[t].cut = pl->t[t].to = z.range[t].last;
			pl->rec.t[t].epoch = z.epoch;
			strlcpy_(pl->rec.t[t].head, z.range[t].head,
			    sizeof(pl->rec.t[t].head));
			pl->epoch = z.epoch;
		}
		if (pl->t[t].to >= pl->t[t].from && store_sealed_span(rg->store, t,
		    prev.t[t].cut, pl->t[t].to, &pl->t[t].count, &pl->t[t].first_at,
		    &pl->t[t].last_at) == -1) {
			bsnprintf(why, whylen, "cannot read the database: %.200s",
			    store_errmsg(rg->store));
			return -1;
		}
	}
	return 0;
}

int
retention_prune(struct retention_plan *pl, const char *actor, char *why,
    size_t whylen)
{
	char	when[32];

	strlcpy_(pl->rec.actor, actor, sizeof(pl->rec.actor));
	pl->rec.seq = 0;
	retention_sweep();
	if (pl->epoch < 0)
		return 0;
	if (store_begin(rg->store) == -1 ||
	    store_prune_add(rg->store, &pl->rec) == -1 ||
	    store_commit(rg->store) == -1) {
		bsnprintf(why, whylen, "cannot write the prune record: %.200s",
		    store_errmsg(rg->store));
		store_rollback(rg->store);
		pl->rec.seq = 0;
		return -1;
	}
	time_iso(pl->before, when, sizeof(when));
	log_info("retention: prune %lld by %.96s: removing in the background the "
	    "records of epochs 0 to %lld (sealed before %s)", (long long)pl->rec.seq,
	    actor, (long long)pl->epoch, when);
	remove_start(&pl->rec);
	return 0;
}
