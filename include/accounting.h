/*
 * The accounting of disclosures of 45 CFR 164.528 (daemon): one
 * patient's accountable disclosures in a period, built from the
 * disclosure log, with repeated ones summarized and entries an agency's
 * suspension covers held back; printed as text, JSON or PDF (drawn from
 * templates/accounting/page.tpl and entry.tpl).  See docs/accounting.md.
 */
#ifndef ACCOUNTING_H
#define ACCOUNTING_H

#include <stdint.h>

#include <jansson.h>

#include "store.h"
#include "util.h"

#define ACCOUNTING_ORAL_MAX	(30 * 86400)	/* 164.528(a)(2)(ii) */

struct accounting_req {
	const char	*mrn;
	int64_t		 from;		/* unix seconds, inclusive */
	int64_t		 to;		/* exclusive */
	int64_t		 generated;	/* the report's time (and the PDF's) */
	const char	*org_name;
	const char	*org_address;
};

/* The report as JSON (the model text and PDF are drawn from); *held is
 * how many entries suspensions held back.  NULL and err on failure. */
json_t	*accounting_build(struct store *, const struct accounting_req *,
	    int *held, char *err, size_t errlen);
/* The report as text (free it). */
char	*accounting_text(json_t *report);
/* The report as PDF into out, from template_dir/accounting/page.tpl and
 * entry.tpl (a folder of their own: template_dir's *.tpl are cover
 * sheets).  0, or -1 with err. */
int	 accounting_pdf(json_t *report, const char *template_dir,
	    const char *font_dir, struct buf *out, char *err, size_t errlen);
/* Is suspension u in effect at t, given the rows that end it early? */
int64_t	 accounting_suspension_end(const struct store_suspension *u,
	    int64_t ended_at);

#endif
