/*
 * The fonts of a cover sheet whose text Windows-1252 cannot hold, each cut
 * to the characters the sheet draws and set in an encoding of the sheet's
 * own (src/coverfont.c).  Used by src/cover.c, one sheet at a time:
 * coverfont_add() for each text line, coverfont_begin(), coverfont_load()
 * for each font drawn with, coverfont_encode() for each text, then
 * coverfont_end().
 */
#ifndef COVERFONT_H
#define COVERFONT_H

#include <stddef.h>
#include <stdint.h>

#include <harfbuzz/hb.h>
#include <hpdf.h>

#define COVER_MAX_FONTS		8
#define COVER_MAX_CHARS		1019	/* and one more: 4 blocks of 255 codes */
#define COVER_LOW_CHARS		0x250	/* Latin, looked up in a table */

/* A sheet's encoding: code k (from 0) is the k-th character it draws, in
 * code point order; one byte, k + 1, or two where wide. */
struct coverfont {
	hb_set_t	*chars[COVER_MAX_FONTS];	/* what each font draws */
	hb_codepoint_t	 cp[COVER_MAX_CHARS];		/* code k's character */
	uint16_t	 low[COVER_LOW_CHARS];		/* 1 + the code of one, or 0 */
	size_t		 ncp;
	int		 wide;				/* two-byte codes */
	char		 enc[32];			/* the encoder's name */
	HPDF_Dict	 tounicode;			/* shared by its fonts */
	unsigned int	*width[COVER_MAX_FONTS];	/* of code k, in 1/1000 size */
};

/* What font (an index below COVER_MAX_FONTS) draws: UTF-8 text. */
void		 coverfont_add(struct coverfont *, int font, const char *);
/* The encoding registered in pdf; 0, or -1 (too many characters). */
int		 coverfont_begin(struct coverfont *, HPDF_Doc pdf);
/* The TrueType font at path cut to what font draws, in the encoding; NULL
 * when it cannot be (the caller embeds it whole). */
HPDF_Font	 coverfont_load(struct coverfont *, int font, const char *path,
		    HPDF_Doc pdf);
/* UTF-8 text in the encoding, NUL-terminated; the caller frees it. */
char		*coverfont_encode(const struct coverfont *, const char *);
void		 coverfont_end(struct coverfont *);

/* Parse the font at path now, for the process and the renderers it forks. */
void		 coverfont_warm(const char *path);

#endif
