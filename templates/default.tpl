# roigate cover sheet: the default template.
#
# Copy this file next to it under a new name (say ourclinic.tpl), edit it,
# and name it in a packet's manifest ("cover_sheet": {"template":
# "ourclinic"}) or make it the default with `cover_template` in
# roigate.conf.  No recompiling.  The language is described in
# docs/templates.md: one directive per line, positions in points (1/72
# inch) from the page's top-left corner, {fields} filled in per packet.
#
# The page is the output paper: letter (612 x 792) or A4 (595 x 842);
# everything below stays inside 54 points of margin on both.

image 54 40 110 {logo}
text 190 62 18 bold {org_name}
wrap 190 80 350 10 regular {org_address}
if org_phone
text 190 110 10 regular Phone {org_phone}
end
if org_fax
text 370 110 10 regular Fax {org_fax}
end

# Black text on a light box, clear of the title below it.
if urgent
fill 421 120 120 24 0.85
box 421 120 120 24 1.5
text 447 138 16 bold URGENT
end

text 54 170 28 bold Fax / Records Transmittal
rule 54 182 541 182 1.5

text 54 214 11 bold To:
text 150 214 11 regular {to_name}
text 150 230 11 regular {to_organization}
text 150 246 11 regular {to_address}
text 54 272 11 bold From:
text 150 272 11 regular {org_name}, Release of Information ({from})
text 54 292 11 bold Date:
text 150 292 11 regular {date} {time}
text 54 312 11 bold Pages:
text 150 312 11 regular {pages} including this cover sheet
text 54 332 11 bold Request:
text 150 332 11 regular {request_id} (packet {packet_id})
text 54 352 11 bold Purpose:
wrap 150 352 390 11 regular {purpose}

if note
text 54 392 11 bold Note:
wrap 150 392 390 11 regular {note}
end

rule 54 440 541 440 0.75
text 54 462 11 bold CONFIDENTIALITY NOTICE
wrap 54 480 487 9.5 regular This transmission contains protected health information \
that is confidential and privileged under federal and state law, including \
HIPAA (45 CFR Parts 160 and 164). It is intended only for the recipient named \
above, for the purpose stated. If you are not the intended recipient, any \
review, use, disclosure, copying or distribution is prohibited.
if org_phone
wrap 54 548 487 9.5 bold If you received this in error: call the sender at \
{org_phone} at once, do not read further, copy or forward it, and destroy \
every page (or delete the message) after calling.
end
unless org_phone
wrap 54 548 487 9.5 bold If you received this in error: tell the sender at \
once, do not read further, copy or forward it, and destroy every page (or \
delete the message).
end

if part2
# The notice of 42 CFR 2.32(a)(1) as amended in 2024; {part2_short} is the
# short statement of (a)(2), for a template with less room.
rule 54 596 541 596 0.75
text 54 612 10 bold 42 CFR PART 2 NOTICE: SUBSTANCE USE DISORDER RECORDS
wrap 54 626 487 7.5 regular {part2_notice}
end
