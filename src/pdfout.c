/*
 * The output PDF (worker): libhpdf, each page one image of the paper's
 * size (CCITT G4 for fax, JPEG otherwise), behind the cover sheet that
 * src/cover.c draws; saved, fsynced and hashed.  Nothing of an input page
 * but its pixels reaches this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hpdf.h>
#include <mupdf/fitz.h>

#include "pdfout.h"
#include "raster.h"
#include "render.h"
#include "util.h"

void
pdfout_error(HPDF_STATUS error, HPDF_STATUS detail, void *user)
{
	struct hpdf_state *s = user;

	if (s->error == HPDF_OK) {
		s->error = error;
		s->detail = detail;
	}
}

int
pdfout_page(struct out *w, fz_pixmap *pix)
{
	HPDF_Page	page;
	HPDF_Image	img = NULL;

	page = HPDF_AddPage(w->pdf);
	HPDF_Page_SetWidth(page, (HPDF_REAL)w->o->paper_w);
	HPDF_Page_SetHeight(page, (HPDF_REAL)w->o->paper_h);
	if (w->o->profile == RENDER_FAX) {
		size_t	stride = ((size_t)pix->w + 7) / 8;

		for (int y = 0; y < pix->h; y++)
			raster_pack_row(pix->samples + (size_t)y * pix->stride,
			    w->bits + (size_t)y * stride, pix->w);
		/* 1 = black: libhpdf wants HPDF_FALSE for that (DESIGN.md). */
		img = HPDF_Image_LoadRaw1BitImageFromMem(w->pdf, w->bits,
		    (HPDF_UINT)pix->w, (HPDF_UINT)pix->h, (HPDF_UINT)stride,
		    HPDF_FALSE, HPDF_TRUE);
	} else {
		unsigned char	*jpg;
		unsigned long	 len;

		if (raster_jpeg(pix, w->o->jpeg_quality, w->o->xdpi, w->o->ydpi,
		    &jpg, &len) == 0)
			img = HPDF_LoadJpegImageFromMem(w->pdf, jpg, (HPDF_UINT)len);
		free(jpg);
	}
	if (img == NULL || w->hs.error != HPDF_OK)
		return -1;
	HPDF_Page_DrawImage(page, img, 0, 0, (HPDF_REAL)w->o->paper_w,
	    (HPDF_REAL)w->o->paper_h);
	w->pages++;
	return w->hs.error == HPDF_OK ? 0 : -1;
}

int
pdfout_save(struct out *w, int fd, char sha256[65], char *err, size_t errlen)
{
	HPDF_BYTE	buf[65536];
	HPDF_UINT32	n;
	HPDF_STATUS	st;

	/* Through libhpdf's memory stream to the descriptor: the renderer
	 * opens no file (src/sandbox.c). */
	if (HPDF_SaveToStream(w->pdf) != HPDF_OK) {
		snprintf(err, errlen, "cannot write the output PDF (libhpdf error "
		    "0x%04x, detail %u)", (unsigned)w->hs.error,
		    (unsigned)w->hs.detail);
		return -1;
	}
	HPDF_ResetStream(w->pdf);
	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		goto fail;
	for (;;) {
		n = sizeof(buf);
		st = HPDF_ReadFromStream(w->pdf, buf, &n);
		if (n > 0 && write_all(fd, buf, n) == -1)
			goto fail;
		if (st == HPDF_STREAM_EOF)
			break;
		if (st != HPDF_OK) {
			snprintf(err, errlen, "cannot write the output PDF (libhpdf "
			    "stream error 0x%04x)", (unsigned)st);
			return -1;
		}
	}
	if (fsync(fd) == -1 || sha256_fd(fd, sha256, NULL) == -1)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot write the output PDF: %s", strerror(errno));
	return -1;
}
