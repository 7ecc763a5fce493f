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
#include <sys/mman.h>
#include <unistd.h>

#include <harfbuzz/hb-subset.h>
#include <hpdf.h>

#include "cover.h"
#include "util.h"

#define COVER_MAX_LINES	500
#define COVER_MAX_FONTS	8
#define COVER_MAX_DEPTH	8

const char *const cover_field_names[] = {
	"org_name", "org_address", "org_phone", "org_fax", "logo",
	"to_name", "to_organization", "to_address",
	"from", "date", "time", "pages", "documents",
	"request_id", "packet_id", "requester", "purpose",
	"note", "urgent", "part2", "part2_notice", "part2_short",
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

/*
 * A font drawn with outside Windows-1252 is embedded, but only the glyphs
 * the sheet uses: HarfBuzz cuts a TrueType subset (DejaVu Sans whole is
 * 183 KB in the PDF), and libhpdf 2.3.0, which reads fonts only from
 * files, loads it from a memfd by its /proc/self/fd name.  The parsed
 * faces are kept for the process (a renderer draws many covers).  When
 * anything here fails the whole font is embedded, as before.
 */
#define COVER_FACES	8

static struct {
	char		*path;
	hb_face_t	*face;
} cover_faces[COVER_FACES];

static hb_face_t *
cover_face(const char *path)
{
	hb_blob_t	*blob;
	hb_face_t	*face;
	size_t		 i;

	for (i = 0; i < COVER_FACES && cover_faces[i].path; i++)
		if (strcmp(cover_faces[i].path, path) == 0)
			return cover_faces[i].face;
	if (i == COVER_FACES ||
	    (blob = hb_blob_create_from_file_or_fail(path)) == NULL)
		return NULL;
	face = hb_face_create(blob, 0);
	hb_blob_destroy(blob);
	if (hb_face_get_glyph_count(face) == 0) {
		hb_face_destroy(face);
		return NULL;
	}
	cover_faces[i].path = xstrdup(path);
	cover_faces[i].face = face;
	return face;
}

/* The characters every text line set in font fi may draw, into u. */
static void
font_chars(const struct cover_template *t, int fi,
    const struct cover_field *fields, size_t nfields, hb_set_t *u)
{
	hb_buffer_t	*b = hb_buffer_create();

	hb_set_add(u, ' ');
	for (size_t i = 0; i < t->n; i++) {
		unsigned int		 n;
		hb_glyph_info_t		*g;
		char			*s;

		if ((t->l[i].op != OP_TEXT && t->l[i].op != OP_WRAP) ||
		    t->l[i].font != fi)
			continue;
		s = expand(t->l[i].text, fields, nfields);
		flatten(s);
		hb_buffer_clear_contents(b);
		hb_buffer_add_utf8(b, s, -1, 0, -1);
		g = hb_buffer_get_glyph_infos(b, &n);
		for (unsigned int k = 0; k < n; k++)
			hb_set_add(u, g[k].codepoint);	/* unshaped: Unicode */
		free(s);
	}
	hb_buffer_destroy(b);
}

/* The subset of font fi for this sheet, loaded into pdf; its libhpdf
 * name, or NULL. */
static const char *
load_subset(const struct cover_template *t, int fi, HPDF_Doc pdf,
    const struct cover_field *fields, size_t nfields)
{
	static const char	 drop[][5] = { "GSUB", "GPOS", "GDEF", "kern" };
	hb_face_t		*face = cover_face(t->fonts[fi].path), *sub = NULL;
	hb_subset_input_t	*in;
	hb_blob_t		*blob = NULL;
	const char		*data, *name = NULL;
	unsigned int		 len;
	char			 path[64];
	int			 fd = -1;

	if (face == NULL || (in = hb_subset_input_create_or_fail()) == NULL)
		return NULL;
	font_chars(t, fi, fields, nfields, hb_subset_input_unicode_set(in));
	/* libhpdf neither shapes nor kerns: the layout tables are dead weight. */
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		hb_set_add(hb_subset_input_set(in, HB_SUBSET_SETS_DROP_TABLE_TAG),
		    hb_tag_from_string(drop[i], 4));
	if ((sub = hb_subset_or_fail(face, in)) != NULL &&
	    (blob = hb_face_reference_blob(sub)) != NULL &&
	    (data = hb_blob_get_data(blob, &len)) != NULL && len > 0 &&
	    (fd = memfd_create("roigate-cover-font", MFD_CLOEXEC)) != -1 &&
	    write_all(fd, data, len) != -1) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		/* libhpdf opens its own descriptor and keeps it until saved. */
		if ((name = HPDF_LoadTTFontFromFile(pdf, path, HPDF_TRUE)) == NULL)
			HPDF_ResetError(pdf);
	}
	if (fd != -1)
		close(fd);
	hb_blob_destroy(blob);
	hb_face_destroy(sub);
	hb_subset_input_destroy(in);
	return name;
}

