/*
 * inbound.c - the normalised inbound message, the keyword lists and the
 * classification, the transports' wire parsers (form bodies, Kannel MO,
 * Telegram updates, Kavenegar receive answers) and the router's stage
 * slots (see inbound.h).  Owns the built-in keyword lists and the stage
 * table.  Never touches Redis, the network or the clock: every input comes
 * from the caller; daemon/inbound_route.c runs the router.
 *
 * Limits: text INBOUND_TEXT_MAX bytes, provider ids INBOUND_ID_MAX bytes of
 * printable ASCII, addresses ADDR_MAX, INBOUND_KW_MAX keywords per list,
 * INBOUND_FORM_MAX form fields.
 */
#include "inbound.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unicode/ucnv.h>
#include <unicode/ustring.h>

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
	case INBOUND_LINK:
		return "link";
	case INBOUND_TAKEN:
		return "taken";
	case INBOUND_REPLY:
		break;
	}
	return "reply";
}

static int not_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* ---- keywords ------------------------------------------------------------ */

void inbound_keywords_free(struct inbound_keywords *k)
{
	for (int l = 0; l < 3; l++)
		for (size_t i = 0; i < k->n[l]; i++)
			free(k->word[l][i]);
	memset(k, 0, sizeof *k);
}

static int kw_list(struct inbound_keywords *k, int l, const char *list, char *why, size_t n)
{
	static const char *const names[3] = {"stop_keywords", "start_keywords", "help_keywords"};
	for (const char *p = list ? list : ""; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char *raw = xstrndup(p, len);
		char *w = text_normalize(raw);
		free(raw);
		if (!w || !*w) {
			free(w);
			snprintf(why, n, "%s: an empty keyword or one that is not UTF-8", names[l]);
			return -EINVAL;
		}
		if (k->n[l] == INBOUND_KW_MAX) {
			free(w);
			snprintf(why, n, "%s: more than %d keywords", names[l], INBOUND_KW_MAX);
			return -EINVAL;
		}
		k->fa[l][k->n[l]] = (unsigned char)not_ascii(w);
		k->word[l][k->n[l]++] = w;
		p = e ? e + 1 : p + len;
	}
	return 0;
}

