/*
 * Transport plugins: dlopen()ed from [daemon] transport_dir, one instance
 * per [transport NAME] section, looked up by instance name.  Runs in the
 * daemon at start-up and on reload; workers inherit the instances.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "render.h"
#include "transport.h"
#include "util.h"

static struct transport_instance	*current;
static size_t				 ncurrent;

const char *
transport_status_name(enum transport_status st)
{
	switch (st) {
	case TRANSPORT_OK:
		return "ok";
	case TRANSPORT_TEMPFAIL:
		return "tempfail";
	case TRANSPORT_PERMFAIL:
		return "permfail";
	}
	return "unknown";
}

/*
 * A plugin file cut short (a copy that stopped, a disk that filled) maps
 * pages past its end, and the first touch of them is a SIGBUS that no
 * error path can catch.  So its ELF headers are read first, and every
 * segment they name must lie inside the file.
 */
static int
transport_check_file(const char *path, char *err, size_t errlen)
{
	Elf64_Ehdr	eh;
	Elf64_Phdr	ph;
	struct stat	st;
	uint64_t	need = 0;
	int		fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		bsnprintf(err, errlen, "transport plugin %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(ph)) {
		bsnprintf(err, errlen, "transport plugin %s is not a shared library "
		    "(or is cut short): reinstall it", path);
		goto done;
	}
	need = eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(ph);
	for (int i = 0; i < eh.e_phnum && need <= (uint64_t)st.st_size; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    sizeof(ph))
			break;
		if (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > need)
			need = ph.p_offset + ph.p_filesz;
	}
	if (eh.e_shnum && eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize > need)
		need = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
	if (need > (uint64_t)st.st_size) {
		bsnprintf(err, errlen, "transport plugin %s is cut short (%lld bytes, "
		    "its headers need %llu): reinstall it", path,
		    (long long)st.st_size, (unsigned long long)need);
		goto done;
	}
	rv = 0;
done:
	close(fd);
	return rv;
}

/* Load the plugin once in a child first: whatever its loading does (a
 * crash in its constructors, a bad relocation), the daemon goes on. */
