/*
 * The document pipeline (worker side): every document of a packet is
 * opened with MuPDF, searched for the manifest's redaction patterns in its
 * text layer, re-rendered page by page from pixels with the redaction
 * boxes burned in, and written with libhpdf into one PDF behind a cover
 * sheet (src/cover.c).  Nothing of an input page but its pixels reaches
 * the output: no text layer, metadata, annotation, form, script,
 * attachment, hidden layer or earlier revision.
 *
 * Pages are processed one at a time; MuPDF's allocations are capped and a
 * time limit aborts a page that takes too long.  See docs/manifest.md
 * (redaction) and docs/templates.md (the cover sheet).
 */
#ifndef RENDER_H
#define RENDER_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include "store.h"

struct manifest;

enum render_profile {
	RENDER_FAX = 1,		/* 1-bit, CCITT G4, 200x200 or 204x196 dpi */
	RENDER_DOCUMENT = 2,	/* gray or color, JPEG, 150-300 dpi */
};

enum render_ocr {
	RENDER_OCR_PATTERNS = 0,	/* pages of documents with patterns */
	RENDER_OCR_ALL = 1,		/* every page (boxes still need patterns) */
	RENDER_OCR_OFF = 2,		/* the text layer only */
};

struct render_opts {
	enum render_profile	 profile;
	double			 paper_w, paper_h;	/* points: letter 612x792, A4 595x842 */
	int			 xdpi, ydpi;
	int			 color;			/* document profile: 1 color, 0 gray */
	int			 jpeg_quality;
	int			 max_pages;		/* the whole output */
	int64_t			 max_memory;		/* bytes MuPDF may hold at once */
	int64_t			 max_pixels;		/* largest input image */
	int			 time_limit;		/* seconds for the whole packet; 0 none */
	const char		*font_dir;		/* DejaVu TrueType fonts */
	enum render_ocr		 ocr;			/* pages read with OCR */
	int			 ocr_dpi;		/* the raster OCR reads */
	int			 verify;		/* the leak gate: 1 ocr, 0 off */
	const char		*protect;		/* site policy: named patterns
							 * on every document ("ssn,phone") */
	double			 redact_quantum;	/* box widths: a multiple (pt); 0 exact */
};

/* What the cover sheet shows besides the manifest's own fields. */
struct render_cover {
	const char	*template_path;	/* the template file */
	const char	*org_name;
	const char	*org_address;
	const char	*org_phone;
	const char	*org_fax;
	const char	*logo;		/* PNG, or NULL */
	const char	*to_name;
	const char	*to_organization;
	const char	*to_address;
	int64_t		 now;		/* seconds since the epoch */
};

/* Where a render's time went (CLOCK_MONOTONIC, microseconds), for the
 * worker's debug log and bench/latency: no document's content. */
struct render_times {
	int64_t			 docs_us;	/* read, search, box, raster every page */
	int64_t			 cover_us;	/* the cover sheet drawn */
	int64_t			 save_us;	/* the output PDF written and hashed */
	int64_t			 gate_us;	/* the output read back by OCR */
};

struct render_result {
	int			 pages;		/* output pages, cover included */
	struct render_times	 times;
	char			 sha256[65];
	struct store_redaction	*red;		/* each box applied, as the job records it:
						 * "rect", a pattern's name or "regex";
						 * never the text covered */
	size_t			 nred;
	char			 gate[256];	/* what the leak gate checked, for the
						 * job's record ("" if it did not run) */
	char			 err[512];	/* why rendering failed */
	int			 tempfail;	/* the failure may pass (I/O), not the packet's fault */
	int			 admin;		/* the configuration's fault (template, font):
						 * for an administrator, not the packet's */
};

struct config;

/* The daemon: load what every worker's renderer needs (the OCR data) once,
 * before any worker is forked; they inherit it. */
void	render_preload(const struct config *);

