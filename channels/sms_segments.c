/*
 * sms_segments.c - SMS text accounting and what every SMS driver shares.
 *
 * Owns: the GSM 03.38 tables (default alphabet and extension table, as
 * Unicode code points), the segment arithmetic, the common SMS keys
 * (sender, price_per_segment, max_segments), reason excerpts with secrets
 * redacted, percent encoding, and struct sms_core: one driver's reference
 * on the shared HTTP client, its in-flight count, its idle handle for
 * failures that must be reported later, and its ordered stop.
 *
 * Never touches: message text beyond counting it (never logged, never put
 * into a reason), the transport details of a provider (the drivers own
 * those), retries (the scheduler decides).  Limits: national language
 * shift tables (3GPP 23.038 annex A.2/A.3: Turkish, Portuguese, Indian
 * languages) are not used: such text is counted, and sent, as UCS-2.
 */
#include "sms_segments.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text.h"

/* ---- GSM 03.38 ----------------------------------------------------------- */

int sms_gsm_septets(uint32_t cp)
{
	if (cp < 0x80) {
		switch (cp) {
		case '\n':
		case '\r':
			return 1;
		case '\f': /* form feed: ESC 0x0A */
		case '^':
		case '{':
		case '}':
		case '\\':
		case '[':
		case '~':
		case ']':
		case '|':
			return 2;
		case '`': /* the one printable ASCII character GSM lacks */
			return 0;
		default:
			return cp >= 0x20 && cp < 0x7f ? 1 : 0;
		}
	}
	switch (cp) {
	/* Latin-1 letters and signs of the default alphabet */
	case 0x00A1: /* ¡ */
	case 0x00A3: /* £ */
	case 0x00A4: /* ¤ */
	case 0x00A5: /* ¥ */
	case 0x00A7: /* § */
	case 0x00BF: /* ¿ */
	case 0x00C4: /* Ä */
	case 0x00C5: /* Å */
	case 0x00C6: /* Æ */
	case 0x00C7: /* Ç */
	case 0x00C9: /* É */
	case 0x00D1: /* Ñ */
	case 0x00D6: /* Ö */
	case 0x00D8: /* Ø */
	case 0x00DC: /* Ü */
	case 0x00DF: /* ß */
	case 0x00E0: /* à */
	case 0x00E4: /* ä */
	case 0x00E5: /* å */
	case 0x00E6: /* æ */
	case 0x00E8: /* è */
	case 0x00E9: /* é */
	case 0x00EC: /* ì */
	case 0x00F1: /* ñ */
	case 0x00F2: /* ò */
	case 0x00F6: /* ö */
	case 0x00F8: /* ø */
	case 0x00F9: /* ù */
	case 0x00FC: /* ü */
	/* Greek capitals of the default alphabet */
	case 0x0393: /* Γ */
	case 0x0394: /* Δ */
	case 0x0398: /* Θ */
	case 0x039B: /* Λ */
	case 0x039E: /* Ξ */
	case 0x03A0: /* Π */
	case 0x03A3: /* Σ */
	case 0x03A6: /* Φ */
	case 0x03A8: /* Ψ */
	case 0x03A9: /* Ω */
		return 1;
	case 0x20AC: /* € (extension table) */
		return 2;
	default:
		return 0;
	}
}

/* Parts for a run of weights: one part when everything fits `single`,
 * else greedy packing into `multi`-sized parts where a weight-2 item
 * (escape pair, surrogate pair) never straddles two parts. */
static int count_parts(const char *s, size_t len, int ucs2, int total)
{
	int single = ucs2 ? SMS_UCS2_SINGLE : SMS_GSM_SINGLE;
	int multi = ucs2 ? SMS_UCS2_MULTI : SMS_GSM_MULTI;
	if (total <= single)
		return 1;
	int parts = 1, used = 0;
	uint32_t cp;
	for (size_t i = 0; i < len;) {
		int l = utf8_decode(s + i, len - i, &cp);
		i += (size_t)l; /* validated by the caller's first pass */
		int w = ucs2 ? (cp >= 0x10000 ? 2 : 1) : sms_gsm_septets(cp);
		if (used + w > multi) {
			parts++;
			used = 0;
		}
		used += w;
	}
	return parts;
}

int sms_count(const char *s, size_t len, struct sms_count *out)
{
	long septets = 0, units = 0;
	int gsm = 1;
	uint32_t cp;
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < len;) {
		int l = utf8_decode(s + i, len - i, &cp);
		if (l < 0)
			return -EILSEQ;
		i += (size_t)l;
		int w = sms_gsm_septets(cp);
		if (w == 0)
			gsm = 0;
		septets += w;
		units += cp >= 0x10000 ? 2 : 1;
	}
	/* A text far beyond any max_segments: clamp units, the count stays huge. */
	long total = gsm ? septets : units;
	if (total > 100000000)
		total = 100000000;
	out->ucs2 = !gsm;
	out->units = (int)total;
	out->segments = count_parts(s, len, !gsm, (int)total);
	int single = gsm ? SMS_GSM_SINGLE : SMS_UCS2_SINGLE;
	out->per_segment = out->segments <= 1 ? single : (gsm ? SMS_GSM_MULTI : SMS_UCS2_MULTI);
	return 0;
}

