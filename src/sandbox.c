/*
 * The sandbox, entered for good by the processes that parse documents
 * (the renderer a worker forks, the intake's probe child) and, more
 * loosely, by the sender that runs a transport plugin.  Dangerzone is the
 * model: what reads an untrusted document may turn it into pixels and
 * nothing else.
 *
 * A parser gets its input and its output as descriptors already open and
 * loads what it needs (fonts, OCR data, templates) before it comes here.
 * Then, in this order:
 *   1. rlimits: address space (what is mapped now plus [render]
 *      max_memory and room for the output), CPU, file size, descriptors,
 *      no core dumps; not dumpable (no ptrace by the daemon's user);
 *   2. PR_SET_NO_NEW_PRIVS;
 *   3. Landlock (raw system calls; whatever ABI the kernel has): no file
 *      system access but reading the few paths listed (the fonts), no TCP,
 *      no signals or abstract sockets outside the sandbox;
 *   4. seccomp (libseccomp): an allow-list of what reading, drawing and
 *      writing to open descriptors needs.  No socket, connect, exec,
 *      ptrace, fork, new files, opens for writing, or executable memory.
 *      Anything else traps: the SIGSYS handler writes the call's number
 *      on the report descriptor and the process _exits.
 * The sender keeps the network and gets no seccomp filter (TLS, DNS and
 * SSH libraries make too many calls to list well); it gets no_new_privs,
 * no core dumps and Landlock: its own files, TLS, DNS, the libraries.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/landlock.h>
#include <seccomp.h>

#include "sandbox.h"
#include "util.h"

/* ---- Landlock (the headers of Debian 12 stop at ABI 2) ----------------------- */

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION	(1U << 0)
#endif
#define LL_FS_EXECUTE		(1ULL << 0)
#define LL_FS_WRITE_FILE	(1ULL << 1)
#define LL_FS_READ_FILE		(1ULL << 2)
#define LL_FS_READ_DIR		(1ULL << 3)
#define LL_FS_REMOVE_DIR	(1ULL << 4)
#define LL_FS_REMOVE_FILE	(1ULL << 5)
#define LL_FS_MAKE_DIR		(1ULL << 7)
#define LL_FS_MAKE_REG		(1ULL << 8)
#define LL_FS_REFER		(1ULL << 13)	/* ABI 2 */
#define LL_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#define LL_NET_BIND_TCP		(1ULL << 0)	/* ABI 4 */
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ULL << 1)
#define LL_FILE_RIGHTS		(LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | \
				 LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* struct landlock_ruleset_attr as of ABI 6; older kernels take a prefix. */
struct ll_ruleset_attr {
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;
	uint64_t	scoped;
};

struct ll_path_beneath {
	uint64_t	allowed_access;
	int32_t		parent_fd;
} __attribute__((packed));

int
sandbox_landlock_abi(void)
{
	long	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
		    LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

/* Every file system right this ABI knows (all of them are denied unless
 * a rule allows them). */
static uint64_t
ll_fs_rights(int abi)
{
	uint64_t	r = (1ULL << 13) - 1;	/* ABI 1: EXECUTE..MAKE_SYM */

	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

/* Allow access beneath path (a folder) or to it (a file); a path that is
 * not there is no error. */
static int
ll_allow(int rs, const char *path, uint64_t access, uint64_t handled)
{
	struct ll_path_beneath	pb;
	struct stat		st;
	int			fd, rv = 0;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1)
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES ? 0 : -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		access &= LL_FILE_RIGHTS;
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	if (pb.allowed_access &&
	    syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == -1)
		rv = -1;
	close(fd);
	return rv;
}

struct ll_rules {
	const char *const	*paths;
	uint64_t		 access;
};

/* Make, fill and enforce a ruleset.  net: handle (deny) TCP too. */
static int
ll_enforce(const struct ll_rules *rules, size_t nrules, int net,
    struct sandbox_state *ss, char *err, size_t errlen)
{
	struct ll_ruleset_attr	a;
	size_t			size = sizeof(a.handled_access_fs);
	int			rs, abi = ss->landlock_abi;

	if (abi == 0)
		return 0;	/* nothing to do: no_new_privs and seccomp remain */
	memset(&a, 0, sizeof(a));
	a.handled_access_fs = ll_fs_rights(abi);
	if (abi >= 4 && net) {
		a.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		a.scoped = LL_SCOPE_SIGNAL | (net ? LL_SCOPE_ABSTRACT_UNIX : 0);
		size = sizeof(a);
	}
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &a, size, 0)) == -1) {
		snprintf(err, errlen, "landlock_create_ruleset (ABI %d): %s", abi,
		    strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < nrules; i++)
		for (const char *const *p = rules[i].paths; p && *p; p++)
			if (**p && ll_allow(rs, *p, rules[i].access,
			    a.handled_access_fs) == -1) {
				snprintf(err, errlen, "landlock rule for %.200s: %s",
				    *p, strerror(errno));
				close(rs);
				return -1;
			}
	if (syscall(SYS_landlock_restrict_self, rs, 0) == -1) {
		snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
		close(rs);
		return -1;
	}
	close(rs);
	ss->landlock = 1;
	return 0;
}

