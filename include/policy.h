/*
 * Release policy: given a parsed manifest, decide whether the packet may
 * leave (authorization, scope, special categories, approval, recipient,
 * document types).  Runs in the daemon at intake and in the worker again
 * before sending.  Every refusal names the field and the rule in words.
 */
#ifndef POLICY_H
#define POLICY_H

#include <stdint.h>

#include "manifest.h"

struct recipient;

struct policy_ctx {
	int64_t			 today;		/* days since 1970 (UTC) */
	/* The recipient named by the manifest, NULL if not in the directory. */
	const struct recipient	*recipient;
};

/* 0 if the packet may be released, -1 with reasons appended to errs. */
int	policy_check(const struct manifest *, const struct policy_ctx *,
	    struct errlist *errs);

/* A recipient directory entry, checked when an administrator adds it.
 * field: a name, organization or parameter value (field names it in the
 * reason) must hold no control characters, and a required one must not be
 * blank.  address: the form backend ("local", "sftp", "smime", "faxapi")
 * can deliver to; other backends only refuse control characters.  Each
 * 0, or -1 with the reason appended. */
/* A recipient parameter's value: up to RECIPIENT_PARAM_MAX bytes, line
 * breaks allowed (a PEM certificate), no other control characters. */
#define RECIPIENT_PARAM_MAX	65536
int	policy_recipient_param(const char *field, const char *s, struct errlist *);
int	policy_recipient_text(const char *field, const char *s, int required,
	    struct errlist *errs);
int	policy_recipient_address(const char *backend, const char *address,
	    struct errlist *errs);

/* Document type sniffing: libmagic on the first 64 KiB. */
struct magic_set;
struct policy_magic;
struct policy_magic *policy_magic_open(void);
void	policy_magic_close(struct policy_magic *);
/* Check the content type of buf (first bytes of file name) against the
 * allow-list and the file's extension.  0 ok (mime set), -1 with reason. */
int	policy_check_type(struct policy_magic *, const char *name,
	    const void *buf, size_t len, const char **mime, struct errlist *errs);

#endif
