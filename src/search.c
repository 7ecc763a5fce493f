/*
 * Finding the manifest's redaction patterns on a page (worker): named
 * patterns (ssn, phone, email, mrn, patient_name, dob) and regular
 * expressions, matched in the page's text layer as MuPDF's structured
 * text gives it; each match becomes one box per line it spans.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mupdf/fitz.h>

#include "boxes.h"
#include "manifest.h"
#include "reader.h"
#include "search.h"
#include "util.h"

/* Regular-expression text that matches s literally. */
static void
add_literal(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr(".[]{}()\\*+?^$|", *s))
			buf_add(b, "\\", 1);
		buf_add(b, s, 1);
	}
}

static const char *const month_names[] = { "January", "February", "March",
	"April", "May", "June", "July", "August", "September", "October",
	"November", "December" };

/* A named pattern's regular expression.  -1 if it needs what is missing. */
static int
named_regex(const struct manifest *mf, const char *name, struct buf *b,
    int *icase)
{
	*icase = 0;
	if (strcmp(name, "ssn") == 0)
		buf_addstr(b, "[0-9]{3}-[0-9]{2}-[0-9]{4}");
	else if (strcmp(name, "phone") == 0)
		buf_addstr(b, "(\\+?1[-. ]?)?(\\([0-9]{3}\\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}");
	else if (strcmp(name, "email") == 0)
		buf_addstr(b, "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}");
	else if (strcmp(name, "mrn") == 0) {
		if (mf->patient_mrn == NULL || mf->patient_mrn[0] == '\0')
			return -1;
		add_literal(b, mf->patient_mrn);
		*icase = 1;
	} else if (strcmp(name, "patient_name") == 0) {
		const char *sp;

		if (mf->patient_name == NULL || mf->patient_name[0] == '\0')
			return -1;
		/* "Zoë Testpatient" and "Testpatient, Zoë" */
		add_literal(b, mf->patient_name);
		if ((sp = strrchr(mf->patient_name, ' ')) != NULL) {
			char *first = xstrdup(mf->patient_name);

			first[sp - mf->patient_name] = '\0';
			buf_addstr(b, "|");
			add_literal(b, sp + 1);
			buf_addstr(b, ", ?");
			add_literal(b, first);
			free(first);
		}
		*icase = 1;
	} else if (strcmp(name, "dob") == 0) {
		int y, m, d;

		if (mf->patient_dob == NULL ||
		    sscanf(mf->patient_dob, "%4d-%2d-%2d", &y, &m, &d) != 3 ||
		    m < 1 || m > 12)
			return -1;
		/* 1984-03-09, 03/09/1984, 3/9/1984, 03-09-1984, March 9, 1984, Mar 9 1984 */
		buf_printf(b, "%04d-%02d-%02d|0?%d[/-]0?%d[/-]%04d|(%s|%.3s)\\.? 0?%d,? %04d",
		    y, m, d, m, d, y, month_names[m - 1], month_names[m - 1], d, y);
		*icase = 1;
	} else
		return -1;
	return 0;
}

int
search_compile(const struct manifest *mf, const struct document *d,
    struct pattern **out, char *err, size_t errlen)
{
	struct pattern	*p = xcalloc(d->npatterns + 1, sizeof(*p));
	struct buf	 b;
	int		 icase, rc;

	for (size_t i = 0; i < d->npatterns; i++) {
		const struct redact_pattern *rp = &d->patterns[i];

		buf_init(&b);
		icase = 0;
		if (rp->name) {
			if (named_regex(mf, rp->name, &b, &icase) == -1) {
				snprintf(err, errlen, "pattern %s needs the patient's %s "
				    "in the manifest", rp->name, rp->name);
				buf_free(&b);
				goto fail;
			}
		} else
			buf_addstr(&b, rp->regex);
		rc = regcomp(&p[i].re, buf_cstr(&b), REDACT_REGEX_FLAGS |
		    (icase ? REG_ICASE : 0));
		buf_free(&b);
		if (rc != 0) {
			snprintf(err, errlen, "pattern %zu is not a valid regular "
			    "expression", i + 1);
			goto fail;
		}
		p[i].src = rp;
	}
	*out = p;
	return 0;
fail:
	for (size_t i = 0; i < d->npatterns; i++)
		if (p[i].src)
			regfree(&p[i].re);
	free(p);
	return -1;
}

