/*
 * bench/sftp_put: time one delivery of one file through the sftp
 * transport plugin, exactly as a worker calls it (init, deliver), for
 * comparison with OpenSSH's `sftp -b` putting the same file.
 *
 *	sftp_put PLUGIN.so IDENTITY ADDRESS HOST_KEY VERIFY FILE SHA256
 * Prints the seconds taken, or the receipt's detail on failure.  The
 * file's SHA-256 is given as the daemon gives it (computed at intake, not
 * at sending): the transport hashes what it sends or reads back, and
 * compares.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <roigate/transport.h>

int
main(int argc, char *argv[])
{
	const struct transport_backend	*be;
	struct transport_receipt	 r;
	struct transport_message	 m;
	struct transport_recipient	 rc;
	struct transport_param		 params[2];
	struct transport_file		 f;
	struct timespec			 t0, t1;
	struct stat			 sb;
	char				 err[512], packet[64], *base;
	void				*dl, *st;
	int				 fd;

	if (argc != 8 || strlen(argv[7]) != 64) {
		fprintf(stderr, "usage: sftp_put PLUGIN.so IDENTITY ADDRESS HOST_KEY "
		    "size|readback FILE SHA256\n");
		return 64;
	}
	if ((dl = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (be = dlsym(dl, TRANSPORT_SYMBOL)) == NULL) {
		fprintf(stderr, "sftp_put: %s\n", dlerror());
		return 1;
	}
	st = be->create();
	if (be->config(st, "identity", argv[2], err, sizeof(err)) == -1 ||
	    be->config(st, "verify", argv[5], err, sizeof(err)) == -1 ||
	    be->check(st, err, sizeof(err)) == -1 ||
	    be->init(st, err, sizeof(err)) == -1) {
		fprintf(stderr, "sftp_put: %s\n", err);
		return 1;
	}
	if ((fd = open(argv[6], O_RDONLY)) == -1 || fstat(fd, &sb) == -1) {
		perror(argv[6]);
		return 1;
	}
	base = strrchr(argv[6], '/') ? strrchr(argv[6], '/') + 1 : argv[6];
	snprintf(packet, sizeof(packet), "BENCH-%ld", (long)getpid());
	params[0].key = "host_key";
	params[0].value = argv[4];
	params[1].key = "pattern";
	params[1].value = "{packet_id}_{file}";
	memset(&rc, 0, sizeof(rc));
	rc.id = "bench";
	rc.address = argv[3];
	rc.params = params;
	rc.nparams = 2;
	memset(&f, 0, sizeof(f));
	f.fd = fd;
	f.name = base;
	f.content_type = "application/pdf";
	f.size = sb.st_size;
	f.sha256 = argv[7];	/* as the daemon passes it */
	memset(&m, 0, sizeof(m));
	m.job_id = 1;
	m.packet_id = packet;
	m.recipient = &rc;
	m.files = &f;
	m.nfiles = 1;
	m.attempt = 1;
	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (be->deliver(st, &m, &r) != TRANSPORT_OK) {
		fprintf(stderr, "sftp_put: %s\n", r.detail);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	be->shutdown(st);
	return 0;
}
