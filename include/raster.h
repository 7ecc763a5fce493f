/*
 * Pages to pixels and pixels to image data (worker): a page drawn onto
 * the output paper at the profile's resolution with its boxes painted
 * black, then packed to 1 bit or encoded as JPEG.  See src/raster.c.
 */
#ifndef RASTER_H
#define RASTER_H

#include <mupdf/fitz.h>

struct boxes;
struct render_opts;

#define RASTER_FAX_THRESHOLD	160	/* gray below this is black */

/* The page on a fresh pixmap of the paper, scaled to fit and centred,
 * with the boxes painted black. */
fz_pixmap	*raster_page(fz_context *, fz_display_list *, fz_rect bounds,
		    const struct boxes *, const struct render_opts *);
/* The page alone, 8-bit gray at dpi (what OCR reads). */
fz_pixmap	*raster_gray(fz_context *, fz_display_list *, fz_rect bounds,
		    int dpi);
/* The TIFF Orientation tag (1-8; 1: as stored) of page (1-based) of the
 * TIFF file fd. */
int		 raster_tiff_orientation(int fd, int page);
/* The page's list turned upright for orientation 2-8 (TIFF/EXIF values;
 * list is consumed, bounds updated); 1: list itself. */
fz_display_list	*raster_orient(fz_context *, fz_display_list *list,
		    fz_rect *bounds, int orient);
/* Gray to 1-bit, 1 = black, eight pixels a byte. */
void		 raster_pack_row(const unsigned char *s, unsigned char *d, int w);
/* Gray or RGB pixmap as baseline JPEG, in memory (malloc'd). */
int		 raster_jpeg(fz_pixmap *, int quality, int xdpi, int ydpi,
		    unsigned char **buf, unsigned long *len);

#endif