/* ---- rlimits ---------------------------------------------------------------- */

/* The address space mapped now (the libraries, the OCR data, the heap). */
static int64_t
mapped_now(void)
{
	unsigned long long	size = 0;
	FILE			*f = fopen("/proc/self/statm", "re");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%llu", &size) != 1)
		size = 0;
	fclose(f);
	return (int64_t)size * sysconf(_SC_PAGESIZE);
}

static int
set_limit(int what, rlim_t soft, rlim_t hard, const char *name, char *err,
    size_t errlen)
{
	struct rlimit	rl = { soft, hard };

	if (setrlimit(what, &rl) == -1) {
		snprintf(err, errlen, "setrlimit %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int
set_limits(const struct sandbox_limits *l, struct sandbox_state *ss, char *err,
    size_t errlen)
{
	int64_t	now;

	if (set_limit(RLIMIT_CORE, 0, 0, "core", err, errlen) == -1)
		return -1;
#ifndef ROIGATE_SANITIZE	/* ASan maps terabytes of shadow memory */
	if (l->memory > 0) {
		if ((now = mapped_now()) == -1) {
			snprintf(err, errlen, "/proc/self/statm: %s", strerror(errno));
			return -1;
		}
		ss->mapped = now;
		ss->as_limit = now + l->memory;
		if (set_limit(RLIMIT_AS, (rlim_t)ss->as_limit,
		    (rlim_t)ss->as_limit, "address space", err, errlen) == -1)
			return -1;
	}
#else
	(void)now;
	(void)ss;
	(void)mapped_now;
#endif
	if (l->cpu_seconds > 0 && set_limit(RLIMIT_CPU, (rlim_t)l->cpu_seconds,
	    (rlim_t)l->cpu_seconds + 2, "cpu", err, errlen) == -1)
		return -1;
	if (l->file_size > 0 && set_limit(RLIMIT_FSIZE, (rlim_t)l->file_size,
	    (rlim_t)l->file_size, "file size", err, errlen) == -1)
		return -1;
	if (l->max_fd > 0 && set_limit(RLIMIT_NOFILE, (rlim_t)l->max_fd,
	    (rlim_t)l->max_fd, "open files", err, errlen) == -1)
		return -1;
	return 0;
}

/* ---- seccomp ------------------------------------------------------------------ */

static int	sandbox_report_fd = -1;

/* Async-signal-safe: one write(2), then _exit. */
static void
on_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct sandbox_violation	v;

	(void)sig;
	(void)uc;
	v.type = SANDBOX_MSG_VIOLATION;
	v.nr = si->si_syscall;
	v.arch = si->si_arch;
	if (sandbox_report_fd != -1)
		(void)!write(sandbox_report_fd, &v, sizeof(v));
	_exit(SANDBOX_EXIT_VIOLATION);
}

/* What reading documents, drawing pages and writing to descriptors
 * already open needs, and nothing more. */
static const int parser_calls[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(close),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fcntl),
	SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	SCMP_SYS(alarm), SCMP_SYS(setitimer), SCMP_SYS(getitimer),
	SCMP_SYS(restart_syscall), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
	SCMP_SYS(time), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(getrandom), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(getrusage), SCMP_SYS(sysinfo), SCMP_SYS(uname),
	SCMP_SYS(getrlimit),
#ifdef ROIGATE_SANITIZE	/* the sanitizers' reports and their own threads */
	SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(readlink),
	SCMP_SYS(getdents64), SCMP_SYS(getppid), SCMP_SYS(sched_getparam),
	SCMP_SYS(sched_getscheduler), SCMP_SYS(pipe2), SCMP_SYS(wait4),
#endif
};

static int
seccomp_parser_rules(scmp_filter_ctx ctx)
{
	const int	no_write = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND |
			    O_TMPFILE | O_PATH;
	pid_t		self = getpid();
	int		rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(parser_calls) / sizeof(parser_calls[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, parser_calls[i], 0);
	/* Memory, but never executable: no code a document brings runs. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Reading the few files Landlock still lets it read (the fonts). */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)no_write, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, (scmp_datum_t)no_write, 0));
	/* Reading its limits; abort() signalling itself. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
		    SCMP_A2(SCMP_CMP_EQ, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
	/* stdio asks whether a stream is a terminal: it is not. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0);
	return rc;
}

static int
seccomp_parser(int report_fd, char *err, size_t errlen)
{
	struct sigaction	sa;
	scmp_filter_ctx		ctx;
	int			rc;

	sandbox_report_fd = report_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) == -1) {
		snprintf(err, errlen, "sigaction SIGSYS: %s", strerror(errno));
		return -1;
	}
	if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) == 0 &&
	    (rc = seccomp_parser_rules(ctx)) == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp filter: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* ---- entering ------------------------------------------------------------------ */

