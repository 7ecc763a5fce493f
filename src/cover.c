/*
 * Cover sheet templates: parse the line-based template language of
 * docs/templates.md and draw it with libhpdf.
 *
 * Every directive is checked when the template is read (its words, its
 * numbers, the fields it names), so an error names the file, the line and
 * what is wrong before any packet depends on it.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hpdf.h>

#include "cover.h"
#include "coverfont.h"
#include "util.h"

#define COVER_MAX_LINES	500
#define COVER_MAX_DEPTH	8

const char *const cover_field_names[] = {
	"org_name", "org_address", "org_phone", "org_fax", "logo",
	"to_name", "to_organization", "to_address",
	"from", "date", "time", "pages", "documents",
	"request_id", "packet_id", "requester", "purpose",
	"note", "urgent", "part2", "part2_notice", "part2_short",
	NULL
};

const char *const cover_site_fields[] = {
	"org_name", "org_address", "org_phone", "org_fax", "logo",
	"part2_notice", "part2_short",
	NULL
};

/*
 * The statements of 42 CFR 2.32(a) as amended in 2024 (89 FR 12472,
 * compliance from 2026-02-16): the full notice of (a)(1) and the short
 * one of (a)(2), for templates to print under `if part2`.  Fixed text, so
 * no template can misquote the rule; a template may still write its own.
 */
static const struct cover_field cover_builtin[] = {
	{ "part2_notice", "This record which has been disclosed to you is "
	    "protected by Federal confidentiality rules (42 CFR part 2). These "
	    "rules prohibit you from using or disclosing this record, or testimony "
	    "that describes the information contained in this record, in any "
	    "civil, criminal, administrative, or legislative proceedings by any "
	    "Federal, State, or local authority, against the patient, unless "
	    "authorized by the consent of the patient, except as provided at 42 "
	    "CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR "
	    "2.64 or 2.65. In addition, the Federal rules prohibit you from making "
	    "any other use or disclosure of this record unless at least one of "
	    "the following applies: (i) Further use or disclosure is expressly "
	    "permitted by the written consent of the individual whose information "
	    "is being disclosed in this record or as otherwise permitted by 42 CFR "
	    "part 2. (ii) You are a covered entity or business associate and have "
	    "received the record for treatment, payment, or health care "
	    "operations, or (iii) You have received the record from a covered "
	    "entity or business associate as permitted by 45 CFR part 164, "
	    "subparts A and E. A general authorization for the release of medical "
	    "or other information is NOT sufficient to meet the required elements "
	    "of written consent to further use or redisclose the record (see 42 "
	    "CFR 2.31)." },
	{ "part2_short", "42 CFR part 2 prohibits unauthorized use or disclosure "
	    "of these records." },
};

enum op { OP_FONT, OP_TEXT, OP_WRAP, OP_RULE, OP_BOX, OP_FILL, OP_IMAGE,
	OP_IF, OP_IFNOT, OP_END };

static const struct {
	const char	*word;
	enum op		 op;
	int		 nums;		/* numbers after the word */
	int		 font;		/* a font name follows the numbers */
	int		 rest;		/* text (0 none, 1 required) */
	const char	*usage;
} ops[] = {
	{ "font", OP_FONT, 0, 0, 1, "font NAME FILE" },
	{ "text", OP_TEXT, 3, 1, 1, "text X Y SIZE FONT TEXT" },
	{ "wrap", OP_WRAP, 4, 1, 1, "wrap X Y WIDTH SIZE FONT TEXT" },
	{ "rule", OP_RULE, 5, 0, 0, "rule X1 Y1 X2 Y2 WIDTH" },
	{ "box", OP_BOX, 5, 0, 0, "box X Y W H WIDTH" },
	{ "fill", OP_FILL, 5, 0, 0, "fill X Y W H GRAY" },
	{ "image", OP_IMAGE, 3, 0, 1, "image X Y WIDTH FILE" },
	{ "if", OP_IF, 0, 0, 1, "if FIELD" },
	{ "unless", OP_IFNOT, 0, 0, 1, "unless FIELD" },
	{ "end", OP_END, 0, 0, 0, "end" },
};

