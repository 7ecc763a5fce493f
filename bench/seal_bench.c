/*
 * Sealing benchmark (make bench, bench/seal): disclosure-log appends per
 * second, each its own durable transaction as in the daemon, with sealing
 * off and on (a mac per entry, a seal per epoch); then the time to verify
 * a log of 1,000,000 entries with the verification key.  Prints figures,
 * asserts nothing.
 *
 * usage: seal_bench DIR [APPENDS] [VERIFY_ENTRIES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disclosure.h"
#include "seal.h"
#include "store.h"
#include "util.h"

static uint8_t	key[SEAL_KEY_LEN];

static void
sealer(const char hash[65], char mac[65], void *arg)
{
	seal_entry_mac(key, hash, mac);
}

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
entry(struct store *s, int64_t i)
{
	struct disclosure	d;

	memset(&d, 0, sizeof(d));
	d.job_id = i;
	d.at = 1700000000 + i;
	d.packet_id = "ROI-BENCH";
	d.mrn = "MRN0001234";
	d.patient_name = "Test Patient";
	d.recipient_id = "records-desk";
	d.recipient_name = "Records Desk";
	d.recipient_address = "fax:+15550100";
	d.description = "lab results 2026-01 to 2026-03, 3 pages";
	d.purpose = "continuity of care";
	d.basis = "treatment";
	d.transport = "faxapi";
	d.outcome = "delivered";
	d.pages = 3;
	d.output_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	if (disclosure_append(s, &d) == -1) {
		fprintf(stderr, "append: %s\n", store_errmsg(s));
		exit(1);
	}
}

/* Seal the epoch holding entries after *first, evolve the key. */
static void
seal_now(struct store *s, const char *inst, int64_t epoch, int64_t first[],
    char prev[65])
{
	struct store_seal	z;

	memset(&z, 0, sizeof(z));
	z.epoch = epoch;
	z.start_at = 1700000000 + epoch;
	z.end_at = z.start_at + 1;
	strlcpy_(z.prev_seal, prev, sizeof(z.prev_seal));
	for (int t = 0; t < STORE_SEALED_N; t++) {
		z.range[t].present = 1;
		z.range[t].first = first[t];
		store_sealed_last(s, t, &z.range[t].last, z.range[t].head);
		first[t] = z.range[t].last + 1;
	}
	seal_compute(key, inst, &z, z.seal);
	if (store_seal_insert(s, &z) == -1) {
		fprintf(stderr, "seal: %s\n", store_errmsg(s));
		exit(1);
	}
	strlcpy_(prev, z.seal, 65);
	seal_key_evolve(key, epoch + 1);
}

static double
appends(const char *dir, const char *name, int n, int sealed)
{
	char		 path[4096], err[512], inst[STORE_INSTANCE_LEN + 1];
	char		 prev[65];
	int64_t		 first[STORE_SEALED_N] = { 1, 1, 1, 1, 1 };
	struct store	*s;
	double		 t0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((s = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	store_instance_id(s, inst);
	memset(prev, '0', 64);
	prev[64] = '\0';
	if (sealed)
		store_set_sealer(s, sealer, NULL);
	t0 = now_s();
	for (int i = 1; i <= n; i++) {
		store_begin(s);
		entry(s, i);
		store_commit(s);
		if (sealed && i % 1000 == 0) {	/* an epoch every 1000 entries */
			store_begin(s);
			seal_now(s, inst, i / 1000 - 1, first, prev);
			store_commit(s);
		}
	}
	t0 = now_s() - t0;
	store_close(s);
	return n / t0;
}

int
main(int argc, char *argv[])
{
	const char		*dir = argc > 1 ? argv[1] : "/tmp";
	int			 n = argc > 2 ? atoi(argv[2]) : 5000;
	int64_t			 big = argc > 3 ? atoll(argv[3]) : 1000000;
	int64_t			 first[STORE_SEALED_N] = { 1, 1, 1, 1, 1 }, epoch = 0;
	uint8_t			 k0[SEAL_KEY_LEN];
	char			 path[4096], err[512], inst[STORE_INSTANCE_LEN + 1];
	char			 prev[65];
	struct store		*s;
	struct seal_verdict	 v;
	double			 off, on, t0;

	memset(k0, 7, sizeof(k0));
	seal_key_first(k0, key);
	off = appends(dir, "off.db", n, 0);
	seal_key_first(k0, key);
	on = appends(dir, "on.db", n, 1);
	printf("seal: %d appends, one durable transaction each: %.0f/s sealing "
	    "off, %.0f/s sealing on (%+.1f%%)\n", n, off, on, (on - off) / off * 100);

	snprintf(path, sizeof(path), "%s/big.db", dir);
	if ((s = store_open(path, err, sizeof(err))) == NULL)
		return 1;
	store_instance_id(s, inst);
	memset(prev, '0', 64);
	prev[64] = '\0';
	seal_key_first(k0, key);
	store_set_sealer(s, sealer, NULL);
	store_begin(s);
	for (int64_t i = 1; i <= big; i++) {
		entry(s, i);
		if (i % 10000 == 0) {	/* 100 epochs */
			seal_now(s, inst, epoch++, first, prev);
			store_commit(s);
			store_begin(s);
		}
	}
	store_commit(s);
	t0 = now_s();
	seal_verify(s, k0, &v);
	t0 = now_s() - t0;
	printf("seal: verify-log with the key, %lld entries in %lld epochs: %.2f s "
	    "(%s)\n", (long long)v.entries[STORE_SEALED_DISCLOSURES],
	    (long long)v.epochs, t0, v.code == SEAL_INTACT ? "intact" : v.msg);
	store_close(s);
	return 0;
}