int64_t sms_cost_micros(int segments, double price)
{
	if (price <= 0 || segments <= 0)
		return 0;
	return (int64_t)llround((double)segments * price * 1e6);
}

/* ---- common keys ------------------------------------------------------- */

int sms_opts_configure(struct cfg_section *sec, struct sms_opts *o, struct cfg_error *err)
{
	memset(o, 0, sizeof *o);
	const char *sender = cfg_sec_str(sec, "sender", NULL);
	if (sender) {
		size_t n = strlen(sender);
		int ok = n > 0 && n <= 32 && sender[0] != ' ' && sender[n - 1] != ' ';
		for (size_t i = 0; ok && i < n; i++)
			if ((unsigned char)sender[i] < 0x20 || (unsigned char)sender[i] > 0x7e)
				ok = 0;
		if (!ok) {
			cfg_error_set(err, sec, "sender",
			              "must be 1 to 32 printable ASCII characters (a number or an "
			              "alphanumeric sender id)");
			return -1;
		}
		o->sender = xstrdup(sender);
	}
	if (cfg_sec_double(sec, "price_per_segment", 0, 0, 1000, &o->price, err) < 0)
		return -1;
	int64_t v;
	if (cfg_sec_int(sec, "max_segments", 10, 1, SMS_MAX_PARTS, &v, err) < 0)
		return -1;
	o->max_segments = (int)v;
	return 0;
}

void sms_opts_free(struct sms_opts *o)
{
	free(o->sender);
	o->sender = NULL;
}

int sms_opts_check(const struct sms_opts *o, const char *text, struct sms_count *cnt, char *why,
                   size_t whylen)
{
	if (!text || !*text) {
		snprintf(why, whylen, "empty text");
		return -1;
	}
	if (sms_count(text, strlen(text), cnt) < 0) {
		snprintf(why, whylen, "text is not valid UTF-8");
		return -1;
	}
	if (cnt->segments > o->max_segments) {
		snprintf(why, whylen, "too long: %d segments > max %d", cnt->segments,
		         o->max_segments);
		return -1;
	}
	return 0;
}

int sms_recipient_digits(const char *to, char *out, size_t n)
{
	if (!to || n < 2)
		return -EINVAL;
	if (*to == '+')
		to++;
	size_t len = strlen(to);
	if (len < 3 || len > 20 || len >= n)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (to[i] < '0' || to[i] > '9')
			return -EINVAL;
	memcpy(out, to, len + 1);
	return 0;
}

/* ---- text helpers -------------------------------------------------------- */

int sms_pct_encode(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int r;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			r = buf_append(b, &s[i], 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			r = buf_append(b, e, 3);
		}
		if (r < 0)
			return r;
	}
	if (!b->p) /* an empty string still leaves a valid, empty buffer */
		return buf_append(b, "", 0);
	return 0;
}

/* Replace every occurrence of pat in b by "***". */
static void replace_all(struct buf *b, const char *pat, size_t plen)
{
	if (!plen || !b->p || b->len < plen)
		return;
	if (!memmem(b->p, b->len, pat, plen))
		return;
	struct buf o;
	buf_init(&o, 0);
	const char *p = b->p, *end = b->p + b->len;
	for (;;) {
		const char *hit = memmem(p, (size_t)(end - p), pat, plen);
		if (!hit) {
			buf_append(&o, p, (size_t)(end - p));
			break;
		}
		buf_append(&o, p, (size_t)(hit - p));
		buf_append(&o, "***", 3);
		p = hit + plen;
	}
	buf_free(b);
	*b = o;
	if (!b->p)
		buf_append(b, "", 0);
}

static void redact_buf(struct buf *b, const char *const *secrets)
{
	for (const char *const *sp = secrets; sp && *sp; sp++) {
		const char *s = *sp;
		size_t n = strlen(s);
		if (!n)
			continue;
		replace_all(b, s, n);
		struct buf e;
		buf_init(&e, 0);
		sms_pct_encode(&e, s, n);
		if (e.len != n)
			replace_all(b, e.p, e.len);
		buf_free(&e);
		if (n <= 64 * 1024) {
			unsigned char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
			int bl = EVP_EncodeBlock(b64, (const unsigned char *)s, (int)n);
			if (bl > 0)
				replace_all(b, (const char *)b64, (size_t)bl);
			free(b64);
		}
	}
}

void sms_redact(char *s, size_t n, const char *const *secrets)
{
	if (!s || !n)
		return;
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, s, strnlen(s, n));
	redact_buf(&b, secrets);
	size_t l = b.len < n - 1 ? b.len : n - 1;
	memcpy(s, b.p, l);
	s[l] = '\0';
	buf_free(&b);
}

/* Characters an excerpt drops: C0/C1 controls, DEL, bidi embeddings,
 * overrides and isolates (they could reorder what an operator reads). */
