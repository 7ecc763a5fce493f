/*
 * The daily reconciliation (daemon): what the gateway accepted,
 * delivered, failed, held and cancelled on one day (local time), by
 * transport and recipient, which jobs were still awaiting confirmation at
 * its end, and every send whose outcome is not confirmed.  Built from the
 * job events and the disclosure log as JSON; the text and the PDF (drawn
 * from templates/daily/page.tpl and row.tpl) are drawn from that one
 * model.  No PHI: jobs are named by id, packet and request.  See
 * docs/daily.md.
 */
#ifndef DAILY_H
#define DAILY_H

#include <stdint.h>

#include <jansson.h>

#include "store.h"
#include "util.h"

struct daily_req {
	char		 date[11];	/* YYYY-MM-DD, local */
	int64_t		 from, to;	/* the day: [from, to), unix seconds */
	int64_t		 as_of;		/* min(to, now): the end looked at */
	int64_t		 generated;	/* the report's time (and the PDF's) */
	const char	*org_name;
};

/* The day D ("YYYY-MM-DD"; NULL: today) in local time into q.  0, or -1
 * with err. */
int	 daily_day(const char *date, int64_t now, struct daily_req *q,
	    char *err, size_t errlen);
/* The report as JSON; NULL and err on failure. */
json_t	*daily_build(struct store *, const struct daily_req *, char *err,
	    size_t errlen);
/* The report as text (free it). */
char	*daily_text(json_t *report);
/* The report as PDF into out.  0, or -1 with err. */
int	 daily_pdf(json_t *report, const char *template_dir,
	    const char *font_dir, struct buf *out, char *err, size_t errlen);

#endif
