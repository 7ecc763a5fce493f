/*
 * Prune benchmark (make bench, bench/prune): how long the daemon's loop is
 * held by one removal transaction of roictl prune (src/retention.c,
 * store_sealed_remove of PRUNE_BATCH entries, durable as in the daemon),
 * and how long the dry run's count of a range takes.  Prints figures,
 * asserts nothing.
 *
 * usage: prune_bench DIR [ENTRIES] [BATCH]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disclosure.h"
#include "store.h"
#include "util.h"

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
fill(struct store *s, int64_t n)
{
	struct disclosure	d;

	memset(&d, 0, sizeof(d));
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
	for (int64_t i = 1; i <= n; i++) {
		if (i % 10000 == 1 && store_begin(s) == -1)
			goto fail;
		d.job_id = i;
		d.at = 1600000000 + i;
		if (disclosure_append(s, &d) == -1)
			goto fail;
		if ((i % 10000 == 0 || i == n) && store_commit(s) == -1)
			goto fail;
	}
	return;
fail:
	fprintf(stderr, "fill: %s\n", store_errmsg(s));
	exit(1);
}

int
main(int argc, char *argv[])
{
	const char	*dir = argc > 1 ? argv[1] : "/tmp";
	int64_t		 n = argc > 2 ? atoll(argv[2]) : 200000, got, c, a, b;
	int		 batch = argc > 3 ? atoi(argv[3]) : 500;
	char		 path[4096], err[512];
	struct store	*s;
	double		*t, t0, total = 0;
	size_t		 nt = 0;

	snprintf(path, sizeof(path), "%s/prune.db", dir);
	if ((s = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	fill(s, n);
	t0 = now_s();
	store_sealed_span(s, STORE_SEALED_DISCLOSURES, 0, n / 2, &c, &a, &b);
	printf("dry run: counting %lld entries of %lld: %.1f ms\n", (long long)c,
	    (long long)n, (now_s() - t0) * 1000);
	t = xreallocarray(NULL, (size_t)(n / batch + 2), sizeof(*t));
	do {
		t0 = now_s();
		if ((got = store_sealed_remove(s, STORE_SEALED_DISCLOSURES, n / 2,
		    batch)) == -1) {
			fprintf(stderr, "remove: %s\n", store_errmsg(s));
			return 1;
		}
		t[nt] = now_s() - t0;
		total += t[nt++];
	} while (got == batch);
	qsort(t, nt, sizeof(*t), cmp);
	printf("removal of %lld entries in transactions of %d: %zu transactions, "
	    "median %.1f ms, 99th percentile %.1f ms, longest %.1f ms, %.2f s in "
	    "all\n", (long long)(n / 2), batch, nt, t[nt / 2] * 1000,
	    t[nt * 99 / 100] * 1000, t[nt - 1] * 1000, total);
	free(t);
	store_close(s);
	return 0;
}
