/*
 * The disclosure log's hash chain (daemon).  Every entry carries the hash
 * of the entry before it, so an edited, removed or reordered entry breaks
 * the chain from that point on; triggers in the store refuse UPDATE and
 * DELETE in the first place.
 *
 * hash = hex SHA-256 of: prev_hash (64 hex characters), then each field
 * below as a netstring "LEN:BYTES," (integers as decimal text, absent
 * strings as the empty string), in this order:
 *   seq, at, job_id, packet_id, mrn, patient_name, recipient_id,
 *   recipient_name, recipient_address, description, purpose, basis,
 *   authorization_id, transport, remote_id, outcome, detail, pages,
 *   output_sha256, accountable
 * The genesis entry's prev_hash is 64 zeros.  docs/disclosure-log.md
 * repeats this so that an auditor can recompute it independently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disclosure.h"
#include "store.h"
#include "util.h"

#define GENESIS	"0000000000000000000000000000000000000000000000000000000000000000"

static void
netstring(struct sha256_ctx *c, const char *s)
{
	char	len[24];
	size_t	n = s ? strlen(s) : 0;

	snprintf(len, sizeof(len), "%zu:", n);
	sha256_update(c, len, strlen(len));
	if (n)
		sha256_update(c, s, n);
	sha256_update(c, ",", 1);
}

static void
netnumber(struct sha256_ctx *c, long long v)
{
	char	num[24];

	snprintf(num, sizeof(num), "%lld", v);
	netstring(c, num);
}

void
disclosure_hash(const struct disclosure *d, char out[65])
{
	struct sha256_ctx	*c = sha256_new();
	const char		*text[] = { d->packet_id, d->mrn, d->patient_name,
	    d->recipient_id, d->recipient_name, d->recipient_address,
	    d->description, d->purpose, d->basis, d->authorization_id,
	    d->transport, d->remote_id, d->outcome, d->detail };

	sha256_update(c, d->prev_hash, strlen(d->prev_hash));
	netnumber(c, d->seq);
	netnumber(c, d->at);
	netnumber(c, d->job_id);
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		netstring(c, text[i]);
	netnumber(c, d->pages);
	netstring(c, d->output_sha256);
	netnumber(c, d->accountable);
	sha256_final(c, out);
}

int
disclosure_append(struct store *s, struct disclosure *d)
{
	int64_t	seq = 0;
	char	prev[65] = GENESIS;
	int	rv;

	if ((rv = store_disclosure_last(s, &seq, prev)) == -1)
		return -1;
	if (rv == 0) {
		seq = 0;
		strlcpy_(prev, GENESIS, sizeof(prev));
	}
	d->seq = seq + 1;
	if (d->at == 0)
		d->at = now_wall();
	strlcpy_(d->prev_hash, prev, sizeof(d->prev_hash));
	disclosure_hash(d, d->hash);
	return store_disclosure_insert(s, d);
}

struct verify {
	int64_t	 cut;		/* pruned up to here (roictl prune) */
	int64_t	 expect;	/* next seq */
	char	 prev[65];
	char	*err;
	size_t	 errlen;
	int	 bad;
};

static int
verify_one(const struct disclosure *d, void *arg)
{
	struct verify	*v = arg;
	char		 h[65];

	if (d->seq <= v->cut)	/* pruned, its removal under way */
		return 0;
	if (d->seq != v->expect) {
		if (d->seq > v->expect)
			bsnprintf(v->err, v->errlen, "entry %lld is missing (the log "
			    "goes from %lld to %lld): it was removed",
			    (long long)v->expect, (long long)v->expect - 1,
			    (long long)d->seq);
		else
			bsnprintf(v->err, v->errlen, "entry %lld is out of order",
			    (long long)d->seq);
		v->bad = 1;
		return 1;
	}
	if (strcmp(d->prev_hash, v->prev) != 0) {
		bsnprintf(v->err, v->errlen, "entry %lld: previous-hash link broken "
		    "(entry %lld was altered or removed)", (long long)d->seq,
		    (long long)d->seq - 1);
		v->bad = 1;
		return 1;
	}
	disclosure_hash(d, h);
	if (strcmp(h, d->hash) != 0) {
		bsnprintf(v->err, v->errlen, "entry %lld: contents do not match its "
		    "hash (the entry was altered)", (long long)d->seq);
		v->bad = 1;
		return 1;
	}
	strlcpy_(v->prev, d->hash, sizeof(v->prev));
	v->expect++;
	return 0;
}

