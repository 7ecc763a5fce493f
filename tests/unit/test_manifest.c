/* Unit tests for src/manifest.c: a table of manifests, each the sample
 * packet's with one or two changes, and the plain-language error each
 * must produce (or none). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest.h"
#include "util.h"
#include "sample.h"

static void
test_sample_parses(void **state)
{
	struct errlist	 errs = { NULL, 0 };
	char		*text = sample_text(NULL, NULL, NULL, NULL);
	struct manifest	*m = manifest_parse(text, strlen(text), &errs);
	char		*desc;

	if (m == NULL)
		fail_msg("%s", errs.msg[0]);
	assert_int_equal(errs.n, 0);
	assert_string_equal(m->packet_id, "ROI-2026-000123");
	assert_string_equal(m->patient_mrn, "TEST-000123");
	assert_int_equal(m->basis, BASIS_AUTHORIZATION);
	assert_non_null(m->authorization);
	assert_string_equal(m->authorization->expires_on, "2027-11-01");
	assert_int_equal(m->authorization->nscope_types, 3);
	assert_int_equal(m->ndocs, 3);
	assert_string_equal(m->docs[0].file, "labs-2026-10.pdf");
	assert_int_equal(strlen(m->docs[0].sha256), 64);
	assert_string_equal(m->recipient, "records-desk");
	desc = manifest_describe(m);
	assert_non_null(strstr(desc, "3 documents: lab (2026-10-14) HbA1c result"));
	free(desc);
	manifest_free(m);
	free(text);
}

static void
test_errors_table(void **state)
{
	static const struct {
		const char	*path, *value, *path2, *value2;
		const char	*want;	/* substring of the first error */
	} cases[] = {
		{ "version", "2", NULL, NULL, "version: 2 is not supported" },
		{ "version", NULL, NULL, NULL, "version: missing or not a number" },
		{ "packet_id", NULL, NULL, NULL, "packet_id: missing" },
		{ "packet_id", "\"../etc\"", NULL, NULL,
		    "packet_id: \"../etc\" must be 1 to 64 letters" },
		{ "packet_id", "\".hidden\"", NULL, NULL, "must be 1 to 64 letters" },
		{ "packet_id", "42", NULL, NULL, "packet_id: must be a string" },
		{ "packet_id", "\"\"", NULL, NULL, "packet_id: must not be empty" },
		{ "created_at", "\"yesterday\"", NULL, NULL,
		    "created_at: \"yesterday\" is not a date and time" },
		{ "patient", NULL, NULL, NULL, "patient: missing" },
		{ "patient", "[]", NULL, NULL, "patient: must be an object" },
		{ "patient.mrn", NULL, NULL, NULL, "patient.mrn: missing" },
		{ "patient.name", "\"Zo\\u0007e\"", NULL, NULL,
		    "patient.name: contains an invisible control character" },
		{ "patient.dob", "\"1984-02-30\"", NULL, NULL,
		    "patient.dob: \"1984-02-30\" is not a date" },
		{ "request.requester.kind", "\"neighbour\"", NULL, NULL,
		    "request.requester.kind: \"neighbour\" is not a kind of requester" },
		{ "request.purpose", NULL, NULL, NULL, "request.purpose: missing" },
		{ "basis", "\"curiosity\"", NULL, NULL,
		    "basis: \"curiosity\" is not a legal basis" },
		{ "authorization.expires_on", NULL, NULL, NULL,
		    "authorization.expires_on: missing" },
		{ "authorization.scope.document_types", "[]", NULL, NULL,
		    "authorization.scope.document_types: must list" },
		{ "authorization.scope.categories", "[\"gossip\"]", NULL, NULL,
		    "\"gossip\" is not a special category" },
		{ "documents", "[]", NULL, NULL,
		    "documents: must list at least one document" },
		{ "documents.0.file", "\"../labs.pdf\"", NULL, NULL,
		    "documents[0].file: \"../labs.pdf\" must be a plain file name" },
		{ "documents.0.file", "\"sub/labs.pdf\"", NULL, NULL,
		    "must be a plain file name" },
		{ "documents.0.file", "\"manifest.json\"", NULL, NULL,
		    "must be a plain file name" },
		{ "documents.1.file", "\"labs-2026-10.pdf\"", NULL, NULL,
		    "documents[1].file: \"labs-2026-10.pdf\" is listed twice" },
		{ "documents.0.sha256", "\"abc\"", NULL, NULL,
		    "documents[0].sha256: must be 64 hexadecimal characters" },
		{ "documents.0.date", "\"14/10/2026\"", NULL, NULL,
		    "documents[0].date: \"14/10/2026\" is not a date" },
		{ "documents.0.type", NULL, NULL, NULL, "documents[0].type: missing" },
		{ "documents.0.colour", "\"red\"", NULL, NULL,
		    "documents[0].colour: unknown field" },
		{ "documents.0.redact", "{\"rects\": [{\"page\": 0, \"x\": 1, \"y\": 1, "
		    "\"w\": 1, \"h\": 1}]}", NULL, NULL,
		    "documents[0].redact.rects[0]: must be {page (from 1)" },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"shoe_size\"}]}",
		    NULL, NULL, "\"shoe_size\" is not a named pattern" },
		/* What the renderer would only find after acceptance. */
		{ "documents.0.redact", "{\"patterns\": [{\"regex\": \"CLM-[0-9\"}]}",
		    NULL, NULL, "documents[0].redact.patterns[0].regex: \"CLM-[0-9\" is not a "
		    "valid regular expression" },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": -2}]}", NULL, NULL,
		    "documents[0].redact.patterns[0].expect: must be a whole number" },
		{ "colour", "\"blue\"", NULL, NULL, "colour: unknown field" },
		/* Every problem at once, not just the first. */
		{ "packet_id", NULL, "basis", "\"curiosity\"", "packet_id: missing" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		char		*text = sample_text(cases[i].path, cases[i].value,
		    cases[i].path2, cases[i].value2);
		struct manifest	*m = manifest_parse(text, strlen(text), &errs);
		char		*all;

		if (m != NULL)
			fail_msg("case %zu (%s): parsed, want \"%s\"", i, cases[i].path,
			    cases[i].want);
		all = errlist_join(&errs, " | ");
		if (strstr(all, cases[i].want) == NULL)
			fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i,
			    cases[i].path, all, cases[i].want);
		if (cases[i].path2)
			assert_int_equal(errs.n, 2);
		free(all);
		errlist_free(&errs);
		free(text);
	}
}

