# roigate: one entry of the accounting of disclosures (see page.tpl).
# Positions are from the entry's own top-left; the "#! height" line says
# how far down the next entry starts.
#! height 82

text 54 14 10 bold {number}. {date}
if status
text 200 14 9 bold {status}
end
if summary
wrap 80 28 478 8.5 regular {summary}
end
text 80 42 9 regular To: {recipient_name}, {recipient_address}
wrap 80 54 478 9 regular What: {description}
if pages_sent
text 80 66 9 regular Pages: {pages_sent}
end
wrap 200 66 358 9 regular Purpose: {purpose} {request}
