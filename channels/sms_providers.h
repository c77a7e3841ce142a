/*
 * sms_providers.h - the hosted SMS provider drivers (rows for the registry
 * in channel.c), Twilio's signature helper and Kavenegar's status polling
 * client.  Each driver reads its keys from c->cfg->sec, which is either
 * [channel.sms] itself or the [provider.NAME] profile it names.
 *
 *   "twilio"     Twilio's Messages API: form POST with HTTP Basic auth,
 *                To, From or MessagingServiceSid, Body, StatusCallback.
 *                See channels/sms_twilio.c and docs/channels/twilio.md.
 *   "kavenegar"  Kavenegar's REST API (/v1/{APIKEY}/sms/send.json) with
 *                receptor, sender, message, localid; delivery is polled
 *                (statuslocalmessageid.json).  See channels/sms_kavenegar.c
 *                and docs/channels/kavenegar.md.
 *
 * Both support the common SMS keys of sms_segments.h (price_per_segment,
 * max_segments; sender) and fill segments and cost_micros.
 */
#ifndef CLUBD_SMS_PROVIDERS_H
#define CLUBD_SMS_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "twilio_sig.h"

extern const struct chan_driver chan_sms_twilio_driver, chan_sms_kavenegar_driver;

/* ---- Kavenegar delivery status polling --------------------------------------- */

#define KAVENEGAR_STATUS_MAX  500 /* ids per statuslocalmessageid.json call */
#define KAVENEGAR_LOCALID_LEN 24  /* buffer for a localid, NUL included */

enum kavenegar_state {
	KAVENEGAR_PENDING = 0, /* 1 queued, 2 scheduled, 4/5 handed to the operator */
	KAVENEGAR_DELIVERED,   /* 10 */
	KAVENEGAR_UNDELIVERED, /* 6 failed, 11 undelivered, 13 cancelled, 14 blocked */
	KAVENEGAR_UNKNOWN,     /* 100 unknown id, or a code we do not know, or no entry */
};

struct kavenegar_status {
	const char *msg_id;                  /* borrowed: the caller's msg_ids[i] */
	char localid[KAVENEGAR_LOCALID_LEN]; /* what send put in localid */
	char messageid[24];                  /* Kavenegar's message id, "" when unknown */
	int code;                            /* Kavenegar's status code, 0 when no entry */
	enum kavenegar_state state;
	int blocked; /* code 14: blocked (the recipient refuses such messages) */
};

/*
 * The localid the driver sends for message id msg_id: Kavenegar's localid
 * is numeric (a long), so it is the decimal value of the first 63 bits of
 * SHA-256(msg_id), never 0.  out has KAVENEGAR_LOCALID_LEN bytes.
 */
void kavenegar_localid(const char *msg_id, char out[KAVENEGAR_LOCALID_LEN]);

/* "pending", "delivered", "undelivered", "unknown". */
const char *kavenegar_state_name(enum kavenegar_state s);

/*
 * Ask Kavenegar for the delivery status of up to KAVENEGAR_STATUS_MAX of
 * our messages (msg_ids: our message ids, borrowed until cb; the driver
 * derives each localid as send did) with one GET of
 * {base}/v1/{KEY}/sms/statuslocalmessageid.json?localid=a,b,c on c's
 * started "kavenegar" channel.  Returns 0 and cb is called exactly once,
 * later, from the loop: err 0 with n statuses in msg_ids order, or err a
 * negative errno and no statuses (-ETIMEDOUT, -ECONNREFUSED: no answer;
 * -EACCES: the key or the account was refused; -EAGAIN: the provider asks
 * us to come back later (402, 409, 418, 429, 451, 5xx); -EPROTO: unreadable
 * answer; -EINVAL: another refusal; -ECANCELED: the channel stopped;
 * -EIO: another transport error).
 * Or returns -EINVAL (not a kavenegar channel, n == 0, a NULL id),
 * -E2BIG (n > KAVENEGAR_STATUS_MAX) or -ESHUTDOWN (not started or
 * stopping), and cb is not called.  A channel's stop waits for polls in
 * flight, like for sends.
 */
int kavenegar_status_by_localid(struct chan *c, const char *const *msg_ids, size_t n,
                                void (*cb)(void *arg, int err, const struct kavenegar_status *st,
                                           size_t n),
                                void *arg);

/*
 * Check X-Twilio-Signature of a StatusCallback for our message msg_id on the
 * twilio channel c: the signed URL is the one send() gave Twilio
 * (status_callback + "m=<id>&k=<sig>"), names/values are the POST fields.
 * 0 when it matches, -EACCES when not, -EINVAL when c is not a twilio
 * channel with a status_callback.
 */
int twilio_verify_status_callback(const struct chan *c, const char *msg_id, const char *sig,
                                  const char *const *names, const char *const *values, size_t n,
                                  const char *signature);

#endif