#define CTRL(f, u) f ": contains an invisible control character (U+" u "): " \
	    "type the text again without it"
#define EXPECT(i) "documents[0].redact.patterns[" i "].expect: must be a whole " \
	    "number from 0 to 100000 (how many times the pattern must be found)"
#define BLANK(f) f ": must not be empty or only spaces"
#define RECT(i) "documents[0].redact.rects[" i "]: must be {page (from 1), x, " \
	    "y, w, h} with positive width and height"

/* Issue 18: inputs once sent although bad, each refused with its exact
 * reason (want is one of the errors); and their good neighbours. */
static void
test_refusals_table(void **state)
{
	static const struct {
		const char	*path, *value;
		const char	*want;	/* NULL: parses */
	} cases[] = {
		{ "approval.by", "\"\"", BLANK("approval.by") },
		{ "approval.by", "\"   \"", BLANK("approval.by") },
		{ "approval.by", "\"\\u00a0\\t \"", BLANK("approval.by") },
		{ "authorization.signed_by", "\"\"", BLANK("authorization.signed_by") },
		{ "request.requester.name", "\"\\t\"", BLANK("request.requester.name") },
		{ "documents.0.description", "\"\"", BLANK("documents[0].description") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": -1}]}", EXPECT("0") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\"}, "
		    "{\"name\": \"mrn\", \"expect\": -7}]}", EXPECT("1") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": \"2\"}]}", EXPECT("0") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": 1.5}]}", EXPECT("0") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": 4294967297}]}", EXPECT("0") },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": 0}]}", NULL },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"regex\": \"x\"}]}", "documents[0].redact.patterns[0]: give a "
		    "name or a regex (one of the two)" },
		{ "documents.0.redact", "{\"patterns\": [\"ssn\"]}",
		    "documents[0].redact.patterns[0]: must be {name or regex, expect "
		    "(optional)}" },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"colour\": 1}]}", "documents[0].redact.patterns[0].colour: "
		    "unknown field (check the spelling against docs/manifest.md)" },
		{ "documents.0.redact", "{\"patterns\": [{\"regex\": \"A\\u0090\"}]}",
		    CTRL("documents[0].redact.patterns[0].regex", "0090") },
		{ "documents.0.redact", "{\"patterns\": {\"name\": \"ssn\"}}",
		    "documents[0].redact.patterns: must be a list" },
		{ "documents.0.redact", "{\"rects\": [{\"page\": 1, \"x\": 0, \"y\": 0, "
		    "\"w\": 1, \"h\": 1}, {\"page\": 1, \"x\": 0, \"y\": 0, \"w\": 0, "
		    "\"h\": 1}]}", RECT("1") },
		{ "documents.0.redact", "{\"rects\": [{\"page\": 4294967297, \"x\": 0, "
		    "\"y\": 0, \"w\": 1, \"h\": 1}]}", RECT("0") },
		{ "documents.0.redact", "{\"rects\": {\"page\": 1}}",
		    "documents[0].redact.rects: must be a list" },
		{ "cover_sheet.urgent", "\"yes\"", "cover_sheet.urgent: must be true "
		    "or false (without quotes)" },
		{ "cover_sheet.urgent", "\"true\"", "cover_sheet.urgent: must be true "
		    "or false (without quotes)" },
		{ "cover_sheet.urgent", "1", "cover_sheet.urgent: must be true or "
		    "false (without quotes)" },
		{ "cover_sheet.urgent", "true", NULL },
		{ "patient.name", "\"Zo\\u007fe\"", CTRL("patient.name", "007F") },
		{ "patient.name", "\"Zo\\u0080e\"", CTRL("patient.name", "0080") },
		{ "request.requester.organization", "\"Clinic\\u0085\"",
		    CTRL("request.requester.organization", "0085") },
		{ "documents.0.description", "\"HbA1c\\u009f\"",
		    CTRL("documents[0].description", "009F") },
		{ "cover_sheet.note", "\"\\u009bcall\"", CTRL("cover_sheet.note", "009B") },
		{ "approval.by", "\"J. Clerk\\u0007\"", CTRL("approval.by", "0007") },
		{ "authorization.scope.document_types", "[\"lab\", \"imaging\\u0080\"]",
		    CTRL("authorization.scope.document_types[1]", "0080") },
		{ "authorization.scope.document_types", "[\"lab\", 7]",
		    "authorization.scope.document_types[1]: must be a string" },
		/* Tab, no-break space and letters beyond ASCII are text. */
		{ "patient.name", "\"Zo\\u00eb\\tTest\\u00a0Patient\"", NULL },
		{ "documents.0.categories", "[\"hiv\", \"gossip\"]",
		    "documents[0].categories[1]: \"gossip\" is not a special category "
		    "(use psychotherapy_notes, substance_use_part2, hiv, genetic, "
		    "mental_health)" },
		{ "documents.0.categories", "[7]",
		    "documents[0].categories[0]: must be a string" },
		{ "documents.0.categories", "\"hiv\"",
		    "documents[0].categories: must be a list" },
		{ "authorization.scope.categories", "[\"hiv\", \"gossip\"]",
		    "authorization.scope.categories[1]: \"gossip\" is not a special "
		    "category (use psychotherapy_notes, substance_use_part2, hiv, "
		    "genetic, mental_health)" },
		{ "documents", "{\"file\": \"labs.pdf\"}", "documents: must be a list" },
		{ "documents", "\"labs.pdf\"", "documents: must be a list" },
		{ "documents", NULL, "documents: missing" },
		{ "documents.0.file", "\"a\\\\b.pdf\"", "documents[0].file: \"a\\b.pdf\" "
		    "must be a plain file name in the packet folder (no '/' or '\\', "
		    "not starting with '.', not manifest.json or REASON.txt)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		char		*text = sample_text(cases[i].path, cases[i].value,
		    NULL, NULL);
		struct manifest	*m = manifest_parse(text, strlen(text), &errs);
		char		*all = errlist_join(&errs, " | ");
		size_t		 k;

		for (k = 0; k < errs.n && cases[i].want; k++)
			if (strcmp(errs.msg[k], cases[i].want) == 0)
				break;
		if (cases[i].want == NULL && m == NULL)
			fail_msg("case %zu (%s): refused: %s", i, cases[i].path, all);
		if (cases[i].want && (m != NULL || k == errs.n))
			fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i,
			    cases[i].path, all, cases[i].want);
		free(all);
		manifest_free(m);
		errlist_free(&errs);
		free(text);
	}
}

