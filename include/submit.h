/*
 * Socket submission (daemon): a manifest and the documents as file
 * descriptors become a staging folder of jobs/, which then goes through
 * the same intake as a spool packet (src/intake.c).
 */
#ifndef SUBMIT_H
#define SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct errlist;

int	submit_init(void);	/* create STATE/submit; clean leftovers */
/* How long the documents of one submission may take to copy. */
#define SUBMIT_COPY_SECONDS	30

struct submit;
/* rv: 0 accepted as job id (durable); -1 refused (reasons in errs); -2 the
 * daemon cannot take it now (database busy, disk full: send it again). */
typedef void (*submit_done_cb)(void *arg, int rv, int64_t id,
    struct errlist *errs);

/*
 * Start a submission: manifest is the manifest object; names[i] the file
 * name of fds[i].  The descriptors are copied into a staging folder of
 * jobs/ by a child process (with a time limit), so that a slow file
 * delays no one; the copy is then checked and accepted as a spool packet
 * is, and done() told.  The caller keeps and closes the fds (the child has
 * its own).  NULL: refused or failed at once (errs; *temporary for our own
 * trouble), done() is not called.
 */
struct submit	*submit_start(json_t *manifest, const char *const *names,
		    const int *fds, size_t nfds, const char *actor,
		    int64_t submit_uid, submit_done_cb done, void *arg,
		    struct errlist *errs, int *temporary);
/* The client is gone: stop, and take nothing. */
void		 submit_cancel(struct submit *);
/* A document reader finished: check again the submissions waiting for
 * one (src/intake.c). */
void		 submit_probed(void);

#endif
