/*
 * The control socket (daemon): the records system submits packets and
 * administrators steer the queue through it.  The caller is identified by
 * the kernel (SO_PEERCRED), never by anything it says; [roles] maps the
 * uid and groups to roles; every request, allowed or denied, is written
 * to the audit log.  Bad frames, bad JSON, unknown operations and idle
 * clients are answered or dropped without disturbing anyone else.
 * The operations themselves are in src/control_ops.c.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "control.h"
#include "control_ops.h"
#include "log.h"
#include "loop.h"
#include "proto.h"
#include "roigated.h"
#include "store.h"
#include "util.h"

struct client {
	int			 fd;
	struct loop_fd		*lf;
	struct loop_timer	*idle;
	struct proto_reader	 pr;
	struct buf		 out;
	size_t			 outoff;
	int			 closing;	/* close once out is flushed */
	struct peer		 peer;
	/* A deferred operation runs: nothing more is read meanwhile. */
	const struct op_def	*wait_op;
	json_t			*wait_id;
	void			(*wait_cancel)(void *);
	void			*wait_arg;
	struct client		*next;
};

static int		 listen_fd = -1;
static struct loop_fd	*listen_lf;
static struct client	*clients;
static int		 nclients;
static struct loop_timer *accept_timer;
static int		 accept_paused;	/* times, since connections were last taken */

static void	client_io(int, uint32_t, void *);
static void	client_write(struct client *);
static void	client_events(struct client *);

