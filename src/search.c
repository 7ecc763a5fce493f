/*
 * Finding the manifest's redaction patterns on a page (worker): named
 * patterns (ssn, phone, email, mrn, patient_name, dob) and regular
 * expressions, matched in the page's text layer as MuPDF's structured
 * text gives it and in the words OCR reads from its pixels (src/ocr.c);
 * each match becomes one box per line it spans.
 *
 * Both texts are normalized first, because a text layer built to deceive
 * spells a number with whatever looks like it: every Unicode hyphen, dash
 * and minus is '-', every kind of space (NBSP, thin, ideographic, tab) is
 * ' ', zero-width characters and glyphs too small to see are dropped, and
 * full-width forms are ASCII (the part of NFKC that matters here).  The
 * named patterns then allow any run of separators between the digits or
 * the words they look for, line breaks included: a plain-text line that
 * the typesetter wrapped, a name split over two lines or hyphenated.
 */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mupdf/fitz.h>

#include "boxes.h"
#include "manifest.h"
#include "reader.h"
#include "ocr.h"
#include "search.h"
#include "util.h"

/* What may stand between the digits of a number or the words of a name
 * once the text is normalized (the newline is a real one: a bracket
 * expression knows no escapes). */
#define SEP	"[-. \n/]"
#define SEPS	SEP "{0,3}"

static const char *const month_names[] = { "January", "February", "March",
	"April", "May", "June", "July", "August", "September", "October",
	"November", "December" };

/*
 * Latin-1 letters without their accents: OCR reads "Zoë" as "Zoé" or
 * "Zoe", and REG_ICASE folds only ASCII.  Both the text and the patterns
 * are folded, so "ZOË" matches "Zoë" too.
 */
static int
fold_latin(int c)
{
	static const char fold[] = "AAAAAAACEEEEIIIIDNOOOOO\0OUUUUYTs"
	    "aaaaaaaceeeeiiiidnooooo\0ouuuuyty";

	if (c >= 0xc0 && c <= 0xff && fold[c - 0xc0] != '\0')
		return (unsigned char)fold[c - 0xc0];
	return c;
}

/* Regular-expression text that matches the UTF-8 character at s
 * literally (folded); its length. */
static size_t
add_char(struct buf *b, const char *s)
{
	int	c, n = fz_chartorune(&c, s);
	char	utf[8];

	c = fold_latin(c);
	if (c < 0x80 && strchr(".[]{}()\\*+?^$|", c))
		buf_add(b, "\\", 1);
	buf_add(b, utf, (size_t)fz_runetochar(utf, c));
	return (size_t)n;
}

/* An identifier (an MRN) with any separators between its characters and
 * in place of its own. */
static void
add_spaced(struct buf *b, const char *s)
{
	int	first = 1;

	while (*s) {
		if (!isalnum((unsigned char)*s) && (unsigned char)*s < 0x80) {
			s++;
			continue;
		}
		if (!first)
			buf_addstr(b, SEPS);
		first = 0;
		s += add_char(b, s);
	}
}

/* A word that a line break or hyphenation may split anywhere. */
static void
add_word(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; ) {
		if (i > 0)
			buf_addstr(b, "(-?\n)?");
		i += add_char(b, s + i);
	}
}

/* The words of a name, any run of white space or line breaks between
 * them; last_first: "Last, First". */
static void
add_name(struct buf *b, const char *name, int last_first)
{
	const char	*w[8];
	size_t		 len[8], n = 0;

	for (const char *p = name; *p && n < 8; ) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		w[n] = p;
		while (*p && *p != ' ')
			p++;
		len[n] = (size_t)(p - w[n]);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = last_first ? (i == 0 ? n - 1 : i - 1) : i;

		if (i > 0)
			buf_addstr(b, last_first && i == 1 ? ",?[ \n]*" :
			    "[- \n]+");
		add_word(b, w[k], len[k]);
	}
}

