/*
 * libroigate: the client side of the control socket, for the records
 * system and for roictl.  Runs in the caller's process: it never opens
 * the database, only the socket, and passes documents as descriptors.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include <roigate/client.h>

#include "proto.h"

#define CLIENT_MAX_REPLY	(64 * 1024 * 1024)
#define CLIENT_MAX_MANIFEST	(1024 * 1024)

struct roigate {
	int	fd;
	int64_t	next_id;
};

static int
cerr(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
cerr(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

struct roigate *
roigate_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct roigate		*c;
	int			 fd;

	if (path == NULL && (path = getenv("ROIGATE_SOCKET")) == NULL)
		path = ROIGATE_DEFAULT_SOCKET;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		cerr(err, errlen, 0, "socket path too long: %s", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);	/* length checked above */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		cerr(err, errlen, 0, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int saved = errno;
		if (saved == EACCES || saved == EPERM)
			cerr(err, errlen, 0, "cannot connect to %s: %s (only members "
			    "of the socket's group may use the gateway)", path,
			    strerror(saved));
		else
			cerr(err, errlen, 0, "cannot connect to %s: %s (is roigated "
			    "running?)", path, strerror(saved));
		close(fd);
		errno = saved;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		cerr(err, errlen, 0, "out of memory");
		return NULL;
	}
	c->fd = fd;
	c->next_id = 1;
	return c;
}

void
roigate_close(struct roigate *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

static int
code_of(const char *code)
{
	static const struct { const char *name; int code; } codes[] = {
		{ "denied", ROIGATE_E_DENIED }, { "bad_request", ROIGATE_E_INVALID },
		{ "invalid", ROIGATE_E_INVALID }, { "not_found", ROIGATE_E_NOTFOUND },
		{ "unavailable", ROIGATE_E_TEMPFAIL }, { "integrity", ROIGATE_E_INVALID },
		{ "conflict", ROIGATE_E_INVALID },
	};
	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i].name) == 0)
			return codes[i].code;
	return ROIGATE_E_INTERNAL;
}

/* The error text of a refusal, with every reason on its own line. */
static void
reply_error(json_t *reply, char *err, size_t errlen)
{
	json_t		*reasons = json_object_get(reply, "reasons"), *r;
	const char	*msg = json_string_value(json_object_get(reply, "error"));
	size_t		 i, off;

	cerr(err, errlen, 0, "%s", msg ? msg : "the daemon refused the request");
	if (!json_is_array(reasons) || err == NULL)
		return;
	json_array_foreach(reasons, i, r) {
		off = strlen(err);
		if (json_is_string(r) && off + 2 < errlen)
			snprintf(err + off, errlen - off, "\n%s", json_string_value(r));
	}
}

/* Send req (consumed) with fds; on success *result is the result object. */
static int
client_request(struct roigate *c, json_t *req, const int *fds, size_t nfds,
    json_t **result, char *err, size_t errlen)
{
	json_t	*reply = NULL;
	int	 rv;
	char	 perr[256];
	size_t	 nrfds = 0;

	json_object_set_new(req, "v", json_integer(PROTO_VERSION));
	json_object_set_new(req, "id", json_integer(c->next_id++));
	rv = proto_send(c->fd, req, fds, nfds);
	json_decref(req);
	if (rv == -1) {
		/* A connection over the daemon's limits is refused with one
		 * frame and closed at once, perhaps before the request went
		 * out: say its reason, not the broken pipe. */
		int saved = errno;
		if ((saved != EPIPE && saved != ECONNRESET) || proto_recv(c->fd,
		    CLIENT_MAX_REPLY, &reply, NULL, &nrfds, perr, sizeof(perr)) == -1)
			return cerr(err, errlen, ROIGATE_E_UNAVAILABLE, "cannot send "
			    "to the daemon: %s", strerror(saved));
	} else if (proto_recv(c->fd, CLIENT_MAX_REPLY, &reply, NULL, &nrfds, perr,
	    sizeof(perr)) == -1)
		return cerr(err, errlen, ROIGATE_E_UNAVAILABLE, "no answer from the "
		    "daemon: %s", perr);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		rv = code_of(json_string_value(json_object_get(reply, "code")));
		reply_error(reply, err, errlen);
		json_decref(reply);
		return rv;
	}
	*result = json_incref(json_object_get(reply, "result"));
	json_decref(reply);
	if (*result == NULL)
		*result = json_object();
	return ROIGATE_OK;
}

int
roigate_call(struct roigate *c, const char *op, const char *args_json,
    char **result, char *err, size_t errlen)
{
	json_t		*req, *res = NULL;
	json_error_t	 jerr;
	int		 rv;

	req = json_loads(args_json ? args_json : "{}", 0, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		return cerr(err, errlen, ROIGATE_E_INVALID, "arguments must be a JSON "
		    "object: %s", jerr.text);
	}
	json_object_set_new(req, "op", json_string(op));
	if ((rv = client_request(c, req, NULL, 0, &res, err, errlen)) != ROIGATE_OK)
		return rv;
	*result = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(res);
	return *result ? ROIGATE_OK : cerr(err, errlen, ROIGATE_E_SYSTEM,
	    "out of memory");
}