/* Words of text onto lines no wider than width; each line drawn at y,
 * y + 1.25 size, ... (points from the top). */
static void
draw_wrapped(HPDF_Page page, double ph, double x, double y, double width,
    double size, char *text)
{
	struct buf	 line;
	char		*w, *s = text;

	buf_init(&line);
	while ((w = word(&s)) != NULL) {
		size_t had = line.len;

		if (had)
			buf_add(&line, " ", 1);
		buf_addstr(&line, w);
		if (had && HPDF_Page_TextWidth(page, buf_cstr(&line)) > width) {
			line.len = had;
			HPDF_Page_TextOut(page, (HPDF_REAL)x, (HPDF_REAL)(ph - y),
			    buf_cstr(&line));
			y += size * 1.25;
			line.len = 0;
			buf_addstr(&line, w);
		}
	}
	if (line.len)
		HPDF_Page_TextOut(page, (HPDF_REAL)x, (HPDF_REAL)(ph - y),
		    buf_cstr(&line));
	buf_free(&line);
}

static int
draw_image(const struct cover_template *t, const struct cover_line *cl,
    HPDF_Doc pdf, HPDF_Page page, double ph, const char *file, char *err,
    size_t errlen)
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
	return 0;
}

int
cover_draw(const struct cover_template *t, HPDF_Doc pdf, HPDF_Page page,
    const struct cover_field *fields, size_t nfields, char *err, size_t errlen)
{
	HPDF_Font	 font[COVER_MAX_FONTS];
	int		 winansi[COVER_MAX_FONTS], std;
	double		 ph = HPDF_Page_GetHeight(page);
	char		*s;
	int		 rv = 0;

	/* A second page drawn into one document (the accounting report)
	 * registers the encodings again: not an error. */
	if (HPDF_UseUTFEncodings(pdf) != HPDF_OK)
		HPDF_ResetError(pdf);
	std = all_winansi(t, fields, nfields);
	for (size_t i = 0; i < t->nfonts; i++) {
		const char	*name = NULL;
		int		 used = 0;

		/* Each font is embedded whole: load only those drawn with. */
		for (size_t k = 0; k < t->n; k++)
			used |= (t->l[k].op == OP_TEXT || t->l[k].op == OP_WRAP) &&
			    t->l[k].font == (int)i;
		winansi[i] = std && t->fonts[i].std != NULL;
		if (!used)
			font[i] = NULL;
		else if (winansi[i])
			font[i] = HPDF_GetFont(pdf, t->fonts[i].std, "WinAnsiEncoding");
		else if ((name = load_subset(t, (int)i, pdf, fields, nfields)) !=
		    NULL || (name = HPDF_LoadTTFontFromFile(pdf, t->fonts[i].path,
		    HPDF_TRUE)) != NULL)
			font[i] = HPDF_GetFont(pdf, name, "UTF-8");
		else
			font[i] = NULL;
		if (font[i] == NULL)
			HPDF_ResetError(pdf);
	}
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
			if (font[cl->font] == NULL)
				return cover_err(err, errlen, t->path, cl->line, "font "
				    "%s (%s) cannot be loaded", t->fonts[cl->font].name,
				    t->fonts[cl->font].path);
			s = expand(cl->text, fields, nfields);
			flatten(s);
			if (winansi[cl->font]) {
				char *w = to_winansi(s);	/* all_winansi() said it can */

				free(s);
				s = w ? w : xstrdup("");
			}
			HPDF_Page_SetGrayFill(page, 0);
			HPDF_Page_BeginText(page);
			if (cl->op == OP_TEXT) {
				HPDF_Page_SetFontAndSize(page, font[cl->font],
				    (HPDF_REAL)cl->n[2]);
				HPDF_Page_TextOut(page, (HPDF_REAL)cl->n[0],
				    (HPDF_REAL)(ph - cl->n[1]), s);
			} else {
				HPDF_Page_SetFontAndSize(page, font[cl->font],
				    (HPDF_REAL)cl->n[3]);
				draw_wrapped(page, ph, cl->n[0], cl->n[1], cl->n[2],
				    cl->n[3], s);
			}
			HPDF_Page_EndText(page);
			free(s);
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
			rv = draw_image(t, cl, pdf, page, ph, s, err, errlen);
			free(s);
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
	return rv;
}
