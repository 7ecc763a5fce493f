/*
 * Pages to pixels (worker).  True redaction here is done on pixels: each
 * input page is drawn on a bitmap of the output paper, the boxes are
 * painted black into that bitmap, and only the bitmap goes on (packed to
 * 1 bit for fax, JPEG for the document profile).  Text under a box is
 * gone with the pixels that showed it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <jpeglib.h>
#include <mupdf/fitz.h>

#include "boxes.h"
#include "raster.h"
#include "reader.h"
#include "render.h"

int
raster_jpeg(fz_pixmap *pix, int quality, int xdpi, int ydpi,
    unsigned char **buf, unsigned long *len)
{
	struct jpeg_compress_struct	cinfo;
	struct jpeg_error_mgr		jerr;
	int				n = pix->n;

	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	*buf = NULL;
	*len = 0;
	jpeg_mem_dest(&cinfo, buf, len);
	cinfo.image_width = (JDIMENSION)pix->w;
	cinfo.image_height = (JDIMENSION)pix->h;
	cinfo.input_components = n;
	cinfo.in_color_space = n == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, quality, TRUE);
	cinfo.density_unit = 1;
	cinfo.X_density = (UINT16)xdpi;
	cinfo.Y_density = (UINT16)ydpi;
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		JSAMPROW row = pix->samples + (size_t)cinfo.next_scanline * pix->stride;
		jpeg_write_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	return *len > 0 ? 0 : -1;
}

/* Gray to 1-bit, 1 = black, eight pixels a byte, without branches. */
void
raster_pack_row(const unsigned char *s, unsigned char *d, int w)
{
	int	x = 0;

#ifdef __SSE2__
	/* Sixteen pixels at a time: a signed compare after flipping the top
	 * bit is an unsigned one; movemask puts pixel 0 in bit 0, so each
	 * byte's bits are reversed (pixel 0 is the most significant bit). */
	static unsigned char	rev[256];
	const __m128i		flip = _mm_set1_epi8((char)0x80);
	const __m128i		t = _mm_set1_epi8((char)(RASTER_FAX_THRESHOLD ^ 0x80));

	if (rev[1] == 0)
		for (int i = 0; i < 256; i++)
			for (int b = 0; b < 8; b++)
				rev[i] |= (unsigned char)(((i >> b) & 1) << (7 - b));
	for (; x + 16 <= w; x += 16, s += 16) {
		__m128i	v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)s), flip);
		int	m = _mm_movemask_epi8(_mm_cmplt_epi8(v, t));

		*d++ = rev[m & 0xff];
		*d++ = rev[(m >> 8) & 0xff];
	}
#endif
	for (; x + 8 <= w; x += 8, s += 8)
		*d++ = (unsigned char)((s[0] < RASTER_FAX_THRESHOLD) << 7 |
		    (s[1] < RASTER_FAX_THRESHOLD) << 6 | (s[2] < RASTER_FAX_THRESHOLD) << 5 |
		    (s[3] < RASTER_FAX_THRESHOLD) << 4 | (s[4] < RASTER_FAX_THRESHOLD) << 3 |
		    (s[5] < RASTER_FAX_THRESHOLD) << 2 | (s[6] < RASTER_FAX_THRESHOLD) << 1 |
		    (s[7] < RASTER_FAX_THRESHOLD));
	if (x < w) {
		unsigned char b = 0;

		for (int i = 0; x + i < w; i++)
			b |= (unsigned char)((s[i] < RASTER_FAX_THRESHOLD) << (7 - i));
		*d = b;
	}
}

/* Draw the list onto pix (white first) through ctm. */
static void
draw(fz_context *ctx, fz_display_list *list, fz_pixmap *pix, fz_matrix ctm,
    int fast_images)
{
	fz_device	*dev = NULL;

	fz_var(dev);
	fz_try(ctx) {
		fz_clear_pixmap_with_value(ctx, pix, 255);
		dev = fz_new_draw_device(ctx, fz_identity, pix);
		if (fast_images)
			fz_enable_device_hints(ctx, dev, FZ_DONT_INTERPOLATE_IMAGES);
		fz_run_display_list(ctx, list, dev, ctm, fz_infinite_rect,
		    &reader_cookie);
		fz_close_device(ctx, dev);
	}
	fz_always(ctx)
		fz_drop_device(ctx, dev);
	fz_catch(ctx) {
		fz_drop_pixmap(ctx, pix);
		fz_rethrow(ctx);
	}
}

fz_pixmap *
raster_gray(fz_context *ctx, fz_display_list *list, fz_rect bounds, int dpi)
{
	fz_matrix	 ctm = fz_concat(fz_translate(-bounds.x0, -bounds.y0),
			    fz_scale(dpi / 72.0f, dpi / 72.0f));
	fz_irect	 ir = fz_round_rect(fz_transform_rect(bounds, ctm));
	fz_pixmap	*pix;

	pix = fz_new_pixmap(ctx, fz_device_gray(ctx), ir.x1 - ir.x0,
	    ir.y1 - ir.y0, NULL, 0);
	draw(ctx, list, pix, ctm, 0);
	return pix;
}