static int drop_cp(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void sms_excerpt(char *out, size_t n, const char *body, size_t len, const char *const *secrets)
{
	if (!n)
		return;
	out[0] = '\0';
	if (!body)
		return;
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	size_t e = i;
	while (e < len && body[e] != '\r' && body[e] != '\n')
		e++;
	while (e > i && (body[e - 1] == ' ' || body[e - 1] == '\t'))
		e--;
	struct buf line;
	buf_init(&line, 0);
	buf_append(&line, body + i, e - i);
	redact_buf(&line, secrets);

	size_t o = 0, chars = 0;
	const char *p = line.p;
	size_t pl = line.len;
	int cut = 0;
	for (size_t k = 0; k < pl;) {
		uint32_t cp;
		int l = utf8_decode(p + k, pl - k, &cp);
		const char *src = p + k;
		size_t sl = (size_t)l;
		if (l < 0) {
			src = "?";
			sl = 1;
			l = 1;
		} else if (cp == '\t') {
			src = " ";
			sl = 1;
		} else if (drop_cp(cp)) {
			k += (size_t)l;
			continue;
		}
		if (chars >= SMS_EXCERPT_MAX || o + sl + 4 > n) {
			cut = 1;
			break;
		}
		memcpy(out + o, src, sl);
		o += sl;
		chars++;
		k += (size_t)l;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	if (cut && o + 4 <= n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	buf_free(&line);
}

/* ---- the HTTP driver plumbing -------------------------------------------- */

struct sms_later {
	struct sms_later *next;
	chan_done_cb done;
	void *arg;
	struct chan_result res;
};

static void core_maybe_stopped(struct sms_core *k);

static void later_cb(uv_idle_t *h)
{
	struct sms_core *k = h->data;
	struct sms_later *l = k->later_head;
	k->later_head = k->later_tail = NULL;
	uv_idle_stop(h);
	while (l) {
		struct sms_later *next = l->next;
		l->done(l->arg, &l->res);
		free(l);
		k->sending--;
		l = next;
	}
	core_maybe_stopped(k);
}

int sms_core_start(struct sms_core *k, struct chan *c, uv_loop_t *loop)
{
	k->c = c;
	k->http = http_client_get(loop);
	http_client_want_connections(k->http, k->max_host > 0 ? k->max_host : 16);
	uv_idle_init(loop, &k->idle);
	k->idle.data = k;
	k->idle_open = 1;
	return 0;
}

void sms_core_report_later(struct sms_core *k, chan_done_cb done, void *arg,
                           const struct chan_result *res)
{
	struct sms_later *l = xcalloc(1, sizeof *l);
	l->done = done;
	l->arg = arg;
	l->res = *res;
	if (k->later_tail)
		k->later_tail->next = l;
	else
		k->later_head = l;
	k->later_tail = l;
	k->sending++;
	uv_idle_start(&k->idle, later_cb);
}

static void idle_closed(uv_handle_t *h)
{
	struct sms_core *k = h->data;
	void (*stopped)(struct chan *) = k->stopped;
	k->stopped = NULL;
	if (stopped)
		stopped(k->c);
}

static void core_maybe_stopped(struct sms_core *k)
{
	if (!k->stopping || k->sending > 0 || k->closing)
		return;
	k->closing = 1;
	if (k->http) {
		http_client_put(k->http);
		k->http = NULL;
	}
	if (k->idle_open) {
		k->idle_open = 0;
		uv_close((uv_handle_t *)&k->idle, idle_closed);
	} else {
		idle_closed((uv_handle_t *)&k->idle);
	}
}

void sms_core_request_done(struct sms_core *k)
{
	k->sending--;
	core_maybe_stopped(k);
}

void sms_core_stop(struct sms_core *k, void (*stopped)(struct chan *c))
{
	k->stopping = 1;
	k->stopped = stopped;
	k->idle.data = k; /* also when start never ran: idle_closed reads it */
	core_maybe_stopped(k);
}

void sms_transport_fail(struct chan_result *res, const struct http_resp *resp,
                        const char *const *secrets)
{
	res->status = CHAN_TEMPFAIL;
	switch (resp->err) {
	case HTTP_E_TIMEOUT:
		snprintf(res->reason, sizeof res->reason, "timeout");
		break;
	case HTTP_E_CONNECT:
		snprintf(res->reason, sizeof res->reason, "connect: %s", resp->error);
		break;
	case HTTP_E_TOO_LARGE:
		snprintf(res->reason, sizeof res->reason, "response too large");
		break;
	case HTTP_E_CANCELLED:
		snprintf(res->reason, sizeof res->reason, "cancelled");
		break;
	default:
		snprintf(res->reason, sizeof res->reason, "http: %s", resp->error);
		break;
	}
	sms_redact(res->reason, sizeof res->reason, secrets);
}

void sms_core_warn_auth(struct sms_core *k, const char *driver, long status)
{
	int64_t now = mono_ms();
	if (k->auth_warned_at && now - k->auth_warned_at < 60000)
		return;
	k->auth_warned_at = now;
	log_warnx("sms",
	          "chan=%s driver=%s status=%ld msg=\"the provider refused our credentials; "
	          "check the username and the password or secret file\"",
	          k->c->cfg->name, driver, status);
}
