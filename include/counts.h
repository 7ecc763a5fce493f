/*
 * Jobs counted by state, and by transport outside the final states, kept
 * by the daemon as the store changes, for `roictl status`.
 */
#ifndef COUNTS_H
#define COUNTS_H

#include <stdint.h>

#include "store.h"

/* Count once, then follow the store's changes; 0 once following, -1 if
 * the counts cannot be kept (the caller counts in the database). */
int	counts_start(struct store *);
/* The committed counts, as store_status gives them (only transports with
 * jobs; free with store_status_free). */
void	counts_get(struct store_status *);

#endif
