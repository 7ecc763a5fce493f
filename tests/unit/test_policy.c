/* Unit tests for src/policy.c: a table of release decisions, each the
 * sample packet changed in one or two fields (and the recipient's state
 * in the directory), with the refusal each must produce (or none); and a
 * table of document contents against their names for the type check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest.h"
#include "policy.h"
#include "store.h"
#include "util.h"
#include "sample.h"

#define TODAY	20781		/* 2026-11-24, in days since 1970 */

enum rstate { R_VERIFIED, R_UNVERIFIED, R_DISABLED, R_ABSENT };

static void
test_decisions_table(void **state)
{
	static const struct {
		const char	*path, *value, *path2, *value2;
		enum rstate	 rs;
		const char	*want;	/* NULL: released */
	} cases[] = {
		{ NULL, NULL, NULL, NULL, R_VERIFIED, NULL },
		{ "approval", NULL, NULL, NULL, R_VERIFIED,
		    "the packet has no approval" },
		{ "approval.by", NULL, NULL, NULL, R_VERIFIED, "has no approval" },
		{ "approval.at", "\"2099-01-01T00:00:00Z\"", NULL, NULL, R_VERIFIED,
		    "approval.at: 2099-01-01T00:00:00Z is in the future" },
		{ "approval.at", "\"2026-10-01T00:00:00Z\"", NULL, NULL, R_VERIFIED,
		    "approved (2026-10-01) before authorization AUTH-2026-0091 was "
		    "signed (2026-11-01)" },
		{ "authorization", NULL, NULL, NULL, R_VERIFIED,
		    "authorization: missing; basis authorization needs a signed "
		    "authorization" },
		{ "authorization.signed_by", NULL, NULL, NULL, R_VERIFIED,
		    "authorization AUTH-2026-0091 is not signed" },
		{ "authorization.signed_on", "\"2099-01-01\"", NULL, NULL, R_VERIFIED,
		    "signed_on 2099-01-01 is in the future" },
		{ "authorization.effective_on", "\"2026-12-01\"", NULL, NULL,
		    R_VERIFIED, "is not valid yet (effective on 2026-12-01)" },
		{ "authorization.expires_on", "\"2026-11-23\"", NULL, NULL, R_VERIFIED,
		    "authorization AUTH-2026-0091 expired on 2026-11-23" },
		/* Valid through its last day. */
		{ "authorization.expires_on", "\"2026-11-24\"", NULL, NULL, R_VERIFIED,
		    NULL },
		{ "documents.0.type", "\"progress_note\"", NULL, NULL, R_VERIFIED,
		    "document labs-2026-10.pdf: type \"progress_note\" is not covered "
		    "by authorization AUTH-2026-0091 (covers: lab, discharge_summary, "
		    "imaging)" },
		{ "documents.0.date", "\"2026-09-30\"", NULL, NULL, R_VERIFIED,
		    "dated 2026-09-30, before the authorized period (from 2026-10-01)" },
		{ "documents.0.date", "\"2026-11-01\"", NULL, NULL, R_VERIFIED,
		    "dated 2026-11-01, after the authorized period (to 2026-10-31)" },
		{ "documents.0.date", "\"2026-12-01\"", "authorization.scope.to", NULL,
		    R_VERIFIED, "dated 2026-12-01, in the future" },
		{ "documents.1.categories", "[\"psychotherapy_notes\"]", NULL, NULL,
		    R_VERIFIED, "carries psychotherapy_notes, which authorization "
		    "AUTH-2026-0091 does not name" },
		{ "documents.1.categories", "[\"substance_use_part2\"]", NULL, NULL,
		    R_VERIFIED, "carries substance_use_part2" },
		{ "documents.1.categories", "[\"hiv\"]", NULL, NULL, R_VERIFIED,
		    "carries hiv" },
		{ "documents.1.categories", "[\"genetic\"]", NULL, NULL, R_VERIFIED,
		    "carries genetic" },
		{ "documents.1.categories", "[\"mental_health\"]", NULL, NULL,
		    R_VERIFIED, "carries mental_health" },
		/* Named by the authorization: released. */
		{ "documents.1.categories", "[\"hiv\"]",
		    "authorization.scope.categories", "[\"hiv\"]", R_VERIFIED, NULL },
		{ "documents.1.categories", "[\"psychotherapy_notes\"]",
		    "authorization.scope.categories", "[\"psychotherapy_notes\"]",
		    R_VERIFIED, NULL },
		/* Treatment needs no authorization... */
		{ "basis", "\"treatment\"", "authorization", NULL, R_VERIFIED, NULL },
		/* ...but psychotherapy notes always do. */
		{ "basis", "\"treatment\"", "documents.1.categories",
		    "[\"psychotherapy_notes\"]", R_VERIFIED,
		    "carries psychotherapy_notes" },
		{ "recipient", "\"records-desk\"", NULL, NULL, R_ABSENT,
		    "recipient \"records-desk\" is not in the verified recipient "
		    "directory" },
		{ NULL, NULL, NULL, NULL, R_UNVERIFIED,
		    "recipient \"records-desk\" has not been verified yet" },
		{ NULL, NULL, NULL, NULL, R_DISABLED,
		    "recipient \"records-desk\" is disabled in the directory" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist		 perrs = { NULL, 0 }, errs = { NULL, 0 };
		char			*text = sample_text(cases[i].path, cases[i].value,
		    cases[i].path2, cases[i].value2);
		struct manifest		*m = manifest_parse(text, strlen(text), &perrs);
		struct recipient	 r;
		struct policy_ctx	 ctx;
		char			*all;
		int			 rv;

		if (m == NULL)
			fail_msg("case %zu: does not parse: %s", i, perrs.msg[0]);
		memset(&r, 0, sizeof(r));
		r.id = "records-desk";
		r.transport = "local";
		r.address = "records-desk";
		r.verified = cases[i].rs != R_UNVERIFIED;
		r.disabled = cases[i].rs == R_DISABLED;
		ctx.today = TODAY;
		ctx.recipient = cases[i].rs == R_ABSENT ? NULL : &r;
		rv = policy_check(m, &ctx, &errs);
		all = errlist_join(&errs, " | ");
		if (cases[i].want == NULL && rv != 0)
			fail_msg("case %zu (%s): refused: %s", i,
			    cases[i].path ? cases[i].path : "-", all);
		if (cases[i].want != NULL && (rv != -1 ||
		    strstr(all, cases[i].want) == NULL))
			fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i,
			    cases[i].path ? cases[i].path : "-", all, cases[i].want);
		free(all);
		errlist_free(&errs);
		manifest_free(m);
		free(text);
	}
}

