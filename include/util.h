/*
 * Small helpers shared by every program: checked allocation, bounded
 * string handling, safe file I/O with fsync, SHA-256, time.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHA256_HEX_LEN	64

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* snprintf that returns -1 on truncation. */
int	 bsnprintf(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
size_t	 strlcpy_(char *, const char *, size_t);

/* Growing byte buffer. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};
void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_addstr(struct buf *, const char *);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
char	*buf_cstr(struct buf *);	/* NUL-terminated view of the data */

/* Time. */
int64_t	 now_ms(void);		/* CLOCK_MONOTONIC */
int64_t	 now_us(void);		/* CLOCK_MONOTONIC in microseconds */
int64_t	 now_wall(void);	/* time(NULL) */
int64_t	 now_wall_ms(void);	/* CLOCK_REALTIME in milliseconds */
/* "2026-11-24T10:01:02Z" into out (at least 21 bytes). */
void	 time_iso(int64_t t, char *out, size_t outlen);
/* The same time of day and date, years calendar years earlier (UTC). */
int64_t	 time_years_before(int64_t t, int years);
/* Parse "YYYY-MM-DD" into days since 1970; -1 if invalid. */
int	 date_parse(const char *s, int64_t *days);
/* Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (also +hh:mm) into unix time. */
int	 datetime_parse(const char *s, int64_t *t);
/* Parse "1500ms", "30s", "5m", "2h", "6d", "90" (seconds) into ms. */
int	 duration_parse(const char *s, int64_t *ms);
/* Parse "64M", "1G", "512K", "4096" into bytes. */
int	 size_parse(const char *s, int64_t *bytes);

/* SHA-256 of data into hex[65]. */
struct sha256_ctx;
struct sha256_ctx *sha256_new(void);
void	 sha256_update(struct sha256_ctx *, const void *, size_t);
void	 sha256_final(struct sha256_ctx *, char hex[SHA256_HEX_LEN + 1]);
void	 sha256_hex(const void *, size_t, char hex[SHA256_HEX_LEN + 1]);
/* Hash an open fd from offset 0 to EOF; -1 on read error. */
int	 sha256_fd(int fd, char hex[SHA256_HEX_LEN + 1], off_t *size);

/* Digest of a delivery: for one file its own SHA-256; for several, the
 * SHA-256 of the sha256sum-style listing "HEX  NAME\n" sorted by name. */
void	 sha256_listing(const char *const *names, const char *const *hexes,
	    size_t n, char hex[SHA256_HEX_LEN + 1]);

/* File helpers.  All return 0 / -1 with errno set. */
int	 fsync_dir(const char *path);
int	 fsync_dirfd_at(int dirfd, const char *name);
/* Write data to dir/name atomically: O_EXCL temp, fsync, rename, fsync dir. */
int	 write_file_atomic(int dirfd, const char *name, const void *, size_t,
	    mode_t mode);
/* Create dir/name with O_EXCL (never over a file someone else made), fsync. */
int	 write_file_excl(int dirfd, const char *name, const void *, size_t,
	    mode_t mode);
/* The same without the fsyncs: for a folder made durable at once later. */
int	 write_file_excl_nosync(int dirfd, const char *name, const void *,
	    size_t, mode_t mode);
/* Copy in to out by reflink, copy_file_range or read/write; bytes or -1.
 * More than cap means the file grew past cap. */
off_t	 copy_fd(int in, int out, off_t cap);
int	 read_file_fd(int fd, size_t max, struct buf *out);
/* In a child: close every descriptor from 3 up but those in keep. */
void	 close_all_but(const int *keep, size_t n);
/* Remove dir/name and the files in it (one level, nothing followed); a
 * folder already gone is success. */
int	 remove_dir_at(int dirfd, const char *name);
/* A secret file (key, password) whole into buf (NUL-terminated, *len
 * bytes): opened with O_NOFOLLOW, then fstat on that descriptor: regular,
 * owned by the daemon's user or root, no group or other permission.
 * -1 with err naming the file, what is wrong and the fix ("what" is the
 * configuration key, "noun" what the file holds).  Wipe buf after use. */
int	 read_secret_file(const char *what, const char *path, const char *noun,
	    char *buf, size_t bufsize, size_t *len, char *err, size_t errlen);
/* One line "USER:SECRET" from a secret file, split; -1 with err. */
int	 read_secret_pair(const char *what, const char *path, char *user,
	    size_t ulen, char *secret, size_t slen, char *err, size_t errlen);
/* Create a directory and its parents, mode for the ones created. */
int	 mkdir_p(const char *path, mode_t mode);
ssize_t	 write_all(int fd, const void *, size_t);
ssize_t	 read_all(int fd, void *, size_t);
int	 set_nonblock(int fd);
int	 set_cloexec(int fd);

/* Test-only fault injection: SIGKILL ourselves when the environment
 * variable ROIGATE_TEST_CRASH names this point (docs/operations.md). */
void	 test_crashpoint(const char *name);

/* Is s a safe plain file name: no '/', not "." or "..", no leading '.', no control bytes? */
int	 valid_filename(const char *s);
/* s as a reason may show a name a clerk gave: in at most len bytes (cut
 * between characters, "..." then), each control character or byte that is
 * not UTF-8 a '?'.  Returns out. */
const char *name_shown(const char *s, char *out, size_t len);

#endif
