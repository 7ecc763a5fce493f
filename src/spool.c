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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
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
	free(p->name);
	free(p);
}

/* Note activity on an entry of incoming/ (new or known). */
static void
packet_touch(const char *name)
{
	struct packet	*p;
	char		 path[PATH_MAX];

	if (name[0] == '.' || !valid_filename(name))
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

/* Move incoming/NAME to rejected/NAME (or NAME.1, ...) with its reasons. */
static void
spool_reject(const char *name, int is_dir, const struct errlist *errs)
{
	char	 target[NAME_MAX + 1], rname[NAME_MAX + 16];
	char	*text = spool_reason_text(errs);
	int	 fd, i;

	if (is_dir && (fd = openat(incoming_fd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) != -1) {
		/* Written before the move: a crash leaves it in incoming, to retry. */
		if (write_file_atomic(fd, "REASON.txt", text, strlen(text), 0644) == -1)
			log_warn("spool: cannot write REASON.txt in %.100s", name);
		close(fd);
	}
	for (i = 0; i < 10000; i++) {
		if (i == 0)
			strlcpy_(target, name, sizeof(target));
		else if (bsnprintf(target, sizeof(target), "%.200s.%d", name, i) == -1)
			break;
		if (renameat2(incoming_fd, name, rejected_fd, target,
		    RENAME_NOREPLACE) == 0)
			break;
		if (errno != EEXIST) {
			daemon_problem(PROBLEM_SPOOL, "cannot move a packet to "
			    "rejected/: %s", strerror(errno));
			free(text);
			return;
		}
	}
	fsync(rejected_fd);
	fsync(incoming_fd);
	if (!is_dir && bsnprintf(rname, sizeof(rname), "%s.REASON.txt", target) != -1 &&
	    write_file_atomic(rejected_fd, rname, text, strlen(text), 0644) == -1)
		log_warn("spool: cannot write %.100s", rname);
	log_info("spool: packet rejected (%zu reason%s), moved to rejected/",
	    errs->n, errs->n == 1 ? "" : "s");
	log_debug("spool: rejected %.100s: %.200s", name, errs->n ? errs->msg[0] : "");
	free(text);
}

static int64_t
packet_due(const struct packet *p)
{
	if (p->waiting)
		return p->first_seen + rg->conf->incomplete_timeout_ms;
	return p->last_change + rg->conf->settle_ms;
}

/* Read one settled entry of incoming/.  1: keep waiting; 0: done with it. */
static int
spool_process(struct packet *p)
{
	struct errlist	 errs = { NULL, 0 };
	struct manifest	*m = NULL;
	struct stat	 st;
	char		 err[512];
	int64_t		 id;
	int		 fd, rv;

	if (fstatat(incoming_fd, p->name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;	/* gone again */
	if (!S_ISDIR(st.st_mode)) {
		errlist_add(&errs, "%s is %s, not a packet folder: drop a folder "
		    "holding manifest.json and its documents", p->name,
		    S_ISLNK(st.st_mode) ? "a symbolic link" : "a single file");
		spool_reject(p->name, 0, &errs);
		errlist_free(&errs);
		return 0;
	}
	if ((fd = openat(incoming_fd, p->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 0;
	rv = intake_check(fd, &m, &errs);
	close(fd);
	if (rv == 1 && now_ms() - p->first_seen < rg->conf->incomplete_timeout_ms) {
		errlist_free(&errs);
		return 1;
	}
	if (rv == 1)
		errlist_add(&errs, "the packet was still incomplete after %lld "
		    "seconds", (long long)(rg->conf->incomplete_timeout_ms / 1000));
	if (rv != 0) {
		spool_reject(p->name, 1, &errs);
		errlist_free(&errs);
		return 0;
	}
	if (intake_accept(incoming_fd, p->name, m, "spool", "spool", &id, err,
	    sizeof(err)) == -1) {
		log_warnx("spool: cannot accept a packet: %s", err);
		daemon_problem(PROBLEM_SPOOL, "cannot accept packets: %.200s", err);
		manifest_free(m);
		return 1;	/* retried at the next rescan */
	}
	daemon_problem_clear(PROBLEM_SPOOL);
	log_info("spool: packet accepted as job %lld", (long long)id);
	manifest_free(m);
	return 0;
}

static void
spool_settle(void *arg)
{
	struct packet	*p, *next;
	int64_t		 now = now_ms();
	int		 accepted = 0;

	if (stopped)
		return;
	for (p = packets; p; p = next) {
		next = p->next;
		if (now < packet_due(p))
			continue;
		if (spool_process(p) == 0) {
			packet_forget(p);
			accepted++;
		} else
			p->waiting = 1;
	}
	if (accepted)
		queue_kick();
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
	struct stat	a, b;
	char		path[PATH_MAX];

	incoming_fd = spool_open_dir(rg->conf->spool_dir, "incoming", 0750);
	rejected_fd = spool_open_dir(rg->conf->spool_dir, "rejected", 0750);
	jobs_fd = spool_open_dir(rg->conf->state_dir, "jobs", 0700);
	/* Acceptance is a rename: both must be on one file system. */
	if (fstat(incoming_fd, &a) == -1 || fstat(jobs_fd, &b) == -1)
		fatal("fstat");
	if (a.st_dev != b.st_dev)
		fatalx("%s/incoming and %s/jobs are on different file systems; "
		    "packets are accepted by rename, so put them on one",
		    rg->conf->spool_dir, rg->conf->state_dir);
	if ((ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		fatal("inotify_init1");
	snprintf(path, sizeof(path), "%s/incoming", rg->conf->spool_dir);
	if ((ino_wd = inotify_add_watch(ino_fd, path, SPOOL_WATCH_MASK |
	    IN_ONLYDIR)) == -1)
		fatal("inotify_add_watch %s", path);
	if ((magic = policy_magic_open()) == NULL)
		fatalx("cannot load libmagic's database");
	intake_init(jobs_fd, magic);
	intake_recover(rejected_fd);
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
