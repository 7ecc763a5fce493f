/*
 * The daemon's event loop: epoll over file descriptors, one timerfd for
 * all timers, signals through signalfd.  Single-threaded.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdint.h>

struct loop_fd;
struct loop_timer;

typedef void (*loop_fd_cb)(int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(void *arg);
typedef void (*loop_signal_cb)(int signo, void *arg);

void	 loop_init(void);
/* events are EPOLLIN / EPOLLOUT bits. */
struct loop_fd *loop_fd_add(int fd, uint32_t events, loop_fd_cb, void *arg);
void	 loop_fd_mod(struct loop_fd *, uint32_t events);
void	 loop_fd_del(struct loop_fd *);	/* does not close fd */

struct loop_timer *loop_timer_new(loop_timer_cb, void *arg);
void	 loop_timer_set(struct loop_timer *, int64_t delay_ms);	/* re-arms */
void	 loop_timer_cancel(struct loop_timer *);
int	 loop_timer_pending(const struct loop_timer *);
void	 loop_timer_free(struct loop_timer *);

/* Block these signals and deliver them through the loop. */
void	 loop_signal(int signo, loop_signal_cb, void *arg);

/* Run until loop_exit(). */
void	 loop_run(void);
void	 loop_exit(void);

#endif
