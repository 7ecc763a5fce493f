/* Unit tests for src/config.c: a table of configuration files and the
 * exact "file:line: message" each must produce (or none). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

static char	tmpdir[] = "/tmp/roigate-test-config.XXXXXX";

static struct config *
load_text(const char *text, char *err, size_t errlen)
{
	char	 path[256];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/roigate.conf", tmpdir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	err[0] = '\0';
	return config_load(path, err, errlen);
}

static void
test_errors_table(void **state)
{
	static const struct {
		const char	*text;
		const char	*want;	/* substring after "roigate.conf:" */
	} cases[] = {
		{ "[daemon]\nstate_dir = relative/path\n",
		    ":2: state_dir: \"relative/path\" must be an absolute path" },
		{ "[daemon]\nfrobnicate = 1\n", ":2: unknown key \"frobnicate\" in [daemon]" },
		{ "[nonsense]\nx = 1\n", ":1: unknown section [nonsense]" },
		{ "x = 1\n", ":1: \"x\" is outside any section" },
		{ "[queue]\nbackoff_base = soon\n",
		    ":2: backoff_base: \"soon\" is not a duration" },
		{ "[queue]\nworkers = 0\n", ":2: workers: 0 is out of range (1 to 256)" },
		{ "[queue]\nworkers = four\n", ":2: workers: \"four\" is not a whole number" },
		{ "[spool]\nmax_file_size = 12Q\n", ":2: max_file_size: \"12Q\" is not a size" },
		{ "[daemon]\nlog_level = loud\n", ":2: log_level: \"loud\" is not a log level" },
		{ "[roles]\nsuperuser = user:root\n", ":2: unknown role \"superuser\"" },
		{ "[roles]\nadmin = user:no-such-user-here\n",
		    ":2: no such user \"no-such-user-here\"" },
		{ "[roles]\nadmin = root\n", ":2: \"root\" is not a grant" },
		{ "[transport]\n", ":1: [transport NAME] needs a plain name" },
		{ "[transport a]\n[transport a]\n", ":2: [transport a] is already defined on line 1" },
		{ "[transport a]\nplugin = ../evil\n", ":2: plugin: \"../evil\" must be a plugin name" },
		{ "[daemon\n", ":1: section header must look like [name]" },
		{ "[queue]\njust words\n", ":2: expected \"key = value\" or a [section]" },
		{ "[render]\npaper = legal\n",
		    ":2: paper: \"legal\" is not one of letter|a4" },
		{ "[retention]\nrecords = 4y\n",
		    ":2: [retention] records is shorter than six years: the disclosure, "
		    "audit and incident records must be kept at least six years "
		    "(HIPAA, 45 CFR 164.316(b)(2))" },
		{ "[retention]\nrecords = 2191d\n",
		    ":2: [retention] records is shorter than six years" },
		{ "[render]\narchive_retention = 5d\n[retention]\narchive = 6d\n",
		    ":4: archive: [render] archive_retention and [retention] archive "
		    "are the same setting" },
		{ "[render]\ndocument_dpi = 600\n",
		    ":2: document_dpi: 600 is out of range (150 to 300)" },
		{ "[render]\nfax_resolution = fine\n",
		    ":2: fax_resolution: \"fine\" is not one of 200|204x196" },
		{ "[queue]\nbackoff_base = 2h\nbackoff_max = 1h\n",
		    "roigate.conf: [queue] backoff_max must not be shorter than backoff_base" },
	};
	char	err[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *c = load_text(cases[i].text, err, sizeof(err));
		if (c != NULL || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].want, err);
	}
}

static void
test_all_errors_reported(void **state)
{
	char	err[4096];

	assert_null(load_text("[daemon]\nbogus = 1\n[queue]\nworkers = x\n", err,
	    sizeof(err)));
	assert_non_null(strstr(err, ":2: unknown key"));
	assert_non_null(strstr(err, ":4: workers"));
}

