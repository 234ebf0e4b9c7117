// SPDX-License-Identifier: GPL-2.0
/* The migration channel secured before use (lm.h: lm_secure()). */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

#include "lm.h"

static const char *ktls_name(const struct wire_conn *c)
{
	if (c->ktls_tx && c->ktls_rx)
		return "tx+rx";
	if (c->ktls_tx)
		return "tx";
	if (c->ktls_rx)
		return "rx";
	return "none";
}

int lm_secure(struct wire_conn *c, const struct lm_opts *o, bool server,
	      struct lm_out *out)
{
	uint64_t t0 = lm_now_us();
	int ret;

	if (!o->tls) {
		lm_ev_begin(out, "insecure");
		json_str(out->js, "message",
			 "plain TCP: no authentication, no encryption");
		lm_ev_end(out);
		return 0;
	}
	ret = tls_start(c, o->tls, server ? NULL : o->tls_name,
			wire_now_ms() + (o->handshake_ms > 0 &&
				    o->handshake_ms < (int)o->timeout_ms ?
				    o->handshake_ms : (int)o->timeout_ms));
	if (ret) {
		c->broken = true;	/* nothing more crosses this link */
		return ret;
	}
	if (o->check_sums)
		c->sum_unchecked = false;
	lm_ev_begin(out, "secured");
	json_str(out->js, "credentials", tls_ctx_kind(o->tls));
	json_str(out->js, "protocol", c->tls_info);
	json_str(out->js, "ktls", ktls_name(c));
	if (c->ktls_why[0])
		json_str(out->js, "ktls_why", c->ktls_why);
	json_str(out->js, "peer", c->peer_id);
	lm_ev_double(out, "handshake_ms", (lm_now_us() - t0) / 1000.0);
	lm_ev_end(out);
	if (!out->js->enabled)
		fprintf(out->text, "TLS: %s, kTLS %s, peer %s\n", c->tls_info,
			ktls_name(c), c->peer_id);
	return 0;
}
