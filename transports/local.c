/*
 * The "local" transport: delivers a packet into a folder, the embedded
 * default.  Loaded by the daemon, run in a worker process.
 *
 * A delivery is DIR/ADDRESS/PACKET_ID/ holding the output files.  It is
 * written as DIR/ADDRESS/.PACKET_ID.part, every file fsynced, then the
 * folder renamed into place (never replacing one) and its parent fsynced,
 * so a reader sees a whole delivery or none.  A retry that finds the same
 * delivery already there (same names, same hashes) reports it as
 * delivered: a crash between rename and recording never makes a copy.
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

#include <roigate/transport.h>

#include "util.h"

struct local_state {
	char	*dir;
	mode_t	 mode;
};

static void *
local_create(void)
{
	struct local_state	*ls = calloc(1, sizeof(*ls));

	if (ls)
		ls->mode = 0600;
	return ls;
}

static int
local_config(void *st, const char *key, const char *value, char *err,
    size_t errlen)
{
	struct local_state	*ls = st;
	char			*end;
	long			 m;

	if (strcmp(key, "dir") == 0) {
		if (value[0] != '/') {
			snprintf(err, errlen, "dir: \"%.100s\" must be an absolute path",
			    value);
			return -1;
		}
		free(ls->dir);
		ls->dir = strdup(value);
		return ls->dir ? 0 : -1;
	}
	if (strcmp(key, "file_mode") == 0) {
		m = strtol(value, &end, 8);
		if (*value == '\0' || *end != '\0' || m < 0 || (m & ~0660)) {
			snprintf(err, errlen, "file_mode: \"%.20s\" must be an octal "
			    "mode no wider than 0660", value);
			return -1;
		}
		ls->mode = (mode_t)m;
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%.100s\" for the local transport "
	    "(keys: dir, file_mode)", key);
	return -1;
}

static int
local_check(void *st, char *err, size_t errlen)
{
	struct local_state	*ls = st;

	if (ls->dir == NULL) {
		snprintf(err, errlen, "the local transport needs dir = FOLDER");
		return -1;
	}
	if (mkdir_p(ls->dir, 0700) == -1) {
		snprintf(err, errlen, "cannot create %s: %s", ls->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
local_init(void *st, char *err, size_t errlen)
{
	return 0;
}

/* An error errno: is it worth retrying (disk full, I/O) or not (permissions)? */
static enum transport_status
local_errno_status(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
		return TRANSPORT_PERMFAIL;
	default:
		return TRANSPORT_TEMPFAIL;
	}
}

static enum transport_status
local_fail(struct transport_receipt *r, int e, const char *what, const char *path)
{
	snprintf(r->detail, sizeof(r->detail), "%s %s: %s", what, path, strerror(e));
	strlcpy_(r->status, "error", sizeof(r->status));
	return local_errno_status(e);
}

/* Remove a leftover .part folder (one level of plain files). */
static void
local_remove_part(int adirfd, const char *part)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = openat(adirfd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			(void)unlinkat(fd, de->d_name, 0);
	closedir(d);
	(void)unlinkat(adirfd, part, AT_REMOVEDIR);
}

