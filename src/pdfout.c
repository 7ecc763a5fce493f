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
pdfout_save(struct out *w, int dirfd, const char *name, char sha256[65],
    char *err, size_t errlen)
{
	char	path[64];
	int	fd;

	if (unlinkat(dirfd, name, 0) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot replace %s: %s", name, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	if (strlen(path) >= sizeof(path) - 1 ||
	    HPDF_SaveToFile(w->pdf, path) != HPDF_OK) {
		snprintf(err, errlen, "cannot write the output PDF (libhpdf error "
		    "0x%04x, detail %u)", (unsigned)w->hs.error,
		    (unsigned)w->hs.detail);
		return -1;
	}
	/* What was sent, with the patient's records in it: its owner only. */
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fchmod(fd, 0600) == -1 || fsync(fd) == -1 || fsync(dirfd) == -1 ||
	    sha256_fd(fd, sha256, NULL) == -1) {
		snprintf(err, errlen, "cannot write the output PDF: %s",
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
