/*
 * Helpers shared by every program (daemon, worker, roictl, plugins):
 * checked allocation, bounded strings, a growing buffer, time parsing,
 * SHA-256 (OpenSSL EVP), and file I/O that fsyncs what it writes.
 */
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include <linux/fs.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void	*p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t m)
{
	void	*q = reallocarray(p, n ? n : 1, m ? m : 1);

	if (q == NULL)
		fatal("reallocarray");
	return q;
}

char *
xstrdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p = strndup(s, n);

	if (p == NULL)
		fatal("strndup");
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n == -1)
		fatal("vasprintf");
	return n;
}

int
bsnprintf(char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

size_t
strlcpy_(char *dst, const char *src, size_t len)
{
	size_t	n = strlen(src);

	if (len > 0) {
		size_t	c = n >= len ? len - 1 : n;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

static void
buf_reserve(struct buf *b, size_t more)
{
	size_t	cap;

	if (b->len + more + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2)
			fatalx("buffer too large");
		cap *= 2;
	}
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("buf_printf");
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 0);
	b->data[b->len] = '\0';
	return b->data;
}

int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
now_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_wall(void)
{
	return (int64_t)time(NULL);
}

void
time_iso(int64_t t, char *out, size_t outlen)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t
time_years_before(int64_t t, int years)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	gmtime_r(&tt, &tm);
	tm.tm_year -= years;
	/* 29 February of a year that has none: the 28th, never 1 March,
	 * which would be less than the years asked. */
	if (tm.tm_mon == 1 && tm.tm_mday == 29)
		tm.tm_mday = 28;
	return (int64_t)timegm(&tm);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		era;
	unsigned	yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
digits(const char *s, int n, int *out)
{
	int	v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
date_fields(const char *s, int *y, int *m, int *d)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int	leap;

	if (digits(s, 4, y) == -1 || s[4] != '-' || digits(s + 5, 2, m) == -1 ||
	    s[7] != '-' || digits(s + 8, 2, d) == -1)
		return -1;
	if (*y < 1900 || *m < 1 || *m > 12 || *d < 1 || *d > mdays[*m - 1])
		return -1;
	leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
	if (*m == 2 && *d == 29 && !leap)
		return -1;
	return 0;
}

int
date_parse(const char *s, int64_t *days)
{
	int	y, m, d;

	if (strlen(s) != 10 || date_fields(s, &y, &m, &d) == -1)
		return -1;
	*days = days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

int
datetime_parse(const char *s, int64_t *t)
{
	int	y, m, d, hh = 0, mm = 0, ss = 0, oh = 0, om = 0, sign = 1;
	size_t	len = strlen(s);
	const char *p;

	if (len < 10 || date_fields(s, &y, &m, &d) == -1)
		return -1;
	p = s + 10;
	if (*p != '\0') {
		if ((*p != 'T' && *p != ' ') || strlen(p) < 9 ||
		    digits(p + 1, 2, &hh) == -1 || p[3] != ':' ||
		    digits(p + 4, 2, &mm) == -1 || p[6] != ':' ||
		    digits(p + 7, 2, &ss) == -1)
			return -1;
		p += 9;
		if (*p == '.')		/* fractional seconds are ignored */
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if (*p == 'Z')
			p++;
		else if (*p == '+' || *p == '-') {
			sign = *p == '-' ? -1 : 1;
			if (strlen(p) != 6 || digits(p + 1, 2, &oh) == -1 ||
			    p[3] != ':' || digits(p + 4, 2, &om) == -1)
				return -1;
			p += 6;
		} else
			return -1;
		if (*p != '\0' || hh > 23 || mm > 59 || ss > 60 || oh > 23 || om > 59)
			return -1;
	}
	*t = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 +
	    hh * 3600 + mm * 60 + ss - sign * (oh * 3600 + om * 60);
	return 0;
}

static int
number_suffix(const char *s, int64_t *num, const char **suffix)
{
	char		*end;
	long long	 v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || v < 0)
		return -1;
	*num = v;
	*suffix = end;
	return 0;
}

int
duration_parse(const char *s, int64_t *ms)
{
	static const struct { const char *sfx; int64_t mul; } units[] = {
		{ "ms", 1 }, { "", 1000 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
		/* A year of 365.25 days, as systemd counts it. */
		{ "y", 31557600000LL },
	};
	const char	*sfx;
	int64_t		 v;

	if (number_suffix(s, &v, &sfx) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(sfx, units[i].sfx) != 0)
			continue;
		if (v > INT64_MAX / units[i].mul)
			return -1;
		*ms = v * units[i].mul;
		return 0;
	}
	return -1;
}

int
size_parse(const char *s, int64_t *bytes)
{
	static const struct { const char *sfx; int64_t mul; } units[] = {
		{ "", 1 }, { "K", 1024 }, { "M", 1024 * 1024 },
		{ "G", 1024LL * 1024 * 1024 },
	};
	const char	*sfx;
	int64_t		 v;

	if (number_suffix(s, &v, &sfx) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(sfx, units[i].sfx) != 0)
			continue;
		if (v > INT64_MAX / units[i].mul)
			return -1;
		*bytes = v * units[i].mul;
		return 0;
	}
	return -1;
}

