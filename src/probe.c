/*
 * Recipient probes (daemon side): one worker process per probe, its
 * answer read from the event loop, bounded by [queue] job_timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "probe.h"
#include "config.h"
#include "roigated.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

struct probe {
	char			 id[128];	/* recipient id */
	enum probe_state	 state;
	struct transport_probe	 result;
	pid_t			 pid;
	int			 chan;
	struct loop_fd		*lf;
	struct loop_timer	*timeout;
	struct probe		*next;
};

static struct probe	*probes;

const char *
probe_state_name(enum probe_state s)
{
	static const char *const names[] = { "none", "probing", "done", "failed",
	    "nothing to probe" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static struct probe *
probe_find(const char *id)
{
	for (struct probe *p = probes; p; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

static void
probe_end(struct probe *p, enum probe_state st)
{
	if (p->lf) {
		loop_fd_del(p->lf);
		p->lf = NULL;
	}
	if (p->chan != -1) {
		close(p->chan);
		p->chan = -1;
	}
	loop_timer_cancel(p->timeout);
	if (p->pid > 0)
		kill(p->pid, SIGKILL);	/* reaped by the daemon's SIGCHLD handler */
	p->pid = 0;
	p->state = st;
}

static void
probe_read(int fd, uint32_t events, void *arg)
{
	struct probe		*p = arg;
	struct worker_probe_msg	 m;
	ssize_t			 n;

	n = recv(fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(m)) {
		p->pid = 0;	/* it has ended; the SIGCHLD handler reaps it */
		snprintf(p->result.detail, sizeof(p->result.detail), "the probe "
		    "worker ended without an answer");
		probe_end(p, PROBE_FAILED);
		return;
	}
	m.probe.param[sizeof(m.probe.param) - 1] = '\0';
	m.probe.value[sizeof(m.probe.value) - 1] = '\0';
	m.probe.detail[sizeof(m.probe.detail) - 1] = '\0';
	p->result = m.probe;
	p->pid = 0;		/* it exits by itself */
	probe_end(p, m.ok ? PROBE_DONE : PROBE_FAILED);
	log_info("recipient probe: %s", m.ok ? "done" : "failed");
}

static void
probe_timeout(void *arg)
{
	struct probe	*p = arg;

	snprintf(p->result.detail, sizeof(p->result.detail), "no answer within "
	    "the job timeout (%lld s)", (long long)rg->conf->job_timeout_ms / 1000);
	probe_end(p, PROBE_FAILED);
}

enum probe_state
probe_start(const struct recipient *r, char *err, size_t errlen)
{
	struct transport_instance	*ti = transport_find(r->transport);
	struct probe			*p;

	if (ti == NULL) {
		bsnprintf(err, errlen, "transport \"%.64s\" is not configured",
		    r->transport);
		return PROBE_FAILED;
	}
	if (ti->backend->probe == NULL)
		return PROBE_UNSUPPORTED;
	if ((p = probe_find(r->id)) == NULL) {
		p = xcalloc(1, sizeof(*p));
		strlcpy_(p->id, r->id, sizeof(p->id));
		p->chan = -1;
		p->timeout = loop_timer_new(probe_timeout, p);
		p->next = probes;
		probes = p;
	}
	if (p->state == PROBE_RUNNING)
		return PROBE_RUNNING;
	memset(&p->result, 0, sizeof(p->result));
	if ((p->pid = worker_probe(ti, r, &p->chan)) == -1) {
		bsnprintf(err, errlen, "cannot start a probe worker: %s",
		    strerror(errno));
		p->pid = 0;
		p->state = PROBE_FAILED;
		return PROBE_FAILED;
	}
	p->lf = loop_fd_add(p->chan, EPOLLIN, probe_read, p);
	loop_timer_set(p->timeout, rg->conf->job_timeout_ms);
	p->state = PROBE_RUNNING;
	return PROBE_RUNNING;
}

enum probe_state
probe_get(const char *id, struct transport_probe *result)
{
	struct probe	*p = probe_find(id);

	if (p == NULL)
		return PROBE_NONE;
	if (result)
		*result = p->result;
	return p->state;
}

void
probe_stop_all(void)
{
	while (probes) {
		struct probe *p = probes;
		probes = p->next;
		probe_end(p, PROBE_FAILED);
		loop_timer_free(p->timeout);
		free(p);
	}
}
