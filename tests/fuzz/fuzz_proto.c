/*
 * libFuzzer target for the control socket's decoder: arbitrary bytes are
 * fed through a socketpair into proto_read() (framing, size limit) and
 * every complete frame into proto_decode() (JSON, version).  Run by
 * `make fuzz` and, for a bounded time, by `make check`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_reader	 pr;
	char			 err[256];
	int			 sv[2], rv;
	json_t			*j;

	if (size > 60000)	/* stays within one socket buffer */
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		abort();
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	proto_reader_init(&pr, 4096);
	for (;;) {
		rv = proto_read(&pr, sv[0], err, sizeof(err));
		if (rv != 1)
			break;
		j = proto_decode(pr.body, pr.want, err, sizeof(err));
		json_decref(j);
		proto_reader_reset(&pr);
	}
	proto_reader_reset(&pr);
	close(sv[0]);
	return 0;
}