static void
test_good_file(void **state)
{
	char		 err[4096];
	struct config	*c;

	c = load_text(
	    "# a comment\n; another\n"
	    "[daemon]\nstate_dir = /srv/roi/state\nsocket = /srv/roi/roigate.sock\n"
	    "log_level = debug\norganization = Example Health HIM\n"
	    "[spool]\ndir = /srv/roi/spool\nsettle_ms = 250\nincomplete_timeout = 5m\n"
	    "max_file_size = 64M\n"
	    "[queue]\nworkers = 3\nbackoff_base = 30s\nbackoff_max = 2h\nmax_age = 6d\n"
	    "[control]\nmax_frame = 512K\n"
	    "[render]\npaper = a4\nfax_resolution = 200\ndocument_dpi = 300\n"
	    "document_color = color\narchive_retention = 0\ncover_template = clinic\n"
	    "[roles]\nadmin = user:root, uid:4242\naudit = gid:4243\n"
	    "[transport desk]\nplugin = local\ndir = /srv/roi/out\n", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->state_dir, "/srv/roi/state");
	assert_int_equal(c->settle_ms, 250);
	assert_int_equal(c->incomplete_timeout_ms, 300000);
	assert_int_equal(c->max_file_size, 64 * 1024 * 1024);
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->backoff_base_ms, 30000);
	assert_int_equal(c->backoff_max_ms, 7200000);
	assert_int_equal(c->max_age_ms, 6LL * 86400000);
	assert_int_equal(c->max_frame, 512 * 1024);
	assert_int_equal(c->paper, 1);
	assert_int_equal(c->fax_fine, 0);
	assert_int_equal(c->document_dpi, 300);
	assert_int_equal(c->document_color, 1);
	assert_int_equal(c->archive_retention_ms, 0);
	/* The old name is read, and said to be old. */
	assert_non_null(c->notes);
	assert_non_null(strstr(c->notes, "roigate.conf:25: [render] archive_retention "
	    "is deprecated: it is now [retention] archive"));
	assert_string_equal(c->cover_template, "clinic");
	assert_int_equal(c->ntransports, 1);
	assert_string_equal(c->transports[0].name, "desk");
	assert_string_equal(c->transports[0].plugin, "local");
	assert_int_equal(c->transports[0].nkv, 1);
	assert_string_equal(c->transports[0].kv[0].key, "dir");
	assert_int_equal(config_roles(c, 0, 0, NULL, 0), ROLE_ADMIN);
	assert_int_equal(config_roles(c, 4242, 99999, NULL, 0), ROLE_ADMIN);
	assert_int_equal(config_roles(c, 99998, 4243, NULL, 0), ROLE_AUDIT);
	assert_int_equal(config_roles(c, 99998, 99999, NULL, 0), 0);
	/* Supplementary groups as the kernel reports them count too. */
	{
		const gid_t	in[] = { 5, 4243 }, out[] = { 5, 6 };
		assert_int_equal(config_roles(c, 99998, 99999, in, 2), ROLE_AUDIT);
		assert_int_equal(config_roles(c, 99998, 99999, out, 2), 0);
	}
	config_free(c);
}

static void
test_defaults(void **state)
{
	char		 err[256];
	struct config	*c = config_load(NULL, err, sizeof(err));
	char		 roles[64];

	assert_non_null(c);
	assert_int_equal(c->settle_ms, 2000);
	assert_int_equal(c->retention_jobs_ms, 30LL * 86400000);
	assert_int_equal(c->archive_retention_ms, 30LL * 86400000);
	assert_int_equal(c->retention_records_ms, 6LL * 31557600000LL);
	assert_null(c->notes);
	/* The embedded default transport. */
	assert_int_equal(c->ntransports, 1);
	assert_string_equal(c->transports[0].name, "local");
	assert_string_equal(c->transports[0].kv[0].value, "/var/lib/roigate/outbox");
	/* root has no implicit role. */
	assert_int_equal(config_roles(c, 0, 0, NULL, 0), 0);
	roles_format(ROLE_SUBMIT | ROLE_AUDIT, roles, sizeof(roles));
	assert_string_equal(roles, "submit,audit");
	roles_format(0, roles, sizeof(roles));
	assert_string_equal(roles, "none");
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_table),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_defaults),
	};
	int	rv;

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	char path[300];
	snprintf(path, sizeof(path), "%s/roigate.conf", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return rv;
}
