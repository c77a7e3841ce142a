/*
 * inbound.h - the normalised inbound message every transport produces, and
 * the keyword router that decides what an inbound text means.  Pure: no I/O,
 * no clock (callers pass "now").
 *
 * Classification: the text is normalised with text_normalize() (Persian and
 * Arabic-Indic digits, Arabic yeh/kaf to Persian, trim, collapse, ASCII case
 * fold; ZWNJ kept) and the WHOLE result is compared with each keyword:
 * "  STOP " and "لغو" are opt-outs, "don't stop" is a reply.
 */
#ifndef CLUBD_INBOUND_H
#define CLUBD_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define INBOUND_TEXT_MAX     4096 /* bytes of UTF-8 */
#define INBOUND_ID_MAX       128  /* provider message id bytes */
#define INBOUND_PROVIDER_MAX 32

enum inbound_action { INBOUND_REPLY, INBOUND_OPT_OUT, INBOUND_OPT_IN, INBOUND_HELP };

/* "reply", "opt_out", "opt_in", "help". */
const char *inbound_action_name(enum inbound_action a);
/* The router: what a text means.  Invalid UTF-8 or NULL is a reply. */
enum inbound_action inbound_classify(const char *text);

struct inbound {
	char channel[8];                         /* "sms" */
	char provider[INBOUND_PROVIDER_MAX + 1]; /* "kannel", "webhook" */
	char provider_id[INBOUND_ID_MAX + 1];    /* dedupe key with provider */
	char from[ADDR_MAX + 1];                 /* E.164 */
	char to[ADDR_MAX + 1];                   /* our number as the provider gave it */
	char text[INBOUND_TEXT_MAX + 1];         /* valid UTF-8, no NUL */
	int64_t received_at;                     /* ms since the epoch */
	enum inbound_action action;
};

/*
 * Fill in from an SMS transport's raw fields (borrowed; text has text_len
 * bytes and may hold anything).  received may be NULL/"" (then now_ms is
 * used), RFC 3339, Kannel's %t "YYYY-MM-DD HH:MM[:SS]" (UTC) or Unix seconds.
 * 0, or -EINVAL with *field and *why set (static strings) for the answer.
 */
int inbound_sms_init(struct inbound *in, const char *provider, const char *provider_id,
                     const char *from, const char *to, const char *text, size_t text_len,
                     const char *received, int64_t now_ms, const char *default_country,
                     const char **field, const char **why);

/* Parse the received-time forms above into ms; 0 or -1. */
int inbound_parse_time(const char *s, int64_t *ms);

#endif
