/*
 * Spool folder intake (daemon).  ROI clerks drop packet folders into the
 * spool's incoming/.  inotify tells us when something moves there, and a
 * periodic rescan catches what inotify cannot see (network file systems,
 * an overflowed event queue).  A packet is read once nothing in it has
 * changed for settle_ms.  Then it is:
 *   - incomplete (manifest or a listed document not there yet): it waits,
 *     up to incomplete_timeout, then it is rejected;
 *   - rejected: moved to rejected/ with a REASON.txt a clerk can act on;
 *   - accepted: renamed into the daemon's private jobs/ID (same file
 *     system), fsynced, and only then committed as a job.
 * Nothing is ever deleted.  The packet is untrusted input: every name is
 * opened with O_NOFOLLOW relative to the packet folder, and symlinks,
 * hard links, subfolders, extra files and oversized files are refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "manifest.h"
#include "policy.h"
#include "queue.h"
#include "roigated.h"
#include "intake.h"
#include "spool.h"
#include "store.h"
#include "util.h"

#define SPOOL_WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
	IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB)

struct packet {
	char		*name;		/* entry in incoming/ */
	int		 wd;		/* inotify watch on the folder, -1 if none */
	int64_t		 first_seen;	/* monotonic ms */
	int64_t		 last_change;	/* monotonic ms */
	int		 waiting;	/* incomplete: next look on an event,
					 * the rescan or the deadline */
	int64_t		 blocked_until;	/* may not be taken: look again then */
	int64_t		 backoff;	/* ms, doubling while it stays so */
	char		*blocked;	/* why, as last said */
	int		 reading;	/* a document's reader is at work */
	struct packet	*next;
};

static int			 incoming_fd = -1, rejected_fd = -1, jobs_fd = -1;
static int			 ino_fd = -1, ino_wd = -1;
static struct loop_fd		*ino_lf;
static struct loop_timer	*settle_timer, *rescan_timer;
static struct packet		*packets;
static struct policy_magic	*magic;
static int			 stopped;

static void	spool_schedule(void);
static void	spool_blocked_changed(void);

