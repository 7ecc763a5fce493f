/*
 * Retry timing for the queue (daemon): exponential backoff with a cap,
 * and the rule that ends retrying.  Kept apart from src/queue.c so that
 * the arithmetic is unit-tested on its own.
 */
#include <stdint.h>

#include "backoff.h"

int64_t
backoff_delay(int64_t base_ms, int64_t max_ms, int attempts,
    int64_t retry_after_ms)
{
	int64_t	d = base_ms;

	if (retry_after_ms > 0) {
		/* The remote side said when: honour it within our bounds. */
		d = retry_after_ms;
		if (d < base_ms)
			d = base_ms;
		return d > max_ms ? max_ms : d;
	}
	for (int i = 1; i < attempts && d < max_ms; i++)
		d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
	return d > max_ms ? max_ms : d;
}

int
backoff_exhausted(int attempts, int max_attempts, int64_t age_ms,
    int64_t max_age_ms)
{
	return attempts >= max_attempts || age_ms >= max_age_ms;
}
