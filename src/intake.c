/*
 * Packet intake (daemon), shared by the spool folder and socket
 * submission: validate a packet folder, then take it durably.
 *
 * The folder is untrusted.  Every name is opened relative to it with
 * O_NOFOLLOW; only regular files with a single link, under the size caps,
 * listed in the manifest, with the declared SHA-256 and an allowed type
 * are taken.  Acceptance renames the folder into jobs/ID, fsyncs both
 * folders and only then commits the job row: a crash in between leaves a
 * folder in jobs/ without a row, which intake_recover() finishes at the
 * next start.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "intake.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "policy.h"
#include "render.h"
#include "roigated.h"
#include "spool.h"
#include "store.h"
#include "submit.h"
#include "util.h"

#define INTAKE_SNIFF	65536

static int			 jobs_fd = -1;
static struct policy_magic	*magic;

void
intake_init(int jobs_dirfd, struct policy_magic *pm)
{
	jobs_fd = jobs_dirfd;
	magic = pm;
}

/* Open name in the packet: a regular file with one link under the cap. */
static int
intake_open(int dirfd, const char *name, int64_t cap, struct stat *st,
    struct errlist *errs, int *missing)
{
	int	fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
	    O_NOCTTY);
	if (fd == -1) {
		if (errno == ENOENT)
			*missing = 1;
		else if (errno == ELOOP)
			errlist_add(errs, "%s is a symbolic link: copy the file itself "
			    "into the packet", name);
		else if (errno == ENAMETOOLONG)
			errlist_add(errs, "%.100s...: the file name is longer than 255 "
			    "bytes", name);
		else if (errno == ENXIO)
			errlist_add(errs, "%s is not a regular file (it is a socket): "
			    "copy the document itself into the packet", name);
		else
			errlist_add(errs, "%s cannot be opened: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		errlist_add(errs, "%s is not a regular file (it is %s): copy the "
		    "document itself into the packet", name,
		    S_ISDIR(st->st_mode) ? "a folder" : S_ISFIFO(st->st_mode) ?
		    "a named pipe" : S_ISSOCK(st->st_mode) ? "a socket" :
		    S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device" :
		    "not a file");
		goto fail;
	}
	if (st->st_nlink > 1) {
		errlist_add(errs, "%s has other hard links: copy the file into the "
		    "packet instead of linking it", name);
		goto fail;
	}
	if (st->st_size > cap) {
		errlist_add(errs, "%s is %lld bytes, over the limit of %lld bytes",
		    name, (long long)st->st_size, (long long)cap);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static int
intake_listed(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->ndocs; i++)
		if (strcmp(m->docs[i].file, name) == 0)
			return 1;
	return 0;
}

int
intake_reason_file(const char *name)
{
	const char	*p;

	/* REASON.txt, or REASON.N.txt when a clerk's own REASON.txt was there. */
	if (strncmp(name, "REASON.", 7) != 0)
		return 0;
	for (p = name + 7; *p >= '0' && *p <= '9'; p++)
		;
	if (p > name + 7 && *p == '.')
		p++;
	return strcmp(p, "txt") == 0;
}

/* Every entry of the folder must be the manifest or a listed document
 * (or, in a spool folder, a reason file roigate wrote when it refused the
 * packet before: a submitted one came from the client). */
static void
intake_check_entries(int dirfd, const struct manifest *m, int spool,
    struct errlist *errs)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		 shown[104];
	int		 fd, count = 0;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		errlist_add(errs, "the packet folder cannot be read: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") ||
		    !strcmp(n, "manifest.json"))
			continue;
		if (intake_listed(m, n))
			;
		else if (spool && intake_reason_file(n))
			continue;
		if (++count > rg->conf->max_files) {
			errlist_add(errs, "the packet holds more than %d files",
			    rg->conf->max_files);
			break;
		}
		if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			errlist_add(errs, "%s is a folder: a packet holds files "
			    "only, no subfolders", name_shown(n, shown, sizeof(shown)));
		else if (!intake_listed(m, n))
			errlist_add(errs, "file %s is not listed in the manifest: "
			    "remove it or list it under documents",
			    name_shown(n, shown, sizeof(shown)));
	}
	closedir(d);
}