static struct packet *
packet_find(const char *name)
{
	for (struct packet *p = packets; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void
packet_forget(struct packet *p)
{
	struct packet	**pp;

	for (pp = &packets; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->wd != -1)
		inotify_rm_watch(ino_fd, p->wd);
	if (p->blocked)
		spool_blocked_changed();
	free(p->blocked);
	free(p->name);
	free(p);
}

/* Note activity on an entry of incoming/ (new or known). */
static void
packet_touch(const char *name)
{
	struct packet	*p;
	char		 path[PATH_MAX];

	if (name[0] == '.')
		return;		/* hidden: a drop in progress */
	if ((p = packet_find(name)) == NULL) {
		p = xcalloc(1, sizeof(*p));
		p->name = xstrdup(name);
		p->first_seen = now_ms();
		p->wd = -1;
		p->next = packets;
		packets = p;
		log_debug("spool: new entry %.100s", name);
	}
	if (p->wd == -1 && bsnprintf(path, sizeof(path), "%s/incoming/%s",
	    rg->conf->spool_dir, name) != -1)
		p->wd = inotify_add_watch(ino_fd, path, SPOOL_WATCH_MASK |
		    IN_ONLYDIR | IN_DONT_FOLLOW);
	p->last_change = now_ms();
	p->waiting = 0;
	p->blocked_until = 0;	/* changed: perhaps fixed; look again */
}

static void
spool_rescan(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = dup(incoming_fd)) == -1 || (d = fdopendir(fd)) == NULL) {
		daemon_problem(PROBLEM_SPOOL, "cannot read the spool's incoming "
		    "folder: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && packet_find(de->d_name) == NULL)
			packet_touch(de->d_name);
	closedir(d);
	/* What inotify cannot see (network file systems): look again. */
	for (struct packet *p = packets; p; p = p->next)
		p->waiting = 0;
}

static void
spool_rescan_timer(void *arg)
{
	if (stopped)
		return;
	spool_rescan();
	spool_schedule();
	loop_timer_set(rescan_timer, rg->conf->rescan_ms);
}

static void
spool_inotify(int fd, uint32_t events, void *arg)
{
	char			 b[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t			 n;

	while ((n = read(ino_fd, b, sizeof(b))) > 0) {
		for (char *c = b; c < b + n; c += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)c;
			if (ev->mask & IN_Q_OVERFLOW) {
				spool_rescan();
				continue;
			}
			if (ev->wd == ino_wd && ev->len > 0) {
				/* A name leaving incoming/ (often our own move) is news
				 * only if we were watching it. */
				if (!(ev->mask & (IN_MOVED_FROM | IN_DELETE)) ||
				    packet_find(ev->name) != NULL)
					packet_touch(ev->name);
				continue;
			}
			for (struct packet *p = packets; p; p = p->next)
				if (p->wd == ev->wd) {
					p->last_change = now_ms();
					p->waiting = 0;
					p->blocked_until = 0;
					if (ev->mask & IN_IGNORED)
						p->wd = -1;
				}
		}
	}
	spool_schedule();
}

/* REASON.txt text for a list of reasons. */
static char *
spool_reason_text(const struct errlist *errs)
{
	struct buf	b;
	char		when[32];

	time_iso(now_wall(), when, sizeof(when));
	buf_init(&b);
	buf_printf(&b, "roigate did not accept this packet (%s).\n\n", when);
	for (size_t i = 0; i < errs->n; i++)
		buf_printf(&b, "- %s\n", errs->msg[i]);
	buf_addstr(&b, "\nFix the packet and copy the folder into incoming/ again.\n");
	return buf_cstr(&b);
}

/* Write the reasons into the packet folder as REASON.txt, or REASON.N.txt
 * when a file of that name is there already: never over someone's file. */
static void
spool_write_reason(int fd, const char *text)
{
	char	name[32];

	for (int i = 0; i < 100; i++) {
		if (i == 0)
			strlcpy_(name, "REASON.txt", sizeof(name));
		else
			snprintf(name, sizeof(name), "REASON.%d.txt", i);
		if (write_file_excl(fd, name, text, strlen(text), 0644) == 0)
			return;
		if (errno != EEXIST)
			break;
	}
	log_warn("spool: cannot write the reasons into a refused packet");
}

/* Move incoming/NAME to rejected/NAME (or NAME.1, ...) with its reasons;
 * dir: it is a folder, this one.  -1: it cannot be moved (errno), and stays
 * where it is; 1: another folder has its name now, and stays. */
static int
spool_reject(const char *name, const struct stat *dir, const struct errlist *errs)
{
	char		 target[NAME_MAX + 1], rname[NAME_MAX + 16];
	char		*text;
	struct stat	 st;
	int		 fd, i, is_dir = dir != NULL, rv = -1;

	if (is_dir && (fd = openat(incoming_fd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) != -1) {
		/* Another folder has the name now (see spool_remove_original):
		 * the one refused is elsewhere, and refused when found there. */
		if (fstat(fd, &st) == 0 && (st.st_dev != dir->st_dev ||
		    st.st_ino != dir->st_ino)) {
			close(fd);
			return 1;
		}
		/* Written before the move: a crash leaves it in incoming, to retry. */
		text = spool_reason_text(errs);
		spool_write_reason(fd, text);
		close(fd);
	} else
		text = spool_reason_text(errs);
	metrics_intake_refused(errs);
	for (i = 0; i < 10000; i++) {
		if (i == 0)
			strlcpy_(target, name, sizeof(target));
		else if (bsnprintf(target, sizeof(target), "%.200s.%d", name, i) == -1)
			break;
		if (renameat2(incoming_fd, name, rejected_fd, target,
		    RENAME_NOREPLACE) == 0) {
			rv = 0;
			break;
		}
		if (errno != EEXIST)
			break;
	}
	if (rv == -1) {
		int saved = errno;
		free(text);
		errno = saved;
		return -1;
	}
	fsync(rejected_fd);
	fsync(incoming_fd);
	if (!is_dir) {
		/* NAME.REASON.txt: a long name is cut (between characters) to
		 * leave room for the suffix. */
		size_t keep = strlen(target);
		if (keep > NAME_MAX - strlen(".REASON.txt")) {
			keep = NAME_MAX - strlen(".REASON.txt");
			while (keep > 0 && ((unsigned char)target[keep] & 0xc0) == 0x80)
				keep--;
		}
		if (bsnprintf(rname, sizeof(rname), "%.*s.REASON.txt", (int)keep,
		    target) == -1 || write_file_excl(rejected_fd, rname, text,
		    strlen(text), 0644) == -1)
			log_warn("spool: cannot write the reasons for a refused file "
			    "into rejected/");
	}
	log_info("spool: packet rejected (%zu reason%s), moved to rejected/",
	    errs->n, errs->n == 1 ? "" : "s");
	log_debug("spool: rejected %.100s: %.200s", name, errs->n ? errs->msg[0] : "");
	free(text);
	return 0;
}

/* The one line of "roictl status" about folders that cannot be taken
 * (each folder's reason is logged once, by spool_block). */
static void
spool_blocked_changed(void)
{
	struct buf	 b;
	int		 n = 0;

	buf_init(&b);
	for (struct packet *p = packets; p; p = p->next)
		if (p->blocked && n++ < 4)
			buf_printf(&b, "%sincoming/%.60s", n > 1 ? ", " : "", p->name);
	if (n == 0)
		rg->problem[PROBLEM_SPOOL][0] = '\0';
	else if (n == 1) {
		for (struct packet *p = packets; p; p = p->next)
			if (p->blocked)
				strlcpy_(rg->problem[PROBLEM_SPOOL], p->blocked,
				    sizeof(rg->problem[PROBLEM_SPOOL]));
	} else
		snprintf(rg->problem[PROBLEM_SPOOL], sizeof(rg->problem[PROBLEM_SPOOL]),
		    "%d folders in incoming/ cannot be taken: %s%s (the reasons are "
		    "in the log)", n, buf_cstr(&b), n > 4 ? ", ..." : "");
	buf_free(&b);
}

/*
 * The folder may not be taken now: leave it where it is, say why once
 * (a log line and a problem in "roictl status"), and look again on a
 * backoff, or as soon as something in it changes.
 */
static void
spool_block(struct packet *p, const char *why)
{
	if (p->blocked == NULL || strcmp(p->blocked, why) != 0) {
		log_warnx("spool: %s", why);
		free(p->blocked);
		p->blocked = xstrdup(why);
		p->backoff = 0;
		spool_blocked_changed();
	}
	p->backoff = p->backoff ? p->backoff * 2 : 5000;
	if (p->backoff > 300000)
		p->backoff = 300000;
	p->blocked_until = now_ms() + p->backoff;
}

static void
spool_unblock(struct packet *p)
{
	if (p->blocked == NULL)
		return;
	log_info("spool: resolved: incoming/%.100s can be taken now", p->name);
	free(p->blocked);
	p->blocked = NULL;
	p->backoff = 0;
	p->blocked_until = 0;
	spool_blocked_changed();
}

/* "incoming/NAME (owner clerk1, mode 0755)" */
static void
spool_describe(const char *name, const struct stat *st, char *out, size_t len)
{
	struct passwd	*pw = getpwuid(st->st_uid);

	if (pw)
		snprintf(out, len, "incoming/%.100s (owner %.32s, mode %04o)", name,
		    pw->pw_name, (unsigned)(st->st_mode & 07777));
	else
		snprintf(out, len, "incoming/%.100s (owner uid %u, mode %04o)", name,
		    (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
}

/* May roigated remove what is in this folder, and the folder, once it has
 * copied it?  If not, why, in words for the administrator. */
static int
spool_removable(const char *name, int fd, const struct stat *st, char *why,
    size_t len)
{
	struct stat	 in;
	char		 who[200];
	unsigned	 flags = 0;

	spool_describe(name, st, who, sizeof(who));
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
	    (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
		snprintf(why, len, "%s is marked %s (chattr): roigate cannot remove "
		    "it after taking it, so it is left alone; remove the attribute "
		    "with chattr -%c", who, flags & FS_IMMUTABLE_FL ? "immutable" :
		    "append-only", flags & FS_IMMUTABLE_FL ? 'i' : 'a');
		return 0;
	}
	if (faccessat(incoming_fd, name, W_OK | X_OK, AT_EACCESS) == -1) {
		snprintf(why, len, "%s may not be changed by roigate (%s): it cannot "
		    "remove the packet after taking it, so it is left alone; give "
		    "group roigate write access (see docs/operations.md: a setgid "
		    "incoming/ with a default ACL, or a Samba share with force "
		    "group), or submit with roictl submit", who, strerror(errno));
		return 0;
	}
	if (fstat(incoming_fd, &in) == 0 && (in.st_mode & S_ISVTX) &&
	    st->st_uid != geteuid() && in.st_uid != geteuid() && geteuid() != 0) {
		snprintf(why, len, "%s belongs to another user and incoming/ has the "
		    "sticky bit: roigate cannot remove it; clear the sticky bit "
		    "(chmod o-t, g-t)", who);
		return 0;
	}
	return 1;
}

/*
 * Remove the original of a packet roigated has copied and committed.  The
 * folder is first renamed, in one step, to a name the spool never looks at
 * (.roigate-taken-INODE): a crash while its files go then leaves no half
 * packet (documents without their manifest, which would wait and be
 * refused), only a folder the next start removes.  Before the rename the
 * folder is whole and known again for the job's own (jobs/JOB/.origin).
 */
#define TAKEN_PREFIX	".roigate-taken-"

static int
spool_remove_original(const char *name, const struct stat *was)
{
	char		taken[64];
	struct stat	st;
	int		fd;

	if ((fd = openat(incoming_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : errno == ELOOP ? 1 : -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	/* The folder taken was renamed while it was read, and another put
	 * under its name (a clerk's corrected copy): that one is not ours. */
	if (st.st_dev != was->st_dev || st.st_ino != was->st_ino)
		return 1;
	snprintf(taken, sizeof(taken), TAKEN_PREFIX "%llu",
	    (unsigned long long)st.st_ino);
	(void)remove_dir_at(incoming_fd, taken);	/* a left-over, same inode */
	if (renameat(incoming_fd, name, incoming_fd, taken) == -1)
		return errno == ENOENT ? 0 : -1;
	test_crashpoint("spool_mid_removal");
	/* Reason files of an earlier refusal go with it (they are ours).  No
	 * fsync: should the removal be lost in a crash, the folder is known
	 * again for the job's own and removed then. */
	return remove_dir_at(incoming_fd, taken);
}

/* Folders a crash left half removed (see spool_remove_original). */
static void
spool_remove_taken(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = dup(incoming_fd)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, TAKEN_PREFIX, strlen(TAKEN_PREFIX)) == 0 &&
		    (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) &&
		    remove_dir_at(incoming_fd, de->d_name) == -1)
			log_warn("spool: incoming/%s, left by a removal cut short, "
			    "cannot be removed: %s", de->d_name, strerror(errno));
	closedir(d);
}

static int64_t
packet_due(const struct packet *p)
{
	if (p->blocked_until)
		return p->blocked_until;
	if (p->waiting)
		return p->first_seen + rg->conf->incomplete_timeout_ms;
	return p->last_change + rg->conf->settle_ms;
}

/*
 * The folder p->name was taken (as job id; 0: refused), but what has that
 * name now is another one:
 * look at it as a new entry (the one taken, wherever it went in incoming/,
 * is known for the job's own).  2.
 */
static int
spool_replaced(struct packet *p, int64_t id)
{
	if (id)
		log_info("spool: job %lld was taken from a folder renamed while it "
		    "was read; the folder now under its name is looked at on its "
		    "own", (long long)id);
	else
		log_info("spool: a packet refused was renamed while it was read; "
		    "the folder now under its name is looked at on its own");
	if (p->wd != -1)
		inotify_rm_watch(ino_fd, p->wd);
	p->wd = -1;
	p->first_seen = now_ms();
	packet_touch(p->name);
	return 2;
}

/* Copy, check and take a packet folder (fd open on it).  1: keep looking;
 * 2: look again, as at a new folder. */
static int
spool_take(struct packet *p, int fd)
{
	struct errlist		 errs = { NULL, 0 };
	struct intake_stage	 sg;
	struct manifest		*m = NULL;
	struct stat		 st;
	char			 err[512], why[700];
	int64_t			 id, same;
	int			 rv;

	if (fstat(fd, &st) == -1) {
		snprintf(why, sizeof(why), "incoming/%.100s cannot be read: %s",
		    p->name, strerror(errno));
		spool_block(p, why);
		return 1;
	}
	if (intake_stage_open(&sg, err, sizeof(err)) == -1) {
		snprintf(why, sizeof(why), "packets cannot be taken: %.400s", err);
		spool_block(p, why);
		return 1;
	}
	rv = intake_check(fd, sg.fd, &m, &errs, &same);
	if (rv == 1) {
		intake_stage_discard(&sg);
		if (now_ms() - p->first_seen < rg->conf->incomplete_timeout_ms) {
			errlist_free(&errs);
			return 1;
		}
		errlist_add(&errs, "the packet was still incomplete after %lld "
		    "seconds", (long long)(rg->conf->incomplete_timeout_ms / 1000));
		rv = -1;
	}
	if (rv == 4) {
		/* Looked at again when a reader finishes (spool_probed), or
		 * on a change; a minute at the latest, whatever happens. */
		intake_stage_discard(&sg);
		errlist_free(&errs);
		p->reading = 1;
		p->blocked_until = now_ms() + 60000;
		log_debug("spool: incoming/%.100s waits for its document reader",
		    p->name);
		return 1;
	}
	if (rv == 3) {
		intake_stage_discard(&sg);
		snprintf(why, sizeof(why), "incoming/%.100s waits: %.400s", p->name,
		    errs.n ? errs.msg[0] : "a document could not be checked now");
		errlist_free(&errs);
		spool_block(p, why);
		return 1;
	}
	if (rv == 2) {
		/* Taken before (a restart came between the commit and the
		 * removal, or it was dropped again unchanged): only remove it. */
		intake_stage_discard(&sg);
		errlist_free(&errs);
		rv = spool_remove_original(p->name, &st);
		manifest_free(m);
		if (rv == 1)
			return spool_replaced(p, same);
		if (rv == 0) {
			log_info("spool: packet already accepted as job %lld; its copy "
			    "in incoming/ was removed", (long long)same);
			return 0;
		}
		snprintf(why, sizeof(why), "job %lld was taken, but its folder "
		    "incoming/%.100s cannot be removed: %s", (long long)same, p->name,
		    strerror(errno));
		spool_block(p, why);
		return 1;
	}
	if (rv == -1) {
		intake_stage_discard(&sg);
		rv = spool_reject(p->name, &st, &errs);
		errlist_free(&errs);
		if (rv == 0)
			return 0;
		if (rv == 1)
			return spool_replaced(p, 0);
		snprintf(why, sizeof(why), "a refused packet cannot be moved to "
		    "rejected/ (%s): incoming/%.100s; give group roigate write access "
		    "to it", strerror(errno), p->name);
		spool_block(p, why);
		return 1;
	}
	if (intake_accept(&sg, m, "spool", "spool", -1, &id, err, sizeof(err)) == -1) {
		intake_stage_discard(&sg);
		manifest_free(m);
		snprintf(why, sizeof(why), "cannot accept packets: %.400s", err);
		spool_block(p, why);
		return 1;
	}
	log_info("spool: packet accepted as job %lld", (long long)id);
	manifest_free(m);
	if ((rv = spool_remove_original(p->name, &st)) == 1)
		return spool_replaced(p, id);
	if (rv == -1) {
		/* Taken all the same: the next look finds it is job id. */
		snprintf(why, sizeof(why), "job %lld was taken, but its folder "
		    "incoming/%.100s cannot be removed: %s", (long long)id, p->name,
		    strerror(errno));
		spool_block(p, why);
		return 1;
	}
	return 0;
}

/* Read one settled entry of incoming/.  1: keep waiting; 0: done with it;
 * 2: taken, and another folder has its name now. */
static int
spool_process(struct packet *p)
{
	struct errlist	 errs = { NULL, 0 };
	struct stat	 st;
	char		 why[700], shown[104];
	int		 fd, rv;

	if (fstatat(incoming_fd, p->name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;	/* gone again */
	if (!valid_filename(p->name)) {
		/* Nothing more is read of it: the name is the trouble. */
		errlist_add(&errs, "the name \"%s\" holds a control character (a "
		    "line break, a tab?) or a backslash: give the %s a plain name "
		    "and copy it into incoming/ again", name_shown(p->name, shown,
		    sizeof(shown)), S_ISDIR(st.st_mode) ? "folder" : "file");
		rv = spool_reject(p->name, S_ISDIR(st.st_mode) ? &st : NULL, &errs);
		errlist_free(&errs);
		if (rv == -1) {
			snprintf(why, sizeof(why), "incoming/%s cannot be moved to "
			    "rejected/: %s", shown, strerror(errno));
			spool_block(p, why);
			return 1;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		errlist_add(&errs, "%s is %s, not a packet folder: drop a folder "
		    "holding manifest.json and its documents", name_shown(p->name,
		    shown, sizeof(shown)), S_ISLNK(st.st_mode) ? "a symbolic link" :
		    "a single file");
		rv = spool_reject(p->name, NULL, &errs);
		errlist_free(&errs);
		if (rv == -1) {
			snprintf(why, sizeof(why), "incoming/%.100s cannot be moved to "
			    "rejected/: %s", p->name, strerror(errno));
			spool_block(p, why);
			return 1;
		}
		return 0;
	}
	if ((fd = openat(incoming_fd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		snprintf(why, sizeof(why), "incoming/%.100s cannot be opened: %s",
		    p->name, strerror(errno));
		spool_block(p, why);
		return 1;
	}
	if (fstat(fd, &st) == 0 && !spool_removable(p->name, fd, &st, why,
	    sizeof(why))) {
		close(fd);
		spool_block(p, why);
		return 1;
	}
	rv = spool_take(p, fd);
	close(fd);
	if (rv != 1)
		spool_unblock(p);
	return rv;
}

static void
spool_settle(void *arg)
{
	struct packet	*p, *next;
	int64_t		 now = now_ms();
	int		 accepted = 0, rv;

	if (stopped)
		return;
	for (p = packets; p; p = next) {
		next = p->next;
		if (now < packet_due(p))
			continue;
		if ((rv = spool_process(p)) == 0) {
			packet_forget(p);
			accepted++;
		} else if (rv == 2)
			accepted++;	/* taken; another folder has its name now */
		else if (p->blocked_until == 0)
			p->waiting = 1;
	}
	if (accepted)
		queue_kick();
	spool_schedule();
}

void
spool_probed(void)
{
	int	n = 0;

	for (struct packet *p = packets; p; p = p->next)
		if (p->reading) {
			p->reading = 0;
			p->blocked_until = 0;
			p->waiting = 0;
			p->last_change = now_ms() - rg->conf->settle_ms;
			n++;
		}
	if (n && !stopped)
		spool_schedule();
}

/* Arm the settle timer for the earliest packet that could be quiet. */
static void
spool_schedule(void)
{
	int64_t	first = 0, now = now_ms();

	for (struct packet *p = packets; p; p = p->next) {
		int64_t at = packet_due(p);
		if (first == 0 || at < first)
			first = at;
	}
	if (first)
		loop_timer_set(settle_timer, first - now);
	else
		loop_timer_cancel(settle_timer);
}

static int
spool_open_dir(const char *base, const char *sub, mode_t mode)
{
	char	path[PATH_MAX];
	int	fd;

	if (bsnprintf(path, sizeof(path), "%s/%s", base, sub) == -1)
		fatalx("path too long: %s/%s", base, sub);
	if (mkdir_p(path, mode) == -1)
		fatal("cannot create %s", path);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("cannot open %s", path);
	return fd;
}

int
spool_init(void)
{
	char		path[PATH_MAX];

	incoming_fd = spool_open_dir(rg->conf->spool_dir, "incoming", 0750);
	rejected_fd = spool_open_dir(rg->conf->spool_dir, "rejected", 0750);
	jobs_fd = spool_open_dir(rg->conf->state_dir, "jobs", 0700);
	if ((ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		fatal("inotify_init1");
	snprintf(path, sizeof(path), "%s/incoming", rg->conf->spool_dir);
	if ((ino_wd = inotify_add_watch(ino_fd, path, SPOOL_WATCH_MASK |
	    IN_ONLYDIR)) == -1)
		fatal("inotify_add_watch %s", path);
	if ((magic = policy_magic_open()) == NULL)
		fatalx("cannot load libmagic's database");
	intake_init(jobs_fd, magic);
	intake_recover();
	spool_remove_taken();
	ino_lf = loop_fd_add(ino_fd, EPOLLIN, spool_inotify, NULL);
	settle_timer = loop_timer_new(spool_settle, NULL);
	rescan_timer = loop_timer_new(spool_rescan_timer, NULL);
	spool_rescan_timer(NULL);
	return 0;
}

void
spool_stop(void)
{
	stopped = 1;
	loop_timer_cancel(settle_timer);
	loop_timer_cancel(rescan_timer);
	/* Packets dropped from now on wait in incoming/ for the next start. */
	loop_fd_del(ino_lf);
	ino_lf = NULL;
	close(ino_fd);
	ino_fd = -1;
}

void
spool_reconfigure(void)
{
	if (stopped)
		return;
	loop_timer_set(rescan_timer, rg->conf->rescan_ms);
	spool_schedule();
}
