/*
 * Socket submission (daemon).  The records system passes the manifest as
 * JSON and every document as a file descriptor (SCM_RIGHTS), never as a
 * path the daemon would open with its own rights.  Each descriptor is
 * copied into a fresh staging folder of jobs/, fsynced, and the folder then
 * goes through the very intake a spool packet does: same validation, same
 * durable acceptance.
 * The reply is sent only after the job is committed.
 *
 * Only regular files (including memfds) are taken: a pipe or socket could
 * stall the single-threaded daemon, which serves everyone else meanwhile.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "intake.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "proto.h"
#include "roigated.h"
#include "submit.h"
#include "util.h"

int
submit_init(void)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	/* Earlier versions staged submissions in STATE/submit/: whatever is
	 * left there never got a reply, so its client still holds it. */
	if (bsnprintf(path, sizeof(path), "%s/submit", rg->conf->state_dir) == -1 ||
	    (fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "s.", 2) == 0)
			(void)remove_dir_at(dirfd(d), de->d_name);
	closedir(d);
	(void)rmdir(path);
	return 0;
}

/* A passed descriptor must be a regular file (or memfd) under the cap, and
 * its name a plain file name: checked before any copying starts. */
static int
submit_check_fd(const char *name, int in, struct errlist *errs)
{
	struct stat	st;
	char		shown[104];
	int		fl;

	if (!valid_filename(name) || strcmp(name, "manifest.json") == 0) {
		errlist_add(errs, "file name \"%s\" is not allowed: a plain name, "
		    "no '/', not starting with '.'", name_shown(name, shown,
		    sizeof(shown)));
		return -1;
	}
	if (fstat(in, &st) == -1 || !S_ISREG(st.st_mode)) {
		errlist_add(errs, "%s is not a regular file: pass a file (or memfd), "
		    "not a pipe, socket or device", name);
		return -1;
	}
	if ((fl = fcntl(in, F_GETFL)) == -1 || (fl & O_PATH) ||
	    (fl & O_ACCMODE) == O_WRONLY) {
		errlist_add(errs, "%s is not open for reading: pass it opened for "
		    "reading (O_RDONLY), not write-only or O_PATH", name);
		return -1;
	}
	if (st.st_size > rg->conf->max_file_size) {
		errlist_add(errs, "%s is %lld bytes, over the limit of %lld bytes",
		    name, (long long)st.st_size, (long long)rg->conf->max_file_size);
		return -1;
	}
	return 0;
}

