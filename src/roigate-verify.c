/*
 * roigate-verify: the offline verifier, for an auditor with a copy of
 * roigate.db and the verification key, and no daemon.  Opens the database
 * read-only and checks the seals (src/seal.c), the hash chains and, with
 * --checkpoint, that the log still holds a checkpoint's head.  Exit 0 only
 * for an intact sealed log; 65 if anything was changed, inserted or
 * removed; 77 for a verification key that is not this log's; 66 no seal.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/crypto.h>

#include "disclosure.h"
#include "log.h"
#include "seal.h"
#include "store.h"
#include "util.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: roigate-verify --db roigate.db --key-file FILE [--checkpoint LINE]\n"
	    "  --db FILE          a copy of the gateway's database (opened read-only)\n"
	    "  --key-file FILE    the verification key printed by roigated --setup-seal\n"
	    "  --checkpoint LINE  a checkpoint from the system journal: prove the log\n"
	    "                     still holds it (nothing cut from the end)\n"
	    "Exit status: 0 intact and sealed, 65 altered, 66 no seal yet,\n"
	    "77 the key is not this log's, 64 usage, 74 cannot read.\n");
	exit(EX_USAGE);
}

static int
read_key(const char *path, uint8_t vkey[SEAL_KEY_LEN])
{
	char	buf[512], err[300];
	FILE	*f = fopen(path, "re");
	size_t	n;
	int	rv;

	if (f == NULL) {
		fprintf(stderr, "roigate-verify: %s: cannot open it\n", path);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((rv = seal_vkey_parse(buf, vkey, err, sizeof(err))) == -1)
		fprintf(stderr, "roigate-verify: %s: %s\n", path, err);
	explicit_bzero(buf, sizeof(buf));
	return rv;
}

static int
report(const struct seal_verdict *v)
{
	char	tail[400], when[32];

	switch (v->code) {
	case SEAL_INTACT:
		seal_verdict_tail(v, tail, sizeof(tail));
		/* The last seal's date: a tail cut off with its seals leaves
		 * an intact log that ends early. */
		time_iso(v->last_seal_at, when, sizeof(when));
		printf("log intact and sealed: %lld disclosure entries, %lld audit "
		    "entries, %lld epochs, the last ending %s\n",
		    (long long)v->entries[STORE_SEALED_DISCLOSURES],
		    (long long)v->entries[STORE_SEALED_AUDIT], (long long)v->epochs,
		    when);
		if (tail[0])
			printf("%s\n", tail);
		seal_verdict_pruned(v, tail, sizeof(tail));
		if (tail[0])
			printf("%s\n", tail);
		return 0;
	case SEAL_WRONG_KEY:
		fprintf(stderr, "roigate-verify: %s\n", v->msg);
		return EX_NOPERM;
	case SEAL_UNSEALED:
		fprintf(stderr, "roigate-verify: %s\n", v->msg);
		return EX_NOINPUT;
	case SEAL_ERROR:
		fprintf(stderr, "roigate-verify: %s\n", v->msg);
		return EX_IOERR;
	default:
		fprintf(stderr, "roigate-verify: TAMPERED: %s\n", v->msg);
		return EX_DATAERR;
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char		*db = NULL, *keyfile = NULL, *cp = NULL;
	struct seal_verdict	 v;
	struct store		*s;
	uint8_t			 vkey[SEAL_KEY_LEN];
	char			 err[512];
	int			 ch, rv;

	log_init("roigate-verify", LOG_WARNING);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'c':
			cp = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || db == NULL || (keyfile == NULL && cp == NULL))
		usage();
	if ((s = store_open_readonly(db, err, sizeof(err))) == NULL) {
		fprintf(stderr, "roigate-verify: %s\n", err);
		return EX_IOERR;
	}
	rv = 0;
	if (cp && seal_checkpoint_verify(s, cp, err, sizeof(err)) == -1) {
		fprintf(stderr, "roigate-verify: TAMPERED: checkpoint: %s\n", err);
		rv = EX_DATAERR;
	} else if (cp)
		printf("checkpoint held: the log still holds the entries it names\n");
	if (rv == 0 && keyfile) {
		if (read_key(keyfile, vkey) == -1) {
			store_close(s);
			return EX_USAGE;
		}
		seal_verify(s, vkey, &v);
		OPENSSL_cleanse(vkey, sizeof(vkey));
		rv = report(&v);
	}
	store_close(s);
	return rv;
}
