/*
 * The reports roictl asks for (daemon): what the accounting of
 * disclosures, the daily reconciliation and the incident report share.
 * A PDF report is drawn from two templates in the cover sheet's
 * language (docs/templates.md) kept in a folder of template_dir of its
 * own: page.tpl, each page's frame, with a "#! area TOP BOTTOM" line
 * saying where items go, and an item template drawn again and again down
 * the page, with "#! height H".
 * The PDF's creation date is the report's time, so the same inputs give
 * the same bytes.
 */
#ifndef REPORT_H
#define REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cover.h"
#include "util.h"

#define REPORT_FIELDS_MAX	24

struct report_layout {
	const char		*folder;	/* under template_dir: "accounting" */
	const char		*item_tpl;	/* "entry.tpl" */
	const char *const	*page_fields;	/* NULL-terminated */
	const char *const	*item_fields;
	const char		*title;		/* the PDF's Title */
	/* Fill the fields of page pageno (0-based) of npages, or of item i;
	 * values must live until the next call.  The count, or -1 with err. */
	int	(*page)(void *arg, size_t pageno, size_t npages,
		    struct cover_field *f, char *err, size_t errlen);
	int	(*item)(void *arg, size_t i, struct cover_field *f, char *err,
		    size_t errlen);
};

/* nitems items, paginated ("page X of Y" is the page callback's), into
 * out.  0, or -1 with err. */
int	report_pdf(const struct report_layout *, const char *template_dir,
	    const char *font_dir, int64_t created, size_t nitems, void *arg,
	    struct buf *out, char *err, size_t errlen);

/* s wrapped at 76 columns into b, each line after the first indented. */
void	report_wrap(struct buf *b, const char *s, const char *indent);

#endif
