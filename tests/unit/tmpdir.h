/* Scratch folders for the unit tests: made under /tmp, removed whole. */
#ifndef TEST_TMPDIR_H
#define TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline char *
test_mkdtemp(char *buf, size_t len, const char *prefix)
{
	snprintf(buf, len, "/tmp/%s.XXXXXX", prefix);
	return mkdtemp(buf);
}

static inline int
test_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

/* rm -rf, without a shell. */
static inline int
test_rmtree(const char *dir)
{
	return nftw(dir, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