int inbound_keywords_init(struct inbound_keywords *k, const char *stop, const char *start,
                          const char *help, char *why, size_t whylen)
{
	memset(k, 0, sizeof *k);
	const char *lists[3] = {stop, start, help};
	for (int l = 0; l < 3; l++) {
		int r = kw_list(k, l, lists[l], why, whylen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return (int)i;
	return -1;
}

enum inbound_action inbound_classify_kw(const struct inbound_keywords *k, const char *text,
                                        int *persian)
{
	static const enum inbound_action acts[3] = {INBOUND_OPT_OUT, INBOUND_OPT_IN, INBOUND_HELP};
	if (persian)
		*persian = 0;
	if (!text)
		return INBOUND_REPLY;
	char *n = text_normalize(text);
	if (!n)
		return INBOUND_REPLY;
	enum inbound_action a = INBOUND_REPLY;
	for (int l = 0; l < 3 && a == INBOUND_REPLY; l++) {
		int i;
		if (k) {
			i = in_list(n, (const char *const *)k->word[l], k->n[l]);
		} else {
			static const char *const *const defs[3] = {kw_opt_out, kw_opt_in, kw_help};
			static const size_t ndefs[3] = {ARRAY_SIZE(kw_opt_out),
			                                ARRAY_SIZE(kw_opt_in), ARRAY_SIZE(kw_help)};
			i = in_list(n, defs[l], ndefs[l]);
		}
		if (i >= 0) {
			a = acts[l];
			if (persian)
				*persian = not_ascii(n);
		}
	}
	free(n);
	return a;
}

enum inbound_action inbound_classify(const char *text)
{
	return inbound_classify_kw(NULL, text, NULL);
}

int inbound_reply_persian(int keyword_persian, const char *lang)
{
	if (keyword_persian)
		return 1;
	return lang && strncasecmp(lang, "fa", 2) == 0 && (lang[2] == '\0' || lang[2] == '-');
}

/* ---- times ------------------------------------------------------------- */

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
	return parse_kannel_time(s, ms);
}

/* ---- the normalised record ------------------------------------------------ */

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

static int set_text(struct inbound *in, const char *text, size_t text_len, const char **field,
                    const char **why)
{
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
	return 0;
}

static int set_to(struct inbound *in, const char *to, const char **field, const char **why)
{
	if (!to || !*to)
		return 0;
	if (strlen(to) > ADDR_MAX || text_has_ctl(to, 0) || !utf8_valid(to, strlen(to))) {
		*field = "to";
		*why = "not a valid address";
		return -EINVAL;
	}
	snprintf(in->to, sizeof in->to, "%s", to);
	return 0;
}

static int set_ids(struct inbound *in, const char *channel, const char *provider,
                   const char *provider_id, const char **field, const char **why)
{
	memset(in, 0, sizeof *in);
	snprintf(in->channel, sizeof in->channel, "%s", channel);
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
	return 0;
}

int inbound_sms_init(struct inbound *in, const char *provider, const char *provider_id,
                     const char *from, const char *to, const char *text, size_t text_len,
                     int64_t received_at, const char *default_country, const char **field,
                     const char **why)
{
	int r = set_ids(in, "sms", provider, provider_id, field, why);
	if (r < 0)
		return r;
	const char *reason = NULL;
	if (!from || addr_normalize(ADDR_SMS, from, default_country, in->from, &reason) < 0) {
		*field = "from";
		*why = reason ? reason : "the sender's number is required";
		return -EINVAL;
	}
	if ((r = set_to(in, to, field, why)) < 0 ||
	    (r = set_text(in, text, text_len, field, why)) < 0)
		return r;
	in->received_at = received_at;
	in->action = INBOUND_REPLY;
	return 0;
}

/* ---- form bodies ----------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode p[0..n) into a new string; NULL when malformed or holding NUL. */
static char *form_decode(const char *p, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)p[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n) {
				free(out);
				return NULL;
			}
			int h = hexval((unsigned char)p[i + 1]),
			    l = hexval((unsigned char)p[i + 2]);
			if (h < 0 || l < 0) {
				free(out);
				return NULL;
			}
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

int inbound_form_parse(struct inbound_form *f, const char *body, size_t len)
{
	memset(f, 0, sizeof *f);
	if (body && memchr(body, '\0', len))
		return -EINVAL;
	size_t i = 0;
	while (body && i < len) {
		const char *p = body + i;
		const char *amp = memchr(p, '&', len - i);
		size_t plen = amp ? (size_t)(amp - p) : len - i;
		i += plen + 1;
		if (plen == 0)
			continue;
		if (f->n == INBOUND_FORM_MAX)
			return -E2BIG;
		const char *eq = memchr(p, '=', plen);
		size_t nl = eq ? (size_t)(eq - p) : plen;
		char *name = form_decode(p, nl);
		char *value = eq ? form_decode(eq + 1, plen - nl - 1) : xstrdup("");
		if (!name || !value) {
			free(name);
			free(value);
			return -EINVAL;
		}
		f->name[f->n] = name;
		f->value[f->n] = value;
		f->n++;
	}
	return 0;
}

const char *inbound_form_get(const struct inbound_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i];
	return NULL;
}

void inbound_form_free(struct inbound_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->name[i]);
		free(f->value[i]);
	}
	f->n = 0;
}

/* ---- charsets ----------------------------------------------------------- */

int inbound_to_utf8(const char *charset, const char *in, size_t len, char *out, size_t cap,
                    size_t *outlen)
{
	if (!charset || !*charset || cap == 0 || len > INT32_MAX / 4)
		return -EINVAL;
	UErrorCode e = U_ZERO_ERROR;
	UConverter *cv = ucnv_open(charset, &e);
	if (U_FAILURE(e) || !cv)
		return -EINVAL;
	ucnv_setToUCallBack(cv, UCNV_TO_U_CALLBACK_STOP, NULL, NULL, NULL, &e);
	int32_t ucap = (int32_t)(2 * len + 2);
	UChar *u = xmalloc((size_t)ucap * sizeof *u);
	int32_t ul = ucnv_toUChars(cv, u, ucap, in, (int32_t)len, &e);
	ucnv_close(cv);
	int rc = 0;
	if (U_FAILURE(e)) {
		rc = e == U_BUFFER_OVERFLOW_ERROR ? -E2BIG : -EINVAL;
		goto out;
	}
	int32_t n = 0;
	u_strToUTF8(out, (int32_t)(cap - 1), &n, u, ul, &e);
	if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING) {
		rc = e == U_BUFFER_OVERFLOW_ERROR || e == U_STRING_NOT_TERMINATED_WARNING ? -E2BIG
		                                                                          : -EINVAL;
		goto out;
	}
	out[n] = '\0';
	*outlen = (size_t)n;
out:
	free(u);
	return rc;
}

/* ---- Kannel MO ----------------------------------------------------------- */

static int is_utf16(const char *cs)
{
	return strncasecmp(cs, "UTF-16", 6) == 0 || strncasecmp(cs, "UTF16", 5) == 0 ||
	       strncasecmp(cs, "UCS-2", 5) == 0 || strncasecmp(cs, "UCS2", 4) == 0 ||
	       strncasecmp(cs, "UTF-32", 6) == 0 || strncasecmp(cs, "UCS-4", 5) == 0;
}

