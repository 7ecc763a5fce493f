/*
 * Retry timing: exponential backoff with a cap, and the give-up rule
 * (max_attempts, max_age).  Pure functions, used by src/queue.c.
 */
#ifndef BACKOFF_H
#define BACKOFF_H

#include <stdint.h>

/* Wait before the next attempt after `attempts` failed ones (>= 1), in ms:
 * base * 2^(attempts-1), capped at max.  A transport's retry_after (ms,
 * 0 = none) overrides, but never below base nor above max. */
int64_t	backoff_delay(int64_t base_ms, int64_t max_ms, int attempts,
	    int64_t retry_after_ms);
/* 1 if a job that has failed `attempts` times and is `age_ms` old must
 * now fail for good. */
int	backoff_exhausted(int attempts, int max_attempts, int64_t age_ms,
	    int64_t max_age_ms);

#endif
