# roigate: the incident report, each page's frame.
#
# The cover sheet's language (docs/templates.md) with the fields of
# docs/incidents.md.  Rows are drawn from row.tpl, one under the other,
# between the two positions of the "#! area" line below (points from the
# top); as many as fit, then a new page.
#! area 130 740

text 54 60 16 bold {org_name}
text 54 90 14 bold Incident {incident} ({kind}): report for the notification
rule 54 98 558 98 1
text 54 114 9 regular Generated {generated}
text 300 114 9 bold Notify the patient by {notify_by}
rule 54 748 558 748 0.5
text 54 762 8 regular {org_name}: incident {incident}
text 490 762 8 regular Page {page} of {pages}