int inbound_kannel_parse(struct inbound *in, const struct inbound_kannel_mo *mo, int64_t now,
                         const char *default_country, const char **field, const char **why)
{
	int64_t coding = -1;
	if (mo->coding && *mo->coding && parse_i64(mo->coding, 0, 2, &coding) < 0) {
		*field = "coding";
		*why = "coding is 0 (7-bit), 1 (8-bit) or 2 (UCS-2)";
		return -EINVAL;
	}
	const char *cs = mo->charset && *mo->charset ? mo->charset : NULL;
	if (coding == 1 && (!cs || strcasecmp(cs, "8-BIT") == 0)) {
		*field = "text";
		*why = "8-bit binary messages are not text";
		return -EINVAL;
	}
	if (cs && strcasecmp(cs, "8-BIT") == 0) {
		*field = "text";
		*why = "8-bit binary messages are not text";
		return -EINVAL;
	}
	if (!cs)
		cs = coding == 2 ? "UTF-16BE" : "UTF-8";
	const char *text = mo->text;
	size_t len = mo->text_len;
	char *conv = NULL;
	if (text && strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "UTF8") != 0) {
		if (is_utf16(cs) && !mo->binary_safe) {
			*field = "text";
			*why = "UCS-2 text cannot pass a get-url query intact: set alt-charset = "
			       "UTF-8 "
			       "in the sms-service, or use post-url";
			return -EINVAL;
		}
		conv = xmalloc(INBOUND_TEXT_MAX + 2);
		size_t n = 0;
		int r = inbound_to_utf8(cs, text, len, conv, INBOUND_TEXT_MAX + 2, &n);
		if (r < 0) {
			free(conv);
			*field = "text";
			*why = r == -E2BIG
			           ? "text is longer than 4096 bytes"
			           : "text is not valid in its charset (or the charset is unknown)";
			return -EINVAL;
		}
		text = conv;
		len = n;
	}
	int64_t at = now;
	if (mo->ts && inbound_parse_time(mo->ts, &at) < 0)
		at = now; /* Kannel's clock format is not ours to refuse */
	int r = inbound_sms_init(in, "kannel", mo->id, mo->from, mo->to, text, len, at,
	                         default_country, field, why);
	free(conv);
	return r;
}

/* ---- Telegram updates ---------------------------------------------------- */

static int get_i64(const json_t *o, const char *k, int64_t *v)
{
	json_t *x = json_object_get(o, k);
	if (!json_is_integer(x))
		return -1;
	*v = (int64_t)json_integer_value(x);
	return 0;
}

int inbound_tg_parse(const json_t *update, struct inbound_tg_update *u)
{
	memset(u, 0, sizeof *u);
	if (!json_is_object(update) || get_i64(update, "update_id", &u->update_id) < 0 ||
	    u->update_id < 0)
		return -EINVAL;
	u->kind = INBOUND_TG_SKIP;
	const json_t *m = json_object_get(update, "message");
	if (!json_is_object(m)) {
		u->skip = "not a new message";
		return 0;
	}
	const json_t *chat = json_object_get(m, "chat");
	const json_t *type = json_object_get(chat, "type");
	if (!json_is_object(chat) || get_i64(chat, "id", &u->chat_id) < 0 || u->chat_id == 0) {
		u->skip = "no chat";
		return 0;
	}
	if (!json_is_string(type) || strcmp(json_string_value(type), "private") != 0) {
		u->skip = "not a private chat";
		return 0;
	}
	const json_t *from = json_object_get(m, "from");
	if (!json_is_object(from) || get_i64(from, "id", &u->from_id) < 0) {
		u->skip = "no sender";
		return 0;
	}
	if (json_is_true(json_object_get(from, "is_bot"))) {
		u->skip = "from a bot";
		return 0;
	}
	if (get_i64(m, "message_id", &u->message_id) < 0)
		u->message_id = 0;
	if (get_i64(m, "date", &u->date) < 0 || u->date < 0)
		u->date = 0;
	const json_t *text = json_object_get(m, "text");
	const json_t *contact = json_object_get(m, "contact");
	if (json_is_string(text)) {
		u->kind = INBOUND_TG_TEXT;
		u->text = json_string_value(text);
		u->text_len = json_string_length(text);
		return 0;
	}
	if (json_is_object(contact)) {
		const json_t *phone = json_object_get(contact, "phone_number");
		int64_t uid;
		if (!json_is_string(phone)) {
			u->skip = "a contact without a phone number";
			return 0;
		}
		/* Only the sender's own number (the request_contact button) links:
		 * anyone can share someone else's contact card. */
		if (get_i64(contact, "user_id", &uid) < 0 || uid != u->from_id) {
			u->skip = "a contact card that is not the sender's own number";
			return 0;
		}
		u->kind = INBOUND_TG_CONTACT;
		u->phone = json_string_value(phone);
		return 0;
	}
	u->skip = "no text";
	return 0;
}

