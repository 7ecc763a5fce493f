# roigate: one row of the daily reconciliation (see page.tpl): a heading,
# a row of counts (the column heads, one transport and recipient, the
# total) or a line of text.  Positions are from the row's own top-left;
# the "#! height" line says how far down the next row starts.
#! height 13

if heading
text 54 10 10.5 bold {heading}
end
if row
text 54 10 8.5 regular {transport}
text 120 10 8.5 regular {recipient}
text 290 10 8.5 regular {accepted}
text 334 10 8.5 regular {delivered}
text 380 10 8.5 regular {failed}
text 418 10 8.5 regular {held}
text 450 10 8.5 regular {cancelled}
text 500 10 8.5 regular {awaiting}
end
if head
text 54 10 8.5 bold {transport}
text 120 10 8.5 bold {recipient}
text 290 10 8.5 bold {accepted}
text 334 10 8.5 bold {delivered}
text 380 10 8.5 bold {failed}
text 418 10 8.5 bold {held}
text 450 10 8.5 bold {cancelled}
text 500 10 8.5 bold {awaiting}
rule 54 13 558 13 0.5
end
if total
text 54 10 8.5 bold {transport}
text 290 10 8.5 bold {accepted}
text 334 10 8.5 bold {delivered}
text 380 10 8.5 bold {failed}
text 418 10 8.5 bold {held}
text 450 10 8.5 bold {cancelled}
text 500 10 8.5 bold {awaiting}
end
if line
text 66 10 8.5 regular {line}
end