/*
 * libmagic only reads headers (a 9-byte "%PDF-1.4" is a PDF to it): open
 * the document with the reader that will render it, in a child process
 * with memory and time limits, before taking it.
 *
 * The daemon does not wait on a reader for long: a document built to
 * exhaust it takes the reader's whole time limit (RENDER_PROBE_SECONDS),
 * and the loop serves everyone else meanwhile.  Each reader is waited for
 * PROBE_WAIT_MS at most (an ordinary document takes a few milliseconds,
 * so a large packet is read in one look); one still reading then is left
 * to finish on its own, the packet is looked at again when it has (spool)
 * or its answer waits (socket), and the verdict is kept by the copy's
 * SHA-256 and type: the same bytes read again get the same verdict, and
 * only a copy with those bytes gets it.  PROBES_AT_ONCE readers run beside
 * the loop at most; a document beyond them waits for a free one.  A
 * reader that closed its pipe is waited for PROBE_EXIT_MS at most, then
 * finished when the daemon's SIGCHLD reaps it.
 */
#define PROBE_WAIT_MS	200
#define PROBE_EXIT_MS	50
#define PROBES_AT_ONCE	2
#define PROBE_KEPT	256

enum { PROBE_FREE, PROBE_RUNNING, PROBE_DONE };

struct intake_probe {
	int		 state;
	char		 sha256[65];
	char		 mime[80];
	int64_t		 max_memory, max_pixels;
	int		 max_pages;
	pid_t		 pid;
	int		 pipe;
	struct loop_fd	*lf;
	char		 msg[512];
	size_t		 got;
	int		 eof;			/* its pipe is at end */
	int		 exited, status;	/* reaped by the daemon's SIGCHLD */
	int		 rv;			/* DONE: 0, -1 or -2 */
	char		 why[400];
	int64_t		 used;
};

static struct intake_probe	probes[PROBE_KEPT];
static int			probes_running;
static struct loop_timer	*probe_wake;

/* Look again at what waits for a reader, from the loop (not from inside
 * the check of another packet). */
static void
probe_woken(void *arg)
{
	spool_probed();
	submit_probed();
}

static struct intake_probe *
probe_find(const char *sha, const char *mime, const struct render_opts *o)
{
	for (int i = 0; i < PROBE_KEPT; i++)
		if (probes[i].state != PROBE_FREE &&
		    strcmp(probes[i].sha256, sha) == 0 &&
		    strcmp(probes[i].mime, mime) == 0 &&
		    probes[i].max_memory == o->max_memory &&
		    probes[i].max_pixels == o->max_pixels &&
		    probes[i].max_pages == o->max_pages)
			return &probes[i];
	return NULL;
}

/* A free entry, else the verdict used least lately. */
static struct intake_probe *
probe_slot(void)
{
	struct intake_probe	*old = NULL;

	for (int i = 0; i < PROBE_KEPT; i++) {
		if (probes[i].state == PROBE_FREE)
			return &probes[i];
		if (probes[i].state == PROBE_DONE &&
		    (old == NULL || probes[i].used < old->used))
			old = &probes[i];
	}
	return old;	/* never NULL: PROBES_AT_ONCE < PROBE_KEPT */
}

/* Its verdict, once it has said all and exited. */
static void
probe_verdict(struct intake_probe *e)
{
	e->rv = render_probe_verdict(e->status, e->msg, e->got, e->why,
	    sizeof(e->why));
	e->state = PROBE_DONE;
	e->used = now_ms();
	probes_running--;
	if (probe_wake == NULL)
		probe_wake = loop_timer_new(probe_woken, NULL);
	loop_timer_set(probe_wake, 0);
}

/* The reader said all (its pipe at end): its verdict once it has exited,
 * for which the loop waits PROBE_EXIT_MS at most (it exits as it closes
 * the pipe; one that does not is finished by intake_probe_exited). */