static int
transport_try_load(const char *path, char *err, size_t errlen)
{
	pid_t	pid;
	int	status;

	if ((pid = fork()) == -1) {
		bsnprintf(err, errlen, "cannot try plugin %s: %s", path, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		void *h;
		close_range(3, ~0U, 0);
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		_exit(h && dlsym(h, TRANSPORT_SYMBOL) ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			bsnprintf(err, errlen, "cannot try plugin %s: %s", path,
			    strerror(errno));
			return -1;
		}
	if (WIFSIGNALED(status)) {
		bsnprintf(err, errlen, "transport plugin %s cannot be loaded: loading "
		    "it crashed (%s): it is damaged; reinstall it", path,
		    strsignal(WTERMSIG(status)));
		return -1;
	}
	return 0;	/* a plain failure is told by dlopen() below */
}

/* Open dir/plugin.so and check that it is a transport of our ABI. */
static const struct transport_backend *
transport_open(const struct config *c, const struct config_transport *ct,
    void **dlp, char *err, size_t errlen)
{
	const struct transport_backend	*be;
	char				 path[PATH_MAX];
	struct stat			 st;
	void				*dl;

	if (bsnprintf(path, sizeof(path), "%s/%s.so", c->transport_dir,
	    ct->plugin) == -1) {
		bsnprintf(err, errlen, "plugin path too long");
		return NULL;
	}
	/* A plugin runs with the daemon's rights: it must not be writable by others. */
	if (stat(path, &st) == -1) {
		bsnprintf(err, errlen, "transport plugin %s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & S_IWOTH) {
		bsnprintf(err, errlen, "transport plugin %s is writable by anyone; "
		    "refusing to load it", path);
		return NULL;
	}
	if (transport_check_file(path, err, errlen) == -1 ||
	    transport_try_load(path, err, errlen) == -1)
		return NULL;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		bsnprintf(err, errlen, "transport plugin %s: %s", path, dlerror());
		return NULL;
	}
	be = dlsym(dl, TRANSPORT_SYMBOL);
	if (be == NULL) {
		bsnprintf(err, errlen, "%s does not export %s: not a roigate "
		    "transport", path, TRANSPORT_SYMBOL);
		goto fail;
	}
	if (be->abi != TRANSPORT_ABI_VERSION) {
		bsnprintf(err, errlen, "%s speaks transport ABI %u, this daemon %d",
		    path, be->abi, TRANSPORT_ABI_VERSION);
		goto fail;
	}
	if (be->name == NULL || strcmp(be->name, ct->plugin) != 0 ||
	    !be->create || !be->config || !be->check || !be->init ||
	    !be->deliver || !be->shutdown ||
	    ((be->caps & TRANSPORT_CAP_POLL) && !be->poll)) {
		bsnprintf(err, errlen, "%s: incomplete or misnamed transport", path);
		goto fail;
	}
	*dlp = dl;
	return be;
fail:
	dlclose(dl);
	return NULL;
}

static int
transport_configure(const struct config *c, const struct config_transport *ct,
    struct transport_instance *ti, char *err, size_t errlen)
{
	char	msg[512];

	ti->name = xstrdup(ct->name);
	if ((ti->backend = transport_open(c, ct, &ti->dl, msg, sizeof(msg))) == NULL) {
		if (ct->line > 0)
			bsnprintf(err, errlen, "%s:%d: %s", c->path, ct->line, msg);
		else	/* the embedded default transport */
			bsnprintf(err, errlen, "%s: [transport %s] (default): %s",
			    c->path, ct->name, msg);
		return -1;
	}
	if ((ti->state = ti->backend->create()) == NULL) {
		bsnprintf(err, errlen, "%s:%d: [transport %s]: out of memory",
		    c->path, ct->line, ct->name);
		return -1;
	}
	/* "profile" is the daemon's: the output the pipeline renders for it. */
	ti->profile = ti->backend->caps & TRANSPORT_CAP_FAX ? RENDER_FAX :
	    RENDER_DOCUMENT;
	for (size_t i = 0; i < ct->nkv; i++) {
		msg[0] = '\0';
		if (strcmp(ct->kv[i].key, "profile") == 0) {
			if (strcmp(ct->kv[i].value, "fax") == 0)
				ti->profile = RENDER_FAX;
			else if (strcmp(ct->kv[i].value, "document") == 0)
				ti->profile = RENDER_DOCUMENT;
			else {
				bsnprintf(err, errlen, "%s:%d: profile: \"%.60s\" is "
				    "not fax or document", c->path, ct->kv[i].line,
				    ct->kv[i].value);
				return -1;
			}
			continue;
		}
		if (ti->backend->config(ti->state, ct->kv[i].key, ct->kv[i].value,
		    msg, sizeof(msg)) == -1) {
			bsnprintf(err, errlen, "%s:%d: %s", c->path, ct->kv[i].line,
			    msg[0] ? msg : "invalid key or value");
			return -1;
		}
	}
	msg[0] = '\0';
	if (ti->backend->check(ti->state, msg, sizeof(msg)) == -1) {
		bsnprintf(err, errlen, "%s:%d: [transport %s]: %s", c->path,
		    ct->line, ct->name, msg[0] ? msg : "incomplete configuration");
		return -1;
	}
	return 0;
}

int
transport_load_all(const struct config *c, struct transport_instance **out,
    size_t *n, char *err, size_t errlen)
{
	struct transport_instance	*tis;
	size_t				 i;

	tis = xcalloc(c->ntransports, sizeof(*tis));
	for (i = 0; i < c->ntransports; i++)
		if (transport_configure(c, &c->transports[i], &tis[i], err,
		    errlen) == -1) {
			transport_free_all(tis, i + 1);
			return -1;
		}
	*out = tis;
	*n = c->ntransports;
	return 0;
}

void
transport_free_all(struct transport_instance *tis, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (tis[i].backend && tis[i].state)
			tis[i].backend->shutdown(tis[i].state);
		/* Handles stay open: a worker forked earlier may still run its code. */
		free(tis[i].name);
	}
	free(tis);
}

void
transport_set(struct transport_instance *tis, size_t n)
{
	current = tis;
	ncurrent = n;
}

struct transport_instance *
transport_find(const char *name)
{
	for (size_t i = 0; i < ncurrent; i++)
		if (strcmp(current[i].name, name) == 0)
			return &current[i];
	return NULL;
}
