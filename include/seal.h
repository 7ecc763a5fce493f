/*
 * Forward-secure sealing of the sealed records (the disclosure log, the
 * audit log, and any table added to enum store_sealed), in the manner of
 * systemd-journald's Forward Secure Sealing.  The daemon part (key file,
 * epochs, seals, checkpoints) runs in roigated; the verification part runs
 * in roigated (roictl verify-log) and in roigate-verify.
 * docs/disclosure-log.md describes the scheme for an auditor.
 */
#ifndef SEAL_H
#define SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SEAL_KEY_LEN		32
#define SEAL_KEY_FILE		"seal.key"
/* The systemd journal MESSAGE_ID of a checkpoint (docs/disclosure-log.md). */
#define SEAL_CHECKPOINT_MESSAGE_ID	"4a37051ca9064974a6ec68be0a7c75cf"

/* The key arithmetic (pure). */
/* Epoch 0's sealing key from the verification key. */
void	seal_key_first(const uint8_t vkey[SEAL_KEY_LEN], uint8_t key[SEAL_KEY_LEN]);
/* Epoch n+1's key from epoch n's, in place: one way. */
void	seal_key_evolve(uint8_t key[SEAL_KEY_LEN], int64_t next_epoch);
/* The mac of a sealed row's hash with its epoch's key. */
void	seal_entry_mac(const uint8_t key[SEAL_KEY_LEN], const char *hash,
	    char out[65]);
/* The seal of z (epoch, times, ranges, prev_seal) into out. */
void	seal_compute(const uint8_t key[SEAL_KEY_LEN], const char *instance,
	    const struct store_seal *z, char out[65]);
/* The verification key as text for paper: "RGV1-xxxxxxxx-...-cccccccc". */
void	seal_vkey_format(const uint8_t vkey[SEAL_KEY_LEN], char *out, size_t outlen);
/* Parse it back (case, spaces, dashes and line breaks ignored); -1 with
 * err if mistyped. */
int	seal_vkey_parse(const char *text, uint8_t vkey[SEAL_KEY_LEN], char *err,
	    size_t errlen);
/* The checkpoint line of seal z. */
void	seal_checkpoint_format(const char *instance, const struct store_seal *z,
	    char *out, size_t outlen);

/* The daemon. */
/* Make the sealing key (state_dir/seal.key) and the verification key;
 * -1 with err if sealing is set up already. */
int	seal_setup(struct store *, const char *state_dir, const char *instance,
	    uint8_t vkey[SEAL_KEY_LEN], char *err, size_t errlen);
/* Load the key, seal the epochs that ended while the daemon was down,
 * mac new entries: 0, 1 if sealing is not set up, -1 with err. */
int	seal_start(struct store *, const char *state_dir, const char *instance,
	    int64_t interval_ms, char *err, size_t errlen);
/* Seal every epoch that ended by now; 0 / -1.  Returns through *next_ms
 * how long until the current epoch ends. */
int	seal_tick(int64_t now, int64_t *next_ms);
/* Shutdown: seal the partial epoch and erase its key; 0 / -1. */
int	seal_close(int64_t now);
int	seal_active(void);

/* Verification. */
enum seal_verdict_code {
	SEAL_INTACT = 0,	/* every entry up to the last seal verifies */
	SEAL_TAMPERED,		/* msg names the first bad entry or epoch */
	SEAL_WRONG_KEY,		/* the first seal does not match this key */
	SEAL_UNSEALED,		/* no seal at all yet */
	SEAL_ERROR,		/* could not read the database */
};
struct seal_verdict {
	enum seal_verdict_code	 code;
	int64_t			 entries[STORE_SEALED_N];
	int64_t			 unsealed[STORE_SEALED_N];	/* after the last seal */
	int64_t			 epochs;
	int64_t			 last_seal_at;
	/* Pruned (roictl prune): entries 1 to pruned[t] removed under sealed
	 * prune records, the last one of pruned_at by pruned_by; entries at
	 * or below the cut still waiting for their removal. */
	int64_t			 pruned[STORE_SEALED_N];
	int64_t			 pruned_at;
	char			 pruned_by[96];
	int64_t			 awaiting[STORE_SEALED_N];
	char			 msg[512];
};
/* The minimum age, in calendar years, of an epoch a prune may cut. */
#define SEAL_PRUNE_MIN_YEARS	6
void	seal_verify(struct store *, const uint8_t vkey[SEAL_KEY_LEN],
	    struct seal_verdict *);
/* Does the log still hold what a checkpoint line says? 0, or -1 with msg. */
int	seal_checkpoint_verify(struct store *, const char *line, char *msg,
	    size_t msglen);
/* The sentence for a verdict's unsealed tail into out ("" if none). */
void	seal_verdict_tail(const struct seal_verdict *, char *out, size_t outlen);
/* The sentence for what was pruned ("" if nothing): "disclosure log
 * entries 1 to 120, audit log entries 1 to 900 pruned on DATE by WHO,
 * under a sealed record". */
void	seal_verdict_pruned(const struct seal_verdict *, char *out, size_t outlen);
/* Are prune record p's cuts each the end of a sealed epoch of z[0..nz-1],
 * at least SEAL_PRUNE_MIN_YEARS before p->at?  0, or -1 with why. */
int	seal_prune_check(const struct store_prune *p, const struct store_seal *z,
	    size_t nz, char *why, size_t whylen);

#endif
