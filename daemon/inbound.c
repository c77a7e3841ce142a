/*
 * inbound.c - the normalised inbound message and the keyword router (see
 * inbound.h).  Owns the default keyword lists.  Never touches Redis, the
 * network or the clock: every input comes from the caller.
 *
 * Limits: text INBOUND_TEXT_MAX bytes, provider ids INBOUND_ID_MAX bytes of
 * printable ASCII, addresses ADDR_MAX.
 */
#include "inbound.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "text.h"
#include "util.h"

/* Already in text_normalize() form (lower-case ASCII, Persian yeh/kaf). */
static const char *const kw_opt_out[] = {"stop", "unsubscribe", "cancel", "end",
                                         "quit", "لغو",         "توقف"};
static const char *const kw_opt_in[] = {"start", "عضویت"};
static const char *const kw_help[] = {"help", "راهنما"};

const char *inbound_action_name(enum inbound_action a)
{
	switch (a) {
	case INBOUND_OPT_OUT:
		return "opt_out";
	case INBOUND_OPT_IN:
		return "opt_in";
	case INBOUND_HELP:
		return "help";
	case INBOUND_REPLY:
		break;
	}
	return "reply";
}

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

enum inbound_action inbound_classify(const char *text)
{
	if (!text)
		return INBOUND_REPLY;
	char *n = text_normalize(text);
	if (!n)
		return INBOUND_REPLY;
	enum inbound_action a = INBOUND_REPLY;
	if (in_list(n, kw_opt_out, ARRAY_SIZE(kw_opt_out)))
		a = INBOUND_OPT_OUT;
	else if (in_list(n, kw_opt_in, ARRAY_SIZE(kw_opt_in)))
		a = INBOUND_OPT_IN;
	else if (in_list(n, kw_help, ARRAY_SIZE(kw_help)))
		a = INBOUND_HELP;
	free(n);
	return a;
}

/* "YYYY-MM-DD HH:MM[:SS]" as UTC (Kannel's %t). */
static int parse_kannel_time(const char *s, int64_t *ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%d %H:%M", &tm);
	if (!end)
		return -1;
	if (*end == ':') {
		end = strptime(end, ":%S", &tm);
		if (!end)
			return -1;
	}
	if (*end != '\0')
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*ms = (int64_t)t * 1000;
	return 0;
}

int inbound_parse_time(const char *s, int64_t *ms)
{
	int64_t secs;
	if (!s || !*s)
		return -1;
	if (parse_i64(s, 0, INT64_C(253402300799), &secs) == 0) {
		*ms = secs * 1000;
		return 0;
	}
	if (parse_time(s, ms) == 0)
		return 0;
	return parse_kannel_time(s, ms);
}

/* Printable ASCII without space, 1..max bytes. */
static int token_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return 0;
	return 1;
}

int inbound_sms_init(struct inbound *in, const char *provider, const char *provider_id,
                     const char *from, const char *to, const char *text, size_t text_len,
                     const char *received, int64_t now, const char *default_country,
                     const char **field, const char **why)
{
	memset(in, 0, sizeof *in);
	snprintf(in->channel, sizeof in->channel, "sms");
	if (!token_ok(provider, INBOUND_PROVIDER_MAX)) {
		*field = "provider";
		*why = "bad provider name";
		return -EINVAL;
	}
	snprintf(in->provider, sizeof in->provider, "%s", provider);
	if (!token_ok(provider_id, INBOUND_ID_MAX)) {
		*field = "id";
		*why = "the provider message id is required: 1..128 printable ASCII characters";
		return -EINVAL;
	}
	snprintf(in->provider_id, sizeof in->provider_id, "%s", provider_id);
	const char *r = NULL;
	if (!from || addr_normalize(ADDR_SMS, from, default_country, in->from, &r) < 0) {
		*field = "from";
		*why = r ? r : "the sender's number is required";
		return -EINVAL;
	}
	if (to && *to) {
		if (strlen(to) > ADDR_MAX || text_has_ctl(to, 0) || !utf8_valid(to, strlen(to))) {
			*field = "to";
			*why = "not a valid address";
			return -EINVAL;
		}
		snprintf(in->to, sizeof in->to, "%s", to);
	}
	if (!text) {
		*field = "text";
		*why = "text is required";
		return -EINVAL;
	}
	if (text_len > INBOUND_TEXT_MAX) {
		*field = "text";
		*why = "text is longer than 4096 bytes";
		return -EINVAL;
	}
	if (memchr(text, '\0', text_len) || !utf8_valid(text, text_len)) {
		*field = "text";
		*why = "text is not valid UTF-8";
		return -EINVAL;
	}
	memcpy(in->text, text, text_len);
	in->text[text_len] = '\0';
	in->received_at = now;
	if (received && *received && inbound_parse_time(received, &in->received_at) < 0) {
		*field = "received_at";
		*why = "not a time (RFC 3339, YYYY-MM-DD HH:MM[:SS] or Unix seconds)";
		return -EINVAL;
	}
	in->action = inbound_classify(in->text);
	return 0;
}
