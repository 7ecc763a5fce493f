/*
 * roigate.conf: an INI file with [daemon], [spool], [queue], [log], [roles] and
 * [transport NAME] sections.  Every error is reported as "file:line: message".
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/roigate/roigate.conf"

enum role {
	ROLE_SUBMIT = 0x01,
	ROLE_OPERATE = 0x02,
	ROLE_AUDIT = 0x04,
	ROLE_ADMIN = 0x08,
	ROLE_METRICS = 0x10,	/* the "metrics" operation only (roigate-exporter) */
};

/* Alert rules: the names of [alerts] rules (src/alerts.c raises them). */
enum alert_rule {
	ALERT_FAILED = 0,	/* jobs of a transport failed since its last delivery */
	ALERT_HELD,		/* jobs held for an administrator */
	ALERT_WAITING,		/* a job waiting longer than waiting_longer_than */
	ALERT_AWAITING,		/* a fax unconfirmed longer than awaiting_longer_than */
	ALERT_CREDENTIALS,	/* a transport's credentials were refused */
	ALERT_DISK,		/* spool or state folder below disk_free_below */
	ALERT_SEALING,		/* sealing or verification of the log failing */
	ALERT_DEADLINE,		/* open requests near their deadline */
	ALERT_NRULES
};
#define ALERT_RULES_ALL		((1u << ALERT_NRULES) - 1)
#define ALERT_RULE_NAMES	"failed, held, waiting, awaiting, credentials, " \
				"disk, sealing, deadline, all, none"
const char	*alert_rule_name(enum alert_rule);

/* One "user:NAME" or "group:NAME" grant in [roles]. */
struct role_grant {
	int	 is_group;
	uid_t	 id;		/* uid or gid */
	unsigned roles;		/* ROLE_* bits */
};

/* One key = value line of a [transport NAME] section, kept for the plugin. */
struct config_kv {
	char	*key;
	char	*value;
	int	 line;
};

struct config_transport {
	char			*name;		/* instance name (section argument) */
	char			*plugin;	/* plugin file name, default = name */
	int			 line;
	struct config_kv	*kv;
	size_t			 nkv;
	int			 max_concurrent;	/* jobs at once; 0: no limit */
};

/* The floor of [retention] records: six years of 365.25 days (HIPAA,
 * 45 CFR 164.316(b)(2)); src/retention.c also never removes a record
 * younger than six calendar years. */
#define RETENTION_RECORDS_MIN_MS	(6 * 31557600000LL)

struct config {
	char	*path;			/* the file read, or "(defaults)" */
	char	*notes;			/* "file:line: ..." deprecations, or NULL */

	/* [daemon] */
	char	*state_dir;		/* roigate.db, jobs/, archive/ */
	char	*socket_path;
	char	*transport_dir;
	char	*template_dir;
	int	 log_level;
	char	*organization;
	char	*organization_address;	/* cover sheet; NULL: not shown */
	char	*organization_phone;
	char	*organization_fax;
	char	*logo;			/* PNG for the cover sheet, or NULL */
	char	*cover_template;	/* template used when a manifest names none */

	/* [spool] */
	char	*spool_dir;		/* incoming/ and rejected/ below */
	int64_t	 settle_ms;
	int64_t	 incomplete_timeout_ms;
	int64_t	 rescan_ms;
	int64_t	 max_file_size;
	int64_t	 max_packet_size;
	int	 max_files;

	/* [queue] */
	int	 workers;
	int64_t	 backoff_base_ms;
	int64_t	 backoff_max_ms;
	int	 max_attempts;
	int64_t	 max_age_ms;
	int64_t	 job_timeout_ms;
	int64_t	 shutdown_grace_ms;
	int64_t	 poll_base_ms;		/* first poll of an awaiting_confirmation job */
	int64_t	 confirm_timeout_ms;	/* no final status after this: flag */

	/* [render] */
	int	 paper;			/* 0 letter, 1 A4 */
	int	 fax_fine;		/* fax resolution: 1 204x196, 0 200x200 */
	int	 document_dpi;
	int	 document_color;	/* 1 color, 0 gray */
	int	 jpeg_quality;
	int	 max_pages;
	int64_t	 render_memory;		/* bytes the reader may hold */
	int64_t	 max_image_pixels;
	int64_t	 render_timeout_ms;
	int64_t	 request_deadline_other_ms;	/* [requests]; 0: none */
	int64_t	 archive_retention_ms;	/* [retention] archive (old name [render]
					 * archive_retention): copies of what
					 * was sent; 0: none kept */
	char	*font_dir;
	int	 render_ocr;		/* enum render_ocr: patterns, all, off */
	int	 ocr_dpi;
	int	 render_verify;		/* the leak gate: 1 ocr, 0 off */
	int	 render_sandbox;	/* the renderer's sandbox: 1 on, 0 off */
	char	*protect;		/* named patterns on every document, or NULL */
	int	 redact_quantum;	/* points; 0: boxes fit their text */

	/* [control] */
	int64_t	 max_frame;
	int	 max_clients;
	int	 max_clients_per_uid;
	int64_t	 client_idle_ms;

	/* [alerts] (src/alerts.c) */
	char	*alert_mail_to;		/* "a@x, b@y"; NULL: no mail */
	char	*alert_mail_from;
	char	*alert_smtp_url;	/* smtp://host:port, STARTTLS required */
	char	*alert_ca_file;		/* NULL: the system's CA store */
	char	*alert_program;		/* "/path arg ..." run with execv, no shell */
	int64_t	 alert_program_timeout_ms;
	int64_t	 alert_check_ms;	/* how often conditions are looked at */
	int64_t	 alert_waiting_ms;	/* a job waiting longer than this; 0: off */
	int64_t	 alert_awaiting_ms;	/* a fax unconfirmed longer than this */
	int64_t	 alert_disk_free;	/* bytes free below this; 0: off */
	int64_t	 alert_deadline_ms;	/* a request this near its deadline */
	unsigned alert_rules;		/* ALERT_RULE bits in force */

	/* [exporter] (roigate-exporter) */
	char	*exporter_listen;	/* "127.0.0.1:9464" */
	char	*exporter_path;		/* "/metrics" */
	/* [log] */
	int64_t	 seal_interval_ms;	/* one sealing epoch (docs/disclosure-log.md) */

	/* [retention] (src/retention.c) */
	int64_t	 retention_jobs_ms;	/* jobs/ID of a final job; 0: kept */
	int64_t	 retention_records_ms;	/* sealed records, for roictl prune */

	/* [roles] */
	struct role_grant	*grants;
	size_t			 ngrants;

	/* [transport NAME] */
	struct config_transport	*transports;
	size_t			 ntransports;
};

/* Defaults, then the file (NULL: defaults only).  On error fills err with
 * "file:line: message" (several lines, one per error) and returns NULL. */
struct config	*config_load(const char *path, char *err, size_t errlen);
void		 config_free(struct config *);

/* Roles of a peer: its uid, its primary gid and its supplementary groups
 * (as the kernel reported them; NULL: looked up in the group database). */
unsigned	 config_roles(const struct config *, uid_t uid, gid_t gid,
		    const gid_t *groups, int ngroups);
const char	*role_name(unsigned role);
/* "submit,audit" for a bit set, into buf. */
void		 roles_format(unsigned roles, char *buf, size_t len);

#endif
