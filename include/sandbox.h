/*
 * The sandbox (renderer, intake probe child, sender): no_new_privs,
 * Landlock where the kernel has it, a seccomp allow-list and rlimits.
 * See src/sandbox.c and docs/security.md.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stddef.h>
#include <stdint.h>

/* What a trapped system call writes on the report descriptor (one
 * write(2) from the SIGSYS handler), before the process _exits. */
#define SANDBOX_MSG_VIOLATION	0x53595343u	/* "SYSC" */
struct sandbox_violation {
	uint32_t	type;		/* SANDBOX_MSG_VIOLATION */
	int32_t		nr;		/* the system call's number */
	uint32_t	arch;		/* AUDIT_ARCH_* */
};

/* The exit status of a process stopped by the sandbox. */
#define SANDBOX_EXIT_VIOLATION	99

/* A document parser's limits (rlimits). */
struct sandbox_limits {
	int64_t		 memory;	/* address space beyond what is mapped
					 * when the sandbox is entered; 0 none */
	int		 cpu_seconds;	/* 0 none */
	int64_t		 file_size;	/* largest file it may write; 0 none */
	int		 max_fd;	/* highest descriptor + 1 it may hold */
};

/* How far a sandbox got (for the log and the tests). */
struct sandbox_state {
	int		landlock_abi;	/* 0: the kernel has none */
	int		landlock;	/* 1: the ruleset is in force */
	int		seccomp;	/* 1: the filter is in force */
	int64_t		mapped;		/* address space when it was entered */
	int64_t		as_limit;	/* RLIMIT_AS set; 0 none */
};

/* The Landlock ABI version the kernel offers; 0 when none or disabled. */
int	sandbox_landlock_abi(void);

/*
 * Confine a process that parses untrusted documents, for good: rlimits,
 * no_new_privs, Landlock (no file system but the NULL-terminated list of
 * paths it may still read), then the seccomp allow-list.  A system call
 * outside the list is reported on report_fd and the process _exits with
 * SANDBOX_EXIT_VIOLATION.  0, or -1 with the reason in err (the caller
 * must then not read its input).
 */
int	sandbox_enter_parser(const struct sandbox_limits *, const char *const *readable,
	    int report_fd, struct sandbox_state *, char *err, size_t errlen);

/*
 * Confine a sender (a transport plugin): no_new_privs, no core dumps, and
 * under Landlock read only the listed files and folders (writable: the
 * folders in writable, e.g. the local transport's), the TLS and DNS files,
 * and the system's libraries.  The network stays open.  0 or -1.
 */
int	sandbox_enter_sender(const char *const *readable, const char *const *writable,
	    struct sandbox_state *, char *err, size_t errlen);

/* The name of system call nr on this machine ("connect"), or "?". */
const char *sandbox_syscall_name(int nr, char *buf, size_t len);

#endif