static void
probe_finish(struct intake_probe *e)
{
	int64_t	until = now_ms() + PROBE_EXIT_MS;
	pid_t	r;
	int	status;

	if (e->lf)
		loop_fd_del(e->lf);
	e->lf = NULL;
	close(e->pipe);
	e->pipe = -1;
	e->msg[e->got] = '\0';
	e->eof = 1;
	while (!e->exited) {
		if ((r = waitpid(e->pid, &status, WNOHANG)) == e->pid) {
			e->exited = 1;
			e->status = status;
		} else if ((r == -1 && errno != EINTR) || now_ms() >= until)
			return;		/* intake_probe_exited finishes it */
		else if (r == 0)
			(void)poll(NULL, 0, 1);
	}
	probe_verdict(e);
}

/* Read what the reader says; 1 once it has said all. */
static int
probe_read(struct intake_probe *e)
{
	ssize_t	n;

	for (;;) {
		n = read(e->pipe, e->msg + e->got, sizeof(e->msg) - 1 - e->got);
		if (n > 0 && (e->got += (size_t)n) < sizeof(e->msg) - 1)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		return !(n == -1 && errno == EAGAIN);
	}
}

static void
probe_readable(int fd, uint32_t events, void *arg)
{
	struct intake_probe	*e = arg;

	if (!probe_read(e))
		return;
	probe_finish(e);
	log_debug("intake: a document reader finished on its own");
}

int
intake_probe_exited(pid_t pid, int status)
{
	for (int i = 0; i < PROBE_KEPT; i++)
		if (probes[i].state == PROBE_RUNNING && probes[i].pid == pid) {
			probes[i].exited = 1;
			probes[i].status = status;
			if (probes[i].eof)
				probe_verdict(&probes[i]);
			return 1;
		}
	return 0;
}

/* Wait for e's reader until deadline (monotonic ms); 1 if it finished. */
static int
probe_wait(struct intake_probe *e, int64_t deadline)
{
	struct pollfd	pfd = { .fd = e->pipe, .events = POLLIN };
	int64_t		left;

	while (!probe_read(e)) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			return 0;
	}
	probe_finish(e);
	return e->state == PROBE_DONE;
}

static void
intake_probe_document(int fd, const struct document *doc, const char *mime,
    const char *sha, struct errlist *errs, int *later,
    int *reading)
{
	struct render_opts	 o;
	struct intake_probe	*e;
	char			 why[400];

	if (!render_probe_needed(mime))
		return;
	render_opts_from_config(rg->conf, RENDER_DOCUMENT, &o);
	if ((e = probe_find(sha, mime, &o)) == NULL) {
		if (probes_running >= PROBES_AT_ONCE) {
			(*reading)++;	/* a reader that ends wakes it */
			return;
		}
		e = probe_slot();
		memset(e, 0, sizeof(*e));
		if (render_probe_start(fd, mime, &o, &e->pid, &e->pipe, why,
		    sizeof(why)) == -2) {
			errlist_add(errs, "document %s %s", doc->file, why);
			(*later)++;
			return;
		}
		(void)fcntl(e->pipe, F_SETFL, O_NONBLOCK);
		strlcpy_(e->sha256, sha, sizeof(e->sha256));
		strlcpy_(e->mime, mime, sizeof(e->mime));
		e->max_memory = o.max_memory;
		e->max_pixels = o.max_pixels;
		e->max_pages = o.max_pages;
		e->state = PROBE_RUNNING;
		probes_running++;
		if (!probe_wait(e, now_ms() + PROBE_WAIT_MS)) {
			if (!e->eof)	/* else it is done once reaped */
				e->lf = loop_fd_add(e->pipe, EPOLLIN,
				    probe_readable, e);
			(*reading)++;
			return;
		}
	}
	if (e->state == PROBE_RUNNING) {
		(*reading)++;
		return;
	}
	e->used = now_ms();
	if (e->rv == 0)
		return;
	errlist_add(errs, "document %s %s", doc->file, e->why);
	if (e->rv == -2) {
		(*later)++;
		e->state = PROBE_FREE;	/* said once: read it again next time */
	}
}

