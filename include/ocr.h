/*
 * Reading a page's pixels (worker): Tesseract through its C API, one
 * handle per process, loaded once before any document is read (a later
 * sandbox will not let the data file be opened afterwards).  See
 * src/ocr.c.
 */
#ifndef OCR_H
#define OCR_H

#include <stddef.h>

/* Where Debian's tesseract-ocr-eng puts eng.traineddata. */
#define OCR_DATA_DIR	"/usr/share/tesseract-ocr/5/tessdata"

/* One word as Tesseract read it, in pixels of the image it was given. */
struct ocr_word {
	char	*text;		/* UTF-8 */
	int	 x0, y0, x1, y1;
	int	 line;		/* the first word of a text line */
};

struct ocr_page {
	struct ocr_word	*w;
	size_t		 n, cap;
};

/* Load the English data from datadir (NULL: OCR_DATA_DIR) once; later
 * calls do nothing.  0, or -1 with the reason in err. */
int	ocr_init(const char *datadir, char *err, size_t errlen);
/* 1 if ocr_init has succeeded in this process. */
int	ocr_ready(void);
/* Before the sandbox: Tesseract's messages to stderr, not to a file. */
void	ocr_sandboxed(void);
/* The words of an 8-bit gray image at dpi, read where it is not white
 * (none in an image white all over), their boxes in the image's pixels.
 * 0, or -1 (not initialized, or Tesseract failed). */
int	ocr_read(const unsigned char *gray, int w, int h, int stride, int dpi,
	    struct ocr_page *out);
/* A rectangle of an image, in its pixels. */
struct ocr_rect {
	int	x, y, w, h;
};
/* The words in each of n rectangles of the image, one after the other
 * into out, their boxes in the whole image's pixels.  0, or -1. */
int	ocr_read_rects(const unsigned char *gray, int w, int h, int stride,
	    int dpi, const struct ocr_rect *, size_t n, struct ocr_page *out);
void	ocr_page_free(struct ocr_page *);

#endif