static void
test_document_types_table(void **state)
{
	static const char pdf[] = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
	    "trailer\n<< /Root 1 0 R >>\n%%EOF\n";
	static const unsigned char png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
	    '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0,
	    0, 0, 0x90, 0x77, 0x53, 0xde };
	static const unsigned char jpeg[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J',
	    'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0 };
	static const unsigned char elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0, 1, 0, 0, 0 };
	static const char text[] = "Discharge summary (synthetic).\nPatient is well.\n";
	/* A whole ZIP archive holding a.txt: libmagic needs its directory. */
	static const char zip[] =
	    "\120\113\003\004\024\000\000\000\000\000\332\251\201\135\254\052"
	    "\223\330\002\000\000\000\002\000\000\000\005\000\000\000\141\056"
	    "\164\170\164\150\151\120\113\001\002\024\003\024\000\000\000\000"
	    "\000\332\251\201\135\254\052\223\330\002\000\000\000\002\000\000"
	    "\000\005\000\000\000\000\000\000\000\000\000\000\000\200\001\000"
	    "\000\000\000\141\056\164\170\164\120\113\005\006\000\000\000\000"
	    "\001\000\001\000\063\000\000\000\045\000\000\000\000\000";
	static const char gz[] = "\037\213\010\000\000\000\000\000\000\003";
	static const unsigned char so[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0, 1, 0, 0, 0 };
	static const char html[] = "<!DOCTYPE html>\n<html><body>Results</body>"
	    "</html>\n";
	static const char rtf[] = "{\\rtf1\\ansi Discharge summary (synthetic)}\n";
	static const unsigned char ole[512] = { 0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1,
	    0x1a, 0xe1 };
	static const char sh[] = "#!/bin/sh\necho hi\n";
	static const char gif[] = "GIF89a\001\000\001\000\000\000\000;";
	static const char wav[] = "RIFF\044\000\000\000WAVEfmt \020\000\000\000"
	    "\001\000\001\000\100\037\000\000\100\037\000\000\001\000\010"
	    "\000data\000\000\000\000";
	static const unsigned char noise[] = { 0x01, 0x9c, 0xe2, 0x00, 0x17, 0xfe,
	    0x80, 0x33, 0x00, 0x00, 0xd1, 0x02 };
