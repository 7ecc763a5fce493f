/*
 * Incidents (daemon): something went wrong with a disclosure (a
 * misdirected fax, the wrong patient's records); the record links it to
 * the job's disclosure-log entries, contains a misdirected one at once,
 * and keeps the four-factor risk assessment of 45 CFR 164.402(2) and what
 * the patient's notification (164.404) needs.  Sealed records, never
 * edited.  See docs/incidents.md.
 */
#ifndef INCIDENT_H
#define INCIDENT_H

#include <stdint.h>

#include <jansson.h>

#include "util.h"

#define INCIDENT_NOTIFY_DAYS	60	/* 164.404(b): from discovery */

/* 0 with *out (the incident), or -1 with err; *notfound for no such job. */
int	incident_open(const char *actor, int64_t job, const char *kind,
	    const char *note, int64_t discovered, json_t **out, int *notfound,
	    char *err, size_t errlen);
/* The four factors (NULL: prefilled from the log) and the determination
 * ("low_probability" or "breach"). */
struct incident_factors {
	const char	*nature, *person, *acquired, *mitigation;
	const char	*determination;
};
int	incident_assess(const char *actor, int64_t id,
	    const struct incident_factors *, json_t **out, int *notfound,
	    char *err, size_t errlen);
/* One incident with its assessments and linked entries (NULL: none). */
json_t	*incident_get(int64_t id, char *err, size_t errlen, int *notfound);
json_t	*incident_list(char *err, size_t errlen);
/* What the notification needs, as JSON (org: the organization's name;
 * generated: the report's time), as text (free it), and as PDF into out
 * from template_dir/incident/page.tpl and row.tpl (0, or -1 with err). */
json_t	*incident_report(json_t *incident, const char *org, int64_t generated);
char	*incident_report_text(json_t *report);
int	 incident_report_pdf(json_t *report, const char *template_dir,
	    const char *font_dir, struct buf *out, char *err, size_t errlen);

#endif