static int
named_person(const struct manifest *mf, const char *name, struct buf *b)
{
	int y, m, d;

	if (strcmp(name, "mrn") == 0) {
		if (mf->patient_mrn == NULL || mf->patient_mrn[0] == '\0')
			return -1;
		add_spaced(b, mf->patient_mrn);
	} else if (strcmp(name, "patient_name") == 0) {
		if (mf->patient_name == NULL || mf->patient_name[0] == '\0')
			return -1;
		/* "Zoë Testpatient" and "Testpatient, Zoë" */
		add_name(b, mf->patient_name, 0);
		if (strchr(mf->patient_name, ' ') != NULL) {
			buf_addstr(b, "|");
			add_name(b, mf->patient_name, 1);
		}
	} else if (strcmp(name, "dob") == 0) {
		if (mf->patient_dob == NULL ||
		    sscanf(mf->patient_dob, "%4d-%2d-%2d", &y, &m, &d) != 3 ||
		    m < 1 || m > 12)
			return -1;
		/* 1984-03-09, 03/09/1984, 3/9/1984, 03-09-1984, March 9, 1984, Mar 9 1984 */
		buf_printf(b, "%04d" SEPS "%02d" SEPS "%02d|0?%d" SEPS "0?%d" SEPS
		    "%04d|(%s|%.3s)\\.?" SEPS "0?%d,?" SEPS "%04d", y, m, d, m, d, y,
		    month_names[m - 1], month_names[m - 1], d, y);
	} else
		return -1;
	return 0;
}

/* A named pattern's regular expression.  -1 if it needs what is missing.
 * *digits: a match must not touch a digit on either side. */
static int
named_regex(const struct manifest *mf, const char *name, struct buf *b,
    int *icase, int *digits)
{
	*icase = 0;
	*digits = 0;
	if (strcmp(name, "ssn") == 0) {
		buf_addstr(b, "([0-9]" SEPS "){8}[0-9]");
		*digits = 1;
	} else if (strcmp(name, "phone") == 0) {
		buf_addstr(b, "(\\+?1" SEPS ")?(\\(" SEPS "[0-9]{3}" SEPS "\\)|[0-9]{3})"
		    SEPS "[0-9]{3}" SEPS "[0-9]{4}");
		*digits = 1;
	} else if (strcmp(name, "email") == 0)
		buf_addstr(b, "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}");
	else if (named_person(mf, name, b) == 0)
		*icase = 1;
	else
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
			if (named_regex(mf, rp->name, &b, &icase, &p[i].digits) == -1) {
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
	search_free(p, d->npatterns);
	return -1;
}

void
search_free(struct pattern *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		if (p[i].src)
			regfree(&p[i].re);
		for (size_t k = 0; k < p[i].nseen; k++)
			free(p[i].seen[k]);
		free(p[i].seen);
	}
	free(p);
}

void
search_page_done(struct pattern *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i].found += p[i].hits_text > p[i].hits_ocr ? p[i].hits_text :
		    p[i].hits_ocr;
		p[i].hits_text = p[i].hits_ocr = 0;
	}
}

/* ---- a page's text, normalized ------------------------------------------- */

