/*
 * bench/smime_build: the smime transport's message building for one file
 * (MIME, detached signature, AES-256-CBC envelope, base64, CRLF) into
 * OUT, as a worker does it, without SMTP.  The transport's source is
 * included so that its static functions are the ones measured.  bench/smime
 * times this whole process (start-up, key loading, hashing included) beside
 * the `openssl cms -sign | openssl cms -encrypt` pipeline, and reads the
 * in-process time printed here beside bench/smime_peer's.
 *
 *	smime_build CERT KEY RECIPIENT_CERT TEMPLATE FILE SHA256 OUT
 * Prints the seconds from reading the recipient's certificate to the last
 * byte of the message written (the key already loaded).
 *
 * The keys are loaded as smime_init loads them, without its
 * curl_global_init: the sender forks with libcurl already loaded, and the
 * SMTP half is not measured here, so this program is linked without
 * libcurl (link-time optimisation drops the unused transport table and
 * what it reaches; --as-needed then leaves libcurl out).
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
	char				 err[512], hb[65], *hexes[1], fpr[80];
	int				 fd, pfd;
	X509				*rcert;

	if (argc != 8) {
		fprintf(stderr, "usage: smime_build CERT KEY RECIPIENT_CERT TEMPLATE "
		    "FILE SHA256 OUT\n");
		return 64;
	}
	st = smime_create();
	if (smime_config(st, "relay", "smtp://127.0.0.1:25", err, sizeof(err)) ||
	    smime_config(st, "ca_file", argv[1], err, sizeof(err)) ||
	    smime_config(st, "from", "roi@hospital.test", err, sizeof(err)) ||
	    smime_config(st, "cert", argv[1], err, sizeof(err)) ||
	    smime_config(st, "key", argv[2], err, sizeof(err)) ||
	    smime_config(st, "template", argv[4], err, sizeof(err)) ||
	    load_identity(st, err, sizeof(err))) {
		fprintf(stderr, "smime_build: %s\n", err);
		return 1;
	}
	buf_init(&pem);
	memset(&mm, 0, sizeof(mm));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((pfd = open(argv[3], O_RDONLY)) == -1 || read_file_fd(pfd, 65536, &pem) == -1 ||
	    (fd = open(argv[5], O_RDONLY)) == -1 || fstat(fd, &sb) == -1 ||
	    (mm.out = open(argv[7], O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1) {
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
	f.sha256 = argv[6];	/* as the daemon passes it */
	memset(&m, 0, sizeof(m));
	m.packet_id = "BENCH";
	m.request_ref = "REQ-BENCH";
	m.recipient = &rc;
	m.files = &f;
	m.nfiles = 1;
	hexes[0] = hb;
	if ((rcert = recipient_cert(st, &rc, fpr, err, sizeof(err))) == NULL ||
	    build_message(st, &m, rcert, &mm, hexes, err, sizeof(err)) == -1) {
		fprintf(stderr, "smime_build: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.4f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	X509_free(rcert);
	buf_free(&pem);
	close(mm.out);
	smime_shutdown(st);
	return 0;
}
