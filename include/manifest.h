/*
 * manifest.json, version 1: parsing with jansson into a struct manifest.
 * Parsing checks shape (types, required fields, formats); src/policy.c
 * decides whether the packet may be released.  See docs/manifest.md.
 */
#ifndef MANIFEST_H
#define MANIFEST_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_VERSION	1
#define MANIFEST_MAX_SIZE	(1024 * 1024)
#define MANIFEST_MAX_DOCS	1000

/* A list of plain-language errors, each naming the field and the rule. */
struct errlist {
	char	**msg;
	size_t	  n;
};
void	errlist_add(struct errlist *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	errlist_free(struct errlist *);
/* All messages, one per line, into a newly allocated string. */
char	*errlist_join(const struct errlist *, const char *sep);

/* The first control character of UTF-8 text s other than tab: C0, DEL,
 * and the C1 controls U+0080 to U+009F; or -1 if there is none. */
int	text_control(const char *s);

enum categories {
	CAT_PSYCHOTHERAPY = 0x01,	/* "psychotherapy_notes" */
	CAT_SUD_PART2 = 0x02,		/* "substance_use_part2" */
	CAT_HIV = 0x04,			/* "hiv" */
	CAT_GENETIC = 0x08,		/* "genetic" */
	CAT_MENTAL_HEALTH = 0x10,	/* "mental_health" */
};
const char	*category_name(unsigned cat);	/* one bit */
int		 category_parse(const char *, unsigned *cat);

enum basis {
	BASIS_PATIENT_ACCESS,
	BASIS_AUTHORIZATION,
	BASIS_TREATMENT,
	BASIS_PAYMENT,
	BASIS_OPERATIONS,
	BASIS_SUBPOENA,
	BASIS_COURT_ORDER,
	BASIS_REQUIRED_BY_LAW,
};
const char	*basis_name(enum basis);
int		 basis_needs_authorization(enum basis);

struct redact_rect {
	int	 page;		/* 1-based */
	double	 x, y, w, h;	/* points from top-left (PDF) or pixels (images) */
};

/* How a pattern's regular expression is compiled (regcomp flags): POSIX
 * extended, matched within a line; named patterns add REG_ICASE. */
#define REDACT_REGEX_FLAGS	(REG_EXTENDED | REG_NEWLINE)

struct redact_pattern {
	char	*name;		/* ssn, mrn, phone, email, dob, or NULL for regex */
	char	*regex;		/* NULL for a named pattern */
	int	 expect;	/* -1: no expectation (a written -1 is refused) */
	int	 line;		/* "mode": "line": black out the whole line */
};

struct document {
	char			*file;
	char			 sha256[65];	/* lower-case hex */
	char			*type;		/* lab, imaging, progress_note, ... */
	char			*date;		/* YYYY-MM-DD */
	int64_t			 date_days;
	char			*description;
	unsigned		 categories;	/* CAT_* */
	struct redact_rect	*rects;
	size_t			 nrects;
	struct redact_pattern	*patterns;
	size_t			 npatterns;
};

struct authorization {
	char		*id;
	char		*signed_on;	/* YYYY-MM-DD */
	int64_t		 signed_days;
	char		*signed_by;
	char		*effective_on;	/* optional, YYYY-MM-DD; NULL if absent */
	int64_t		 effective_days;
	char		*expires_on;	/* YYYY-MM-DD */
	int64_t		 expires_days;
	char	       **scope_types;	/* document types covered */
	size_t		 nscope_types;
	char		*scope_from;	/* YYYY-MM-DD, NULL: open */
	int64_t		 scope_from_days;
	char		*scope_to;
	int64_t		 scope_to_days;
	unsigned	 scope_categories;	/* CAT_* named */
	char		*file;		/* the signed consent, a document of the
					 * packet (42 CFR 2.32); NULL if none */
};

struct manifest {
	int			 version;
	char			*packet_id;
	char			*created_at;
	char			*patient_mrn;
	char			*patient_name;
	char			*patient_dob;
	char			*request_id;
	char			*request_received_on;
	char			*requester_name;
	char			*requester_organization;
	char			*requester_kind;
	char			*purpose;
	enum basis		 basis;
	struct authorization	*authorization;	/* NULL if absent */
	char			*approval_by;
	char			*approval_at;
	char			*recipient;
	struct document		*docs;
	size_t			 ndocs;
	char			*cover_template;
	char			*cover_note;
	int			 cover_urgent;
};

/* Parse JSON text (a UTF-8 byte-order mark at its start is skipped).
 * NULL with errors appended on failure, each in words for a clerk. */
struct manifest	*manifest_parse(const char *json, size_t len, struct errlist *errs);
/*
 * Is the manifest text read so far complete, so that manifest_parse's
 * verdict on it is final?  0 ("still being copied: wait") only while more
 * bytes at its end could still make it a manifest: empty or only white
 * space (after an optional byte-order mark), or the start of a JSON object
 * cut short, even in the middle of a word, number, escape or UTF-8
 * character; NUL bytes at the very end are ignored (a copier may size the
 * file first).  1 for everything else, which manifest_parse accepts or
 * refuses at once: a whole object, an object with more text after it, a
 * list, string or number, text that is not JSON, a NUL inside.
 */
int		 manifest_text_complete(const char *text, size_t len);
void		 manifest_free(struct manifest *);
/* Does s look like a packet id: 1-64 of [A-Za-z0-9._-], not starting with '.'? */
int		 valid_packet_id(const char *s);
/* Brief description of what was sent, for the disclosure log
 * ("3 documents: lab 2026-01-02, ..."). */
char		*manifest_describe(const struct manifest *);

/* The document at output position k (0-based): the signed consent named
 * by authorization.file first, right after the cover sheet (42 CFR 2.32:
 * a copy of the consent accompanies a Part 2 disclosure), then the others
 * in manifest order. */
size_t	manifest_output_doc(const struct manifest *, size_t k);
/* The index of the document authorization.file names, or -1. */
int	manifest_consent_doc(const struct manifest *);

#endif
