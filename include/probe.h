/*
 * Probes of recipients' destinations, run in worker processes so that the
 * daemon never waits on the network: `roictl recipient verify` starts one,
 * then asks for its result, shows it to the administrator, and pins what
 * they confirm.  Results live in memory until the daemon restarts.
 */
#ifndef PROBE_H
#define PROBE_H

#include <roigate/transport.h>

struct recipient;

enum probe_state {
	PROBE_NONE,		/* never probed (since the daemon started) */
	PROBE_RUNNING,
	PROBE_DONE,		/* result filled */
	PROBE_FAILED,		/* result.detail says why */
	PROBE_UNSUPPORTED,	/* the transport has nothing to probe */
};

/* Start a probe of r (unless one is running); the state afterwards. */
enum probe_state probe_start(const struct recipient *r, char *err, size_t errlen);
/* The last probe of recipient id; result filled for DONE and FAILED. */
enum probe_state probe_get(const char *id, struct transport_probe *result);
const char	*probe_state_name(enum probe_state);
void		 probe_stop_all(void);

#endif
