# roigate: the accounting of disclosures (45 CFR 164.528), each page's frame.
#
# The cover sheet's language (docs/templates.md) with the fields of
# docs/accounting.md.  Entries are drawn from entry.tpl, one
# under the other, between the two positions of the "#! area" line below
# (points from the top); as many as fit, then a new page.
#! area 250 740

text 54 60 16 bold {org_name}
wrap 54 78 500 9 regular {org_address}
text 54 112 14 bold Accounting of Disclosures of Health Information
rule 54 120 558 120 1
text 54 140 10 bold Patient:
text 140 140 10 regular {patient_name} (MRN {mrn})
text 54 156 10 bold Period:
text 140 156 10 regular {period_from} to {period_to}
text 54 172 10 bold Generated:
text 140 172 10 regular {generated}
wrap 54 194 504 8.5 regular {excluded}
if possibly_note
wrap 54 222 504 8.5 regular {possibly_note}
end
rule 54 242 558 242 0.5
if empty
text 54 270 10 regular No disclosures to list in this period.
end
rule 54 748 558 748 0.5
text 54 762 8 regular {org_name}: accounting of disclosures for MRN {mrn}
text 490 762 8 regular Page {page} of {pages}
