/*
 * Cover sheets per second: what the worker does for each packet's cover
 * (read and check the template, load its fonts, draw it with libhpdf,
 * write the PDF), N times.  Used by bench/render.
 *
 *   cover_bench TEMPLATE N [NAME]
 *
 * NAME is the recipient on the cover: a name in Windows-1252 is set in the
 * standard PDF fonts; one like "Dr. Nguyễn Thị Zoë" makes the cover embed
 * DejaVu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hpdf.h>

#include "cover.h"

static double
now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char *argv[])
{
	static struct cover_field f[] = {
		{ "org_name", "Example Hospital HIM" },
		{ "org_address", "1 Synthetic Way, Springfield" },
		{ "org_phone", "+1 555 010 2000" }, { "org_fax", "+1 555 010 2001" },
		{ "to_name", "Dr. Nguyễn Thị Zoë" },
		{ "to_organization", "Example Family Practice" },
		{ "to_address", "+1 555 000 1001" }, { "from", "J. Clerk (HIM)" },
		{ "date", "2026-11-29" }, { "time", "09:30 UTC" }, { "pages", "12" },
		{ "documents", "3" }, { "request_id", "REQ-2026-0457" },
		{ "packet_id", "ROI-2026-000123" }, { "requester", "Dr. Ada Example" },
		{ "purpose", "continuity of care after hospital discharge" },
		{ "note", "Please call the HIM office with questions." },
		{ "urgent", "URGENT" }, { "part2", "yes" }, { "logo", "" },
	};
	char	err[512];
	double	t0, c0, t, c;
	long	n, bytes = 0;

	if (argc < 3 || argc > 4 || (n = atol(argv[2])) < 1) {
		fprintf(stderr, "usage: cover_bench TEMPLATE N [NAME]\n");
		return 2;
	}
	f[4].value = argc == 4 ? argv[3] : "Dr. Ada Example";
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		struct cover_template	*tpl;
		HPDF_Doc		 pdf = HPDF_New(NULL, NULL);
		HPDF_Page		 page;

		if (pdf == NULL || (tpl = cover_load(argv[1],
		    "/usr/share/fonts/truetype/dejavu", err, sizeof(err))) == NULL) {
			fprintf(stderr, "cover_bench: %s\n", err);
			return 1;
		}
		HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
		page = HPDF_AddPage(pdf);
		HPDF_Page_SetWidth(page, 612);
		HPDF_Page_SetHeight(page, 792);
		if (cover_draw(tpl, pdf, page, f, sizeof(f) / sizeof(f[0]), err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "cover_bench: %s\n", err);
			return 1;
		}
		HPDF_SaveToStream(pdf);
		bytes += (long)HPDF_GetStreamSize(pdf);
		cover_free(tpl);
		HPDF_Free(pdf);
	}
	t = now(CLOCK_MONOTONIC) - t0;
	c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("%ld cover sheets to %s in %.2f s: %.1f a second (%.1f a CPU "
	    "second), %.1f KB each\n", n, f[4].value, t, n / t, n / c,
	    bytes / 1024.0 / n);
	return 0;
}
