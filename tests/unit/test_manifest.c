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
		    "patient.name: contains control characters" },
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
		    "documents[0].rects[0]: must be {page (from 1)" },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"shoe_size\"}]}",
		    NULL, NULL, "\"shoe_size\" is not a named pattern" },
		/* What the renderer would only find after acceptance. */
		{ "documents.0.redact", "{\"patterns\": [{\"regex\": \"CLM-[0-9\"}]}",
		    NULL, NULL, "documents[0].patterns[0].regex: \"CLM-[0-9\" is not a "
		    "valid regular expression" },
		{ "documents.0.redact", "{\"patterns\": [{\"name\": \"ssn\", "
		    "\"expect\": -2}]}", NULL, NULL,
		    "documents[0].patterns[0].expect: must be 0 or more" },
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

/* A dob pattern without the date it looks for is refused (one error). */
static void
test_dob_pattern_needs_the_dob(void **state)
{
	struct errlist	 errs = { NULL, 0 };
	char		*text = sample_text("documents.0.redact",
	    "{\"patterns\": [{\"name\": \"dob\"}]}", "patient.dob", NULL);

	assert_null(manifest_parse(text, strlen(text), &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "documents[0].patterns[0].name: dob looks "
	    "for the patient's date of birth: give patient.dob");
	errlist_free(&errs);
	free(text);
}

static void
test_not_json_table(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;
	} cases[] = {
		{ "", "manifest.json is not valid JSON" },
		{ "{\"version\": 1,", "manifest.json is not valid JSON (line 1" },
		{ "[1, 2]", "manifest.json must hold one JSON object" },
		{ "{\"version\": 1, \"version\": 1}", "not valid JSON" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errlist	 errs = { NULL, 0 };
		struct manifest	*m = manifest_parse(cases[i].text,
		    strlen(cases[i].text), &errs);

		assert_null(m);
		assert_true(errs.n >= 1);
		if (strstr(errs.msg[0], cases[i].want) == NULL)
			fail_msg("case %zu: got \"%s\"", i, errs.msg[0]);
		errlist_free(&errs);
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
		cmocka_unit_test(test_oversized_and_too_many),
		cmocka_unit_test(test_packet_id_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