/* The normalized form of character c in out: its length, 0 to drop it. */
static int
norm_rune(int c, char *out)
{
	if ((c >= 0x200b && c <= 0x200f) || (c >= 0x2060 && c <= 0x2064) ||
	    c == 0xfeff || c == 0x00ad || c == 0x034f)
		return 0;
	if ((c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0x2043 ||
	    c == 0xfe58 || c == 0xfe63 || c == 0xff0d || c == 0x02d7 ||
	    c == 0x2796 || c == 0x058a || c == 0x05be || c == 0x1806)
		c = '-';
	else if (c == '\t' || c == '\r' || c == 0xa0 || (c >= 0x2000 &&
	    c <= 0x200a) || c == 0x202f || c == 0x205f || c == 0x3000 ||
	    c == 0x1680)
		c = ' ';
	else if (c >= 0xff01 && c <= 0xff5e)
		c -= 0xfee0;	/* full-width forms */
	else if (c == 0x2024 || c == 0x2027 || c == 0xff61)
		c = '.';
	else if (c == 0x2044 || c == 0x2215)
		c = '/';
	else if (c < 0x20)
		c = ' ';
	return fz_runetochar(out, fold_latin(c));
}

static void
text_bytes(struct page_text *t, const char *bytes, size_t n, int ch)
{
	if (t->s.len + n > t->mapcap) {
		t->mapcap = (t->s.len + n) * 2 + 64;
		t->map = xreallocarray(t->map, t->mapcap, sizeof(*t->map));
	}
	for (size_t i = 0; i < n; i++)
		t->map[t->s.len + i] = ch;
	buf_add(&t->s, bytes, n);
}

/* Add character c drawn in r (page space). */
static void
text_add(struct page_text *t, int c, fz_rect r)
{
	char	utf[8];
	int	n = norm_rune(c, utf);

	if (n == 0)
		return;
	if (t->nchars == t->rectcap) {
		t->rectcap = t->rectcap ? t->rectcap * 2 : 256;
		t->rect = xreallocarray(t->rect, t->rectcap, sizeof(*t->rect));
	}
	t->rect[t->nchars] = r;
	text_bytes(t, utf, (size_t)n, (int)t->nchars);
	t->nchars++;
}

static void
text_break(struct page_text *t, const char *sep)
{
	if (t->s.len > 0)
		text_bytes(t, sep, 1, -1);
}

void
search_text_init(struct page_text *t)
{
	memset(t, 0, sizeof(*t));
	buf_init(&t->s);
}

void
search_text_free(struct page_text *t)
{
	buf_free(&t->s);
	free(t->map);
	free(t->rect);
	memset(t, 0, sizeof(*t));
}

/* The text layer.  A glyph under 1 pt is left out: nobody reads it, and
 * one injected inside a number would split it. */
static void
text_from_stext(fz_stext_page *sp, struct page_text *t)
{
	for (fz_stext_block *b = sp->first_block; b; b = b->next) {
		if (b->type != FZ_STEXT_BLOCK_TEXT)
			continue;
		for (fz_stext_line *l = b->u.t.first_line; l; l = l->next) {
			for (fz_stext_char *c = l->first_char; c; c = c->next)
				if (c->size >= 1.0f)
					text_add(t, c->c, fz_rect_from_quad(c->quad));
			text_break(t, "\n");
		}
	}
}

void
search_text_from_ocr(const struct ocr_page *op, fz_rect bounds, double dpi,
    struct page_text *t)
{
	double	k = 72.0 / dpi;

	for (size_t i = 0; i < op->n; i++) {
		const struct ocr_word	*w = &op->w[i];
		int			 n = fz_utflen(w->text), c, j = 0;
		const char		*s = w->text;

		text_break(t, w->line ? "\n" : " ");
		/* Tesseract gives the word's box: each character a slice. */
		while (*s) {
			fz_rect r;

			s += fz_chartorune(&c, s);
			r.x0 = (float)(bounds.x0 + k * (w->x0 + (double)(w->x1 - w->x0) * j / n));
			r.x1 = (float)(bounds.x0 + k * (w->x0 + (double)(w->x1 - w->x0) * (j + 1) / n));
			r.y0 = (float)(bounds.y0 + k * w->y0);
			r.y1 = (float)(bounds.y0 + k * w->y1);
			text_add(t, c, r);
			j++;
		}
	}
}

/* ---- matching ------------------------------------------------------------ */

/* Boxes over the characters of bytes [so, eo), one per line. */
static void
match_boxes(const struct page_text *t, size_t so, size_t eo, fz_rect bounds,
    const struct pattern *p, struct boxes *bx)
{
	const char	*name = p->src->name ? p->src->name : "regex";
	fz_rect		 r = fz_empty_rect;
	int		 last = -1;

	for (size_t i = so; i <= eo; i++) {
		int ch = i < eo ? t->map[i] : -1;

		if (ch >= 0 && ch != last) {
			r = fz_union_rect(r, t->rect[ch]);
			last = ch;
		} else if (ch < 0 && !fz_is_empty_rect(r)) {
			boxes_add_found(bx, r, bounds, name, p->src->line);
			r = fz_empty_rect;
		}
	}
}

/* Remember what a match spelled (letters and digits, lower case), for the
 * leak gate to look for in the output; never logged. */
static void
match_seen(struct pattern *p, const char *s, size_t len)
{
	char	sq[64];
	size_t	n = 0;

	for (size_t i = 0; i < len && n < sizeof(sq) - 1; i++)
		if (isalnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
			sq[n++] = (char)tolower((unsigned char)s[i]);
	sq[n] = '\0';
	if (n < 4 || p->nseen >= SEARCH_SEEN_MAX)
		return;
	for (size_t i = 0; i < p->nseen; i++)
		if (strcmp(p->seen[i], sq) == 0)
			return;
	p->seen = xreallocarray(p->seen, p->nseen + 1, sizeof(*p->seen));
	p->seen[p->nseen++] = xstrdup(sq);
}

/* The next match of p at or after *off: 1 with [so, eo), or 0. */
static int
match_next(const struct page_text *t, const struct pattern *p, size_t *off,
    size_t *so, size_t *eo)
{
	const char	*s = buf_cstr((struct buf *)&t->s);
	regmatch_t	 m;

	while (*off < t->s.len && regexec(&p->re, s + *off, 1, &m,
	    *off ? REG_NOTBOL : 0) == 0) {
		*so = *off + (size_t)m.rm_so;
		*eo = *off + (size_t)m.rm_eo;
		/* A number inside a longer one is not this number. */
		if (m.rm_eo == m.rm_so || (p->digits && ((*so > 0 &&
		    isdigit((unsigned char)s[*so - 1])) ||
		    isdigit((unsigned char)s[*eo])))) {
			*off = *so + 1;
			continue;
		}
		*off = *eo;
		return 1;
	}
	return 0;
}

void
search_text(struct page_text *t, fz_rect bounds, struct pattern *p, size_t np,
    int from_ocr, struct boxes *bx)
{
	for (size_t k = 0; k < np; k++) {
		size_t	off = 0, so, eo;

		while (match_next(t, &p[k], &off, &so, &eo)) {
			match_boxes(t, so, eo, bounds, &p[k], bx);
			match_seen(&p[k], buf_cstr(&t->s) + so, eo - so);
			if (from_ocr)
				p[k].hits_ocr++;
			else
				p[k].hits_text++;
		}
	}
}

/* Does the squeezed text hold s (both letters and digits, lower case)? */
static int
squeezed_has(const char *text, size_t len, const char *s)
{
	size_t	n = strlen(s);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(text + i, s, n) == 0)
			return 1;
	return 0;
}

/* t's letters and digits, lower case (any byte of a character outside
 * ASCII kept): a new string, its length in *n. */
static char *
squeeze(const struct page_text *t, size_t *n)
{
	char	*sq = xmalloc(t->s.len + 1);

	*n = 0;
	for (size_t i = 0; i < t->s.len; i++)
		if (isalnum((unsigned char)t->s.data[i]) ||
		    (unsigned char)t->s.data[i] >= 0x80)
			sq[(*n)++] = (char)tolower((unsigned char)t->s.data[i]);
	sq[*n] = '\0';
	return sq;
}

int
search_text_shows(const struct page_text *t, const char *lines)
{
	size_t		 n, ln;
	char		*sq = squeeze(t, &n), *lsq;
	const char	*s = lines, *end;
	int		 ok = 1, c;

	for (; ok && *s; s = *end ? end + 1 : end) {
		struct page_text line;

		end = strchrnul(s, '\n');
		search_text_init(&line);
		for (const char *p = s; p < end; ) {
			p += fz_chartorune(&c, p);
			text_add(&line, c, fz_empty_rect);
		}
		lsq = squeeze(&line, &ln);
		ok = ln == 0 || squeezed_has(sq, n, lsq);
		free(lsq);
		search_text_free(&line);
	}
	free(sq);
	return ok;
}

int
search_leak(const struct page_text *t, const struct pattern *p, size_t np)
{
	size_t	 n, off, so, eo;
	char	*sq = squeeze(t, &n);
	int	 hit = -1;

	for (size_t k = 0; hit == -1 && k < np; k++) {
		off = 0;
		if (match_next(t, &p[k], &off, &so, &eo))
			hit = (int)k;
		for (size_t i = 0; hit == -1 && i < p[k].nseen; i++)
			if (squeezed_has(sq, n, p[k].seen[i]))
				hit = (int)k;
	}
	free(sq);
	return hit;
}

void
search_page(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    struct pattern *p, size_t np, struct boxes *bx)
{
	struct page_text	 t;

	search_text_init(&t);
	search_text_from_list(ctx, list, bounds, &t);
	search_text(&t, bounds, p, np, 0, bx);
	search_text_free(&t);
}

void
search_text_from_list(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    struct page_text *t)
{
	fz_stext_page		*sp = NULL;
	fz_device		*dev = NULL;

	fz_var(sp);
	fz_var(dev);
	fz_try(ctx) {
		/* The same contents raster_page() draws, with no annotations. */
		sp = fz_new_stext_page(ctx, bounds);
		dev = fz_new_stext_device(ctx, sp, NULL);
		fz_run_display_list(ctx, list, dev, fz_identity, fz_infinite_rect,
		    &reader_cookie);
		fz_close_device(ctx, dev);
		text_from_stext(sp, t);
	}
	fz_always(ctx) {
		fz_drop_device(ctx, dev);
		fz_drop_stext_page(ctx, sp);
	}
	fz_catch(ctx) {
		search_text_free(t);
		search_text_init(t);
		fz_rethrow(ctx);
	}
}