#define NOT_ALLOWED(f, why) "document " f ": is not a PDF, TIFF, PNG, JPEG or " \
	    "text file: " why
	static const struct {
		const char	*name;
		const void	*buf;
		size_t		 len;
		const char	*want;	/* NULL: allowed; else the reason, exactly */
	} cases[] = {
		{ "labs.pdf", pdf, sizeof(pdf) - 1, NULL },
		{ "LABS.PDF", pdf, sizeof(pdf) - 1, NULL },
		{ "xray.png", png, sizeof(png), NULL },
		{ "photo.jpg", jpeg, sizeof(jpeg), NULL },
		{ "photo.jpeg", jpeg, sizeof(jpeg), NULL },
		{ "summary.txt", text, sizeof(text) - 1, NULL },
		{ "labs.png", pdf, sizeof(pdf) - 1,
		    "document labs.png: content is PDF, but the name ends in .png "
		    "(rename it to end in .pdf)" },
		{ "xray.pdf", png, sizeof(png), "document xray.pdf: content is PNG, "
		    "but the name ends in .pdf (rename it to end in .png)" },
		{ "summary.pdf", text, sizeof(text) - 1, "document summary.pdf: "
		    "content is plain text, but the name ends in .pdf (rename it to "
		    "end in .txt)" },
		{ "labs", pdf, sizeof(pdf) - 1, "document labs: content is PDF, but "
		    "the name ends in no extension (rename it to end in .pdf)" },
		{ "tool.pdf", elf, sizeof(elf), NOT_ALLOWED("tool.pdf",
		    "it looks like a program") },
		{ "lib.pdf", so, sizeof(so), NOT_ALLOWED("lib.pdf",
		    "it looks like a program library") },
		{ "bundle.pdf", zip, sizeof(zip) - 1, NOT_ALLOWED("bundle.pdf",
		    "it looks like a ZIP archive") },
		{ "labs.pdf.gz", gz, sizeof(gz) - 1, NOT_ALLOWED("labs.pdf.gz",
		    "it looks like a gzip archive") },
		{ "results.pdf", html, sizeof(html) - 1, NOT_ALLOWED("results.pdf",
		    "it looks like a web page (HTML)") },
		{ "summary.rtf", rtf, sizeof(rtf) - 1, NOT_ALLOWED("summary.rtf",
		    "it looks like an RTF document") },
		{ "letter.doc", ole, sizeof(ole), NOT_ALLOWED("letter.doc",
		    "it looks like an old Microsoft Office document") },
		{ "run.txt", sh, sizeof(sh) - 1, NOT_ALLOWED("run.txt",
		    "it looks like a script (a program's text)") },
		{ "scan.gif", gif, sizeof(gif) - 1, NOT_ALLOWED("scan.gif",
		    "it looks like a GIF image") },
		/* No words of ours: libmagic's description, never its MIME type. */
		{ "call.pdf", wav, sizeof(wav) - 1, NOT_ALLOWED("call.pdf",
		    "it looks like RIFF (little-endian) data, WAVE audio, Microsoft "
		    "PCM, 8 bit, mono 8000 Hz") },
		{ "empty.pdf", "", 0, NOT_ALLOWED("empty.pdf", "it is empty") },
		{ "noise.pdf", noise, sizeof(noise), NOT_ALLOWED("noise.pdf",
		    "its content is not a kind of file the gateway recognizes") },
	};
	struct policy_magic	*pm = policy_magic_open();

	assert_non_null(pm);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		const char	*mime = NULL;
		int		 rv = policy_check_type(pm, cases[i].name, cases[i].buf,
		    cases[i].len, &mime, &errs);

		if (cases[i].want == NULL && rv != 0)
			fail_msg("%s: refused: %s", cases[i].name, errs.msg[0]);
		if (cases[i].want != NULL && (rv != -1 || errs.n != 1 ||
		    strcmp(errs.msg[0], cases[i].want) != 0))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name,
			    errs.n ? errs.msg[0] : "(allowed)", cases[i].want);
		errlist_free(&errs);
	}
	policy_magic_close(pm);
}

