/*
 * bench/smime_build: time the smime transport's message building (MIME,
 * sign, encrypt, CRLF) for one file, without SMTP, for comparison with
 * `openssl cms -sign | openssl cms -encrypt` on the same input.  The
 * transport's source is included so that its static functions are the
 * ones measured.
 *
 *	smime_build CERT KEY RECIPIENT_CERT TEMPLATE FILE
 * Prints the seconds taken.
 */
#include "../transports/smime.c"

int
main(int argc, char *argv[])
{
	struct smime_state		*st;
	struct transport_recipient	 rc;
	struct transport_param		 prm;
	struct transport_message	 m;
	struct transport_file		 f;
	struct timespec			 t0, t1;
	struct stat			 sb;
	struct msg			 mm;
	struct buf			 pem;
	char				 err[512], hex[65], *hexes[1], fpr[80];
	int				 fd, pfd;
	X509				*rcert;

	if (argc != 6) {
		fprintf(stderr, "usage: smime_build CERT KEY RECIPIENT_CERT TEMPLATE FILE\n");
		return 64;
	}
	st = smime_create();
	if (smime_config(st, "relay", "smtp://127.0.0.1:25", err, sizeof(err)) ||
	    smime_config(st, "ca_file", argv[1], err, sizeof(err)) ||
	    smime_config(st, "from", "roi@hospital.test", err, sizeof(err)) ||
	    smime_config(st, "cert", argv[1], err, sizeof(err)) ||
	    smime_config(st, "key", argv[2], err, sizeof(err)) ||
	    smime_config(st, "template", argv[4], err, sizeof(err)) ||
	    smime_init(st, err, sizeof(err))) {
		fprintf(stderr, "smime_build: %s\n", err);
		return 1;
	}
	buf_init(&pem);
	if ((pfd = open(argv[3], O_RDONLY)) == -1 || read_file_fd(pfd, 65536, &pem) == -1 ||
	    (fd = open(argv[5], O_RDONLY)) == -1 || fstat(fd, &sb) == -1 ||
	    sha256_fd(fd, hex, NULL) == -1) {
		perror("smime_build");
		return 1;
	}
	prm.key = "cert";
	prm.value = buf_cstr(&pem);
	memset(&rc, 0, sizeof(rc));
	rc.id = "bench";
	rc.address = "dr.ada@clinic.test";
	rc.params = &prm;
	rc.nparams = 1;
	memset(&f, 0, sizeof(f));
	f.fd = fd;
	f.name = "document.pdf";
	f.content_type = "application/pdf";
	f.size = sb.st_size;
	f.sha256 = hex;
	memset(&m, 0, sizeof(m));
	m.packet_id = "BENCH";
	m.request_ref = "REQ-BENCH";
	m.recipient = &rc;
	m.files = &f;
	m.nfiles = 1;
	char hb[65];
	hexes[0] = hb;
	memset(&mm, 0, sizeof(mm));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rcert = recipient_cert(st, &rc, fpr, err, sizeof(err))) == NULL ||
	    (mm.inner = tmpfile_fd()) == -1 || (mm.sign = tmpfile_fd()) == -1 ||
	    (mm.env = tmpfile_fd()) == -1 || (mm.out = tmpfile_fd()) == -1 ||
	    build_message(st, &m, rcert, &mm, hexes, err, sizeof(err)) == -1) {
		fprintf(stderr, "smime_build: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
