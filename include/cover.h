/*
 * Cover sheet templates (templates/NAME.tpl): a line-based drawing
 * language an administrator can copy and edit without recompiling.  See
 * docs/templates.md.  Parsed here, drawn with libhpdf.
 */
#ifndef COVER_H
#define COVER_H

#include <stddef.h>

#include <hpdf.h>

#include "util.h"

struct cover_template;

/* The values {name} stands for; a field that is "" is false for `if`. */
struct cover_field {
	const char	*name;
	const char	*value;
};

/* Parse a template; NULL with "FILE line N: ..." in err. */
struct cover_template	*cover_load(const char *path, const char *font_dir,
			    char *err, size_t errlen);
/* The same language with other fields (the accounting report's). */
struct cover_template	*cover_load_fields(const char *path, const char *font_dir,
			    const char *const *fields, char *err, size_t errlen);
void			 cover_free(struct cover_template *);

/* The field names a template may use, NULL-terminated. */
extern const char *const cover_field_names[];

#define COVER_MAX_REGIONS	64

/*
 * Where a drawn sheet shows what a packet or its recipient put there: the
 * rectangle of every text or wrap line with a field that is not the
 * site's own (cover_site_fields), and of every image but the logo, in
 * page points from the top-left corner.  known is 0 where they cannot be
 * told (more than COVER_MAX_REGIONS, a font drawn whole, whose text the
 * leak gate does not trust to read back): then the whole page is read.
 * drawn holds every text and wrap line's text as drawn, one a line, for
 * the gate to find in the output's text layer.
 */
struct cover_region {
	double	x0, y0, x1, y1;
};

struct cover_regions {
	struct cover_region	r[COVER_MAX_REGIONS];
	size_t			n;
	int			known;
	struct buf		drawn;
};

/* The fields a site sets once for every packet (roigate.conf [cover]) and
 * the fixed statements: the same on every sheet, like the template's own
 * words. */
extern const char *const cover_site_fields[];

/* Draw onto page (the paper already sized).  0, or -1 with err. */
int	cover_draw(const struct cover_template *, HPDF_Doc pdf, HPDF_Page page,
	    const struct cover_field *fields, size_t nfields, char *err,
	    size_t errlen);
/* The same, with where its fields went in reg (from cover_regions_init;
 * cover_regions_free after). */
int	cover_draw_regions(const struct cover_template *, HPDF_Doc pdf,
	    HPDF_Page page, const struct cover_field *fields, size_t nfields,
	    struct cover_regions *reg, char *err, size_t errlen);
void	cover_regions_init(struct cover_regions *);
void	cover_regions_free(struct cover_regions *);

#endif