struct sha256_ctx {
	EVP_MD_CTX	*md;
};

struct sha256_ctx *
sha256_new(void)
{
	struct sha256_ctx *c = xcalloc(1, sizeof(*c));

	if ((c->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
		fatalx("EVP_DigestInit_ex failed");
	return c;
}

void
sha256_update(struct sha256_ctx *c, const void *p, size_t n)
{
	if (EVP_DigestUpdate(c->md, p, n) != 1)
		fatalx("EVP_DigestUpdate failed");
}

void
sha256_final(struct sha256_ctx *c, char hex[SHA256_HEX_LEN + 1])
{
	static const char	 xd[] = "0123456789abcdef";
	unsigned char		 md[32];
	unsigned int		 n = 0;

	if (EVP_DigestFinal_ex(c->md, md, &n) != 1 || n != 32)
		fatalx("EVP_DigestFinal_ex failed");
	for (unsigned i = 0; i < 32; i++) {
		hex[2 * i] = xd[md[i] >> 4];
		hex[2 * i + 1] = xd[md[i] & 15];
	}
	hex[SHA256_HEX_LEN] = '\0';
	EVP_MD_CTX_free(c->md);
	free(c);
}

void
sha256_hex(const void *p, size_t n, char hex[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx *c = sha256_new();

	sha256_update(c, p, n);
	sha256_final(c, hex);
}

int
sha256_fd(int fd, char hex[SHA256_HEX_LEN + 1], off_t *size)
{
	struct sha256_ctx	*c;
	char			 b[65536];
	ssize_t			 n;
	off_t			 total = 0, off = 0;

	c = sha256_new();
	while ((n = pread(fd, b, sizeof(b), off)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			sha256_final(c, hex);
			return -1;
		}
		sha256_update(c, b, (size_t)n);
		off += n;
		total += n;
	}
	sha256_final(c, hex);
	if (size)
		*size = total;
	return 0;
}

static const char *const *listing_names;

static int
listing_cmp(const void *a, const void *b)
{
	return strcmp(listing_names[*(const size_t *)a],
	    listing_names[*(const size_t *)b]);
}

void
sha256_listing(const char *const *names, const char *const *hexes, size_t n,
    char hex[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx	*c;
	size_t			*order;

	if (n == 1) {
		strlcpy_(hex, hexes[0], SHA256_HEX_LEN + 1);
		return;
	}
	c = sha256_new();
	order = xcalloc(n, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	listing_names = names;
	qsort(order, n, sizeof(*order), listing_cmp);
	for (size_t i = 0; i < n; i++) {
		sha256_update(c, hexes[order[i]], strlen(hexes[order[i]]));
		sha256_update(c, "  ", 2);
		sha256_update(c, names[order[i]], strlen(names[order[i]]));
		sha256_update(c, "\n", 1);
	}
	sha256_final(c, hex);
	free(order);
}

int
fsync_dir(const char *path)
{
	int	fd, rv;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

int
fsync_dirfd_at(int dirfd, const char *name)
{
	int	fd, rv;

	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

ssize_t
write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	size_t		 done = 0;
	ssize_t		 w;

	while (done < n) {
		if ((w = write(fd, c + done, n - done)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

ssize_t
read_all(int fd, void *p, size_t n)
{
	char	*c = p;
	size_t	 done = 0;
	ssize_t	 r;

	while (done < n) {
		if ((r = read(fd, c + done, n - done)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

int
write_file_atomic(int dirfd, const char *name, const void *p, size_t n,
    mode_t mode)
{
	char	tmp[PATH_MAX];
	int	fd = -1, saved;

	if (bsnprintf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid()) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	if (write_all(fd, p, n) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) == -1 || fsync(dirfd) == -1)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

/* Create dir/name with O_EXCL and write it; fsync the file and the folder
 * when sync is set (else the caller makes it durable, e.g. with syncfs). */
static int
write_new(int dirfd, const char *name, const void *p, size_t n, mode_t mode,
    int sync)
{
	int	fd, saved;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	if (write_all(fd, p, n) == -1 || (sync && fsync(fd) == -1)) {
		saved = errno;
		close(fd);
		(void)unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1 || (sync && fsync(dirfd) == -1))
		return -1;
	return 0;
}

int
write_file_excl(int dirfd, const char *name, const void *p, size_t n,
    mode_t mode)
{
	return write_new(dirfd, name, p, n, mode, 1);
}

int
write_file_excl_nosync(int dirfd, const char *name, const void *p, size_t n,
    mode_t mode)
{
	return write_new(dirfd, name, p, n, mode, 0);
}

/*
 * Copy in (from offset 0) to out (empty, at offset 0): a reflink where the
 * file system shares extents (ioctl FICLONE: instant, no data moved), else
 * copy_file_range (in the kernel), else read and write.  Stops after cap + 1
 * bytes so that a file growing while it is copied is noticed.  Returns the
 * bytes copied, or -1 with errno.
 */
off_t
copy_fd(int in, int out, off_t cap)
{
	struct stat	st;
	char		b[65536];
	off_t		off = 0, inoff = 0;
	ssize_t		n;

	if (fstat(in, &st) == 0 && st.st_size <= cap &&
	    ioctl(out, FICLONE, in) == 0) {
		/* The clone is of the file as it is now: check it is whole. */
		if (fstat(out, &st) == -1)
			return -1;
		return st.st_size;
	}
	for (;;) {
		n = copy_file_range(in, &inoff, out, NULL, (size_t)(cap + 1 - off), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && off == 0 && (errno == EXDEV || errno == EINVAL ||
		    errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF))
			break;		/* not between these files: plain copy */
		if (n == -1)
			return -1;
		if (n == 0)
			return off;
		off += n;
		if (off > cap)
			return off;
	}
	while (off <= cap && (n = pread(in, b, sizeof(b), off)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || write_all(out, b, (size_t)n) == -1)
			return -1;
		off += n;
	}
	return off;
}

static int
int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void
close_all_but(const int *keep, size_t n)
{
	int	*k = xreallocarray(NULL, n + 1, sizeof(*k));
	int	 from = 3;

	memcpy(k, keep, n * sizeof(*k));
	qsort(k, n, sizeof(*k), int_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k[i] > from)
			close_range((unsigned)from, (unsigned)k[i] - 1, 0);
		if (k[i] >= from)
			from = k[i] + 1;
	}
	close_range((unsigned)from, ~0U, 0);
	free(k);
}

int
remove_dir_at(int dirfd, const char *name)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd, rv = 0;

	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(fd, de->d_name, 0) == -1 && errno != ENOENT)
			rv = -1;
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == -1 && errno != ENOENT)
		rv = -1;
	return rv;
}

int
read_file_fd(int fd, size_t max, struct buf *out)
{
	char	b[65536];
	ssize_t	n;

	for (;;) {
		if ((n = read(fd, b, sizeof(b))) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		if (out->len + (size_t)n > max) {
			errno = EFBIG;
			return -1;
		}
		buf_add(out, b, (size_t)n);
	}
}

/* Why a secret file may not be used, into err; 0 if it may. */
static int
secret_unfit(const struct stat *sb, const char *what, const char *path,
    const char *noun, size_t max, char *err, size_t errlen)
{
	if (!S_ISREG(sb->st_mode))
		snprintf(err, errlen, "%s %s is not a regular file", what, path);
	else if (sb->st_uid != geteuid() && sb->st_uid != 0)
		snprintf(err, errlen, "%s %s belongs to uid %u, not to the daemon's "
		    "user (uid %u) or root; run chown %u %s", what, path,
		    (unsigned)sb->st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
		    path);
	else if (sb->st_mode & 077)
		snprintf(err, errlen, "%s %s has mode %04o: others may read the %s; "
		    "run chmod 600 %s (nobody else may read or change a secret)",
		    what, path, (unsigned)(sb->st_mode & 07777), noun, path);
	else if ((uintmax_t)sb->st_size >= max)
		snprintf(err, errlen, "%s %s is too large for a %s (%jd bytes)", what,
		    path, noun, (intmax_t)sb->st_size);
	else
		return 0;
	return -1;
}

/*
 * Read a secret (a private key, a password) whole into buf, NUL-terminated.
 * The file is opened without following a symbolic link, and judged with
 * fstat on the descriptor that is then read, so there is no window between
 * checking one file and reading another: a regular file of the daemon's
 * user or root that nobody else may read or write.  On failure err says
 * what is wrong and the fix, and buf is wiped; on success the caller wipes
 * it after use.
 */
int
read_secret_file(const char *what, const char *path, const char *noun,
    char *buf, size_t bufsize, size_t *len, char *err, size_t errlen)
{
	struct stat	sb;
	size_t		got = 0;
	ssize_t		n;
	int		fd, rv = -1;

	/* O_NONBLOCK: a FIFO put in the file's place must not hang us. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen, "%s %s is a symbolic link; name the file "
			    "itself (a link can be turned to another file)", what, path);
		else
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (secret_unfit(&sb, what, path, noun, bufsize, err, errlen) == -1)
		goto fail;
	while (got < bufsize - 1) {
		if ((n = read(fd, buf + got, bufsize - 1 - got)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == bufsize - 1) {
		snprintf(err, errlen, "%s %s grew while it was read", what, path);
		goto fail;
	}
	buf[got] = '\0';
	*len = got;
	rv = 0;
fail:
	close(fd);
	if (rv == -1)
		explicit_bzero(buf, bufsize);
	return rv;
}

/* A secret file of one line "USER:SECRET" (an API key and secret, an SMTP
 * login), read as read_secret_file reads. */
int
read_secret_pair(const char *what, const char *path, char *user, size_t ulen,
    char *secret, size_t slen, char *err, size_t errlen)
{
	char	buf[1024], *colon;
	size_t	len;
	int	rv = -1;

	if (read_secret_file(what, path, "secret", buf, sizeof(buf), &len, err,
	    errlen) == -1)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	if ((colon = strchr(buf, ':')) == NULL || colon == buf) {
		snprintf(err, errlen, "%s %s must hold one line USER:SECRET", what,
		    path);
		goto fail;
	}
	*colon = '\0';
	if (strlcpy_(user, buf, ulen) >= ulen ||
	    strlcpy_(secret, colon + 1, slen) >= slen) {
		snprintf(err, errlen, "%s %s: the line is too long", what, path);
		goto fail;
	}
	rv = 0;
fail:
	explicit_bzero(buf, sizeof(buf));
	if (rv == -1) {
		explicit_bzero(user, ulen);
		explicit_bzero(secret, slen);
	}
	return rv;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char	tmp[PATH_MAX];
	char	*p;

	if (bsnprintf(tmp, sizeof(tmp), "%s", path) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
set_nonblock(int fd)
{
	int	fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
set_cloexec(int fd)
{
	int	fl = fcntl(fd, F_GETFD);

	if (fl == -1 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

int
valid_filename(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n > 255 || s[0] == '.')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f || *p == '\\')
			return 0;
	return 1;
}

/* Length of the UTF-8 character at p (valid, not a control character),
 * or 0. */
static size_t
shown_char(const unsigned char *p)
{
	size_t	n, i;

	if (*p >= 0x20 && *p < 0x7f)
		return 1;
	n = *p >= 0xf0 && *p < 0xf5 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;
	if (n == 0 || *p > 0xf4 || (p[0] == 0xc2 && p[1] < 0xa0))
		return 0;	/* C1 controls are U+0080 to U+009F */
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

const char *
name_shown(const char *s, char *out, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 o = 0, n;

	for (; *p; p += n ? n : 1) {
		n = shown_char(p);
		if (o + (n ? n : 1) + 4 > len) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (n)
			memcpy(out + o, p, n);
		else
			out[o] = '?';
		o += n ? n : 1;
	}
	out[o] = '\0';
	return out;
}

void
test_crashpoint(const char *name)
{
	const char	*want = getenv("ROIGATE_TEST_CRASH");

	if (want != NULL && strcmp(want, name) == 0) {
		log_warnx("test crash point %s reached: killing myself", name);
		kill(getpid(), SIGKILL);
	}
}