void
search_free(struct pattern *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		regfree(&p[i].re);
	free(p);
}

struct page_text {
	struct buf	 s;
	int		*map;		/* byte -> char */
	fz_quad		*quad;		/* char -> quad */
	size_t		 nchars, mapcap, quadcap;
};

static void
text_add(struct page_text *t, const char *bytes, size_t n, int ch)
{
	if (t->s.len + n > t->mapcap) {
		t->mapcap = (t->s.len + n) * 2 + 64;
		t->map = xreallocarray(t->map, t->mapcap, sizeof(*t->map));
	}
	for (size_t i = 0; i < n; i++)
		t->map[t->s.len + i] = ch;
	buf_add(&t->s, bytes, n);
}

static void
page_text_build(fz_context *ctx, fz_stext_page *sp, struct page_text *t)
{
	for (fz_stext_block *b = sp->first_block; b; b = b->next) {
		if (b->type != FZ_STEXT_BLOCK_TEXT)
			continue;
		for (fz_stext_line *l = b->u.t.first_line; l; l = l->next) {
			for (fz_stext_char *c = l->first_char; c; c = c->next) {
				char	utf[8];
				int	n = fz_runetochar(utf, c->c);

				if (t->nchars == t->quadcap) {
					t->quadcap = t->quadcap ? t->quadcap * 2 : 256;
					t->quad = xreallocarray(t->quad, t->quadcap,
					    sizeof(*t->quad));
				}
				t->quad[t->nchars] = c->quad;
				text_add(t, utf, (size_t)n, (int)t->nchars);
				t->nchars++;
			}
			text_add(t, "\n", 1, -1);
		}
	}
}

/* Boxes over the characters of bytes [so, eo), one per line. */
static void
match_boxes(const struct page_text *t, size_t so, size_t eo, fz_rect bounds,
    const char *name, struct boxes *bx)
{
	fz_rect	r = fz_empty_rect;
	int	last = -1;

	for (size_t i = so; i <= eo; i++) {
		int ch = i < eo ? t->map[i] : -1;

		if (ch >= 0 && ch != last) {
			r = fz_union_rect(r, fz_rect_from_quad(t->quad[ch]));
			last = ch;
		} else if (ch < 0 && !fz_is_empty_rect(r)) {
			r = fz_expand_rect(r, 1.0f);
			boxes_add(bx, r, r.x0 - bounds.x0, r.y0 - bounds.y0, r.x1 - r.x0,
			    r.y1 - r.y0, name);
			r = fz_empty_rect;
		}
	}
}

void
search_page(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    struct pattern *p, size_t np, struct boxes *bx)
{
	fz_stext_page		*sp = NULL;
	fz_device		*dev = NULL;
	struct page_text	 t;

	memset(&t, 0, sizeof(t));
	buf_init(&t.s);
	fz_var(sp);
	fz_var(dev);
	fz_try(ctx) {
		/* The same contents raster_page() draws, with no annotations. */
		sp = fz_new_stext_page(ctx, bounds);
		dev = fz_new_stext_device(ctx, sp, NULL);
		fz_run_display_list(ctx, list, dev, fz_identity, fz_infinite_rect,
		    &reader_cookie);
		fz_close_device(ctx, dev);
		page_text_build(ctx, sp, &t);
	}
	fz_always(ctx) {
		fz_drop_device(ctx, dev);
		fz_drop_stext_page(ctx, sp);
	}
	fz_catch(ctx) {
		buf_free(&t.s);
		free(t.map);
		free(t.quad);
		fz_rethrow(ctx);
	}
	for (size_t k = 0; k < np; k++) {
		const char	*s = buf_cstr(&t.s);
		size_t		 off = 0;
		regmatch_t	 m;

		while (off < t.s.len && regexec(&p[k].re, s + off, 1, &m,
		    off ? REG_NOTBOL : 0) == 0) {
			if (m.rm_eo == m.rm_so) {
				off += (size_t)m.rm_so + 1;
				continue;
			}
			match_boxes(&t, off + (size_t)m.rm_so, off + (size_t)m.rm_eo,
			    bounds, p[k].src->name ? p[k].src->name : "regex", bx);
			p[k].found++;
			off += (size_t)m.rm_eo;
		}
	}
	buf_free(&t.s);
	free(t.map);
	free(t.quad);
}