fz_pixmap *
raster_page(fz_context *ctx, fz_display_list *list, fz_rect bounds,
    const struct boxes *bx, const struct render_opts *o)
{
	fz_pixmap	*pix;
	fz_colorspace	*cs = o->profile == RENDER_DOCUMENT && o->color ?
			    fz_device_rgb(ctx) : fz_device_gray(ctx);
	int		 pw = (int)(o->paper_w / 72.0 * o->xdpi + 0.5);
	int		 ph = (int)(o->paper_h / 72.0 * o->ydpi + 0.5);
	double		 bw = bounds.x1 - bounds.x0, bh = bounds.y1 - bounds.y0;
	double		 s = fz_min(o->paper_w / bw, o->paper_h / bh);
	double		 ox = (o->paper_w - bw * s) / 2, oy = (o->paper_h - bh * s) / 2;
	fz_matrix	 ctm;

	ctm = fz_translate(-bounds.x0, -bounds.y0);
	ctm = fz_concat(ctm, fz_scale((float)s, (float)s));
	ctm = fz_concat(ctm, fz_translate((float)ox, (float)oy));
	ctm = fz_concat(ctm, fz_scale((float)(o->xdpi / 72.0), (float)(o->ydpi / 72.0)));

	pix = fz_new_pixmap(ctx, cs, pw, ph, NULL, 0);
	/* Going to 1 bit, smoothing a scan's pixels costs three quarters of
	 * the time and shows nothing. */
	draw(ctx, list, pix, ctm, o->profile == RENDER_FAX);
	for (size_t i = 0; i < bx->n; i++) {
		fz_irect ir = fz_round_rect(fz_transform_rect(bx->b[i].r, ctm));

		ir = fz_intersect_irect(ir, fz_pixmap_bbox(ctx, pix));
		if (ir.x1 <= ir.x0 || ir.y1 <= ir.y0)
			continue;	/* off the page */
		for (int y = ir.y0; y < ir.y1; y++)
			memset(pix->samples + (size_t)y * pix->stride +
			    (size_t)ir.x0 * pix->n, 0, (size_t)(ir.x1 - ir.x0) * pix->n);
	}
	return pix;
}

/* ---- orientation ---------------------------------------------------------- */

/* A TIFF's 16- or 32-bit number at p in its byte order. */
static uint32_t
tiff_num(const unsigned char *p, int n, int be)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint32_t)p[be ? i : n - 1 - i] << (8 * (n - 1 - i));
	return v;
}

int
raster_tiff_orientation(int fd, int page)
{
	unsigned char	hd[8], e[12], c[4];
	uint32_t	off;
	int		be, orient = 1;

	/* MuPDF 1.19 draws a TIFF page as stored and ignores the tag (it
	 * honours a JPEG's EXIF one itself), so the IFD chain is walked here:
	 * page n is the n-th directory.  A damaged chain means "as stored". */
	if (pread(fd, hd, 8, 0) != 8 || (memcmp(hd, "II*", 4) != 0 &&
	    memcmp(hd, "MM\0*", 4) != 0))
		return 1;
	be = hd[0] == 'M';
	off = tiff_num(hd + 4, 4, be);
	for (int i = 1; off != 0 && i < page; i++) {
		uint16_t n;

		if (pread(fd, c, 2, off) != 2)
			return 1;
		n = (uint16_t)tiff_num(c, 2, be);
		if (pread(fd, c, 4, (off_t)off + 2 + 12 * (off_t)n) != 4 ||
		    tiff_num(c, 4, be) <= off)	/* forward only: no loops */
			return 1;
		off = tiff_num(c, 4, be);
	}
	if (off == 0 || pread(fd, c, 2, off) != 2)
		return 1;
	for (uint32_t k = 0, n = tiff_num(c, 2, be); k < n && k < 4096; k++) {
		if (pread(fd, e, 12, (off_t)off + 2 + 12 * (off_t)k) != 12)
			return 1;
		if (tiff_num(e, 2, be) == 274 && tiff_num(e + 2, 2, be) == 3) {
			orient = (int)tiff_num(e + 8, 2, be);
			break;
		}
	}
	return orient >= 1 && orient <= 8 ? orient : 1;
}

fz_display_list *
raster_orient(fz_context *ctx, fz_display_list *list, fz_rect *bounds,
    int orient)
{
	float		 w = bounds->x1 - bounds->x0, h = bounds->y1 - bounds->y0;
	/* TIFF/EXIF orientation 2..8: where the stored picture's first row
	 * and column belong, as a matrix in page space (y down). */
	const fz_matrix	 m[9] = {
		[2] = { -1, 0, 0, 1, w, 0 }, [3] = { -1, 0, 0, -1, w, h },
		[4] = { 1, 0, 0, -1, 0, h }, [5] = { 0, 1, 1, 0, 0, 0 },
		[6] = { 0, 1, -1, 0, h, 0 }, [7] = { 0, -1, -1, 0, h, w },
		[8] = { 0, -1, 1, 0, 0, w },
	};
	fz_display_list	*out = NULL;
	fz_device	*dev = NULL;
	fz_matrix	 ctm;
	fz_rect		 nb;

	if (orient < 2 || orient > 8)
		return list;
	ctm = fz_concat(fz_translate(-bounds->x0, -bounds->y0), m[orient]);
	nb = fz_transform_rect(*bounds, ctm);
	fz_var(list);
	fz_var(out);
	fz_var(dev);
	fz_try(ctx) {
		out = fz_new_display_list(ctx, nb);
		dev = fz_new_list_device(ctx, out);
		fz_run_display_list(ctx, list, dev, ctm, fz_infinite_rect,
		    &reader_cookie);
		fz_close_device(ctx, dev);
	}
	fz_always(ctx) {
		fz_drop_device(ctx, dev);
		fz_drop_display_list(ctx, list);
	}
	fz_catch(ctx) {
		fz_drop_display_list(ctx, out);
		fz_rethrow(ctx);
	}
	*bounds = nb;
	return out;
}