int
roigate_submit(struct roigate *c, const char *manifest_json,
    const struct roigate_file *files, size_t nfiles, int64_t *job, char *err,
    size_t errlen)
{
	json_t		*req, *names, *manifest, *res = NULL;
	json_error_t	 jerr;
	int		*fds, rv;

	if (nfiles > PROTO_MAX_FDS)
		return cerr(err, errlen, ROIGATE_E_INVALID, "%zu documents: at most "
		    "%d can be submitted at once", nfiles, PROTO_MAX_FDS);
	manifest = json_loads(manifest_json, 0, &jerr);
	if (!json_is_object(manifest)) {
		json_decref(manifest);
		return cerr(err, errlen, ROIGATE_E_INVALID, "manifest is not a JSON "
		    "object (line %d: %s)", jerr.line, jerr.text);
	}
	if ((fds = calloc(nfiles + 1, sizeof(*fds))) == NULL) {
		json_decref(manifest);
		return cerr(err, errlen, ROIGATE_E_SYSTEM, "out of memory");
	}
	names = json_array();
	for (size_t i = 0; i < nfiles; i++) {
		json_array_append_new(names, json_string(files[i].name));
		fds[i] = files[i].fd;
	}
	req = json_object();
	json_object_set_new(req, "op", json_string("submit"));
	json_object_set_new(req, "manifest", manifest);
	json_object_set_new(req, "files", names);
	rv = client_request(c, req, fds, nfiles, &res, err, errlen);
	free(fds);
	if (rv != ROIGATE_OK)
		return rv;
	*job = json_integer_value(json_object_get(res, "job"));
	json_decref(res);
	return *job > 0 ? ROIGATE_OK : cerr(err, errlen, ROIGATE_E_PROTOCOL,
	    "the daemon accepted the packet but named no job");
}

/* Read dir/manifest.json and open every listed document (no symlinks). */
int
roigate_submit_dir(struct roigate *c, const char *dir, int64_t *job, char *err,
    size_t errlen)
{
	struct roigate_file	*files = NULL;
	json_t			*m = NULL, *docs, *d;
	json_error_t		 jerr;
	char			*text = NULL;
	size_t			 i, n = 0;
	int			 dirfd, fd, rv = ROIGATE_E_SYSTEM;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return cerr(err, errlen, ROIGATE_E_SYSTEM, "%s: %s", dir, strerror(errno));
	if ((fd = openat(dirfd, "manifest.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		cerr(err, errlen, rv, "%s/manifest.json: %s", dir, strerror(errno));
		goto done;
	}
	m = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (m == NULL) {
		rv = cerr(err, errlen, ROIGATE_E_INVALID, "%s/manifest.json is not "
		    "valid JSON (line %d, column %d: %s)", dir, jerr.line,
		    jerr.column, jerr.text);
		goto done;
	}
	docs = json_object_get(m, "documents");
	files = calloc(json_array_size(docs) + 1, sizeof(*files));
	if (files == NULL)
		goto done;
	json_array_foreach(docs, i, d) {
		const char *name = json_string_value(json_object_get(d, "file"));
		if (name == NULL || strchr(name, '/') != NULL) {
			rv = cerr(err, errlen, ROIGATE_E_INVALID, "documents[%zu].file "
			    "must be a plain file name", i);
			goto done;
		}
		if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
			rv = cerr(err, errlen, ROIGATE_E_SYSTEM, "%s/%s: %s", dir, name,
			    strerror(errno));
			goto done;
		}
		files[n].name = name;
		files[n++].fd = fd;
	}
	text = json_dumps(m, JSON_COMPACT);
	rv = text ? roigate_submit(c, text, files, n, job, err, errlen) :
	    cerr(err, errlen, ROIGATE_E_SYSTEM, "out of memory");
done:
	for (i = 0; i < n; i++)
		close(files[i].fd);
	free(files);
	free(text);
	json_decref(m);
	close(dirfd);
	return rv;
}

int
roigate_job_state(struct roigate *c, int64_t job, char *state, size_t statelen,
    char *err, size_t errlen)
{
	json_t		*req = json_object(), *res = NULL;
	const char	*s;
	int		 rv;

	json_object_set_new(req, "op", json_string("show"));
	json_object_set_new(req, "job", json_integer(job));
	if ((rv = client_request(c, req, NULL, 0, &res, err, errlen)) != ROIGATE_OK)
		return rv;
	s = json_string_value(json_object_get(json_object_get(res, "job"), "state"));
	if (s == NULL)
		rv = cerr(err, errlen, ROIGATE_E_PROTOCOL, "no state in the answer");
	else
		snprintf(state, statelen, "%s", s);
	json_decref(res);
	return rv;
}
