# roigate: one row of the incident report (see page.tpl): a heading, a
# labelled value (its label on its first row only) or a line of text.
# Positions are from the row's own top-left; the "#! height" line says how
# far down the next row starts.
#! height 13

if heading
text 54 10 10.5 bold {heading}
end
if label
text 54 10 8.5 bold {label}
end
if value
text 150 10 8.5 regular {value}
end
if line
text 66 10 8.5 regular {line}
end
