/*
 * bench/ocr_bench: pages per second of roigate's OCR (src/ocr.c, the
 * Tesseract C API, one handle, one thread) on page images, for bench/ocr
 * to set beside the tesseract command on the same files.
 *
 *   ocr_bench DPI IMAGE...
 *
 * Each image is decoded to 8-bit gray with MuPDF first, outside the timing;
 * the time is ocr_read alone (loading the English data is printed apart).
 * Prints one line: "pages N init S ocr S words N".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mupdf/fitz.h>

#include "ocr.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The image at path as 8-bit gray, no alpha. */
static fz_pixmap *
load_gray(fz_context *ctx, const char *path)
{
	fz_image	*img = fz_new_image_from_file(ctx, path);
	fz_pixmap	*pix = fz_get_pixmap_from_image(ctx, img, NULL, NULL, NULL, NULL);
	fz_pixmap	*gray = pix;

	if (pix->n != 1 || pix->alpha)
		gray = fz_convert_pixmap(ctx, pix, fz_device_gray(ctx), NULL, NULL,
		    fz_default_color_params, 0);
	if (gray != pix)
		fz_drop_pixmap(ctx, pix);
	fz_drop_image(ctx, img);
	return gray;
}

int
main(int argc, char *argv[])
{
	fz_context	*ctx;
	fz_pixmap	**pix;
	struct ocr_page	 op;
	char		 err[256];
	double		 t, init, ocr = 0;
	size_t		 words = 0;
	int		 dpi, n = argc - 2;

	if (argc < 3 || (dpi = atoi(argv[1])) < 50) {
		fprintf(stderr, "usage: ocr_bench DPI IMAGE...\n");
		return 64;
	}
	if ((ctx = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT)) == NULL)
		return 70;
	fz_register_document_handlers(ctx);
	pix = calloc((size_t)n, sizeof(*pix));
	for (int i = 0; i < n; i++)
		pix[i] = load_gray(ctx, argv[i + 2]);
	t = now();
	if (ocr_init(NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "ocr_bench: %s\n", err);
		return 69;
	}
	init = now() - t;
	for (int i = 0; i < n; i++) {
		t = now();
		if (ocr_read(pix[i]->samples, pix[i]->w, pix[i]->h,
		    (int)pix[i]->stride, dpi, &op) == -1) {
			fprintf(stderr, "ocr_bench: %s: OCR failed\n", argv[i + 2]);
			return 70;
		}
		ocr += now() - t;
		words += op.n;
		ocr_page_free(&op);
		fz_drop_pixmap(ctx, pix[i]);
	}
	printf("pages %d init %.3f ocr %.3f words %zu\n", n, init, ocr, words);
	free(pix);
	fz_drop_context(ctx);
	return 0;
}