/* Recipient addresses, in the form each transport reads. */
static void
test_recipient_address_table(void **state)
{
	static const struct {
		const char	*backend, *address;
		const char	*want;	/* NULL: accepted; else part of the reason */
	} cases[] = {
		{ "local", "records-desk", NULL },
		{ "local", "a/b", "must be one plain folder name" },
		{ "local", "..", "must be one plain folder name" },
		{ "local", ".desk", "must be one plain folder name" },
		{ "local", "", "address: must not be empty" },
		{ "local", "   ", "address: must not be empty" },
		{ "local", "desk\x7f", "address: contains an invisible control "
		    "character (U+007F)" },
		{ "sftp", "sftp://roi@sftp.payer.example/inbound", NULL },
		{ "sftp", "sftp://roi@127.0.0.1:2222/in/", NULL },
		{ "sftp", "sftp://roi@host/", NULL },
		{ "sftp", "sftp://host/inbound", "must look like "
		    "sftp://USER@HOST[:PORT]/FOLDER" },
		{ "sftp", "ftp://roi@host/in", "must look like sftp://" },
		{ "sftp", "sftp://roi@host", "must look like sftp://" },
		{ "sftp", "sftp://roi@host:0/in", "must look like sftp://" },
		{ "sftp", "sftp://roi@host:99999/in", "must look like sftp://" },
		{ "sftp", "sftp://roi@host:22x/in", "must look like sftp://" },
		{ "sftp", "sftp://roi@:22/in", "must look like sftp://" },
		{ "sftp", "sftp://roi@host/in/../etc", "must look like sftp://" },
		{ "sftp", "sftp://roi@host/in/..", "must look like sftp://" },
		{ "sftp", "sftp://roi@host/in box", "must look like sftp://" },
		{ "smime", "dr.ada@clinic.test", NULL },
		{ "smime", "records+roi@clinic.example", NULL },
		{ "smime", "clinic.test", "is not an e-mail address" },
		{ "smime", "@clinic.test", "is not an e-mail address" },
		{ "smime", "ada@", "is not an e-mail address" },
		{ "smime", "ada@@clinic.test", "is not an e-mail address" },
		{ "smime", "ada smith@clinic.test", "is not an e-mail address" },
		{ "smime", "Ada <ada@clinic.test>", "is not an e-mail address" },
		{ "smime", "ada@clinic.test\xc2\x85", "control character (U+0085)" },
		{ "faxapi", "+15550100123", NULL },
		{ "faxapi", "+1 (555) 010-0123", NULL },
		{ "faxapi", "+4930123456", NULL },
		{ "faxapi", "5550100123", "is not a fax number in E.164 form" },
		{ "faxapi", "+1555", "is not a fax number in E.164 form" },
		{ "faxapi", "+1234567890123456", "is not a fax number in E.164 form" },
		{ "faxapi", "+05550100123", "is not a fax number in E.164 form" },
		{ "faxapi", "555-0001 ext 7", "is not a fax number in E.164 form" },
		{ "flaky", "tempfail:2", NULL },
		{ "flaky", "tempfail\t2", NULL },
		{ "flaky", "x\x1b", "control character (U+001B)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		int		 rv = policy_recipient_address(cases[i].backend,
		    cases[i].address, &errs);

		if (cases[i].want == NULL && rv != 0)
			fail_msg("%s %s: refused: %s", cases[i].backend,
			    cases[i].address, errs.msg[0]);
		if (cases[i].want != NULL && (rv != -1 || errs.n != 1 ||
		    strstr(errs.msg[0], cases[i].want) == NULL))
			fail_msg("%s %s: got \"%s\", want \"%s\"", cases[i].backend,
			    cases[i].address, errs.n ? errs.msg[0] : "(accepted)",
			    cases[i].want);
		errlist_free(&errs);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions_table),
		cmocka_unit_test(test_document_types_table),
		cmocka_unit_test(test_recipient_address_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
