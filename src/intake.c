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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "intake.h"
#include "log.h"
#include "manifest.h"
#include "policy.h"
#include "render.h"
#include "roigated.h"
#include "store.h"
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

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			*missing = 1;
		else if (errno == ELOOP)
			errlist_add(errs, "%s is a symbolic link: copy the file itself "
			    "into the packet", name);
		else
			errlist_add(errs, "%s cannot be opened: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		errlist_add(errs, "%s is not a regular file", name);
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

/* Every entry of the folder must be the manifest or a listed document. */
static void
intake_check_entries(int dirfd, const struct manifest *m, struct errlist *errs)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
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
		    !strcmp(n, "manifest.json") || !strcmp(n, "REASON.txt"))
			continue;
		if (++count > rg->conf->max_files) {
			errlist_add(errs, "the packet holds more than %d files",
			    rg->conf->max_files);
			break;
		}
		if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			errlist_add(errs, "%.100s is a folder: a packet holds files "
			    "only, no subfolders", n);
		else if (!intake_listed(m, n))
			errlist_add(errs, "file %.100s is not listed in the manifest: "
			    "remove it or list it under documents", n);
	}
	closedir(d);
}

/*
 * libmagic only reads headers (a 9-byte "%PDF-1.4" is a PDF to it): open
 * the document with the reader that will render it, in a child process
 * with memory and time limits, before taking it.
 */
static void
intake_probe_document(int fd, const struct document *doc, const char *mime,
    struct errlist *errs)
{
	struct render_opts	o;
	char			why[400];

	render_opts_from_config(rg->conf, RENDER_DOCUMENT, &o);
	if (render_probe(fd, mime, &o, why, sizeof(why)) == -1)
		errlist_add(errs, "document %s %s", doc->file, why);
}

/* Check one document: size, hash, type.  Adds to errs; sets *missing. */
static void
intake_check_document(int dirfd, const struct document *doc, int64_t *total,
    struct errlist *errs, int *missing)
{
	struct errlist	 terrs = { NULL, 0 };
	struct stat	 st;
	char		 head[INTAKE_SNIFF], hex[65];
	const char	*mime;
	ssize_t		 n;
	int		 fd, absent = 0;

	fd = intake_open(dirfd, doc->file, rg->conf->max_file_size, &st, errs, &absent);
	if (fd == -1) {
		if (absent) {
			errlist_add(errs, "document %s has not arrived", doc->file);
			(*missing)++;
		}
		return;
	}
	*total += st.st_size;
	if ((n = pread(fd, head, sizeof(head), 0)) == -1 ||
	    sha256_fd(fd, hex, NULL) == -1) {
		errlist_add(errs, "document %s cannot be read: %s", doc->file,
		    strerror(errno));
		close(fd);
		return;
	}
	if (strcmp(hex, doc->sha256) != 0)
		errlist_add(errs, "document %s: SHA-256 does not match the manifest",
		    doc->file);
	if (policy_check_type(magic, doc->file, head, (size_t)n, &mime, &terrs) == -1)
		for (size_t i = 0; i < terrs.n; i++)
			errlist_add(errs, "%s", terrs.msg[i]);
	else if (errs->n == 0)
		intake_probe_document(fd, doc, mime, errs);
	errlist_free(&terrs);
	close(fd);
}

static struct manifest *
intake_read_manifest(int dirfd, struct errlist *errs, int *missing)
{
	struct manifest	*m;
	struct stat	 st;
	struct buf	 b;
	int		 fd;

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
	/* A manifest that stops before its closing brace (empty, or cut off)
	 * is most likely still being copied: wait for the rest. */
	size_t len = b.len;
	while (len > 0 && isspace((unsigned char)b.data[len - 1]))
		len--;
	if (len == 0 || b.data[len - 1] != '}') {
		errlist_add(errs, "manifest.json is incomplete (it ends before its "
		    "closing brace)");
		buf_free(&b);
		(*missing)++;
		return NULL;
	}
	m = manifest_parse(buf_cstr(&b), b.len, errs);
	buf_free(&b);
	return m;
}