int inbound_tg_inbound(struct inbound *in, const struct inbound_tg_update *u, const char *channel,
                       const char *bot_id, int64_t now, const char *default_country,
                       const char **field, const char **why)
{
	char pid[INBOUND_ID_MAX + 1];
	snprintf(pid, sizeof pid, "%s:%" PRId64, bot_id ? bot_id : "0", u->update_id);
	int r = set_ids(in, channel, "telegram", pid, field, why);
	if (r < 0)
		return r;
	if (u->kind != INBOUND_TG_TEXT && u->kind != INBOUND_TG_CONTACT) {
		*field = "message";
		*why = u->skip ? u->skip : "nothing to record";
		return -EINVAL;
	}
	char chat[32];
	snprintf(chat, sizeof chat, "%" PRId64, u->chat_id);
	const char *reason = NULL;
	if (addr_normalize(ADDR_CHAT, chat, NULL, in->from, &reason) < 0) {
		*field = "chat";
		*why = reason ? reason : "not a chat id";
		return -EINVAL;
	}
	if ((r = set_to(in, bot_id, field, why)) < 0)
		return r;
	in->received_at = u->date > 0 && u->date < INT64_C(253402300799) ? u->date * 1000 : now;
	if (u->kind == INBOUND_TG_TEXT)
		return set_text(in, u->text, u->text_len, field, why);
	/* INBOUND_TG_CONTACT: Telegram writes international numbers without '+'. */
	char num[ADDR_MAX + 2];
	size_t o = 0;
	const char *p = u->phone;
	int digits_only = *p != '\0';
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			digits_only = 0;
	if (digits_only && p[0] != '0')
		num[o++] = '+';
	snprintf(num + o, sizeof num - o, "%s", p);
	if (addr_normalize(ADDR_SMS, num, default_country, in->phone, &reason) < 0) {
		*field = "phone_number";
		*why = reason ? reason : "not a phone number";
		return -EINVAL;
	}
	in->action = INBOUND_LINK;
	return 0;
}

/* ---- Kavenegar receive ---------------------------------------------------- */

int inbound_kavenegar_answer(const json_t *root, int *status, const json_t **entries)
{
	*entries = NULL;
	const json_t *ret = json_object_get(root, "return");
	const json_t *st = json_object_get(ret, "status");
	if (!json_is_object(root) || !json_is_integer(st))
		return -EPROTO;
	*status = (int)json_integer_value(st);
	const json_t *e = json_object_get(root, "entries");
	if (json_is_array(e))
		*entries = e;
	else if (e && !json_is_null(e))
		return -EPROTO;
	return 0;
}

int inbound_kavenegar_entry(struct inbound *in, const json_t *entry, int64_t now,
                            const char *default_country, const char **field, const char **why)
{
	char id[32] = "";
	const json_t *mid = json_object_get(entry, "messageid");
	if (json_is_integer(mid) && json_integer_value(mid) > 0)
		snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT, json_integer_value(mid));
	else if (json_is_string(mid) && json_string_length(mid) < sizeof id)
		snprintf(id, sizeof id, "%s", json_string_value(mid));
	const json_t *msg = json_object_get(entry, "message");
	const json_t *sender = json_object_get(entry, "sender");
	const json_t *receptor = json_object_get(entry, "receptor");
	int64_t date = 0;
	if (get_i64(entry, "date", &date) < 0 || date <= 0 || date > INT64_C(253402300799))
		date = 0;
	if (!json_is_object(entry)) {
		*field = "entries";
		*why = "an entry that is not an object";
		return -EINVAL;
	}
	return inbound_sms_init(in, "kavenegar", id, json_string_value(sender),
	                        json_string_value(receptor), json_string_value(msg),
	                        json_is_string(msg) ? json_string_length(msg) : 0,
	                        date ? date * 1000 : now, default_country, field, why);
}

/* ---- stages ------------------------------------------------------------------ */

static struct inbound_stage stages[INBOUND_STAGES];
static int stage_set[INBOUND_STAGES];

void inbound_stage_set(enum inbound_stage_slot slot, const struct inbound_stage *s)
{
	if ((int)slot < 0 || slot >= INBOUND_STAGES)
		return;
	stage_set[slot] = s != NULL && s->run != NULL;
	if (stage_set[slot])
		stages[slot] = *s;
	else
		memset(&stages[slot], 0, sizeof stages[slot]);
}

const struct inbound_stage *inbound_stage_get(enum inbound_stage_slot slot)
{
	if ((int)slot < 0 || slot >= INBOUND_STAGES || !stage_set[slot])
		return NULL;
	return &stages[slot];
}
