/* Unit tests for src/backoff.c: exponential backoff, cap, retry-after, give-up. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "backoff.h"

static void
test_delay_table(void **state)
{
	static const struct {
		int64_t	base, max;
		int	attempts;
		int64_t	retry_after, want;
	} cases[] = {
		{ 60000, 3600000, 1, 0, 60000 },	/* first retry waits base */
		{ 60000, 3600000, 2, 0, 120000 },
		{ 60000, 3600000, 3, 0, 240000 },
		{ 60000, 3600000, 6, 0, 1920000 },
		{ 60000, 3600000, 7, 0, 3600000 },	/* capped */
		{ 60000, 3600000, 500, 0, 3600000 },	/* no overflow */
		{ 1000, 2000, 3, 0, 2000 },
		{ 60000, 3600000, 1, 180000, 180000 },	/* busy fax line: 3 min */
		{ 60000, 3600000, 1, 10, 60000 },	/* never below base */
		{ 60000, 3600000, 1, 99999999, 3600000 },	/* never above max */
		{ 1, INT64_MAX, 80, 0, INT64_MAX },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(backoff_delay(cases[i].base, cases[i].max,
		    cases[i].attempts, cases[i].retry_after), cases[i].want);
}

static void
test_exhausted_table(void **state)
{
	static const struct {
		int	attempts, max_attempts;
		int64_t	age, max_age;
		int	want;
	} cases[] = {
		{ 1, 10, 1000, 86400000, 0 },
		{ 9, 10, 1000, 86400000, 0 },
		{ 10, 10, 1000, 86400000, 1 },	/* too many tries */
		{ 2, 10, 86400000, 86400000, 1 },	/* too old */
		{ 0, 1, 0, 1, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(backoff_exhausted(cases[i].attempts,
		    cases[i].max_attempts, cases[i].age, cases[i].max_age),
		    cases[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay_table),
		cmocka_unit_test(test_exhausted_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