static int
no_new_privs(char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		snprintf(err, errlen, "prctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
sandbox_enter_parser(const struct sandbox_limits *l, const char *const *readable,
    int report_fd, struct sandbox_state *ss, char *err, size_t errlen)
{
	struct ll_rules	rules[] = {
		{ readable, LL_FS_READ_FILE | LL_FS_READ_DIR },
	};

	memset(ss, 0, sizeof(*ss));
	ss->landlock_abi = sandbox_landlock_abi();
	if (set_limits(l, ss, err, errlen) == -1 || no_new_privs(err, errlen) == -1 ||
	    ll_enforce(rules, 1, 1, ss, err, errlen) == -1 ||
	    seccomp_parser(report_fd, err, errlen) == -1)
		return -1;
	ss->seccomp = 1;
	return 0;
}

/* What TLS (CA files), name lookups and the system's libraries need. */
static const char *const sender_system[] = {
	"/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates",
	"/usr/local/share/ca-certificates", "/etc/ca-certificates",
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/host.conf", "/etc/services", "/etc/protocols",
	"/etc/localtime", "/usr/share/zoneinfo", "/etc/ssh/ssh_config",
	"/dev/urandom", "/dev/random", "/run/systemd/resolve",
	NULL,
};

/* Libraries a plugin may still load (NSS modules, OpenSSL providers). */
static const char *const sender_libs[] = {
	"/usr/lib", "/lib", "/lib64", "/usr/lib64", NULL,
};

static const char *const sender_null[] = { "/dev/null", NULL };

int
sandbox_enter_sender(const char *const *readable, const char *const *writable,
    struct sandbox_state *ss, char *err, size_t errlen)
{
	const uint64_t	 rd = LL_FS_READ_FILE | LL_FS_READ_DIR;
	struct ll_rules	 rules[] = {
		{ sender_system, rd },
		{ sender_libs, rd | LL_FS_EXECUTE },
		{ sender_null, rd | LL_FS_WRITE_FILE },
		{ readable, rd },
		{ writable, rd | LL_FS_WRITE_FILE | LL_FS_MAKE_REG | LL_FS_MAKE_DIR |
		    LL_FS_REMOVE_FILE | LL_FS_REMOVE_DIR | LL_FS_TRUNCATE | LL_FS_REFER },
	};

	memset(ss, 0, sizeof(*ss));
	ss->landlock_abi = sandbox_landlock_abi();
	if (set_limit(RLIMIT_CORE, 0, 0, "core", err, errlen) == -1 ||
	    no_new_privs(err, errlen) == -1 ||
	    ll_enforce(rules, sizeof(rules) / sizeof(rules[0]), 0, ss, err,
	    errlen) == -1)
		return -1;
	return 0;
}

const char *
sandbox_syscall_name(int nr, char *buf, size_t len)
{
	char	*name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	snprintf(buf, len, "%s", name ? name : "?");
	free(name);
	return buf;
}