int
disclosure_verify(struct store *s, int64_t *count, char *err, size_t errlen)
{
	struct verify		v;
	struct store_prune	pr;
	int64_t			head, bad;

	memset(&v, 0, sizeof(v));
	v.err = err;
	v.errlen = errlen;
	/* After a prune the chain goes on from the cut its record names; only
	 * the keyed verification (src/seal.c) proves the record genuine. */
	if (store_prune_last(s, &pr) == -1) {
		bsnprintf(err, errlen, "cannot read the prune records: %.200s",
		    store_errmsg(s));
		return -1;
	}
	if (pr.t[STORE_SEALED_DISCLOSURES].cut < 0) {
		bsnprintf(err, errlen, "prune record %lld is damaged (its cuts do "
		    "not read)", (long long)pr.seq);
		return -1;
	}
	v.cut = pr.t[STORE_SEALED_DISCLOSURES].cut;
	v.expect = v.cut + 1;
	strlcpy_(v.prev, v.cut ? pr.t[STORE_SEALED_DISCLOSURES].head : GENESIS,
	    sizeof(v.prev));
	if (store_disclosure_iter(s, NULL, verify_one, &v) == -1) {
		bsnprintf(err, errlen, "cannot read the disclosure log: %.200s",
		    store_errmsg(s));
		return -1;
	}
	if (v.bad)
		return -1;
	if ((bad = store_disclosure_malformed(s)) == -1) {
		bsnprintf(err, errlen, "cannot check the disclosure log's fields: "
		    "%.200s", store_errmsg(s));
		return -1;
	}
	if (bad > 0) {
		bsnprintf(err, errlen, "entry %lld: a field holds a value of the "
		    "wrong type or a hidden NUL byte (the entry was edited outside "
		    "roigate)", (long long)bad);
		return -1;
	}
	if ((head = store_disclosure_head(s)) == -1) {
		bsnprintf(err, errlen, "the counter of entries kept beside the log "
		    "is missing or altered: entries removed from the end could not "
		    "be noticed");
		return -1;
	}
	if (head < v.expect - 1) {
		bsnprintf(err, errlen, "the log holds %lld entries but only %lld "
		    "were appended through roigate: entries %lld to %lld were added "
		    "by other means", (long long)(v.expect - 1), (long long)head,
		    (long long)head + 1, (long long)(v.expect - 1));
		return -1;
	}
	if (head > v.expect - 1) {
		if (head == v.expect)
			bsnprintf(err, errlen, "entry %lld is missing from the end of "
			    "the log: it was removed", (long long)head);
		else
			bsnprintf(err, errlen, "entries %lld to %lld are missing from "
			    "the end of the log: they were removed",
			    (long long)v.expect, (long long)head);
		return -1;
	}
	if (!store_disclosure_guarded(s)) {
		bsnprintf(err, errlen, "the triggers that make the disclosure log "
		    "append-only are missing or altered: someone removed or "
		    "replaced them");
		return -1;
	}
	*count = v.expect - 1 - v.cut;
	return 0;
}

int
disclosure_accountable(const char *basis)
{
	/* 45 CFR 164.528(a)(1): no accounting for disclosures to the patient,
	 * for treatment, payment or operations, or under an authorization. */
	static const char *const exempt[] = { "patient_access", "authorization",
	    "treatment", "payment", "operations" };

	for (size_t i = 0; basis && i < sizeof(exempt) / sizeof(exempt[0]); i++)
		if (strcmp(basis, exempt[i]) == 0)
			return 0;
	return 1;	/* subpoena, court order, required by law, or unknown */
}
