/*
 * Request deadlines (daemon): the records requests the jobs answer, open
 * until a job for the request is delivered, with their age and deadline
 * (30 days for a patient's own access request, 164.524(b)(2), plus one
 * 30-day extension; other bases by [requests] deadline_other).  See
 * docs/requests.md.
 */
#ifndef REQUESTS_H
#define REQUESTS_H

#include <stdint.h>

#include <jansson.h>

#define REQUESTS_ACCESS_DAYS	30

/* The open requests, oldest first; NULL and err on failure. */
json_t	*requests_open(int64_t now, char *err, size_t errlen);
/* The oldest open request's age in local calendar days (what status
 * shows): 1, 0 if none is open, -1 on error. */
int	 requests_oldest_age(int64_t now, int64_t *days);
/* Record the one extension of an open patient-access request. */
int	 requests_extend(const char *id, const char *reason, const char *actor,
	    int *notfound, char *err, size_t errlen);

#endif
