/*
 * The "flaky" transport, for tests only: how it behaves is chosen by the
 * recipient's address, so one daemon can serve every test case.
 *
 *   ok                 deliver
 *   slow:MS            wait MS milliseconds, then deliver
 *   tempfail:N[:S]     TEMPFAIL on attempts 1..N (retry_after S seconds), then deliver
 *   permfail           PERMFAIL, always
 *   crash:N            the worker dies (abort) on attempts 1..N, then deliver
 *   hang:N             the worker hangs on attempts 1..N, then deliver
 *
 * Every delivery appends "JOB PACKET_ID ATTEMPT NFILES" to DIR/deliveries
 * (fsynced before OK is returned), so a test counts deliveries exactly.
 * Every call, whatever its outcome, first appends "JOB PACKET_ID ATTEMPT
 * MONOTONIC_MS" to DIR/calls, so a test sees when each attempt happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <roigate/transport.h>

struct flaky {
	char	*dir;
};

static void *
flaky_create(void)
{
	return calloc(1, sizeof(struct flaky));
}

static int
flaky_config(void *st, const char *key, const char *value, char *err, size_t errlen)
{
	struct flaky	*f = st;

	if (strcmp(key, "dir") != 0) {
		snprintf(err, errlen, "unknown key \"%s\" (flaky knows dir)", key);
		return -1;
	}
	free(f->dir);
	return (f->dir = strdup(value)) ? 0 : -1;
}

static int
flaky_check(void *st, char *err, size_t errlen)
{
	struct flaky	*f = st;

	if (f->dir == NULL) {
		snprintf(err, errlen, "dir is required");
		return -1;
	}
	return 0;
}

static int
flaky_init(void *st, char *err, size_t errlen)
{
	return 0;
}

static enum transport_status
record(struct flaky *f, const struct transport_message *m,
    struct transport_receipt *r)
{
	char	path[4096], line[512];
	int	fd, n;

	snprintf(path, sizeof(path), "%s/deliveries", f->dir);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(r->detail, sizeof(r->detail), "deliveries file: %s", strerror(errno));
		return TRANSPORT_TEMPFAIL;
	}
	n = snprintf(line, sizeof(line), "%llu %s %d %zu\n",
	    (unsigned long long)m->job_id, m->packet_id, m->attempt, m->nfiles);
	if (write(fd, line, n) != n || fsync(fd) == -1) {
		snprintf(r->detail, sizeof(r->detail), "deliveries file: %s", strerror(errno));
		close(fd);
		return TRANSPORT_TEMPFAIL;
	}
	close(fd);
	snprintf(r->remote_id, sizeof(r->remote_id), "flaky-%llu-%d",
	    (unsigned long long)m->job_id, m->attempt);
	snprintf(r->status, sizeof(r->status), "delivered");
	snprintf(r->detail, sizeof(r->detail), "flaky: delivered on attempt %d",
	    m->attempt);
	r->completed_at = time(NULL);
	return TRANSPORT_OK;
}

/* When this attempt reached the transport (best effort: a test's witness). */
static void
record_call(struct flaky *f, const struct transport_message *m)
{
	struct timespec	now;
	char		path[4096], line[512];
	int		fd, n;

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(path, sizeof(path), "%s/calls", f->dir);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return;
	n = snprintf(line, sizeof(line), "%llu %s %d %lld\n",
	    (unsigned long long)m->job_id, m->packet_id, m->attempt,
	    (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	if (write(fd, line, n) != n) {
		/* nothing to do: the test that reads the file will say */
	}
	close(fd);
}

static enum transport_status
flaky_deliver(void *st, const struct transport_message *m,
    struct transport_receipt *r)
{
	struct flaky	*f = st;
	const char	*a = m->recipient->address;
	long		 n = 0, s = 0;

	record_call(f, m);

	if (strncmp(a, "slow:", 5) == 0) {
		struct timespec ts;
		n = atol(a + 5);
		ts.tv_sec = n / 1000;
		ts.tv_nsec = (n % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		return record(f, m, r);
	}
	if (strncmp(a, "tempfail:", 9) == 0) {
		sscanf(a + 9, "%ld:%ld", &n, &s);
		if (m->attempt <= n) {
			snprintf(r->status, sizeof(r->status), "busy");
			snprintf(r->detail, sizeof(r->detail),
			    "flaky: temporary failure on attempt %d of %ld", m->attempt, n);
			r->retry_after = (int32_t)s;
			return TRANSPORT_TEMPFAIL;
		}
		return record(f, m, r);
	}
	if (strcmp(a, "permfail") == 0) {
		snprintf(r->status, sizeof(r->status), "rejected");
		snprintf(r->detail, sizeof(r->detail),
		    "flaky: the recipient refuses this packet for good");
		return TRANSPORT_PERMFAIL;
	}
	if (strncmp(a, "crash:", 6) == 0) {
		if (m->attempt <= atol(a + 6))
			abort();
		return record(f, m, r);
	}
	if (strncmp(a, "hang:", 5) == 0) {
		if (m->attempt <= atol(a + 5))
			for (;;)
				pause();
		return record(f, m, r);
	}
	return record(f, m, r);
}

static void
flaky_shutdown(void *st)
{
	struct flaky	*f = st;

	if (f) {
		free(f->dir);
		free(f);
	}
}

const struct transport_backend roigate_transport = {
	.name = "flaky",
	.abi = TRANSPORT_ABI_VERSION,
	.caps = 0,
	.create = flaky_create,
	.config = flaky_config,
	.check = flaky_check,
	.init = flaky_init,
	.deliver = flaky_deliver,
	.poll = NULL,
	.shutdown = flaky_shutdown,
};
