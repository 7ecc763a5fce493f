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
/*
 * manifest: the manifest object; names[i] is the file name of fds[i].
 * Copies each fd (a regular file; read from offset 0) into the staging
 * folder while hashing, then validates and accepts.  0 and *id when
 * accepted (durable); -1 with the reasons in errs when the packet is
 * refused; -2 when the daemon cannot take it now (database busy, disk
 * full: the client sends it again later).  The caller keeps and closes
 * the fds.
 */
int	submit_packet(json_t *manifest, const char *const *names, const int *fds,
	    size_t nfds, const char *actor, int64_t submit_uid, int64_t *id,
	    struct errlist *errs);

#endif
