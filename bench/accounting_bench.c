/*
 * Accounting benchmark (make bench, bench/accounting): the accounting of
 * one patient with 10,000 accountable entries in a disclosure log of
 * 1,000,000 (built once, in batches), as JSON, text and PDF.  The target
 * is under a second for the report; prints figures, asserts nothing.
 *
 * usage: accounting_bench DIR [ENTRIES] [PATIENT_ENTRIES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounting.h"
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

static void
entry(struct store *s, int64_t i, int ours)
{
	struct disclosure	d;
	char			mrn[32], rcpt[32];

	memset(&d, 0, sizeof(d));
	snprintf(mrn, sizeof(mrn), "MRN%07lld", (long long)(i % 99991));
	snprintf(rcpt, sizeof(rcpt), "court-%lld", (long long)(i % 37));
	d.job_id = i;
	d.at = 1700000000 + i * 60;
	d.packet_id = "ROI-BENCH";
	d.mrn = ours ? "MRN-TARGET" : mrn;
	d.patient_name = "Test Patient";
	d.recipient_id = rcpt;
	d.recipient_name = rcpt;
	d.recipient_address = "fax:+15550100";
	d.description = "2 documents: lab (2026-01-14); discharge_summary (2026-01-20)";
	d.purpose = i % 3 ? "subpoena" : "court order";
	d.basis = i % 2 ? "subpoena" : "treatment";
	d.transport = "faxapi";
	d.outcome = "delivered";
	d.pages = 3;
	d.output_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	d.accountable = ours ? 1 : disclosure_accountable(d.basis);
	if (ours)
		d.basis = "subpoena";
	if (disclosure_append(s, &d) == -1) {
		fprintf(stderr, "append: %s\n", store_errmsg(s));
		exit(1);
	}
}

int
main(int argc, char *argv[])
{
	const char		*dir = argc > 1 ? argv[1] : "/tmp";
	int64_t			 n = argc > 2 ? atoll(argv[2]) : 1000000;
	int64_t			 mine = argc > 3 ? atoll(argv[3]) : 10000;
	int64_t			 every = mine ? n / mine : n + 1;
	struct accounting_req	 q;
	struct store		*s;
	struct buf		 pdf;
	json_t			*rep;
	char			 path[4096], err[512], *text;
	double			 t0, t1, t2, t3;
	int			 held;

	snprintf(path, sizeof(path), "%s/accounting.db", dir);
	if ((s = store_open(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now_s();
	for (int64_t i = 1; i <= n; i++) {
		if (i % 50000 == 1)
			store_begin(s);
		entry(s, i, i % every == 0);
		if (i % 50000 == 0 || i == n)
			store_commit(s);
	}
	printf("accounting: built a log of %lld entries in %.1f s\n", (long long)n,
	    now_s() - t0);
	memset(&q, 0, sizeof(q));
	q.mrn = "MRN-TARGET";
	q.from = 0;
	q.to = 1700000000 + (n + 1) * 60 + 86400;
	q.generated = q.to;
	q.org_name = "Bench Hospital";
	t0 = now_s();
	if ((rep = accounting_build(s, &q, &held, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t1 = now_s();
	text = accounting_text(rep);
	t2 = now_s();
	buf_init(&pdf);
	if (accounting_pdf(rep, argc > 4 ? argv[4] : "templates", "/usr/share/fonts/"
	    "truetype/dejavu", &pdf, err, sizeof(err)) == -1) {
		fprintf(stderr, "pdf: %s\n", err);	/* no time for what failed */
		return 1;
	}
	t3 = now_s();
	printf("accounting: %lld entries of one patient among %lld: report %.3f s "
	    "(%zu items after summarizing), text %.3f s (%zu bytes), PDF %.3f s "
	    "(%zu bytes)\n", (long long)mine, (long long)n, t1 - t0,
	    json_array_size(json_object_get(rep, "entries")), t2 - t1, strlen(text),
	    t3 - t2, pdf.len);
	free(text);
	buf_free(&pdf);
	json_decref(rep);
	store_close(s);
	return 0;
}