static void
client_free(struct client *c)
{
	struct client	**pp;

	for (pp = &clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	nclients--;
	if (c->wait_op && c->wait_cancel)
		c->wait_cancel(c->wait_arg);	/* nobody left to tell */
	json_decref(c->wait_id);
	loop_fd_del(c->lf);
	loop_timer_free(c->idle);
	proto_reader_reset(&c->pr);
	free(c->pr.body);
	buf_free(&c->out);
	close(c->fd);
	free(c);
}

static void
client_events(struct client *c)
{
	uint32_t	ev = c->closing || c->wait_op ? 0 : EPOLLIN;

	if (c->outoff < c->out.len)
		ev |= EPOLLOUT;
	loop_fd_mod(c->lf, ev);
}

/* Queue one frame for the client. */
static void
client_send(struct client *c, json_t *msg)
{
	char	*body = json_dumps(msg, JSON_COMPACT);
	size_t	 len;
	uint8_t	 hdr[4];

	if (body == NULL) {
		c->closing = 1;
		return;
	}
	len = strlen(body);
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	buf_add(&c->out, hdr, 4);
	buf_add(&c->out, body, len);
	free(body);
}

static void
client_error(struct client *c, json_t *id, const char *code, const char *msg)
{
	json_t	*r = json_pack("{s:i, s:O?, s:b, s:s, s:s}", "v", PROTO_VERSION,
	    "id", id, "ok", 0, "code", code, "error", msg);

	client_send(c, r);
	json_decref(r);
}

/*
 * Audit rows wait here, in order, while the database cannot take them
 * (another process holds it locked, the disk is full): a request is
 * answered at once all the same, and no row is lost unless the wait
 * outgrows AUDIT_PENDING_MAX, which is then itself written down.
 */
#define AUDIT_PENDING_MAX	100000
static struct audit_entry	*audit_pending;
static size_t			 naudit_pending, audit_lost;
static struct loop_timer	*audit_timer;

static void
audit_entry_free(struct audit_entry *a)
{
	free(a->role);
	free(a->op);
	free(a->target);
	free(a->outcome);
	free(a->detail);
}

/* Write what waits; 0 when nothing is left. */
static int
audit_flush(void)
{
	size_t	done = 0;

	while (done < naudit_pending &&
	    store_audit_add(rg->store, &audit_pending[done]) == 0)
		audit_entry_free(&audit_pending[done++]);
	if (done > 0)	/* memmove of NULL, even for 0 bytes, is undefined */
		memmove(audit_pending, audit_pending + done,
		    (naudit_pending - done) * sizeof(*audit_pending));
	naudit_pending -= done;
	if (naudit_pending == 0 && audit_lost) {
		char			 d[96];
		struct audit_entry	 a = { .at = now_wall(), .uid = -1,
		    .gid = -1, .pid = (int64_t)getpid(), .role = "", .op = "(audit)",
		    .target = "", .outcome = "error", .detail = d };
		snprintf(d, sizeof(d), "%zu audit rows were lost while the database "
		    "was unavailable", audit_lost);
		if (store_audit_add(rg->store, &a) == 0)
			audit_lost = 0;
	}
	if (naudit_pending == 0 && audit_lost == 0) {
		if (rg->problem[PROBLEM_CONTROL][0])
			daemon_problem_clear(PROBLEM_CONTROL);
		return 0;
	}
	daemon_problem(PROBLEM_CONTROL, "cannot write the audit log (its rows "
	    "wait in memory): %.200s", store_errmsg(rg->store));
	loop_timer_set(audit_timer, 1000);
	return -1;
}

static void
audit_flush_timer(void *arg)
{
	(void)audit_flush();
}

static void
audit_at(const struct peer *p, int64_t at, const char *op, const char *target,
    const char *outcome, const char *detail)
{
	struct audit_entry	a;
	char			roles[64];

	memset(&a, 0, sizeof(a));
	roles_format(p->roles, roles, sizeof(roles));
	a.at = at;
	a.uid = p->uid;
	a.gid = p->gid;
	a.pid = p->pid;
	a.role = roles;
	a.op = (char *)op;
	a.target = (char *)(target ? target : "");
	a.outcome = (char *)outcome;
	a.detail = (char *)(detail ? detail : "");
	if (naudit_pending == 0 && store_audit_add(rg->store, &a) == 0) {
		if (rg->problem[PROBLEM_CONTROL][0])
			daemon_problem_clear(PROBLEM_CONTROL);
		return;
	}
	if (naudit_pending >= AUDIT_PENDING_MAX) {
		audit_lost++;
		return;
	}
	audit_pending = xreallocarray(audit_pending, naudit_pending + 1,
	    sizeof(*audit_pending));
	a.role = xstrdup(a.role);
	a.op = xstrdup(a.op);
	a.target = xstrdup(a.target);
	a.outcome = xstrdup(a.outcome);
	a.detail = xstrdup(a.detail);
	audit_pending[naudit_pending++] = a;
	if (naudit_pending == 1) {
		daemon_problem(PROBLEM_CONTROL, "cannot write the audit log (its "
		    "rows wait in memory): %.200s", store_errmsg(rg->store));
		loop_timer_set(audit_timer, 1000);
	}
}

static void
audit(const struct peer *p, const char *op, const char *target,
    const char *outcome, const char *detail)
{
	audit_at(p, now_wall(), op, target, outcome, detail);
}

/*
 * Refusals are counted, not each written out: a caller may send thousands
 * of refused requests a second, and a row for each would fill the disk
 * and bury what matters.  The first refusal from a uid opens a window of
 * a minute; every refusal in it is counted, by operation, and one row is
 * written when the window closes (its timer) or the daemon stops: how
 * many, which operations, and the first reason.  A refusal is a request
 * denied for want of a role, or anything a caller with no role at all
 * sends (bad frames and unknown operations included).
 */
#define REFUSAL_WINDOW_MS	60000
#define REFUSAL_OPS		8	/* named in the row; the rest are "other" */
#define REFUSAL_MAX_UIDS	256	/* windows open at once */

struct refusal_op {
	char		name[24];
	unsigned	count;
};

struct refusals {
	struct peer		 peer;		/* who sent the first one */
	struct loop_timer	*timer;
	int64_t			 first_at;
	unsigned		 count;
	char			 op[24];	/* the first one's */
	char			 outcome[12];
	char			 reason[256];
	struct refusal_op	 ops[REFUSAL_OPS];
	unsigned		 other;
	struct refusals		*next;
};

static struct refusals	*refusals;
static int		 nrefusals;

static void
refusal_row(const struct refusals *r)
{
	char	detail[640], ops[320] = "";
	size_t	n = 0;

	if (r->count == 1) {
		audit_at(&r->peer, r->first_at, r->op, "", r->outcome, r->reason);
		return;
	}
	for (int i = 0; i < REFUSAL_OPS && r->ops[i].count && n < sizeof(ops); i++)
		n += (size_t)snprintf(ops + n, sizeof(ops) - n, "%s%s %u",
		    i ? ", " : "", r->ops[i].name, r->ops[i].count);
	if (r->other && n < sizeof(ops))
		snprintf(ops + n, sizeof(ops) - n, ", other %u", r->other);
	snprintf(detail, sizeof(detail), "%u refused requests in %lld s (%s); the "
	    "first: %s", r->count, (long long)(now_wall() - r->first_at + 1), ops,
	    r->reason);
	audit_at(&r->peer, r->first_at, r->op, "", r->outcome, detail);
}

/* Write the window's row and close it. */
static void
refusal_flush(struct refusals *r)
{
	struct refusals	**pp;

	for (pp = &refusals; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	nrefusals--;
	refusal_row(r);
	loop_timer_free(r->timer);
	free(r);
}

static void
refusal_timer(void *arg)
{
	refusal_flush(arg);
}

static struct refusals *
refusal_window(const struct peer *p, const char *op, const char *outcome,
    const char *reason)
{
	struct refusals	*r, *last = NULL;

	for (r = refusals; r; last = r, r = r->next)
		if (r->peer.uid == p->uid)
			return r;
	if (nrefusals >= REFUSAL_MAX_UIDS && last)
		refusal_flush(last);	/* the oldest: new ones go in front */
	r = xcalloc(1, sizeof(*r));
	r->peer = *p;
	r->first_at = now_wall();
	strlcpy_(r->op, op, sizeof(r->op));
	strlcpy_(r->outcome, outcome, sizeof(r->outcome));
	strlcpy_(r->reason, reason, sizeof(r->reason));
	r->timer = loop_timer_new(refusal_timer, r);
	loop_timer_set(r->timer, REFUSAL_WINDOW_MS);
	r->next = refusals;
	refusals = r;
	nrefusals++;
	return r;
}

/* Audit one request that was not carried out: counted if a refusal. */
static void
audit_refused(const struct peer *p, const char *op, const char *outcome,
    const char *reason)
{
	struct refusals	*r;
	int		 i;

	op = op ? op : "(no operation)";
	if (strcmp(outcome, "denied") != 0 && p->roles != 0) {
		audit(p, op, "", outcome, reason);
		return;
	}
	r = refusal_window(p, op, outcome, reason);
	r->count++;
	for (i = 0; i < REFUSAL_OPS && r->ops[i].count; i++)
		if (strncmp(r->ops[i].name, op, sizeof(r->ops[i].name) - 1) == 0)
			break;
	if (i == REFUSAL_OPS) {
		r->other++;
		return;
	}
	if (r->ops[i].count == 0)
		strlcpy_(r->ops[i].name, op, sizeof(r->ops[i].name));
	r->ops[i].count++;
}

/* Audit an operation's outcome and queue its answer. */
static void
client_reply(struct client *c, const struct op_def *op, json_t *id,
    struct op_result *res)
{
	json_t	*reply;

	audit(&c->peer, op->name, res->target, res->code ? "error" : "ok",
	    res->code ? res->error : res->detail);
	if (res->code) {
		reply = json_pack("{s:i, s:O?, s:b, s:s, s:s}", "v", PROTO_VERSION,
		    "id", id, "ok", 0, "code", res->code, "error", res->error);
		if (res->reasons)
			json_object_set(reply, "reasons", res->reasons);
	} else
		reply = json_pack("{s:i, s:O?, s:b, s:O}", "v", PROTO_VERSION, "id",
		    id, "ok", 1, "result", res->result ? res->result : json_object());
	client_send(c, reply);
	json_decref(reply);
	json_decref(res->result);
	json_decref(res->reasons);
}

void
control_reply_later(void *conn, struct op_result *res)
{
	struct client	*c = conn;

	client_reply(c, c->wait_op, c->wait_id, res);
	json_decref(c->wait_id);
	c->wait_id = NULL;
	c->wait_op = NULL;
	c->wait_cancel = NULL;
	loop_timer_set(c->idle, rg->conf->client_idle_ms);
	client_write(c);
	client_events(c);
}

/* One complete frame: decode, authorize, run, answer, audit. */
static void
client_request(struct client *c)
{
	struct op_result	 res;
	const struct op_def	*op;
	json_t			*req, *id;
	char			 err[256];
	const char		*name;

	req = proto_decode(c->pr.body, c->pr.want, err, sizeof(err));
	if (req == NULL) {
		audit_refused(&c->peer, "(bad request)", "error", err);
		client_error(c, NULL, "bad_request", err);
		return;
	}
	id = json_object_get(req, "id");
	name = json_string_value(json_object_get(req, "op"));
	if ((op = control_op_find(name)) == NULL) {
		snprintf(err, sizeof(err), "unknown operation \"%.60s\"", name);
		audit_refused(&c->peer, name, "error", err);
		client_error(c, id, "bad_request", err);
		goto done;
	}
	if (!(c->peer.roles & op->roles)) {
		snprintf(err, sizeof(err), "permission denied: %s needs the role %s "
		    "(given in [roles] of roigate.conf)", op->name, op->role_words);
		audit_refused(&c->peer, op->name, "denied", err);
		client_error(c, id, "denied", err);
		goto done;
	}
	memset(&res, 0, sizeof(res));
	res.conn = c;
	op->run(&c->peer, req, c->pr.fds, c->pr.nfds, &res);
	/* Descriptors were used (or not) by the operation: close them now. */
	for (size_t i = 0; i < c->pr.nfds; i++) {
		close(c->pr.fds[i]);
		c->pr.fds[i] = -1;
	}
	c->pr.nfds = 0;
	if (res.deferred) {
		c->wait_op = op;
		c->wait_id = json_incref(id);
		c->wait_cancel = res.cancel;
		c->wait_arg = res.cancel_arg;
		loop_timer_cancel(c->idle);	/* the operation has its own limit */
		goto done;
	}
	client_reply(c, op, id, &res);
done:
	json_decref(req);
}

static void
client_read(struct client *c)
{
	char	err[256];
	int	rv;

	for (;;) {
		rv = proto_read(&c->pr, c->fd, err, sizeof(err));
		if (rv == 0)
			return;
		if (rv == -2) {
			c->closing = 1;
			return;
		}
		if (rv == -1) {
			/* Framing is lost: answer once, then hang up. */
			audit_refused(&c->peer, "(bad frame)", "error", err);
			client_error(c, NULL, "bad_request", err);
			c->closing = 1;
			return;
		}
		/* A caller who may not submit had its descriptors closed on
		 * arrival (peer_roles): its request is judged without them. */
		if (c->pr.fds_overflow && c->pr.maxfds > 0) {
			snprintf(err, sizeof(err), "too many file descriptors (at most %d "
			    "per request)", PROTO_MAX_FDS);
			audit_refused(&c->peer, "(bad frame)", "error", err);
			client_error(c, NULL, "bad_request", err);
			c->closing = 1;
			return;
		}
		client_request(c);
		proto_reader_reset(&c->pr);
		if (c->wait_op)
			return;		/* answered later; read on after that */
		loop_timer_set(c->idle, rg->conf->client_idle_ms);
		if (c->out.len - c->outoff > (size_t)rg->conf->max_frame * 4)
			return;	/* let the client read before taking more */
	}
}

static void
client_write(struct client *c)
{
	ssize_t	n;

	while (c->outoff < c->out.len) {
		n = send(c->fd, c->out.data + c->outoff, c->out.len - c->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			c->closing = 1;
			c->outoff = c->out.len;
			return;
		}
		c->outoff += (size_t)n;
	}
	buf_free(&c->out);
	c->outoff = 0;
}

static void
client_io(int fd, uint32_t events, void *arg)
{
	struct client	*c = arg;

	if (c->wait_op && (events & (EPOLLHUP | EPOLLERR))) {
		client_free(c);		/* gone while its operation ran */
		return;
	}
	if (!c->wait_op && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		client_read(c);
	client_write(c);
	if (c->closing && c->outoff >= c->out.len) {
		client_free(c);
		return;
	}
	client_events(c);
}

static void
client_idle(void *arg)
{
	struct client	*c = arg;

	log_debug("control: closing an idle client (uid %u)", (unsigned)c->peer.uid);
	audit_refused(&c->peer, "(idle)", "error", "closed: idle or too slow");
	client_free(c);
}

static int
peer_count(uid_t uid)
{
	int	n = 0;

	for (struct client *c = clients; c; c = c->next)
		if (c->peer.uid == uid)
			n++;
	return n;
}

/* Connections from callers with no role, who may do nothing: at most a
 * quarter of max_clients, so that users of the socket's group without a
 * role cannot keep out those who have one. */
static int
norole_full(void)
{
	int	n = 0, cap = rg->conf->max_clients / 4;

	for (struct client *c = clients; c; c = c->next)
		if (c->peer.roles == 0)
			n++;
	return n >= (cap > 0 ? cap : 1);
}

/* Refuse a connection over a limit with one error frame, written at once. */
static void
refuse(int fd, const char *msg)
{
	json_t	*r = json_pack("{s:i, s:n, s:b, s:s, s:s}", "v", PROTO_VERSION,
	    "id", "ok", 0, "code", "unavailable", "error", msg);

	(void)proto_send(fd, r, NULL, 0);
	json_decref(r);
	close(fd);
}

/* The peer's supplementary groups as the kernel holds them; a peer in
 * more groups than fit is judged by the group database instead. */
static void
peer_groups(int fd, struct peer *p)
{
	socklen_t	len = sizeof(p->groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &len) == 0)
		p->ngroups = (int)(len / sizeof(gid_t));
	else
		p->ngroups = -1;
}

/*
 * Descriptors are kept only from a peer that may submit: anyone else's are
 * closed as they arrive, so that connections holding files (64 each, the
 * frame never finished) cannot use up the daemon's open-file limit.
 */
static void
peer_roles(struct client *c)
{
	c->peer.roles = config_roles(rg->conf, c->peer.uid, c->peer.gid,
	    c->peer.ngroups >= 0 ? c->peer.groups : NULL, c->peer.ngroups);
	c->pr.maxfds = c->peer.roles & ROLE_SUBMIT ? PROTO_MAX_FDS : 0;
}

/* Out of descriptors: accept nothing for a second rather than fail on
 * every turn of the loop (the connections wait in the backlog). */
static void
control_accept_resume(void *arg)
{
	if (listen_fd != -1)
		loop_fd_mod(listen_lf, EPOLLIN);
}

static void
control_accept(int lfd, uint32_t events, void *arg)
{
	struct client	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	int		 fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
			close(fd);
			continue;
		}
		if (nclients >= rg->conf->max_clients) {
			refuse(fd, "too many clients; try again shortly");
			continue;
		}
		if (peer_count(cred.uid) >= rg->conf->max_clients_per_uid) {
			refuse(fd, "too many connections from your user; close some");
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->peer.uid = cred.uid;
		c->peer.gid = cred.gid;
		c->peer.pid = cred.pid;
		peer_groups(fd, &c->peer);
		proto_reader_init(&c->pr, (size_t)rg->conf->max_frame);
		peer_roles(c);
		if (c->peer.roles == 0 && norole_full()) {
			audit_refused(&c->peer, "(connect)", "denied", "too many "
			    "connections from users with no role");
			refuse(fd, "too many connections from users with no role on "
			    "this gateway; an administrator gives roles in [roles] "
			    "of roigate.conf");
			free(c);
			continue;
		}
		buf_init(&c->out);
		c->lf = loop_fd_add(fd, EPOLLIN, client_io, c);
		c->idle = loop_timer_new(client_idle, c);
		loop_timer_set(c->idle, rg->conf->client_idle_ms);
		c->next = clients;
		clients = c;
		nclients++;
	}
	if (errno == EMFILE || errno == ENFILE) {
		if (!accept_paused++)
			log_warn("control: new connections wait: no file descriptor "
			    "is left to take them (LimitNOFILE in roigated.service)");
		loop_fd_mod(listen_lf, 0);
		loop_timer_set(accept_timer, 1000);
		return;
	}
	if (accept_paused) {
		log_info("control: connections are taken again (%d pauses for "
		    "want of file descriptors)", accept_paused);
		accept_paused = 0;
	}
	if (errno != EAGAIN && errno != EINTR)
		log_warn("control: accept");
}

int
control_init(void)
{
	struct sockaddr_un	 sun;
	const char		*path = rg->conf->socket_path;
	char			 dir[sizeof(sun.sun_path)], *slash;

	audit_timer = loop_timer_new(audit_flush_timer, NULL);
	accept_timer = loop_timer_new(control_accept_resume, NULL);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("socket path too long: %s", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	strlcpy_(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) == -1) {
			log_warn("cannot create %s", dir);
			return -1;
		}
	}
	if ((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	(void)unlink(path);	/* a stale socket from an earlier run */
	/* The file mode is a first fence; roles decide what a caller may do. */
	mode_t old = umask(0117);
	if (bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("bind %s", path);
		return -1;
	}
	umask(old);
	if (listen(listen_fd, 128) == -1) {
		log_warn("listen %s", path);
		return -1;
	}
	listen_lf = loop_fd_add(listen_fd, EPOLLIN, control_accept, NULL);
	return 0;
}

void
control_stop(void)
{
	if (listen_fd == -1)
		return;
	loop_fd_del(listen_lf);
	close(listen_fd);
	listen_fd = -1;
	(void)unlink(rg->conf->socket_path);
	while (clients)
		client_free(clients);
	while (refusals)
		refusal_flush(refusals);
	/* The last rows get one more chance; what cannot be written is said. */
	if (audit_flush() == -1)
		log_warnx("%zu audit rows could not be written: the database was "
		    "unavailable", naudit_pending + audit_lost);
}

void
control_reconfigure(void)
{
	/* Roles are looked up again for each connected client. */
	for (struct client *c = clients; c; c = c->next) {
		peer_roles(c);
		c->pr.max = (size_t)rg->conf->max_frame;
	}
}
