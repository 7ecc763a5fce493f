/*
 * The daemon's event loop (one thread): epoll for file descriptors, a
 * single timerfd armed for the earliest of a list of timers, and signals
 * delivered through a signalfd so that handlers run as ordinary events.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct loop_fd {
	int		 fd;
	loop_fd_cb	 cb;
	void		*arg;
	int		 dead;
	struct loop_fd	*next_dead;
};

struct loop_timer {
	int64_t			 when;	/* monotonic ms; 0 = not armed */
	loop_timer_cb		 cb;
	void			*arg;
	struct loop_timer	*next;	/* all timers */
};

static int		 epfd = -1;
static int		 tfd = -1;
static int		 sfd = -1;
static int		 running;
static struct loop_timer *timers;
static struct loop_fd	*dead_fds;	/* freed after the current batch */
static struct loop_fd	 timer_lfd, signal_lfd;
static sigset_t		 sigmask;
static struct {
	loop_signal_cb	 cb;
	void		*arg;
} sighandlers[NSIG];

static void	loop_timers_rearm(void);

static void
loop_timers_fire(int fd, uint32_t events, void *arg)
{
	uint64_t		 n;
	int64_t			 now;
	struct loop_timer	*t;
	int			 fired;

	(void)!read(tfd, &n, sizeof(n));
	/* Callbacks may arm, cancel or free timers: restart the scan after each. */
	do {
		fired = 0;
		now = now_ms();
		for (t = timers; t; t = t->next) {
			if (t->when == 0 || t->when > now)
				continue;
			t->when = 0;
			t->cb(t->arg);
			fired = 1;
			break;
		}
	} while (fired);
	loop_timers_rearm();
}

static void
loop_signals_read(int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo	si;

	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int	signo = (int)si.ssi_signo;
		if (signo > 0 && signo < NSIG && sighandlers[signo].cb)
			sighandlers[signo].cb(signo, sighandlers[signo].arg);
	}
}

void
loop_init(void)
{
	struct epoll_event	ev;

	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) == -1)
		fatal("timerfd_create");
	sigemptyset(&sigmask);
	if ((sfd = signalfd(-1, &sigmask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	timer_lfd.fd = tfd;
	timer_lfd.cb = loop_timers_fire;
	signal_lfd.fd = sfd;
	signal_lfd.cb = loop_signals_read;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &timer_lfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) == -1)
		fatal("epoll_ctl timerfd");
	ev.data.ptr = &signal_lfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) == -1)
		fatal("epoll_ctl signalfd");
}

struct loop_fd *
loop_fd_add(int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct loop_fd		*lf = xcalloc(1, sizeof(*lf));
	struct epoll_event	 ev;

	lf->fd = fd;
	lf->cb = cb;
	lf->arg = arg;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = lf;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		fatal("epoll_ctl add");
	return lf;
}

void
loop_fd_mod(struct loop_fd *lf, uint32_t events)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = lf;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, lf->fd, &ev) == -1)
		fatal("epoll_ctl mod");
}

void
loop_fd_del(struct loop_fd *lf)
{
	if (lf == NULL)
		return;
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, lf->fd, NULL);
	/* Events for it may still be pending in this batch: free later. */
	lf->dead = 1;
	lf->next_dead = dead_fds;
	dead_fds = lf;
}

struct loop_timer *
loop_timer_new(loop_timer_cb cb, void *arg)
{
	struct loop_timer	*t = xcalloc(1, sizeof(*t));

	t->cb = cb;
	t->arg = arg;
	t->next = timers;
	timers = t;
	return t;
}

static void
loop_timers_rearm(void)
{
	struct itimerspec	 its;
	struct loop_timer	*t;
	int64_t			 first = 0, delta;

	for (t = timers; t; t = t->next)
		if (t->when && (first == 0 || t->when < first))
			first = t->when;
	memset(&its, 0, sizeof(its));
	if (first) {
		delta = first - now_ms();
		if (delta < 1)
			delta = 1;
		its.it_value.tv_sec = delta / 1000;
		its.it_value.tv_nsec = (delta % 1000) * 1000000;
	}
	if (timerfd_settime(tfd, 0, &its, NULL) == -1)
		fatal("timerfd_settime");
}

void
loop_timer_set(struct loop_timer *t, int64_t delay_ms)
{
	t->when = now_ms() + (delay_ms > 0 ? delay_ms : 0);
	if (t->when == 0)
		t->when = 1;
	loop_timers_rearm();
}

void
loop_timer_cancel(struct loop_timer *t)
{
	if (t == NULL)
		return;
	t->when = 0;
	loop_timers_rearm();
}

int
loop_timer_pending(const struct loop_timer *t)
{
	return t->when != 0;
}

void
loop_timer_free(struct loop_timer *t)
{
	struct loop_timer	**pp;

	if (t == NULL)
		return;
	for (pp = &timers; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	free(t);
	loop_timers_rearm();
}

void
loop_signal(int signo, loop_signal_cb cb, void *arg)
{
	sighandlers[signo].cb = cb;
	sighandlers[signo].arg = arg;
	sigaddset(&sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &sigmask, NULL) == -1)
		fatal("sigprocmask");
	if (signalfd(sfd, &sigmask, SFD_NONBLOCK | SFD_CLOEXEC) == -1)
		fatal("signalfd");
}

static void
loop_reap_dead(void)
{
	struct loop_fd	*lf;

	while ((lf = dead_fds) != NULL) {
		dead_fds = lf->next_dead;
		free(lf);
	}
}

void
loop_run(void)
{
	struct epoll_event	evs[64];
	int			n;

	running = 1;
	while (running) {
		n = epoll_wait(epfd, evs, 64, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		for (int i = 0; i < n && running; i++) {
			struct loop_fd	*lf = evs[i].data.ptr;
			if (!lf->dead)
				lf->cb(lf->fd, evs[i].events, lf->arg);
		}
		loop_reap_dead();
	}
}

void
loop_exit(void)
{
	running = 0;
}
