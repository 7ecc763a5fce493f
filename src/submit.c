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
#include "manifest.h"
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

/* Copy one passed descriptor into the staging folder. */
static int
submit_copy(int dirfd, const char *name, int in, struct errlist *errs)
{
	struct stat	st;
	off_t		n;
	int		out;

	if (!valid_filename(name) || strcmp(name, "manifest.json") == 0) {
		errlist_add(errs, "file name \"%.100s\" is not allowed: a plain name, "
		    "no '/', not starting with '.'", name);
		return -1;
	}
	if (fstat(in, &st) == -1 || !S_ISREG(st.st_mode)) {
		errlist_add(errs, "%s: pass a regular file (or memfd), not a pipe, "
		    "socket or device", name);
		return -1;
	}
	if (st.st_size > rg->conf->max_file_size) {
		errlist_add(errs, "%s is %lld bytes, over the limit of %lld bytes",
		    name, (long long)st.st_size, (long long)rg->conf->max_file_size);
		return -1;
	}
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
	if (fsync(out) == -1 || close(out) == -1) {
		errlist_add(errs, "%s: cannot store: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int
submit_stage(int dirfd, json_t *manifest, const char *const *names,
    const int *fds, size_t nfds, struct errlist *errs)
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
	rv = write_file_atomic(dirfd, "manifest.json", text, strlen(text), 0600);
	free(text);
	if (rv == -1) {
		errlist_add(errs, "cannot store the manifest: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < nfds; i++)
		if (submit_copy(dirfd, names[i], fds[i], errs) == -1)
			return -1;
	if (fsync(dirfd) == -1) {
		errlist_add(errs, "cannot store the packet: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
submit_packet(json_t *manifest, const char *const *names, const int *fds,
    size_t nfds, const char *actor, int64_t submit_uid, int64_t *id,
    struct errlist *errs)
{
	struct intake_stage	 sg;
	struct manifest		*m = NULL;
	char			 err[512];
	int64_t			 same;
	int			 rv = -1;

	if (intake_stage_open(&sg, err, sizeof(err)) == -1) {
		errlist_add(errs, "%s", err);
		return -2;
	}
	if (submit_stage(sg.fd, manifest, names, fds, nfds, errs) == -1)
		goto done;
	switch (intake_check(sg.fd, -1, &m, errs, &same)) {
	case 0:
		break;
	case 2:	/* the very same packet: it is job same, not a new one */
	case 1:	/* over the socket nothing arrives later */
		errlist_add(errs, "every document listed in the manifest must be "
		    "passed with the request");
		goto done;
	default:
		goto done;
	}
	if (intake_accept(&sg, m, "socket", actor, submit_uid, id, err, sizeof(err)) == -1) {
		/* Our trouble (database busy, disk full), not the packet's. */
		errlist_add(errs, "the packet could not be stored now: %s; nothing "
		    "was taken: send it again later", err);
		rv = -2;
		goto done;
	}
	rv = 0;
done:
	intake_stage_discard(&sg);
	manifest_free(m);
	return rv;
}