/* Copy one passed descriptor into the staging folder (in the copy child). */
static int
submit_copy(int dirfd, const char *name, int in, struct errlist *errs)
{
	off_t	n;
	int	out;

	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (out == -1) {
		errlist_add(errs, "%s: %s", name, errno == EEXIST ?
		    "passed twice" : strerror(errno));
		return -1;
	}
	if ((n = copy_fd(in, out, rg->conf->max_file_size)) == -1) {
		errlist_add(errs, "%s: cannot copy: %s", name, strerror(errno));
		close(out);
		return -1;
	}
	if (n > rg->conf->max_file_size) {
		errlist_add(errs, "%s grew past the limit of %lld bytes while it was "
		    "copied", name, (long long)rg->conf->max_file_size);
		close(out);
		return -1;
	}
	if (close(out) == -1) {		/* made durable by syncfs, at accept */
		errlist_add(errs, "%s: cannot store: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Stage the manifest (the daemon's own serialisation of the request). */
static int
submit_stage_manifest(int dirfd, json_t *manifest, size_t nfds,
    struct errlist *errs)
{
	char	*text;
	int	 rv;

	if (nfds > (size_t)rg->conf->max_files) {
		errlist_add(errs, "%zu files passed; the limit is %d", nfds,
		    rg->conf->max_files);
		return -1;
	}
	if ((text = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
		errlist_add(errs, "the manifest cannot be serialised");
		return -1;
	}
	rv = write_file_excl_nosync(dirfd, "manifest.json", text, strlen(text), 0600);
	free(text);
	if (rv == -1) {
		errlist_add(errs, "cannot store the manifest: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * In the copy child: copy every descriptor, and tell the daemon
 * on the pipe: one status byte ('0' copied, '1' refused) and the reasons,
 * one a line.
 */
static void __attribute__((noreturn))
submit_child(int out, int dirfd, char *const *names, const int *fds, size_t n)
{
	struct errlist	 errs = { NULL, 0 };
	char		*text;
	char		 st = '0';

	for (size_t i = 0; i < n && errs.n == 0; i++)
		(void)submit_copy(dirfd, names[i], fds[i], &errs);
	if (errs.n)
		st = '1';
	text = errlist_join(&errs, "\n");
	(void)!write(out, &st, 1);
	(void)write_all(out, text, strlen(text));
	_exit(0);
}

struct submit {
	struct intake_stage	 sg;
	pid_t			 pid;
	int			 pipe;
	struct loop_fd		*lf;
	struct loop_timer	*timer;
	struct buf		 said;
	char			 actor[64];
	int64_t			 uid;
	submit_done_cb		 done;
	void			*arg;
	int			 reading;	/* waits for a document reader */
	struct submit		*next;		/* of those waiting */
};

static struct submit	*readers_wait;	/* submissions waiting for a reader */

static void	submit_check(struct submit *);

/* Off the list of those waiting for a reader, if on it. */
static void
submit_unwait(struct submit *sb)
{
	for (struct submit **q = &readers_wait; *q; q = &(*q)->next)
		if (*q == sb) {
			*q = sb->next;
			break;
		}
	sb->reading = 0;
}

static void
submit_free(struct submit *sb)
{
	submit_unwait(sb);
	if (sb->pid > 0)
		kill(sb->pid, SIGKILL);		/* reaped by the daemon's SIGCHLD */
	if (sb->lf)
		loop_fd_del(sb->lf);
	if (sb->pipe != -1)
		close(sb->pipe);
	loop_timer_free(sb->timer);
	intake_stage_discard(&sb->sg);
	buf_free(&sb->said);
	free(sb);
}

/* The copy is done: check it as the intake checks a spool packet, accept. */
static void
submit_finish(struct submit *sb)
{
	struct errlist	 errs = { NULL, 0 };
	char		*line, *text;

	sb->pid = 0;		/* it has said all; it exits by itself */
	loop_fd_del(sb->lf);
	sb->lf = NULL;
	close(sb->pipe);
	sb->pipe = -1;
	text = buf_cstr(&sb->said);
	if (text[0] == '0') {
		submit_check(sb);
		return;
	}
	for (line = strtok(text[0] ? text + 1 : text, "\n"); line;
	    line = strtok(NULL, "\n"))
		errlist_add(&errs, "%s", line);
	if (errs.n == 0)
		errlist_add(&errs, "the documents could not be copied");
	sb->done(sb->arg, -1, 0, &errs);
	errlist_free(&errs);
	submit_free(sb);
}

/* The copy, checked as the intake checks a spool packet; accepted. */
static void
submit_check(struct submit *sb)
{
	struct errlist	 errs = { NULL, 0 };
	struct manifest	*m = NULL;
	char		 err[512];
	int64_t		 id = 0, same;
	int		 rv = -1;

	switch (intake_check(sb->sg.fd, -1, &m, &errs, &same)) {
	case 4:	/* a reader is at work: submit_probed comes back */
		errlist_free(&errs);
		if (!sb->reading) {
			sb->reading = 1;
			sb->next = readers_wait;
			readers_wait = sb;
		}
		return;
	case 0:
		break;
	case 2:	/* the very same packet: it is job same, not a new one */
	case 1:	/* over the socket nothing arrives later */
		errlist_add(&errs, "every document listed in the manifest must be "
		    "passed with the request");
		goto done;
	case 3:	/* our trouble, not the packet's */
		rv = -2;
		goto done;
	default:
		goto done;
	}
	if (intake_accept(&sb->sg, m, "socket", sb->actor, sb->uid, &id, err,
	    sizeof(err)) == -1) {
		/* Our trouble (database busy, disk full), not the packet's. */
		errlist_add(&errs, "the packet could not be stored now: %s; nothing "
		    "was taken: send it again later", err);
		rv = -2;
		goto done;
	}
	rv = 0;
done:
	manifest_free(m);
	sb->done(sb->arg, rv, id, &errs);
	errlist_free(&errs);
	submit_free(sb);
}

void
submit_probed(void)
{
	struct submit	*list = readers_wait, *next;

	readers_wait = NULL;
	for (struct submit *sb = list; sb; sb = next) {
		next = sb->next;
		sb->reading = 0;
		submit_check(sb);	/* may wait again, or be freed */
	}
}

static void
submit_read(int fd, uint32_t events, void *arg)
{
	struct submit	*sb = arg;
	char		 b[4096];
	ssize_t		 n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		if (sb->said.len < 65536)
			buf_add(&sb->said, b, (size_t)n);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	submit_finish(sb);		/* end of file: the child is done */
}

static void
submit_timeout(void *arg)
{
	struct submit	*sb = arg;
	struct errlist	 errs = { NULL, 0 };

	if (sb->reading)
		errlist_add(&errs, "the documents could not be checked within %d "
		    "seconds (the document reader is busy): send the packet again "
		    "later", SUBMIT_COPY_SECONDS);
	else
		errlist_add(&errs, "the documents could not be read within %d "
		    "seconds (a file on a stalled network share?): pass files the "
		    "records system can read at once", SUBMIT_COPY_SECONDS);
	/* Over a busy reader: our trouble, not the packet's. */
	sb->done(sb->arg, sb->reading ? -2 : -1, 0, &errs);
	errlist_free(&errs);
	submit_free(sb);
}

struct submit *
submit_start(json_t *manifest, const char *const *names, const int *fds,
    size_t nfds, const char *actor, int64_t submit_uid, submit_done_cb done,
    void *arg, struct errlist *errs, int *temporary)
{
	struct submit	*sb = xcalloc(1, sizeof(*sb));
	char		 err[512];
	int		 p[2] = { -1, -1 };
	pid_t		 parent;

	*temporary = 0;
	sb->pipe = -1;
	sb->sg.fd = -1;
	buf_init(&sb->said);
	strlcpy_(sb->actor, actor, sizeof(sb->actor));
	sb->uid = submit_uid;
	sb->done = done;
	sb->arg = arg;
	for (size_t i = 0; i < nfds; i++)
		if (submit_check_fd(names[i], fds[i], errs) == -1)
			goto fail;
	if (intake_stage_open(&sb->sg, err, sizeof(err)) == -1 ||
	    pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		errlist_add(errs, "%s", sb->sg.fd == -1 ? err : strerror(errno));
		*temporary = 1;
		goto fail;
	}
	if (submit_stage_manifest(sb->sg.fd, manifest, nfds, errs) == -1)
		goto fail;
	/* The copy runs in a child: a slow or stalled file delays nobody. */
	parent = getpid();
	if ((sb->pid = fork()) == -1) {
		errlist_add(errs, "cannot copy the documents now: %s", strerror(errno));
		*temporary = 1;
		goto fail;
	}
	if (sb->pid == 0) {
		int keep[PROTO_MAX_FDS + 2];
		/* Dies with the daemon, and holds nothing of it (its lock, its
		 * database) but the documents, the folder and the pipe. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent ||
		    nfds > PROTO_MAX_FDS)
			_exit(1);
		memcpy(keep, fds, nfds * sizeof(*fds));
		keep[nfds] = p[1];
		keep[nfds + 1] = sb->sg.fd;
		close_all_but(keep, nfds + 2);
		submit_child(p[1], sb->sg.fd, (char *const *)names, fds, nfds);
	}
	close(p[1]);
	sb->pipe = p[0];
	sb->lf = loop_fd_add(sb->pipe, EPOLLIN, submit_read, sb);
	sb->timer = loop_timer_new(submit_timeout, sb);
	loop_timer_set(sb->timer, SUBMIT_COPY_SECONDS * 1000);
	return sb;
fail:
	if (p[1] != -1)
		close(p[1]);
	if (p[0] != -1)
		close(p[0]);
	sb->pid = 0;
	submit_free(sb);
	return NULL;
}

void
submit_cancel(struct submit *sb)
{
	submit_free(sb);
}