/* A file name the file system cannot hold is refused by its length. */
static void
test_long_file_name(void **state)
{
	static const size_t	 lens[] = { 251, 252, 600 };	/* + ".pdf" */

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		char		 name[700], value[710], *text;
		struct manifest	*m;

		memset(name, 'a', lens[i]);
		strcpy(name + lens[i], ".pdf");
		snprintf(value, sizeof(value), "\"%s\"", name);
		text = sample_text("documents.0.file", value, NULL, NULL);
		m = manifest_parse(text, strlen(text), &errs);
		if (lens[i] + 4 <= 255) {
			if (m == NULL)
				fail_msg("%zu bytes: %s", lens[i] + 4, errs.msg[0]);
			assert_string_equal(m->docs[0].file, name);
		} else {
			assert_null(m);
			assert_int_equal(errs.n, 1);
			assert_string_equal(errs.msg[0],
			    "documents[0].file: is longer than 255 bytes");
		}
		manifest_free(m);
		errlist_free(&errs);
		free(text);
	}
}

/* A dob pattern without the date it looks for is refused (one error). */
static void
test_dob_pattern_needs_the_dob(void **state)
{
	struct errlist	 errs = { NULL, 0 };
	char		*text = sample_text("documents.0.redact",
	    "{\"patterns\": [{\"name\": \"dob\"}]}", "patient.dob", NULL);

	assert_null(manifest_parse(text, strlen(text), &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "documents[0].redact.patterns[0].name: dob looks "
	    "for the patient's date of birth: give patient.dob");
	errlist_free(&errs);
	free(text);
}

/* Text that is not one JSON object: the reason in words, never jansson's. */
static void
test_not_json_table(void **state)
{
	static const struct {
		const char	*text;
		size_t		 len;	/* 0: strlen */
		const char	*want;	/* the one error, exactly */
	} cases[] = {
		{ "", 0, "manifest.json is empty" },
		{ " \n\t", 0, "manifest.json is empty" },
		{ "\xef\xbb\xbf", 0, "manifest.json is empty" },
		{ "{\"version\": 1,", 0, "manifest.json, line 1, column 14: ends "
		    "before its closing brace (a '}', ']' or '\"' is missing, or the "
		    "file was cut short)" },
		{ "{\"version\": 1,}", 0, "manifest.json, line 1, column 15: a field "
		    "name in double quotes is expected here (a comma too many before "
		    "'}'?)" },
		{ "{\"version\": 1 \"a\": 2}", 0, "manifest.json, line 1, column "
		    "17: a ',' or '}' is missing" },
		{ "{\"packet_id\": \"ROI", 0, "manifest.json, line 1, column 18: ends "
		    "before its closing brace (a '}', ']' or '\"' is missing, or the "
		    "file was cut short)" },
		{ "[1, 2]", 0, "manifest.json must be one JSON object ({...}), not a "
		    "list ([...])" },
		{ "  \"ROI-1\"", 0, "manifest.json must be one JSON object ({...}), "
		    "not a string" },
		{ "42", 0, "manifest.json must be one JSON object ({...}), not a number" },
		{ "true", 0, "manifest.json must be one JSON object ({...}), not true "
		    "or false" },
		{ "null", 0, "manifest.json must be one JSON object ({...}), not null" },
		{ "PK\003\004", 0, "manifest.json must be one JSON object ({...}), "
		    "but it does not start with '{'" },
		{ "{\"version\": 1} x", 0, "manifest.json, line 1, column 16: has "
		    "text after the closing brace: remove it" },
		{ "{\"version\": 1}\n{\"version\": 1}", 0, "manifest.json, line 2, "
		    "column 1: has text after the closing brace: remove it" },
		{ "{\"version\": 1, \"version\": 1}", 0, "manifest.json, line 1, "
		    "column 24: the same field is given twice in one object: keep one" },
		{ "{\"version\": 1, \"a\": \"x\\u0000y\"}", 0, "manifest.json, line 1, "
		    "column 30: contains a NUL character (\\u0000)" },
		{ "{\"version\": 1,\n\"a\": \"x\0y\"}", 25, "manifest.json, line 2: "
		    "contains a NUL character (\\u0000)" },
		{ "{\"version\": 1, \"a\": \"\xff\"}", 0, "manifest.json, line 1, "
		    "column 21: is not UTF-8 text: save it as UTF-8" },
		{ "{\"version\": 1, \"a\": \"x\ty\"}", 0, "manifest.json, line 1, "
		    "column 22: a string holds a control character (a tab or line "
		    "break inside quotes?): write \\t or \\n, or remove it" },
		{ "{\"version\": 1, \"a\": \"C:\\temp\\x\"}", 0, "manifest.json, line "
		    "1, column 30: a backslash starts no valid escape (write \\\\ for "
		    "a backslash)" },
		{ "{\"version\": 1, \"urgent\": yes}", 0, "manifest.json, line 1, "
		    "column 28: holds something that is not JSON (text needs double "
		    "quotes; true, false and null are lower-case)" },
		{ "{\"version\" 1}", 0, "manifest.json, line 1, column 12: a ':' is "
		    "missing after a field name" },
		{ "{\"version\": 1, \"a\": [1 2]}", 0, "manifest.json, line 1, "
		    "column 24: a ',' or ']' is missing" },
		{ "{\"version\": 1e999}", 0, "manifest.json, line 1, column 17: a "
		    "number is too large" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		size_t		 len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		struct manifest	*m = manifest_parse(cases[i].text, len, &errs);

		assert_null(m);
		if (errs.n != 1 || strcmp(errs.msg[0], cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
			    errs.n ? errs.msg[0] : "(none)", cases[i].want);
		errlist_free(&errs);
	}
}

/* Windows Notepad starts a UTF-8 file with a byte-order mark. */
static void
test_bom_is_accepted(void **state)
{
	struct errlist	 errs = { NULL, 0 };
	char		*text = sample_text(NULL, NULL, NULL, NULL), *bom;
	struct manifest	*m;

	if (asprintf(&bom, "\xef\xbb\xbf%s", text) == -1)
		abort();
	m = manifest_parse(bom, strlen(bom), &errs);
	if (m == NULL)
		fail_msg("%s", errs.msg[0]);
	assert_string_equal(m->packet_id, "ROI-2026-000123");
	manifest_free(m);
	free(bom);
	free(text);
}

/* Still being copied (0), or complete: its verdict is final (1). */
static void
test_text_complete_table(void **state)
{
	static const struct {
		const char	*text;
		size_t		 len;	/* 0: strlen */
		int		 complete;
	} cases[] = {
		{ "", 0, 0 }, { "  \n", 0, 0 }, { "\xef\xbb\xbf", 0, 0 },
		{ "{", 0, 0 }, { "\xef\xbb\xbf {\"version\": 1,", 0, 0 },
		{ "{\"packet_id\": \"RO", 0, 0 }, { "{\"a\": [1, 2", 0, 0 },
		{ "{\"a\": tru", 0, 0 }, { "{\"a\": -", 0, 0 }, { "{\"a\": 1e", 0, 0 },
		{ "{\"a\": \"x\\u00", 0, 0 },
		{ "{\"a\": \"Zo\xc3", 0, 0 },		/* cut inside a letter */
		{ "{\"a\": 1,\0\0\0\0", 12, 0 },	/* sized first, filled later */
		{ "{}", 0, 1 }, { "{\"a\": 1}\n", 0, 1 }, { "\xef\xbb\xbf{}", 0, 1 },
		{ "{} x", 0, 1 }, { "{}{", 0, 1 }, { "{}\0\0", 4, 1 },
		{ "[1, 2]", 0, 1 }, { "[1, 2", 0, 1 }, { "\"x\"", 0, 1 }, { "42", 0, 1 },
		{ "PK\003\004", 0, 1 }, { "{\"a\": [1 2]", 0, 1 },
		{ "{\"a\": x y", 0, 1 }, { "{\"a\":\0 1}", 9, 1 },
		{ "{\"a\": \"\xff\"", 0, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		if (manifest_text_complete(cases[i].text, len) != cases[i].complete)
			fail_msg("case %zu (%.20s): want %d", i, cases[i].text,
			    cases[i].complete);
	}
}

static void
test_oversized_and_too_many(void **state)
{
	struct errlist	 errs = { NULL, 0 };
	size_t		 len = MANIFEST_MAX_SIZE + 1;
	char		*big = malloc(len + 1);
	json_t		*root, *docs;
	char		*text;

	memset(big, ' ', len);
	big[0] = '{';
	big[len - 1] = '}';
	big[len] = '\0';
	assert_null(manifest_parse(big, len, &errs));
	assert_non_null(strstr(errs.msg[0], "manifest.json is larger than"));
	errlist_free(&errs);
	free(big);

	root = json_load_file(SAMPLE_MANIFEST, 0, NULL);
	docs = json_object_get(root, "documents");
	for (int i = 0; i < MANIFEST_MAX_DOCS; i++)
		json_array_append(docs, json_array_get(docs, 0));
	text = json_dumps(root, 0);
	assert_null(manifest_parse(text, strlen(text), &errs));
	assert_non_null(strstr(errs.msg[0], "documents: more than 1000 documents"));
	errlist_free(&errs);
	free(text);
	json_decref(root);
}

static void
test_packet_id_table(void **state)
{
	static const struct {
		const char	*id;
		int		 ok;
	} cases[] = {
		{ "ROI-2026-000123", 1 }, { "a", 1 }, { "a.b_c-d", 1 },
		{ "", 0 }, { ".x", 0 }, { "..", 0 }, { "a/b", 0 }, { "a b", 0 },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 1 },
		{ "01234567890123456789012345678901234567890123456789012345678901234", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!!valid_packet_id(cases[i].id) != cases[i].ok)
			fail_msg("\"%s\": want %d", cases[i].id, cases[i].ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_parses),
		cmocka_unit_test(test_errors_table),
		cmocka_unit_test(test_dob_pattern_needs_the_dob),
		cmocka_unit_test(test_not_json_table),
		cmocka_unit_test(test_bom_is_accepted),
		cmocka_unit_test(test_text_complete_table),
		cmocka_unit_test(test_refusals_table),
		cmocka_unit_test(test_long_file_name),
		cmocka_unit_test(test_oversized_and_too_many),
		cmocka_unit_test(test_packet_id_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