/*
 * Copy the document open as in into the staging folder: the daemon's own
 * file (0600).  From here on only the copy is read: what a clerk
 * does to the original (a descriptor kept open, a rewrite) cannot reach it.
 * The copy's descriptor, or -1 with the reason.
 */
static int
intake_copy_document(int in, int stagefd, const char *name, struct errlist *errs)
{
	off_t	n;
	int	out;

	out = openat(stagefd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (out == -1) {
		errlist_add(errs, "document %s cannot be stored: %s", name,
		    strerror(errno));
		return -1;
	}
	/* Made durable with the rest of the folder (one syncfs, at accept). */
	if ((n = copy_fd(in, out, rg->conf->max_file_size)) == -1) {
		errlist_add(errs, "document %s cannot be copied: %s", name,
		    strerror(errno));
		goto fail;
	}
	if (n > rg->conf->max_file_size) {
		errlist_add(errs, "document %s grew past the limit of %lld bytes "
		    "while it was copied", name, (long long)rg->conf->max_file_size);
		goto fail;
	}
	return out;
fail:
	close(out);
	return -1;
}

/* Check one document: size, hash, type.  Adds to errs; sets *missing.
 * With stagefd != -1 the document is copied there first, and the checks
 * are made on the copy. */
static void
intake_check_document(int dirfd, int stagefd, const struct document *doc,
    int64_t *total, struct errlist *errs, int *missing, int *later,
    int *reading)
{
	struct errlist	 terrs = { NULL, 0 };
	struct stat	 st;
	char		 head[INTAKE_SNIFF], hex[65];
	const char	*mime;
	ssize_t		 n;
	int		 fd, copy, absent = 0;

	fd = intake_open(dirfd, doc->file, rg->conf->max_file_size, &st, errs, &absent);
	if (fd == -1) {
		if (absent) {
			errlist_add(errs, "document %s has not arrived", doc->file);
			(*missing)++;
		}
		return;
	}
	if (st.st_size == 0) {
		errlist_add(errs, "document %s is empty", doc->file);
		close(fd);
		return;
	}
	if (stagefd != -1) {
		copy = intake_copy_document(fd, stagefd, doc->file, errs);
		close(fd);
		if ((fd = copy) == -1)
			return;
	}
	if ((n = pread(fd, head, sizeof(head), 0)) == -1 ||
	    sha256_fd(fd, hex, &st.st_size) == -1) {
		errlist_add(errs, "document %s cannot be read: %s", doc->file,
		    strerror(errno));
		close(fd);
		return;
	}
	*total += st.st_size;
	if (strcmp(hex, doc->sha256) != 0)
		errlist_add(errs, "document %s: SHA-256 does not match the manifest",
		    doc->file);
	if (policy_check_type(magic, doc->file, head, (size_t)n, &mime, &terrs) == -1)
		for (size_t i = 0; i < terrs.n; i++)
			errlist_add(errs, "%s", terrs.msg[i]);
	else if (errs->n == 0)
		intake_probe_document(fd, doc, mime, hex, errs, later,
		    reading);
	errlist_free(&terrs);
	close(fd);
}

/* Read manifest.json; its text (raw, as stored) into *text. */
static struct manifest *
intake_read_manifest(int dirfd, struct errlist *errs, int *missing, char **text)
{
	struct manifest	*m;
	struct stat	 st;
	struct buf	 b;
	int		 fd;

	*text = NULL;
	fd = intake_open(dirfd, "manifest.json", MANIFEST_MAX_SIZE, &st, errs, missing);
	if (fd == -1)
		return NULL;
	buf_init(&b);
	if (read_file_fd(fd, MANIFEST_MAX_SIZE, &b) == -1) {
		errlist_add(errs, "manifest.json cannot be read: %s", strerror(errno));
		close(fd);
		buf_free(&b);
		return NULL;
	}
	close(fd);
	if (!manifest_text_complete(b.data ? b.data : "", b.len)) {
		errlist_add(errs, "manifest.json is incomplete (it ends before its "
		    "closing brace)");
		buf_free(&b);
		(*missing)++;
		return NULL;
	}
	m = manifest_parse(buf_cstr(&b), b.len, errs);
	if (m != NULL)
		*text = buf_cstr(&b);
	else
		buf_free(&b);
	return m;
}

/*
 * Where a spool packet came from: its folder and its manifest.json, as the
 * file system knows them (device, inodes, the manifest's change time).  Kept
 * in jobs/ID/.origin, so that a folder left in incoming/ after its job was
 * committed (the daemon died before it removed it) is known for the same
 * folder, and not refused as a second packet with the same packet_id.
 */
static int
intake_origin(int dirfd, char *out, size_t len)
{
	struct stat	d, f;

	if (fstat(dirfd, &d) == -1 || fstatat(dirfd, "manifest.json", &f,
	    AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return bsnprintf(out, len, "%llu %llu %llu %lld.%09ld\n",
	    (unsigned long long)d.st_dev, (unsigned long long)d.st_ino,
	    (unsigned long long)f.st_ino, (long long)f.st_ctim.tv_sec,
	    f.st_ctim.tv_nsec);
}

static int
intake_same_origin(int64_t id, const char *origin)
{
	char	path[48], b[128];
	ssize_t	n;
	int	fd;

	snprintf(path, sizeof(path), "%lld/.origin", (long long)id);
	if ((fd = openat(jobs_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	return strcmp(b, origin) == 0;
}

/* Release rules that need the daemon's state: duplicates, the directory.
 * *same: the packet is job N already, the very folder it was taken from
 * (left in incoming/ when the daemon died before removing it). */
static void
intake_check_policy(const struct manifest *m, const char *text,
    const char *origin, struct errlist *errs, int64_t *same)
{
	struct recipient	r;
	struct policy_ctx	ctx;
	int64_t			id, at;
	char			when[32], *stored = NULL;
	int			found;

	if (store_job_by_packet(rg->store, m->packet_id, &id, &at) == 1) {
		if (origin && store_job_manifest(rg->store, id, &stored) == 1 &&
		    strcmp(stored, text) == 0 && intake_same_origin(id, origin))
			*same = id;
		free(stored);
		time_iso(at, when, sizeof(when));
		errlist_add(errs, "packet_id %.64s was already accepted as job %lld "
		    "on %s: a packet is never sent twice; give a new release a new "
		    "packet_id", m->packet_id, (long long)id, when);
	}
	memset(&r, 0, sizeof(r));
	found = store_recipient_get(rg->store, m->recipient, &r);
	ctx.today = now_wall() / 86400;
	ctx.recipient = found == 1 ? &r : NULL;
	policy_check(m, &ctx, errs);
	recipient_free(&r);
}

/* A cover sheet template the manifest names must exist. */
static void
intake_check_template(const struct manifest *m, struct errlist *errs)
{
	char	path[PATH_MAX], why[200];

	if (m->cover_template == NULL)
		return;
	if (render_template_path(rg->conf, m->cover_template, path, sizeof(path),
	    why, sizeof(why)) == -1)
		errlist_add(errs, "%s", why);
	else if (access(path, R_OK) == -1)
		errlist_add(errs, "cover_sheet.template \"%.64s\": there is no such "
		    "cover sheet template (%s)", m->cover_template, strerror(errno));
}

/* Are all the documents there?  Nothing is copied while one is missing. */
static int
intake_all_arrived(int dirfd, const struct manifest *m)
{
	struct stat	st;

	for (size_t i = 0; i < m->ndocs; i++)
		if (fstatat(dirfd, m->docs[i].file, &st, AT_SYMLINK_NOFOLLOW) == -1 &&
		    errno == ENOENT)
			return 0;
	return 1;
}

int
intake_check(int dirfd, int stagefd, struct manifest **mp, struct errlist *errs,
    int64_t *same)
{
	struct manifest	*m;
	char		*text = NULL, origin[128] = "";
	int64_t		 total = 0;
	int		 missing = 0, waiting = 0, later = 0, reading = 0;

	*mp = NULL;
	*same = 0;
	if ((m = intake_read_manifest(dirfd, errs, &missing, &text)) == NULL) {
		if (missing && errs->n == 0)
			errlist_add(errs, "manifest.json has not arrived");
		return missing ? 1 : -1;
	}
	intake_check_entries(dirfd, m, stagefd != -1, errs);
	if (errs->n == 0 && stagefd != -1 && !intake_all_arrived(dirfd, m)) {
		stagefd = -1;	/* the check below says what is missing */
		waiting = 1;
	}
	for (size_t i = 0; i < m->ndocs; i++)
		intake_check_document(dirfd, stagefd, &m->docs[i], &total, errs,
		    &missing, &later, &reading);
	if (total > rg->conf->max_packet_size)
		errlist_add(errs, "the documents add up to %lld bytes, over the "
		    "packet limit of %lld bytes", (long long)total,
		    (long long)rg->conf->max_packet_size);
	/* Wait for what is missing unless something is wrong already. */
	if (missing && errs->n == (size_t)missing)
		goto incomplete;
	if (waiting && errs->n == 0)
		goto incomplete;	/* it arrived meanwhile: copy it next time */
	if (reading && errs->n == 0) {
		free(text);
		manifest_free(m);
		return 4;	/* nothing wrong so far; a reader is at work */
	}
	if (later && errs->n == (size_t)later) {
		free(text);
		manifest_free(m);
		return 3;	/* nothing wrong found; the reader must try again */
	}
	if (stagefd != -1 && intake_origin(dirfd, origin, sizeof(origin)) == -1)
		origin[0] = '\0';
	intake_check_policy(m, text, origin[0] ? origin : NULL, errs, same);
	intake_check_template(m, errs);
	if (errs->n == 0 && stagefd != -1 && (write_file_excl_nosync(stagefd,
	    "manifest.json", text, strlen(text), 0600) == -1 || (origin[0] &&
	    write_file_excl_nosync(stagefd, ".origin", origin, strlen(origin),
	    0600) == -1)))
		errlist_add(errs, "the manifest cannot be stored: %s", strerror(errno));
	free(text);
	if (*same && errs->n == 1) {
		*mp = m;	/* nothing else is wrong with it: it is job *same */
		return 2;
	}
	*same = 0;
	if (errs->n > 0) {
		manifest_free(m);
		return -1;
	}
	*mp = m;
	return 0;
incomplete:
	free(text);
	manifest_free(m);
	return 1;
}

int
intake_stage_open(struct intake_stage *sg, char *err, size_t errlen)
{
	static unsigned	seq;

	snprintf(sg->name, sizeof(sg->name), ".stage-%d-%u", (int)getpid(), ++seq);
	(void)remove_dir_at(jobs_fd, sg->name);	/* a left-over of an earlier run */
	if (mkdirat(jobs_fd, sg->name, 0700) == -1 ||
	    (sg->fd = openat(jobs_fd, sg->name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1) {
		bsnprintf(err, errlen, "cannot create a folder in %s/jobs: %s",
		    rg->conf->state_dir, strerror(errno));
		(void)unlinkat(jobs_fd, sg->name, AT_REMOVEDIR);
		sg->fd = -1;
		return -1;
	}
	return 0;
}

void
intake_stage_discard(struct intake_stage *sg)
{
	if (sg->fd == -1)
		return;
	close(sg->fd);
	sg->fd = -1;
	if (remove_dir_at(jobs_fd, sg->name) == -1)
		log_warn("cannot remove jobs/%s", sg->name);
}

/* The job row for a staged packet (inside the caller's transaction). */
static int
intake_insert(int64_t id, const struct manifest *m, int stagefd,
    const char *source, const char *actor, char *err, size_t errlen)
{
	struct recipient	 r;
	struct job		 j;
	struct buf		 b;
	int			 fd, rv = -1;

	memset(&j, 0, sizeof(j));
	memset(&r, 0, sizeof(r));
	buf_init(&b);
	if ((fd = openat(stagefd, "manifest.json", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || read_file_fd(fd, MANIFEST_MAX_SIZE, &b) == -1) {
		bsnprintf(err, errlen, "cannot read the stored manifest: %s",
		    strerror(errno));
		goto done;
	}
	if (store_recipient_get(rg->store, m->recipient, &r) != 1) {
		bsnprintf(err, errlen, "recipient %.64s vanished", m->recipient);
		goto done;
	}
	j.id = id;
	j.packet_id = m->packet_id;
	j.state = JOB_QUEUED;
	j.transport = r.transport;
	j.recipient_id = m->recipient;
	j.mrn = m->patient_mrn;
	j.patient_name = m->patient_name;
	j.request_ref = m->request_id;
	j.source = (char *)source;
	j.manifest = buf_cstr(&b);
	j.created_at = j.updated_at = now_wall();
	j.next_at = now_wall_ms();
	j.pages = -1;
	if ((rv = store_job_insert(rg->store, &j, actor,
	    strcmp(source, "socket") == 0 ? "packet submitted over the socket" :
	    "packet taken from the spool folder")) == -1)
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
done:
	if (fd != -1)
		close(fd);
	buf_free(&b);
	recipient_free(&r);
	return rv;
}

int
intake_accept(struct intake_stage *sg, const struct manifest *m,
    const char *source, const char *actor, int64_t submit_uid, int64_t *id,
    char *err, size_t errlen)
{
	char	target[32];

	/*
	 * The id, the folder's name and the row in one transaction: a packet
	 * that cannot be taken uses up no job number.  The folder is renamed
	 * to jobs/ID and that made durable before the commit; a crash before
	 * the commit leaves a jobs/ID without a row, which intake_recover()
	 * removes (the original is still in incoming/, or the client, told
	 * nothing, sends again).
	 */
	/* Every file of the folder, and the folder, in one go: a journal
	 * commit instead of an fsync per file. */
	if (syncfs(sg->fd) == -1) {
		bsnprintf(err, errlen, "syncfs: %s", strerror(errno));
		return -1;
	}
	if (store_begin(rg->store) == -1 || store_next_job_id(rg->store, id) == -1) {
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
		store_rollback(rg->store);
		return -1;
	}
	snprintf(target, sizeof(target), "%lld", (long long)*id);
	(void)remove_dir_at(jobs_fd, target);	/* an orphan of a crash */
	if (renameat2(jobs_fd, sg->name, jobs_fd, target, RENAME_NOREPLACE) == -1) {
		bsnprintf(err, errlen, "cannot name jobs/%s: %s", target,
		    strerror(errno));
		store_rollback(rg->store);
		return -1;
	}
	if (fsync(jobs_fd) == -1) {
		bsnprintf(err, errlen, "fsync: %s", strerror(errno));
		goto undo;
	}
	test_crashpoint("intake_after_rename");
	if (intake_insert(*id, m, sg->fd, source, actor, err, errlen) == -1)
		goto undo;
	if (submit_uid >= 0 && store_job_set_submitter(rg->store, *id,
	    submit_uid) == -1) {
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
		goto undo;
	}
	if (store_commit(rg->store) == -1) {
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
		goto undo;
	}
	close(sg->fd);
	sg->fd = -1;
	test_crashpoint("intake_after_commit");
	return 0;
undo:
	store_rollback(rg->store);
	if (renameat2(jobs_fd, target, jobs_fd, sg->name, RENAME_NOREPLACE) == -1)
		log_warn("jobs/%s is left without a job; it is removed at the next "
		    "start", target);
	return -1;
}

void
intake_recover(void)
{
	DIR		*d;
	struct dirent	*de;
	char		*end;
	long long	 id;
	int		 fd;

	if ((fd = dup(jobs_fd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".stage-", 7) == 0) {
			(void)remove_dir_at(jobs_fd, de->d_name);
			continue;
		}
		id = strtoll(de->d_name, &end, 10);
		if (*end != '\0' || id <= 0 || store_job_exists(rg->store, id) != 0)
			continue;
		/* Renamed, then the daemon died before the commit: only our copy. */
		if (remove_dir_at(jobs_fd, de->d_name) == 0)
			log_info("removed jobs/%s, a copy whose acceptance was "
			    "interrupted; the packet is taken again", de->d_name);
	}
	closedir(d);
	fsync(jobs_fd);
}