/* Defaults for a profile (paper letter, fax 204x196, document 150 dpi gray). */
void	render_defaults(struct render_opts *, enum render_profile);
/* The options roigate.conf's [render] section sets, for a profile. */
void	render_opts_from_config(const struct config *, int profile,
	    struct render_opts *);

/*
 * Render the packet whose documents lie in dirfd into a new file
 * outname there (created, written, fsynced).  0, or -1 with res->err.
 */
int	render_packet(const struct manifest *mf, int dirfd, const char *outname,
	    const struct render_opts *opts, const struct render_cover *cover,
	    struct render_result *res);
void	render_result_free(struct render_result *);

/*
 * The same in steps, for a renderer that is sandboxed between them
 * (src/worker.c, roigate-render --sandbox):
 *   render_prepare loads what rendering needs before any input is read
 *   (OCR data, the cover template, the time zone); 0, or -1 with the
 *   reason (the configuration's fault);
 *   render_sandbox_paths lists (NULL-terminated, at most n - 1) what it
 *   still opens afterwards, read-only: the font folder and the logo;
 *   render_packet_fds renders from open descriptors, one per document in
 *   the manifest's order, into outfd (open for reading and writing; it is
 *   emptied, written, fsynced and hashed; emptied again when the leak gate
 *   fails);
 *   render_open_inputs opens the documents in dirfd and makes outname
 *   there anew (O_EXCL, 0600); render_close_inputs closes them.
 */
int	render_prepare(const struct render_opts *, const struct render_cover *,
	    char *err, size_t errlen);
size_t	render_sandbox_paths(const struct render_opts *, const struct render_cover *,
	    const char **paths, size_t n);
/* The sandbox's limits for a renderer with these options that may hold
 * descriptors below max_fd (src/sandbox.c). */
struct sandbox_limits;
#define RENDER_SANDBOX_HEADROOM	((int64_t)512 << 20)
void	render_sandbox_limits(const struct render_opts *, int max_fd,
	    struct sandbox_limits *);
int	render_packet_fds(const struct manifest *mf, const int *docfds, int outfd,
	    const struct render_opts *, const struct render_cover *,
	    struct render_result *);
int	render_open_inputs(const struct manifest *mf, int dirfd, const char *outname,
	    int *docfds, int *outfd, struct render_result *);
void	render_close_inputs(const struct manifest *mf, int *docfds, int *outfd);

/*
 * Can MuPDF open this document (mime as libmagic named it)?  Run in a
 * child process with memory and time limits so that a hostile file cannot
 * hurt the caller, who does not wait on it (src/intake.c): whether the
 * type needs the reader at all (text does not); start the child (0, its
 * pid and the pipe on which it says why it refuses, to be read to its
 * end; -2 with err); its verdict from its wait status and what the pipe
 * said (msg, got bytes, NUL-terminated): 0; -1 with a plain-language
 * reason in err (the document's fault: refuse it); -2 when it could not
 * be checked now (the reader was killed from outside: try again later).
 */
int	render_probe_needed(const char *mime);
int	render_probe_start(int fd, const char *mime, const struct render_opts *,
	    pid_t *pid, int *pipe, char *err, size_t errlen);
int	render_probe_verdict(int status, const char *msg, size_t got, char *err,
	    size_t errlen);

/* The same, in the calling process (the child side; also the fuzz target). */
int	render_probe_here(int fd, const char *mime, const struct render_opts *opts,
	    char *err, size_t errlen);

/* The file of cover sheet template name (NULL: [render] cover_template):
 * template_dir/NAME.tpl.  0, or -1 with the reason in err. */
int	render_template_path(const struct config *, const char *name, char *path,
	    size_t len, char *err, size_t errlen);

/* Every template in template_dir parses, its fonts can be read, and the
 * default cover_template is among them (roigated -n, start, reload). */
int	render_check_templates(const struct config *, char *err, size_t errlen);

#endif
