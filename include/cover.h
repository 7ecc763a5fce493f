/*
 * Cover sheet templates (templates/NAME.tpl): a line-based drawing
 * language an administrator can copy and edit without recompiling.  See
 * docs/templates.md.  Parsed here, drawn with libhpdf.
 */
#ifndef COVER_H
#define COVER_H

#include <stddef.h>

#include <hpdf.h>

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

/* Draw onto page (the paper already sized).  0, or -1 with err. */
int	cover_draw(const struct cover_template *, HPDF_Doc pdf, HPDF_Page page,
	    const struct cover_field *fields, size_t nfields, char *err,
	    size_t errlen);

#endif