/* Release rules that need the daemon's state: duplicates, the directory. */
static void
intake_check_policy(const struct manifest *m, struct errlist *errs)
{
	struct recipient	r;
	struct policy_ctx	ctx;
	int64_t			id, at;
	char			when[32];
	int			found;

	if (store_job_by_packet(rg->store, m->packet_id, &id, &at) == 1) {
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

int
intake_check(int dirfd, struct manifest **mp, struct errlist *errs)
{
	struct manifest	*m;
	int64_t		 total = 0;
	int		 missing = 0;

	*mp = NULL;
	if ((m = intake_read_manifest(dirfd, errs, &missing)) == NULL) {
		if (missing && errs->n == 0)
			errlist_add(errs, "manifest.json has not arrived");
		return missing ? 1 : -1;
	}
	intake_check_entries(dirfd, m, errs);
	for (size_t i = 0; i < m->ndocs; i++)
		intake_check_document(dirfd, &m->docs[i], &total, errs, &missing);
	if (total > rg->conf->max_packet_size)
		errlist_add(errs, "the documents add up to %lld bytes, over the "
		    "packet limit of %lld bytes", (long long)total,
		    (long long)rg->conf->max_packet_size);
	/* Wait for what is missing unless something is wrong already. */
	if (missing && errs->n == (size_t)missing)
		goto incomplete;
	intake_check_policy(m, errs);
	intake_check_template(m, errs);
	if (errs->n > 0) {
		manifest_free(m);
		return -1;
	}
	*mp = m;
	return 0;
incomplete:
	manifest_free(m);
	return 1;
}

/* The manifest text as it now lies in jobs/ID. */
static char *
intake_manifest_text(int dirfd)
{
	struct buf	b;
	int		fd;

	buf_init(&b);
	if ((fd = openat(dirfd, "manifest.json", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return NULL;
	if (read_file_fd(fd, MANIFEST_MAX_SIZE, &b) == -1) {
		close(fd);
		buf_free(&b);
		return NULL;
	}
	close(fd);
	return buf_cstr(&b);
}

/* Commit the job row for a packet already in jobs/ID. */
static int
intake_commit(int64_t id, const struct manifest *m, const char *source,
    const char *actor, char *err, size_t errlen)
{
	struct recipient	 r;
	struct job		 j;
	char			 name[32];
	int			 dfd, rv = -1;

	memset(&j, 0, sizeof(j));
	memset(&r, 0, sizeof(r));
	snprintf(name, sizeof(name), "%lld", (long long)id);
	if ((dfd = openat(jobs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || (j.manifest = intake_manifest_text(dfd)) == NULL) {
		bsnprintf(err, errlen, "cannot read jobs/%s/manifest.json: %s", name,
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
	j.created_at = j.updated_at = j.next_at = now_wall();
	j.pages = -1;
	rv = store_begin(rg->store);
	if (rv == 0)
		rv = store_job_insert(rg->store, &j, actor,
		    strcmp(source, "socket") == 0 ? "packet submitted over the socket" :
		    "packet taken from the spool folder");
	if (rv == 0)
		rv = store_commit(rg->store);
	if (rv == -1) {
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
		store_rollback(rg->store);
	}
done:
	if (dfd != -1)
		close(dfd);
	free(j.manifest);
	recipient_free(&r);
	return rv;
}

int
intake_accept(int srcdirfd, const char *name, const struct manifest *m,
    const char *source, const char *actor, int64_t *id, char *err,
    size_t errlen)
{
	char	target[32];

	if (store_reserve_job_id(rg->store, id) == -1) {
		bsnprintf(err, errlen, "database: %.200s", store_errmsg(rg->store));
		return -1;
	}
	snprintf(target, sizeof(target), "%lld", (long long)*id);
	if (renameat2(srcdirfd, name, jobs_fd, target, RENAME_NOREPLACE) == -1) {
		bsnprintf(err, errlen, "cannot move the packet into jobs/: %s",
		    strerror(errno));
		return -1;
	}
	/* The new name must be durable before the job exists. */
	if (fsync(jobs_fd) == -1 || fsync(srcdirfd) == -1) {
		bsnprintf(err, errlen, "fsync: %s", strerror(errno));
		goto undo;
	}
	test_crashpoint("intake_after_rename");
	if (intake_commit(*id, m, source, actor, err, errlen) == -1)
		goto undo;
	test_crashpoint("intake_after_commit");
	return 0;
undo:
	/* Put the packet back where it came from, to be tried again. */
	if (renameat2(jobs_fd, target, srcdirfd, name, RENAME_NOREPLACE) == 0) {
		fsync(srcdirfd);
		fsync(jobs_fd);
	} else
		log_warn("packet left in jobs/%s; it is recovered at the next start",
		    target);
	return -1;
}

static void
intake_recover_one(const char *name, int rejected_dirfd)
{
	struct errlist	 errs = { NULL, 0 };
	struct manifest	*m = NULL;
	char		*end, err[512], target[NAME_MAX + 1];
	long long	 id;
	int		 fd, rv;

	id = strtoll(name, &end, 10);
	if (*end != '\0' || id <= 0 || store_job_exists(rg->store, id) != 0)
		return;
	if ((fd = openat(jobs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	rv = intake_check(fd, &m, &errs);
	close(fd);
	if (rv == 0 && intake_commit(id, m, "spool", "recovery", err,
	    sizeof(err)) == 0) {
		log_info("recovered job %lld after a restart during intake", id);
		manifest_free(m);
		return;
	}
	manifest_free(m);
	/* Not acceptable any more: to rejected/, with the reasons. */
	snprintf(target, sizeof(target), "recovered-%lld", id);
	if (errs.n == 0)
		errlist_add(&errs, "the packet could not be recovered after a restart");
	fd = openat(jobs_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1) {
		char *text = errlist_join(&errs, "\n- ");
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "roigate did not accept this packet.\n\n- %s\n", text);
		(void)write_file_atomic(fd, "REASON.txt", b.data, b.len, 0644);
		buf_free(&b);
		free(text);
		close(fd);
	}
	if (renameat2(jobs_fd, name, rejected_dirfd, target, RENAME_NOREPLACE) == 0)
		fsync(rejected_dirfd);
	errlist_free(&errs);
}

void
intake_recover(int rejected_dirfd)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = dup(jobs_fd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			intake_recover_one(de->d_name, rejected_dirfd);
	closedir(d);
}
