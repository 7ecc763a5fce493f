/*
 * The tamper-evident disclosure log: every attempt and outcome of a
 * send, hash-chained.  hash = SHA-256(prev_hash, then every field as a
 * netstring in a fixed order).  Runs in the daemon.
 */
#ifndef DISCLOSURE_H
#define DISCLOSURE_H

#include "store.h"

/* Compute d->hash from its fields and d->prev_hash. */
void	disclosure_hash(const struct disclosure *d, char out[65]);
/* Assign seq, at (if 0), prev_hash and hash, and insert; inside the
 * caller's transaction.  0 / -1. */
int	disclosure_append(struct store *, struct disclosure *d);
/* Recompute the chain.  0 and *count if intact; -1 with the first bad
 * entry named in err. */
int	disclosure_verify(struct store *, int64_t *count, char *err, size_t errlen);
/* Is a disclosure on this legal basis accountable under 164.528? */
int	disclosure_accountable(const char *basis);

#endif
