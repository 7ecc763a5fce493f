/*
 * roigate transport plugin ABI.
 *
 * A transport is a shared object in the daemon's transport folder that
 * exports one symbol, "roigate_transport", of type
 * "const struct transport_backend".  The daemon dlopen()s it at start-up,
 * checks the ABI version and the name, hands it the keys of its
 * "[transport NAME]" section through config() and validates them with
 * check().  Each job runs in a forked worker process, which calls init()
 * and then deliver() (or poll() for an asynchronous transport), and sends
 * the receipt back to the daemon.  A transport never touches the database.
 *
 * Before an administrator verifies a recipient, an optional probe()
 * reports what must be confirmed and pinned (roictl recipient verify).
 *
 * deliver() and poll() return exactly one of TRANSPORT_OK,
 * TRANSPORT_TEMPFAIL or TRANSPORT_PERMFAIL.  Anything that goes wrong
 * without a clear answer is TEMPFAIL: a lost status means retry, never
 * success.
 */
#ifndef ROIGATE_TRANSPORT_H
#define ROIGATE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TRANSPORT_ABI_VERSION	3	/* 2: probe(); 3: message instance, accepted_at */
#define TRANSPORT_SYMBOL	"roigate_transport"

enum transport_status {
	TRANSPORT_OK = 0,
	TRANSPORT_TEMPFAIL = 1,
	TRANSPORT_PERMFAIL = 2,
};

/* receipt.hold: hold this job, or this job and every job waiting for
 * the same transport instance (e.g. its credentials were refused). */
#define TRANSPORT_HOLD_JOB	1
#define TRANSPORT_HOLD_ALL	2

/* Capability bits. */
#define TRANSPORT_CAP_POLL	0x01	/* deliver() may answer "sent", poll() confirms */
#define TRANSPORT_CAP_PAGES	0x02	/* receipt pages come from the remote side */
#define TRANSPORT_CAP_FAX	0x04	/* sends to fax machines: the output defaults
					 * to the 1-bit fax profile */

/* Receipt: fixed size so that it crosses the worker pipe as it is. */
#define TRANSPORT_ID_MAX	128
#define TRANSPORT_STATUS_MAX	32
#define TRANSPORT_DETAIL_MAX	512
#define TRANSPORT_HASH_MAX	65	/* hex SHA-256 and NUL */

struct transport_receipt {
	char	 remote_id[TRANSPORT_ID_MAX];	/* fax id, remote path, message id */
	char	 status[TRANSPORT_STATUS_MAX];	/* "delivered", "sent", "busy", ... */
	char	 detail[TRANSPORT_DETAIL_MAX];	/* plain-language words for people */
	char	 sha256[TRANSPORT_HASH_MAX];	/* hash of what the remote side holds */
	uint32_t pages;				/* pages the remote side confirmed */
	int64_t	 completed_at;			/* unix time, 0 when not known */
	int32_t	 retry_after;			/* seconds, for TEMPFAIL; 0 = default backoff */
	uint8_t	 pending;			/* OK but awaiting confirmation (poll) */
	uint8_t	 hold;				/* PERMFAIL that an administrator must see:
						 * TRANSPORT_HOLD_JOB or TRANSPORT_HOLD_ALL */
};

/* One name=value parameter of the recipient's directory entry. */
struct transport_param {
	const char	*key;
	const char	*value;
};

struct transport_recipient {
	const char			*id;
	const char			*name;
	const char			*organization;
	const char			*address;	/* fax number, host, e-mail, folder */
	const struct transport_param	*params;
	size_t				 nparams;
};

/* One file to send.  fd is open for reading at offset 0. */
struct transport_file {
	int		 fd;
	const char	*name;		/* plain file name, no '/' */
	const char	*content_type;	/* "application/pdf", ... */
	off_t		 size;
	const char	*sha256;	/* hex */
};

struct transport_message {
	uint64_t			  job_id;
	const char			 *packet_id;
	const char			 *request_ref;
	const char			 *purpose;
	const struct transport_recipient *recipient;
	const struct transport_file	 *files;
	size_t				  nfiles;
	uint32_t			  pages;	/* 0 when not counted yet */
	int				  attempt;	/* 1 for the first attempt */
	/* The gateway database's instance id (16 hex digits, random, made
	 * with the database): with job_id and attempt it names this send
	 * uniquely across databases and gateways (a fax tag, say). */
	const char			 *instance;
	int64_t				  accepted_at;	/* unix time the job was accepted */
};

/* What probe() found out about a recipient's destination. */
struct transport_probe {
	char	param[32];	/* the recipient parameter to pin ("host_key"), or "" */
	char	value[256];	/* its value as found ("SHA256:..."), or "" */
	char	detail[512];	/* what was found, in words for the administrator */
};

struct transport_backend {
	const char	*name;
	unsigned	 abi;		/* TRANSPORT_ABI_VERSION */
	unsigned	 caps;		/* TRANSPORT_CAP_* */

	/* Allocate private state for one configured instance. */
	void		*(*create)(void);
	/* One key of the "[transport NAME]" section; -1 and err on a bad key or value. */
	int		 (*config)(void *st, const char *key, const char *value,
			    char *err, size_t errlen);
	/* After the last key: is the instance usable?  -1 and err if not. */
	int		 (*check)(void *st, char *err, size_t errlen);
	/* In the worker, before deliver or poll. */
	int		 (*init)(void *st, char *err, size_t errlen);
	enum transport_status (*deliver)(void *st, const struct transport_message *msg,
			    struct transport_receipt *rcpt);
	/* Optional (TRANSPORT_CAP_POLL): status of an earlier "pending" delivery. */
	enum transport_status (*poll)(void *st, const struct transport_message *msg,
			    const char *remote_id, struct transport_receipt *rcpt);
	/* Release the state (keys are wiped here). */
	void		 (*shutdown)(void *st);
	/* Optional: look at a recipient's destination before an administrator
	 * verifies it (e.g. fetch the SFTP server's host key to pin).  Runs in
	 * a worker after init().  0, or -1 with the reason in out->detail. */
	int		 (*probe)(void *st, const struct transport_recipient *rc,
			    struct transport_probe *out);
};

#endif
