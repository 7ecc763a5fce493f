/*
 * Example: how a records system submits a release packet to roigated with
 * libroigate and asks for its state.
 *
 *	cc -o submit submit.c $(pkg-config --cflags --libs roigate)
 *	./submit /path/to/packet-folder [socket]
 */
#include <stdint.h>
#include <stdio.h>

#include <roigate/client.h>

int
main(int argc, char *argv[])
{
	struct roigate	*rg;
	char		 err[4096], state[64];
	int64_t		 job;
	int		 rv;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: submit PACKET_DIR [SOCKET]\n");
		return 64;
	}
	if ((rg = roigate_connect(argc == 3 ? argv[2] : NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "submit: %s\n", err);
		return 69;
	}
	if ((rv = roigate_submit_dir(rg, argv[1], &job, err, sizeof(err))) != ROIGATE_OK) {
		fprintf(stderr, "submit: packet refused:\n%s\n", err);
		roigate_close(rg);
		return rv == ROIGATE_E_DENIED ? 77 : 65;
	}
	if (roigate_job_state(rg, job, state, sizeof(state), err, sizeof(err)) != ROIGATE_OK)
		snprintf(state, sizeof(state), "unknown (%.40s)", err);
	printf("accepted as job %lld, now %s\n", (long long)job, state);
	roigate_close(rg);
	return 0;
}
