/*
 * The reports' shared machinery (daemon): paginated PDFs drawn from a
 * page template and an item template (include/report.h), and text
 * wrapped for a terminal.  Used by the accounting of disclosures
 * (src/accounting.c), the daily reconciliation (src/daily.c) and the
 * incident report (src/incident.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hpdf.h>

#include "cover.h"
#include "report.h"
#include "util.h"

void
report_wrap(struct buf *b, const char *s, const char *indent)
{
	size_t	col = strspn(s, " "), w;
	int	first = 1;

	buf_add(b, s, col);	/* the first line's own indent */
	s += col;
	while (*s) {
		while (*s == ' ')
			s++;
		w = strcspn(s, " ");
		if (w == 0)
			break;
		if (!first && col + 1 + w > 76) {
			buf_printf(b, "\n%s", indent);
			col = strlen(indent);
		} else if (!first) {
			buf_add(b, " ", 1);
			col++;
		}
		buf_add(b, s, w);
		col += w;
		s += w;
		first = 0;
	}
	buf_add(b, "\n", 1);
}

/* The numbers of a "#! WORD N [N]" line of a template; -1 if none. */
static int
report_directive(const char *path, const char *word, double *a, double *b)
{
	FILE	*f = fopen(path, "re");
	char	 line[256], *p, *end;
	size_t	 wl = strlen(word);
	int	 rv = -1;

	if (f == NULL)
		return -1;
	while (rv == -1 && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "#! ", 3) != 0 || strncmp(line + 3, word, wl) != 0 ||
		    line[3 + wl] != ' ')
			continue;
		p = line + 4 + wl;
		double x = strtod(p, &end), y;

		if (end == p)
			continue;
		p = end;
		y = strtod(p, &end);
		*a = x;
		*b = end == p ? x : y;
		rv = 0;
	}
	fclose(f);
	return rv;
}

struct report_tpl {
	struct cover_template	*page, *item;
	double			 top, bottom, height;
	size_t			 per_page;
};

static int
report_load(struct report_tpl *p, const struct report_layout *l,
    const char *dir, const char *font_dir, char *err, size_t errlen)
{
	char	pp[4096], ip[4096];

	if (bsnprintf(pp, sizeof(pp), "%s/%s/page.tpl", dir, l->folder) == -1 ||
	    bsnprintf(ip, sizeof(ip), "%s/%s/%s", dir, l->folder,
	    l->item_tpl) == -1) {
		bsnprintf(err, errlen, "template_dir is too long");
		return -1;
	}
	if ((p->page = cover_load_fields(pp, font_dir, l->page_fields, err,
	    errlen)) == NULL || (p->item = cover_load_fields(ip, font_dir,
	    l->item_fields, err, errlen)) == NULL)
		return -1;
	if (report_directive(pp, "area", &p->top, &p->bottom) == -1 ||
	    report_directive(ip, "height", &p->height, &p->height) == -1 ||
	    p->height < 10 || p->bottom < p->top + p->height) {
		bsnprintf(err, errlen, "template %s needs \"#! area TOP BOTTOM\" and "
		    "%s \"#! height H\" (an item no taller than the area)", pp, ip);
		return -1;
	}
	p->per_page = (size_t)((p->bottom - p->top) / p->height);
	return 0;
}

static int
report_page(const struct report_tpl *p, const struct report_layout *l,
    HPDF_Doc pdf, size_t pageno, size_t npages, size_t nitems, void *arg,
    char *err, size_t errlen)
{
	HPDF_Page		 page = HPDF_AddPage(pdf);
	struct cover_field	 f[REPORT_FIELDS_MAX];
	size_t			 i;
	int			 n;

	HPDF_Page_SetWidth(page, 612);
	HPDF_Page_SetHeight(page, 792);
	if ((n = l->page(arg, pageno, npages, f, err, errlen)) == -1 ||
	    cover_draw(p->page, pdf, page, f, (size_t)n, err, errlen) == -1)
		return -1;
	for (i = pageno * p->per_page; i < nitems &&
	    i < (pageno + 1) * p->per_page; i++) {
		double dy = p->top + (double)(i - pageno * p->per_page) * p->height;
		int rv;

		if ((n = l->item(arg, i, f, err, errlen)) == -1)
			return -1;
		/* The item template is drawn from its own top-left: move it. */
		HPDF_Page_GSave(page);
		HPDF_Page_Concat(page, 1, 0, 0, 1, 0, (HPDF_REAL)-dy);
		rv = cover_draw(p->item, pdf, page, f, (size_t)n, err, errlen);
		HPDF_Page_GRestore(page);
		if (rv == -1)
			return -1;
	}
	return 0;
}

static void
report_date(HPDF_Doc pdf, int64_t t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;
	HPDF_Date	d;

	gmtime_r(&tt, &tm);
	memset(&d, 0, sizeof(d));
	d.year = tm.tm_year + 1900;
	d.month = tm.tm_mon + 1;
	d.day = tm.tm_mday;
	d.hour = tm.tm_hour;
	d.minutes = tm.tm_min;
	d.seconds = tm.tm_sec;
	d.ind = 'Z';
	HPDF_SetInfoDateAttr(pdf, HPDF_INFO_CREATION_DATE, d);
}

static int
report_save(HPDF_Doc pdf, struct buf *out, char *err, size_t errlen)
{
	HPDF_UINT32	size;
	HPDF_BYTE	chunk[65536];

	if (HPDF_SaveToStream(pdf) != HPDF_OK) {
		bsnprintf(err, errlen, "the PDF cannot be written (libhpdf error "
		    "0x%04lx)", (unsigned long)HPDF_GetError(pdf));
		return -1;
	}
	HPDF_ResetStream(pdf);
	for (;;) {
		size = sizeof(chunk);
		HPDF_STATUS st = HPDF_ReadFromStream(pdf, chunk, &size);
		buf_add(out, chunk, size);
		if (st != HPDF_OK || size == 0)
			break;
	}
	return 0;
}

int
report_pdf(const struct report_layout *l, const char *dir,
    const char *font_dir, int64_t created, size_t nitems, void *arg,
    struct buf *out, char *err, size_t errlen)
{
	struct report_tpl	 p;
	HPDF_Doc		 pdf = NULL;
	size_t			 npages, i;
	int			 rv = -1;

	memset(&p, 0, sizeof(p));
	if (report_load(&p, l, dir, font_dir, err, errlen) == -1)
		goto done;
	npages = (nitems + p.per_page - 1) / p.per_page;
	if (npages == 0)
		npages = 1;
	if ((pdf = HPDF_New(NULL, NULL)) == NULL) {
		bsnprintf(err, errlen, "out of memory");
		goto done;
	}
	HPDF_SetCompressionMode(pdf, HPDF_COMP_ALL);
	report_date(pdf, created);
	HPDF_SetInfoAttr(pdf, HPDF_INFO_TITLE, l->title);
	for (i = 0; i < npages; i++)
		if (report_page(&p, l, pdf, i, npages, nitems, arg, err,
		    errlen) == -1)
			goto done;
	rv = report_save(pdf, out, err, errlen);
done:
	if (pdf)
		HPDF_Free(pdf);
	cover_free(p.page);
	cover_free(p.item);
	return rv;
}