struct cover_line {
	enum op	 op;
	int	 line;
	double	 n[5];
	int	 font;		/* index into fonts */
	char	*text;		/* with {fields} */
	int	 skip_to;	/* if/unless: the index of its end */
};

struct cover_font {
	char		 name[32];
	char		*path;
	const char	*std;	/* its standard PDF font, for the predeclared ones */
};

struct cover_template {
	char			*path;
	const char *const	*fields;	/* the names {field} may use */
	struct cover_line	*l;
	size_t			 n;
	struct cover_font	 fonts[COVER_MAX_FONTS];
	size_t			 nfonts;
};

static int
cover_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void	cover_warm(const struct cover_template *);

static int
cover_err(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	n = line > 0 ? snprintf(err, errlen, "template %s line %d: ", path, line) :
	    snprintf(err, errlen, "template %s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
field_known(const struct cover_template *t, const char *name, size_t len)
{
	for (size_t i = 0; t->fields[i]; i++)
		if (strlen(t->fields[i]) == len &&
		    strncmp(t->fields[i], name, len) == 0)
			return 1;
	return 0;
}

/* Every {name} in s is a known field; a lone brace is an error too. */
static int
check_fields(const struct cover_template *t, const char *s, char *bad,
    size_t badlen)
{
	const char *p, *q;

	for (p = s; (p = strpbrk(p, "{}")) != NULL; p = q + 1) {
		if (*p == '}' || (q = strchr(p, '}')) == NULL) {
			strlcpy_(bad, "an unmatched brace", badlen);
			return -1;
		}
		if (!field_known(t, p + 1, (size_t)(q - p - 1))) {
			snprintf(bad, badlen, "unknown field {%.*s}", (int)(q - p - 1),
			    p + 1);
			return -1;
		}
	}
	return 0;
}

static int
font_index(const struct cover_template *t, const char *name)
{
	for (size_t i = 0; i < t->nfonts; i++)
		if (strcmp(t->fonts[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
font_set(struct cover_template *t, const char *name, const char *dir,
    const char *file)
{
	int	i = font_index(t, name);
	char	path[4096];

	if (file[0] == '/' || dir == NULL)
		strlcpy_(path, file, sizeof(path));
	else
		snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (i == -1) {
		i = (int)t->nfonts++;
		strlcpy_(t->fonts[i].name, name, sizeof(t->fonts[i].name));
	} else
		free(t->fonts[i].path);
	t->fonts[i].path = xstrdup(path);
	t->fonts[i].std = NULL;		/* an administrator's font is always embedded */
}

/* Next whitespace-separated word of *s, NUL-terminated in place. */
static char *
word(char **s)
{
	char	*w;

	while (**s == ' ' || **s == '\t')
		(*s)++;
	if (**s == '\0')
		return NULL;
	w = *s;
	while (**s && **s != ' ' && **s != '\t')
		(*s)++;
	if (**s)
		*(*s)++ = '\0';
	return w;
}

static int
parse_line(struct cover_template *t, char *s, int lineno, const char *font_dir,
    int *stack, int *depth, char *err, size_t errlen)
{
	struct cover_line	 cl;
	char			*w, *end, bad[96];
	size_t			 k;

	memset(&cl, 0, sizeof(cl));
	cl.line = lineno;
	if ((w = word(&s)) == NULL || w[0] == '#')
		return 0;
	for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		if (strcmp(ops[k].word, w) == 0)
			break;
	if (k == sizeof(ops) / sizeof(ops[0]))
		return cover_err(err, errlen, t->path, lineno, "unknown directive "
		    "\"%.40s\" (text, wrap, rule, box, fill, image, font, if, unless, "
		    "end)", w);
	cl.op = ops[k].op;
	for (int i = 0; i < ops[k].nums; i++) {
		if ((w = word(&s)) == NULL)
			return cover_err(err, errlen, t->path, lineno, "too few "
			    "values; the form is: %s", ops[k].usage);
		errno = 0;
		cl.n[i] = strtod(w, &end);
		if (errno || *end || cl.n[i] < 0 || cl.n[i] > 10000)
			return cover_err(err, errlen, t->path, lineno, "\"%.40s\" is "
			    "not a number from 0 to 10000; the form is: %s", w,
			    ops[k].usage);
	}
	if (ops[k].font) {
		if ((w = word(&s)) == NULL)
			return cover_err(err, errlen, t->path, lineno, "no font; the "
			    "form is: %s", ops[k].usage);
		if ((cl.font = font_index(t, w)) == -1)
			return cover_err(err, errlen, t->path, lineno, "unknown font "
			    "\"%.40s\" (declare it with: font NAME FILE)", w);
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (ops[k].rest && *s == '\0')
		return cover_err(err, errlen, t->path, lineno, "nothing to draw; the "
		    "form is: %s", ops[k].usage);
	if (!ops[k].rest && *s != '\0')
		return cover_err(err, errlen, t->path, lineno, "unexpected \"%.40s\"; "
		    "the form is: %s", s, ops[k].usage);
	switch (cl.op) {
	case OP_FONT:
		if ((w = word(&s)) == NULL || (end = word(&s)) == NULL || word(&s))
			return cover_err(err, errlen, t->path, lineno, "the form is: %s",
			    ops[k].usage);
		if (strlen(w) >= sizeof(t->fonts[0].name) ||
		    (font_index(t, w) == -1 && t->nfonts == COVER_MAX_FONTS))
			return cover_err(err, errlen, t->path, lineno, "too many fonts "
			    "or too long a name");
		font_set(t, w, font_dir, end);
		return 0;
	case OP_IF:
	case OP_IFNOT:
		if (!field_known(t, s, strlen(s)))
			return cover_err(err, errlen, t->path, lineno, "unknown field "
			    "\"%.40s\"", s);
		if (*depth == COVER_MAX_DEPTH)
			return cover_err(err, errlen, t->path, lineno, "if nested too "
			    "deep");
		stack[(*depth)++] = (int)t->n;
		break;
	case OP_END:
		if (*depth == 0)
			return cover_err(err, errlen, t->path, lineno, "end without if");
		t->l[stack[--(*depth)]].skip_to = (int)t->n;
		break;
	default:
		if (check_fields(t, s, bad, sizeof(bad)) == -1)
			return cover_err(err, errlen, t->path, lineno, "%s (fields: "
			    "see docs/templates.md)", bad);
		break;
	}
	if (ops[k].rest)
		cl.text = xstrdup(s);
	if (t->n == COVER_MAX_LINES)
		return cover_err(err, errlen, t->path, lineno, "more than %d "
		    "directives", COVER_MAX_LINES);
	t->l[t->n++] = cl;
	return 0;
}

struct cover_template *
cover_load(const char *path, const char *font_dir, char *err, size_t errlen)
{
	return cover_load_fields(path, font_dir, cover_field_names, err, errlen);
}

struct cover_template *
cover_load_fields(const char *path, const char *font_dir,
    const char *const *fields, char *err, size_t errlen)
{
	struct cover_template	*t;
	struct buf		 b;
	FILE			*f;
	char			*line = NULL;
	size_t			 cap = 0;
	ssize_t			 len;
	int			 lineno = 0, start = 0, stack[COVER_MAX_DEPTH], depth = 0;
	int			 rv = 0;

	if ((f = fopen(path, "re")) == NULL) {
		cover_err(err, errlen, path, 0, "cannot be read: %s", strerror(errno));
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->path = xstrdup(path);
	t->fields = fields;
	t->l = xcalloc(COVER_MAX_LINES, sizeof(*t->l));
	font_set(t, "regular", font_dir, "DejaVuSans.ttf");
	font_set(t, "bold", font_dir, "DejaVuSans-Bold.ttf");
	font_set(t, "mono", font_dir, "DejaVuSansMono.ttf");
	t->fonts[0].std = "Helvetica";
	t->fonts[1].std = "Helvetica-Bold";
	t->fonts[2].std = "Courier";
	buf_init(&b);
	while (rv == 0 && (len = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (b.len == 0)
			start = lineno;
		/* A line ending in a backslash goes on on the next one. */
		if (len > 0 && line[len - 1] == '\\') {
			line[len - 1] = ' ';
			buf_add(&b, line, (size_t)len);
			continue;
		}
		buf_add(&b, line, (size_t)len);
		rv = parse_line(t, buf_cstr(&b), start, font_dir, stack, &depth, err,
		    errlen);
		b.len = 0;
	}
	free(line);
	if (rv == 0 && ferror(f))
		rv = cover_err(err, errlen, path, 0, "read error");
	if (rv == 0 && b.len > 0)
		rv = parse_line(t, buf_cstr(&b), start, font_dir, stack, &depth, err,
		    errlen);
	if (rv == 0 && depth > 0)
		rv = cover_err(err, errlen, path, t->l[stack[depth - 1]].line,
		    "if without end");
	for (size_t i = 0; rv == 0 && i < t->n; i++) {
		const struct cover_font *cf = &t->fonts[t->l[i].font];

		if ((t->l[i].op == OP_TEXT || t->l[i].op == OP_WRAP) &&
		    access(cf->path, R_OK) == -1)
			rv = cover_err(err, errlen, path, t->l[i].line, "font %s: %s "
			    "cannot be read: %s", cf->name, cf->path, strerror(errno));
	}
	buf_free(&b);
	fclose(f);
	if (rv == -1) {
		cover_free(t);
		return NULL;
	}
	cover_warm(t);
	return t;
}

void
cover_free(struct cover_template *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->l[i].text);
	for (size_t i = 0; i < t->nfonts; i++)
		free(t->fonts[i].path);
	free(t->l);
	free(t->path);
	free(t);
}

static const char *
field_value(const struct cover_field *f, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(f[i].name) == len && strncmp(f[i].name, name, len) == 0)
			return f[i].value ? f[i].value : "";
	for (size_t i = 0; i < sizeof(cover_builtin) / sizeof(cover_builtin[0]); i++)
		if (strlen(cover_builtin[i].name) == len &&
		    strncmp(cover_builtin[i].name, name, len) == 0)
			return cover_builtin[i].value;
	return "";
}

/* Does s name a field a packet or its recipient fills in (any but the
 * site's own)? */
static int
packet_text(const char *s)
{
	const char	*p, *q;

	for (p = s; (p = strchr(p, '{')) != NULL && (q = strchr(p, '}')) != NULL;
	    p = q + 1) {
		size_t	len = (size_t)(q - p - 1), i;

		for (i = 0; cover_site_fields[i]; i++)
			if (strlen(cover_site_fields[i]) == len &&
			    strncmp(cover_site_fields[i], p + 1, len) == 0)
				break;
		if (cover_site_fields[i] == NULL)
			return 1;
	}
	return 0;
}

/* s with its {fields} filled in. */
static char *
expand(const char *s, const struct cover_field *f, size_t n)
{
	struct buf	 b;
	const char	*p, *q;
	char		*out;

	buf_init(&b);
	while ((p = strchr(s, '{')) != NULL && (q = strchr(p, '}')) != NULL) {
		buf_add(&b, s, (size_t)(p - s));
		buf_addstr(&b, field_value(f, n, p + 1, (size_t)(q - p - 1)));
		s = q + 1;
	}
	buf_addstr(&b, s);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* A field value drawn as one line: control characters become spaces. */
static void
flatten(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* s in Windows-1252 (the standard fonts' WinAnsiEncoding), or NULL if
 * it has a character that encoding lacks. */
static char *
to_winansi(const char *s)
{
	iconv_t	 cd = iconv_open("CP1252", "UTF-8");
	size_t	 inleft = strlen(s), outleft = inleft + 1;
	char	*out, *in = (char *)s, *o;

	if (cd == (iconv_t)-1)
		return NULL;
	o = out = xmalloc(outleft);
	if (iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
		free(out);
		out = NULL;
	} else
		*o = '\0';
	iconv_close(cd);
	return out;
}

/*
 * Can every text the template draws be set in the standard PDF fonts
 * (Helvetica, Courier: Windows-1252)?  Then the predeclared fonts need not
 * be embedded (a cover of a few KB instead of about 180); a name like
 * Nguyễn needs DejaVu, embedded.
 */
static int
all_winansi(const struct cover_template *t, const struct cover_field *fields,
    size_t nfields)
{
	int	ok = 1;

	for (size_t i = 0; ok && i < t->n; i++) {
		char *s, *w;

		if (t->l[i].op != OP_TEXT && t->l[i].op != OP_WRAP)
			continue;
		s = expand(t->l[i].text, fields, nfields);
		ok = (w = to_winansi(s)) != NULL;
		free(w);
		free(s);
	}
	return ok;
}

/* Parse the faces a template's text may be cut from now: the worker loads
 * the template before it forks a renderer (src/render.c), so each renderer
 * starts with them.  One that cannot be read is left to cover_draw(),
 * which embeds the whole font. */
static void
cover_warm(const struct cover_template *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->l[i].op == OP_TEXT || t->l[i].op == OP_WRAP)
			coverfont_warm(t->fonts[t->l[i].font].path);
}

/* The sheet's own encoding, of what every text line may draw (an `if` is
 * not decided here); 0, or -1 where there is none. */
static int
sheet_begin(struct coverfont *sh, const struct cover_template *t,
    const struct cover_field *fields, size_t nfields, HPDF_Doc pdf)
{
	for (size_t i = 0; i < t->n; i++) {
		char	*s;

		if (t->l[i].op != OP_TEXT && t->l[i].op != OP_WRAP)
			continue;
		s = expand(t->l[i].text, fields, nfields);
		flatten(s);
		coverfont_add(sh, t->l[i].font, s);
		free(s);
	}
	return coverfont_begin(sh, pdf);
}

/* What a line of text is drawn with: its font's bytes are one or two a
 * character, with a space of its own. */
struct cover_pen {
	HPDF_Page		 page;
	double			 size;
	size_t			 unit;
	char			 sp[3];
	const struct coverfont *sh;		/* its encoding, or NULL */
	const unsigned int	*width;		/* of its codes in the font */
};

/* How wide the n bytes at s are on the page. */
static double
pen_width(const struct cover_pen *pen, const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	unsigned long		 w = 0;
	char			*c;
	double			 r;

	if (pen->width == NULL) {
		c = xstrndup(s, n);
		r = HPDF_Page_TextWidth(pen->page, c);
		free(c);
		return r;
	}
	for (size_t i = 0; i + pen->unit <= n; i += pen->unit)
		w += pen->width[pen->unit == 2 ? (size_t)(p[i] - 1) * 255 + p[i + 1] - 1 :
		    (size_t)p[i] - 1];
	/* As libhpdf reckons it: thousandths of the size, in float. */
	return (HPDF_REAL)w * (HPDF_REAL)pen->size / 1000;
}

/* The pen for font fi at size, its text in the sheet's encoding or not. */
static void
pen_init(struct cover_pen *pen, HPDF_Page page, double size,
    const struct coverfont *sh, int fi)
{
	memset(pen, 0, sizeof(*pen));
	pen->page = page;
	pen->size = size;
	pen->unit = 1;
	pen->sp[0] = ' ';
	if (sh) {
		char	*e = coverfont_encode(sh, " ");

		strlcpy_(pen->sp, e, sizeof(pen->sp));
		free(e);
		pen->unit = sh->wide ? 2 : 1;
		pen->sh = sh;
		pen->width = sh->width[fi];
	}
}

/* The next word of *s (characters of unit bytes, words parted by the
 * space sp) and its length in n; NULL after the last. */
static const char *
next_word(const char **s, size_t unit, const char *sp, size_t *n)
{
	const char	*p = *s, *w;

	while (*p && memcmp(p, sp, unit) == 0)
		p += unit;
	if (*p == '\0')
		return NULL;
	for (w = p; *p && memcmp(p, sp, unit) != 0; p += unit)
		;
	*n = (size_t)(p - w);
	*s = p;
	return w;
}

/* Words of text, in the font's own bytes, onto lines no wider than width;
 * each line drawn at y, y + 1.25 size, ... (points from the top).  libhpdf
 * neither kerns nor spaces letters here, so a line is as wide as its words
 * and spaces: each word is measured once.  The widest line's width and
 * the last line's y in *wide and *last. */
static void
draw_wrapped(const struct cover_pen *pen, double ph, double x, double y,
    double width, const char *text, double *wide, double *last)
{
	struct buf	 line;
	const char	*p, *s = text;
	double		 space = pen_width(pen, pen->sp, pen->unit), lw = 0;
	size_t		 n;

	buf_init(&line);
	while ((p = next_word(&s, pen->unit, pen->sp, &n)) != NULL) {
		double ww = pen_width(pen, p, n);

		if (line.len && lw + space + ww > width) {
			HPDF_Page_TextOut(pen->page, (HPDF_REAL)x, (HPDF_REAL)(ph - y),
			    buf_cstr(&line));
			*wide = lw > *wide ? lw : *wide;
			y += pen->size * 1.25;
			line.len = 0;
		}
		if (line.len) {
			buf_add(&line, pen->sp, pen->unit);
			lw += space;
		} else
			lw = 0;
		buf_add(&line, p, n);
		lw += ww;
	}
	if (line.len)
		HPDF_Page_TextOut(pen->page, (HPDF_REAL)x, (HPDF_REAL)(ph - y),
		    buf_cstr(&line));
	*wide = lw > *wide ? lw : *wide;
	*last = y;
	buf_free(&line);
}

/* The image file at its place; where it went in *at (nothing drawn: an
 * empty one). */
static int
draw_image(const struct cover_template *t, const struct cover_line *cl,
    HPDF_Doc pdf, HPDF_Page page, double ph, const char *file,
    struct cover_region *at, char *err, size_t errlen)
{
	HPDF_Image	img;
	double		iw, ih, h;

	if (file[0] == '\0')
		return 0;	/* no logo configured */
	if ((img = HPDF_LoadPngImageFromFile(pdf, file)) == NULL) {
		HPDF_ResetError(pdf);
		return cover_err(err, errlen, t->path, cl->line, "image %.200s cannot "
		    "be read as PNG", file);
	}
	iw = HPDF_Image_GetWidth(img);
	ih = HPDF_Image_GetHeight(img);
	h = iw > 0 ? cl->n[2] * ih / iw : 0;
	HPDF_Page_DrawImage(page, img, (HPDF_REAL)cl->n[0],
	    (HPDF_REAL)(ph - cl->n[1] - h), (HPDF_REAL)cl->n[2], (HPDF_REAL)h);
	*at = (struct cover_region){ cl->n[0], cl->n[1], cl->n[0] + cl->n[2],
	    cl->n[1] + h };
	return 0;
}

/* How a font is drawn with on this sheet. */
enum cover_enc { COVER_UNUSED, COVER_WINANSI, COVER_SHEET, COVER_UTF8 };

/* The whole font with libhpdf's UTF-8 encoding, where no subset can be
 * made. */
static HPDF_Font
whole_font(HPDF_Doc pdf, const char *path)
{
	const char	*name;

	/* A second page drawn into one document (the accounting report)
	 * registers the encodings again: not an error. */
	if (HPDF_UseUTFEncodings(pdf) != HPDF_OK)
		HPDF_ResetError(pdf);
	if ((name = HPDF_LoadTTFontFromFile(pdf, path, HPDF_TRUE)) == NULL)
		return NULL;
	return HPDF_GetFont(pdf, name, "UTF-8");
}

/* The fonts the sheet draws with: the standard ones where Windows-1252
 * holds all its text, else each cut to what it draws (src/coverfont.c). */
static void
load_fonts(const struct cover_template *t, HPDF_Doc pdf,
    const struct cover_field *fields, size_t nfields, struct coverfont *sh,
    HPDF_Font *font, enum cover_enc *enc)
{
	int	std = all_winansi(t, fields, nfields), begun = 0;

	for (size_t i = 0; i < t->nfonts; i++) {
		int	used = 0;

		for (size_t k = 0; k < t->n; k++)
			used |= (t->l[k].op == OP_TEXT || t->l[k].op == OP_WRAP) &&
			    t->l[k].font == (int)i;
		font[i] = NULL;
		enc[i] = COVER_UNUSED;
		if (!used)
			continue;
		if (std && t->fonts[i].std != NULL) {
			font[i] = HPDF_GetFont(pdf, t->fonts[i].std, "WinAnsiEncoding");
			enc[i] = COVER_WINANSI;
		} else {
			if (!begun++)
				sheet_begin(sh, t, fields, nfields, pdf);
			if ((font[i] = coverfont_load(sh, (int)i, t->fonts[i].path,
			    pdf)) != NULL)
				enc[i] = COVER_SHEET;
			else {
				font[i] = whole_font(pdf, t->fonts[i].path);
				enc[i] = COVER_UTF8;
			}
		}
		if (font[i] == NULL)
			HPDF_ResetError(pdf);
	}
}

/* A line's text drawn, and where in *at: from above its tallest capital
 * with an accent to below its descenders, as wide as it is set. */
static void
draw_text(const struct cover_line *cl, HPDF_Page page, double ph,
    HPDF_Font font, enum cover_enc enc, const struct coverfont *sh,
    const struct cover_field *fields, size_t nfields, struct cover_region *at,
    struct buf *drawn)
{
	struct cover_pen	 pen;
	char			*s = expand(cl->text, fields, nfields), *w;
	double			 size = cl->op == OP_TEXT ? cl->n[2] : cl->n[3];
	double			 wide = 0, last = cl->n[1];

	/* The text in the font's own bytes. */
	flatten(s);
	if (drawn) {
		buf_addstr(drawn, s);
		buf_addstr(drawn, "\n");
	}
	if (enc == COVER_WINANSI) {
		w = to_winansi(s);	/* all_winansi() said it can */
		free(s);
		s = w ? w : xstrdup("");
	} else if (enc == COVER_SHEET) {
		w = coverfont_encode(sh, s);
		free(s);
		s = w;
	}
	pen_init(&pen, page, size, enc == COVER_SHEET ? sh : NULL, cl->font);
	HPDF_Page_SetGrayFill(page, 0);
	HPDF_Page_BeginText(page);
	HPDF_Page_SetFontAndSize(page, font, (HPDF_REAL)size);
	if (cl->op == OP_TEXT) {
		HPDF_Page_TextOut(page, (HPDF_REAL)cl->n[0], (HPDF_REAL)(ph - cl->n[1]),
		    s);
		wide = pen_width(&pen, s, strlen(s));
	} else
		draw_wrapped(&pen, ph, cl->n[0], cl->n[1], cl->n[2], s, &wide, &last);
	HPDF_Page_EndText(page);
	free(s);
	*at = (struct cover_region){ cl->n[0], cl->n[1] - 1.2 * size,
	    cl->n[0] + wide, last + 0.35 * size };
}

/* Where line cl drew, into reg if a packet put anything there. */
static void
region_add(struct cover_regions *reg, const struct cover_line *cl,
    const struct cover_region *at)
{
	int	packet = cl->op == OP_IMAGE ? strcmp(cl->text, "{logo}") != 0 :
		    packet_text(cl->text);

	if (reg == NULL || !packet || at->x1 <= at->x0 || at->y1 <= at->y0)
		return;
	if (reg->n == COVER_MAX_REGIONS)
		reg->known = 0;
	else
		reg->r[reg->n++] = *at;
}

int
cover_draw(const struct cover_template *t, HPDF_Doc pdf, HPDF_Page page,
    const struct cover_field *fields, size_t nfields, char *err, size_t errlen)
{
	return cover_draw_regions(t, pdf, page, fields, nfields, NULL, err,
	    errlen);
}

void
cover_regions_init(struct cover_regions *reg)
{
	memset(reg, 0, sizeof(*reg));
	buf_init(&reg->drawn);
}

void
cover_regions_free(struct cover_regions *reg)
{
	buf_free(&reg->drawn);
	reg->n = 0;
	reg->known = 0;
}

int
cover_draw_regions(const struct cover_template *t, HPDF_Doc pdf,
    HPDF_Page page, const struct cover_field *fields, size_t nfields,
    struct cover_regions *reg, char *err, size_t errlen)
{
	struct cover_region	 at;
	struct coverfont	 sh;
	HPDF_Font		 font[COVER_MAX_FONTS];
	enum cover_enc		 enc[COVER_MAX_FONTS];
	double			 ph = HPDF_Page_GetHeight(page);
	char			*s;
	int			 rv = 0;

	memset(&sh, 0, sizeof(sh));
	if (reg) {
		reg->n = 0;
		reg->known = 1;
		reg->drawn.len = 0;
	}
	load_fonts(t, pdf, fields, nfields, &sh, font, enc);
	for (size_t i = 0; rv == 0 && i < t->n; i++) {
		const struct cover_line *cl = &t->l[i];
		const char *v;

		switch (cl->op) {
		case OP_IF:
		case OP_IFNOT:
			v = field_value(fields, nfields, cl->text, strlen(cl->text));
			if ((v[0] == '\0') == (cl->op == OP_IF))
				i = (size_t)cl->skip_to;
			break;
		case OP_TEXT:
		case OP_WRAP:
			if (font[cl->font] == NULL) {
				rv = cover_err(err, errlen, t->path, cl->line, "font "
				    "%s (%s) cannot be loaded", t->fonts[cl->font].name,
				    t->fonts[cl->font].path);
				break;
			}
			draw_text(cl, page, ph, font[cl->font], enc[cl->font], &sh,
			    fields, nfields, &at, reg ? &reg->drawn : NULL);
			region_add(reg, cl, &at);
			/* A font drawn whole (no subset could be cut) is
			 * libhpdf's own encoding: its text layer is not relied
			 * on to read back. */
			if (reg && enc[cl->font] == COVER_UTF8)
				reg->known = 0;
			break;
		case OP_RULE:
			HPDF_Page_SetLineWidth(page, (HPDF_REAL)cl->n[4]);
			HPDF_Page_MoveTo(page, (HPDF_REAL)cl->n[0], (HPDF_REAL)(ph - cl->n[1]));
			HPDF_Page_LineTo(page, (HPDF_REAL)cl->n[2], (HPDF_REAL)(ph - cl->n[3]));
			HPDF_Page_Stroke(page);
			break;
		case OP_BOX:
		case OP_FILL:
			/* Colour and width before the path: not while building it. */
			if (cl->op == OP_BOX)
				HPDF_Page_SetLineWidth(page, (HPDF_REAL)cl->n[4]);
			else
				HPDF_Page_SetGrayFill(page, (HPDF_REAL)(cl->n[4] > 1 ?
				    1 : cl->n[4]));
			HPDF_Page_Rectangle(page, (HPDF_REAL)cl->n[0],
			    (HPDF_REAL)(ph - cl->n[1] - cl->n[3]), (HPDF_REAL)cl->n[2],
			    (HPDF_REAL)cl->n[3]);
			if (cl->op == OP_BOX)
				HPDF_Page_Stroke(page);
			else {
				HPDF_Page_Fill(page);
				HPDF_Page_SetGrayFill(page, 0);
			}
			break;
		case OP_IMAGE:
			s = expand(cl->text, fields, nfields);
			at = (struct cover_region){ 0, 0, 0, 0 };
			rv = draw_image(t, cl, pdf, page, ph, s, &at, err, errlen);
			free(s);
			region_add(reg, cl, &at);
			break;
		case OP_FONT:
		case OP_END:
			break;
		}
		if (rv == 0 && HPDF_GetError(pdf) != HPDF_OK) {
			rv = cover_err(err, errlen, t->path, cl->line, "cannot be drawn "
			    "(libhpdf error 0x%04lx)", (unsigned long)HPDF_GetError(pdf));
			HPDF_ResetError(pdf);
		}
	}
	coverfont_end(&sh);
	if (reg)
		buf_cstr(&reg->drawn);		/* NUL-terminated for the gate */
	return rv;
}