/* Copy one file into the .part folder, hashing what was written. */
static int
local_copy(int partfd, const struct transport_file *f, mode_t mode, char hex[65])
{
	struct sha256_ctx	*c = sha256_new();
	char			 b[65536];
	ssize_t			 n;
	off_t			 off = 0;
	int			 out, saved;

	out = openat(partfd, f->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (out == -1) {
		sha256_final(c, hex);
		return -1;
	}
	while ((n = pread(f->fd, b, sizeof(b), off)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (write_all(out, b, (size_t)n) == -1)
			goto fail;
		sha256_update(c, b, (size_t)n);
		off += n;
	}
	sha256_final(c, hex);
	if (fsync(out) == -1 || close(out) == -1)
		return -1;
	return 0;
fail:
	saved = errno;
	sha256_final(c, hex);
	close(out);
	errno = saved;
	return -1;
}

/* Does the existing delivery hold exactly these files with these hashes? */
static int
local_same_delivery(int adirfd, const char *name, const struct transport_message *m)
{
	int		 dfd, fd, same = 1;
	char		 hex[65];
	DIR		*d;
	struct dirent	*de;
	size_t		 count = 0;

	if ((dfd = openat(adirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 0;
	for (size_t i = 0; i < m->nfiles && same; i++) {
		if ((fd = openat(dfd, m->files[i].name, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1 || sha256_fd(fd, hex, NULL) == -1 ||
		    strcmp(hex, m->files[i].sha256) != 0)
			same = 0;
		if (fd != -1)
			close(fd);
	}
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			count++;
	closedir(d);
	return same && count == m->nfiles;
}

static void
local_receipt(struct transport_receipt *r, const struct local_state *ls,
    const struct transport_message *m, const char *address, const char *what)
{
	const char	**names = calloc(m->nfiles + 1, sizeof(*names));
	const char	**hexes = calloc(m->nfiles + 1, sizeof(*hexes));

	snprintf(r->remote_id, sizeof(r->remote_id), "%s/%s", address, m->packet_id);
	strlcpy_(r->status, "delivered", sizeof(r->status));
	snprintf(r->detail, sizeof(r->detail), "%s %s/%s/%s", what, ls->dir,
	    address, m->packet_id);
	if (names && hexes) {
		for (size_t i = 0; i < m->nfiles; i++) {
			names[i] = m->files[i].name;
			hexes[i] = m->files[i].sha256;
		}
		sha256_listing(names, hexes, m->nfiles, r->sha256);
	}
	free(names);
	free(hexes);
	r->pages = m->pages;
	r->completed_at = now_wall();
}

static enum transport_status
local_deliver(void *st, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct local_state	*ls = st;
	const char		*address = m->recipient->address;
	char			 part[NAME_MAX + 1] = "", hex[65];
	enum transport_status	 rv = TRANSPORT_TEMPFAIL;
	int			 dirfd = -1, adirfd = -1, partfd = -1;

	if (!valid_filename(address) || !valid_filename(m->packet_id)) {
		snprintf(r->detail, sizeof(r->detail), "recipient address \"%.100s\" "
		    "is not a plain folder name", address);
		return TRANSPORT_PERMFAIL;
	}
	if ((dirfd = open(ls->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return local_fail(r, errno, "cannot open", ls->dir);
	if (mkdirat(dirfd, address, 0700) == -1 && errno != EEXIST) {
		rv = local_fail(r, errno, "cannot create folder", address);
		goto done;
	}
	if ((adirfd = openat(dirfd, address, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		rv = local_fail(r, errno, "cannot open folder", address);
		goto done;
	}
	if (faccessat(adirfd, m->packet_id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		if (local_same_delivery(adirfd, m->packet_id, m)) {
			local_receipt(r, ls, m, address, "already delivered to");
			rv = TRANSPORT_OK;
		} else {
			snprintf(r->detail, sizeof(r->detail), "a different delivery "
			    "of packet %.64s is already in %.200s/%.100s: refusing to "
			    "replace it", m->packet_id, ls->dir, address);
			r->hold = 1;
			rv = TRANSPORT_PERMFAIL;
		}
		goto done;
	}
	snprintf(part, sizeof(part), ".%s.part", m->packet_id);
	local_remove_part(adirfd, part);
	if (mkdirat(adirfd, part, 0700) == -1 ||
	    (partfd = openat(adirfd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		rv = local_fail(r, errno, "cannot create", part);
		goto done;
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		if (local_copy(partfd, &m->files[i], ls->mode, hex) == -1) {
			rv = local_fail(r, errno, "cannot write", m->files[i].name);
			goto done;
		}
		if (strcmp(hex, m->files[i].sha256) != 0) {
			snprintf(r->detail, sizeof(r->detail), "%.100s changed while it "
			    "was being copied (hash mismatch)", m->files[i].name);
			goto done;
		}
	}
	if (fsync(partfd) == -1 ||
	    renameat2(adirfd, part, adirfd, m->packet_id, RENAME_NOREPLACE) == -1 ||
	    fsync(adirfd) == -1) {
		rv = local_fail(r, errno, "cannot complete delivery of", m->packet_id);
		goto done;
	}
	local_receipt(r, ls, m, address, "delivered to");
	rv = TRANSPORT_OK;
done:
	if (partfd != -1)
		close(partfd);
	if (rv != TRANSPORT_OK && adirfd != -1 && part[0])
		local_remove_part(adirfd, part);
	if (adirfd != -1)
		close(adirfd);
	close(dirfd);
	return rv;
}

static void
local_shutdown(void *st)
{
	struct local_state	*ls = st;

	free(ls->dir);
	free(ls);
}

const struct transport_backend roigate_transport = {
	.name = "local",
	.abi = TRANSPORT_ABI_VERSION,
	.caps = 0,
	.create = local_create,
	.config = local_config,
	.check = local_check,
	.init = local_init,
	.deliver = local_deliver,
	.poll = NULL,
	.shutdown = local_shutdown,
};
