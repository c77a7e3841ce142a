/*
 * addr.c - validation and normalisation of contact addresses: phones to
 * E.164, emails (a practical RFC 5322 addr-spec subset with RFC 6531 UTF-8
 * local parts), chat ids (Telegram/Bale signed integers or @usernames), and
 * the ISO 3166 alpha-2 -> calling code table used for national phone forms.
 *
 * Owns only static tables.  Pure functions: no I/O, no logging (callers log
 * the reason), no allocation.  Never looks anything up on the network: an
 * email's domain is checked for syntax, not existence.
 *
 * Limits: input over ADDR_MAX bytes is refused.  Phone checks are syntactic
 * (8..15 digits, no leading 0 after "+", exact lengths for +1, +7 and +98,
 * NANP area code/exchange 2..9); we carry no full numbering plan, so an unassigned
 * country code with a plausible length passes.  Email: no quoted local
 * parts, comments or address literals; internationalised domains must
 * already be punycode ("xn--").
 */
#include "addr.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "text.h"
#include "util.h"

#define EMAIL_MAX        254
#define EMAIL_LOCAL_MAX  64
#define EMAIL_DOMAIN_MAX 253
#define EMAIL_LABEL_MAX  63
#define E164_MIN         8
#define E164_MAX         15
#define USERNAME_MIN     5
#define USERNAME_MAX     32

static const char *const kind_names[ADDR_KINDS] = {"sms", "email", "chat"};

int addr_kind_parse(const char *s)
{
	if (!s)
		return -1;
	for (int k = 0; k < ADDR_KINDS; k++)
		if (strcmp(s, kind_names[k]) == 0)
			return k;
	return -1;
}

const char *addr_kind_name(enum addr_kind k)
{
	if ((int)k < 0 || k >= ADDR_KINDS)
		return "unknown";
	return kind_names[k];
}

/*
 * ISO 3166 alpha-2, ITU-T E.164 calling code, and the national trunk prefix
 * dropped before the calling code is put in front ("0" for most; "1" in the
 * NANP, "8" in Russia/Kazakhstan, "06" in Hungary, none in Italy where the
 * leading 0 is part of the number).
 */
static const struct country {
	char iso2[3];
	char cc[4];
	char trunk[3];
} countries[] = {
    {"AE", "971", "0"}, {"AF", "93", "0"},  {"AM", "374", "0"}, {"AR", "54", "0"},
    {"AT", "43", "0"},  {"AU", "61", "0"},  {"AZ", "994", "0"}, {"BD", "880", "0"},
    {"BE", "32", "0"},  {"BH", "973", "0"}, {"BR", "55", "0"},  {"CA", "1", "1"},
    {"CH", "41", "0"},  {"CN", "86", "0"},  {"CY", "357", "0"}, {"CZ", "420", "0"},
    {"DE", "49", "0"},  {"DK", "45", "0"},  {"DZ", "213", "0"}, {"EG", "20", "0"},
    {"ES", "34", "0"},  {"FI", "358", "0"}, {"FR", "33", "0"},  {"GB", "44", "0"},
    {"GE", "995", "0"}, {"GR", "30", "0"},  {"HK", "852", "0"}, {"HU", "36", "06"},
    {"ID", "62", "0"},  {"IE", "353", "0"}, {"IL", "972", "0"}, {"IN", "91", "0"},
    {"IQ", "964", "0"}, {"IR", "98", "0"},  {"IT", "39", ""},   {"JO", "962", "0"},
    {"JP", "81", "0"},  {"KE", "254", "0"}, {"KG", "996", "0"}, {"KR", "82", "0"},
    {"KW", "965", "0"}, {"KZ", "7", "8"},   {"LB", "961", "0"}, {"LK", "94", "0"},
    {"LU", "352", "0"}, {"LY", "218", "0"}, {"MA", "212", "0"}, {"MX", "52", "0"},
    {"MY", "60", "0"},  {"NG", "234", "0"}, {"NL", "31", "0"},  {"NO", "47", "0"},
    {"NZ", "64", "0"},  {"OM", "968", "0"}, {"PH", "63", "0"},  {"PK", "92", "0"},
    {"PL", "48", "0"},  {"PS", "970", "0"}, {"PT", "351", "0"}, {"QA", "974", "0"},
    {"RO", "40", "0"},  {"RU", "7", "8"},   {"SA", "966", "0"}, {"SE", "46", "0"},
    {"SG", "65", "0"},  {"SY", "963", "0"}, {"TH", "66", "0"},  {"TN", "216", "0"},
    {"TR", "90", "0"},  {"TW", "886", "0"}, {"UA", "380", "0"}, {"US", "1", "1"},
    {"VN", "84", "0"},  {"YE", "967", "0"}, {"ZA", "27", "0"},
};

static int ascii_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static const struct country *country_find(const char *iso2)
{
	if (!iso2 || !iso2[0] || !iso2[1] || iso2[2])
		return NULL;
	int a = ascii_upper((unsigned char)iso2[0]), b = ascii_upper((unsigned char)iso2[1]);
	for (size_t i = 0; i < ARRAY_SIZE(countries); i++)
		if (countries[i].iso2[0] == a && countries[i].iso2[1] == b)
			return &countries[i];
	return NULL;
}

const char *addr_country_code(const char *iso2)
{
	const struct country *c = country_find(iso2);
	return c ? c->cc : NULL;
}

/* Invisible direction and joiner marks that copy-paste from RTL text brings. */
static int is_bidi_mark(uint32_t cp)
{
	return cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
	       (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

static int is_trimmable(uint32_t cp)
{
	return text_is_space(cp) || is_bidi_mark(cp);
}

/* ---- phones ----------------------------------------------------------- */

static int is_phone_separator(uint32_t cp)
{
	if (cp == '-' || cp == '.' || cp == '(' || cp == ')')
		return 1;
	if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212) /* Unicode dashes, minus */
		return 1;
	return text_is_space(cp) || is_bidi_mark(cp);
}

/* NULL when "+" digits[0..n) is a plausible E.164 number, else why not. */
static const char *e164_check(const char *d, size_t n)
{
	if (n < E164_MIN)
		return "too short";
	if (n > E164_MAX)
		return "too long";
	if (d[0] == '0')
		return "invalid country code";
	size_t want = 0;
	if (d[0] == '1' || d[0] == '7') /* NANP and Russia/Kazakhstan: 10-digit numbers */
		want = 11;
	else if (d[0] == '9' && d[1] == '8') /* Iran: a closed 10-digit plan, mobiles 9xx */
		want = 12;
	if (want && n < want)
		return "too short";
	if (want && n > want)
		return "too long";
	/* NANP area code and exchange both start with 2..9. */
	if (d[0] == '1' && (d[1] < '2' || d[4] < '2'))
		return "not a valid North American number";
	return NULL;
}

static int put_e164(char *out, const char *d, size_t n)
{
	int w = snprintf(out, ADDR_MAX + 1, "+%.*s", (int)n, d);
	return w > 0 && w <= ADDR_MAX ? 0 : -1;
}

static int phone_normalize(const char *s, size_t n, const char *default_country, char *out,
                           const char **reason)
{
	char d[ADDR_MAX + 1];
	size_t nd = 0, i = 0;
	int plus = 0;

	while (i < n) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		assert(l > 0); /* validated by the caller */
		i += (size_t)l;
		int v = text_digit_value(cp);
		if (v >= 0) {
			d[nd++] = (char)('0' + v);
		} else if (cp == '+' && !plus && nd == 0) {
			plus = 1;
		} else if (cp == '+') {
			*reason = "misplaced +";
			return -1;
		} else if (cp == '(' && plus && nd > 0 && n - i >= 2 && s[i] == '0' &&
		           s[i + 1] == ')') {
			i += 2; /* "+44 (0)20 ...": the optional trunk 0 is not dialled */
		} else if (is_phone_separator(cp)) {
			continue;
		} else if (cp < 0x80 && is_alpha((int)cp)) {
			*reason = "contains letters";
			return -1;
		} else {
			*reason = "not a phone number";
			return -1;
		}
	}
	if (nd == 0) {
		*reason = "not a phone number";
		return -1;
	}
	if (nd > E164_MAX + 4) { /* longer than any prefix + number we accept */
		*reason = "too long";
		return -1;
	}
	d[nd] = '\0';

	const char *why;
	if (plus || (nd >= 2 && d[0] == '0' && d[1] == '0')) {
		const char *digits = plus ? d : d + 2;
		size_t len = plus ? nd : nd - 2;
		why = e164_check(digits, len);
		if (why) {
			*reason = why;
			return -1;
		}
		return put_e164(out, digits, len);
	}

	/* National form: needs a default country. */
	if (!default_country || !*default_country) {
		*reason = "no country code and no default country";
		return -1;
	}
	const struct country *c = country_find(default_country);
	if (!c) {
		*reason = "unknown default country";
		return -1;
	}
	char full[E164_MAX + 8];
	size_t tl = strlen(c->trunk), cl = strlen(c->cc);
	const char *nat = d;
	size_t nl = nd;
	if (tl && nd > tl && memcmp(d, c->trunk, tl) == 0) {
		nat = d + tl;
		nl = nd - tl;
	}
	if (cl + nl >= sizeof(full)) {
		why = "too long";
	} else {
		memcpy(full, c->cc, cl);
		memcpy(full + cl, nat, nl);
		why = e164_check(full, cl + nl);
		if (!why)
			return put_e164(out, full, cl + nl);
	}
	/* "989121234567": the calling code typed without "+" or "00". */
	if (nd > cl && memcmp(d, c->cc, cl) == 0 && !e164_check(d, nd))
		return put_e164(out, d, nd);
	*reason = why;
	return -1;
}

/* ---- email ------------------------------------------------------------ */

static int is_atext(int c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static const char *email_local_check(const char *s, size_t n)
{
	if (n == 0)
		return "empty local part";
	if (n > EMAIL_LOCAL_MAX)
		return "local part too long";
	if (s[0] == '.' || s[n - 1] == '.')
		return "local part starts or ends with a dot";
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (i + 1 < n && s[i + 1] == '.')
				return "consecutive dots in local part";
			i++;
			continue;
		}
		if (c < 0x80) {
			if (!is_atext(c))
				return "invalid character in local part";
			i++;
			continue;
		}
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		assert(l > 0);
		if (text_is_space(cp) || is_bidi_mark(cp) || (cp >= 0x2028 && cp <= 0x202F))
			return "invalid character in local part";
		i += (size_t)l;
	}
	return NULL;
}

static const char *email_domain_check(const char *s, size_t n)
{
	if (n == 0)
		return "empty domain";
	if (n > EMAIL_DOMAIN_MAX)
		return "domain too long";
	size_t labels = 0, start = 0;
	int all_digits = 1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (c >= 0x80)
				return "internationalised domain must be in punycode (xn--)";
			if (!is_alpha(c) && !is_digit(c) && c != '-')
				return "invalid character in domain";
			continue;
		}
		size_t len = i - start;
		if (len == 0)
			return "empty label in domain";
		if (len > EMAIL_LABEL_MAX)
			return "domain label too long";
		if (s[start] == '-' || s[i - 1] == '-')
			return "domain label starts or ends with a hyphen";
		all_digits = 1;
		for (size_t j = start; j < i; j++)
			if (!is_digit((unsigned char)s[j]))
				all_digits = 0;
		labels++;
		start = i + 1;
	}
	if (labels < 2)
		return "domain has no dot";
	if (all_digits) /* last label: a bare IP address is not a domain */
		return "numeric top-level domain";
	return NULL;
}

static int email_normalize(const char *s, size_t n, char *out, const char **reason)
{
	const char *at = NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '@')
			continue;
		if (at) {
			*reason = "more than one @";
			return -1;
		}
		at = s + i;
	}
	if (!at) {
		*reason = "missing @";
		return -1;
	}
	if (n > EMAIL_MAX) {
		*reason = "too long";
		return -1;
	}
	size_t ll = (size_t)(at - s), dl = n - ll - 1;
	const char *why = email_local_check(s, ll);
	if (!why)
		why = email_domain_check(at + 1, dl);
	if (why) {
		*reason = why;
		return -1;
	}
	/* ASCII letters of the local part are lower-cased too: RFC 5321 lets
	 * a server tell Bob@ from bob@, but no mailbox provider does, and
	 * replies and imports must find the same contact whatever the case. */
	for (size_t i = 0; i < ll; i++)
		out[i] = (char)ascii_lower((unsigned char)s[i]);
	out[ll] = '@';
	for (size_t i = 0; i < dl; i++)
		out[ll + 1 + i] = (char)ascii_lower((unsigned char)at[1 + i]);
	out[n] = '\0';
	return 0;
}

/* ---- chat ids --------------------------------------------------------- */

static int chat_normalize(const char *s, size_t n, char *out, const char **reason)
{
	if (s[0] == '@') {
		size_t ul = n - 1;
		if (ul < USERNAME_MIN) {
			*reason = "username too short";
			return -1;
		}
		if (ul > USERNAME_MAX) {
			*reason = "username too long";
			return -1;
		}
		if (!is_alpha((unsigned char)s[1])) {
			*reason = "username must start with a letter";
			return -1;
		}
		out[0] = '@';
		for (size_t i = 1; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '_') {
				*reason = "invalid character in username";
				return -1;
			}
			out[i] = (char)ascii_lower(c);
		}
		out[n] = '\0';
		return 0;
	}

	char num[ADDR_MAX + 1];
	size_t o = 0, i = 0;
	if (s[0] == '-') {
		num[o++] = '-';
		i++;
	}
	while (i < n) {
		uint32_t cp;
		int l = utf8_decode(s + i, n - i, &cp);
		assert(l > 0);
		int v = text_digit_value(cp);
		if (v < 0) {
			*reason = "not a chat id or @username";
			return -1;
		}
		num[o++] = (char)('0' + v);
		i += (size_t)l;
	}
	num[o] = '\0';
	int64_t id;
	int rc = parse_i64(num, INT64_MIN, INT64_MAX, &id);
	if (rc == -ERANGE) {
		*reason = "chat id out of range";
		return -1;
	}
	if (rc < 0) {
		*reason = "not a chat id or @username";
		return -1;
	}
	if (id == 0) {
		*reason = "chat id is zero";
		return -1;
	}
	snprintf(out, ADDR_MAX + 1, "%" PRId64, id);
	return 0;
}

/* ---- entry points ----------------------------------------------------- */

/* Start of the code point that ends at s[n) in valid UTF-8. */
static size_t utf8_prev(const char *s, size_t n)
{
	size_t i = n - 1;
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, encoded C2 80..C2 9F). */
static int has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F)
			return 1;
		if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)
			return 1;
	}
	return 0;
}

int addr_normalize_n(enum addr_kind kind, const char *in, size_t len, const char *default_country,
                     char *out, const char **reason)
{
	const char *dummy;
	if (!reason)
		reason = &dummy;
	assert(out);
	out[0] = '\0';
	*reason = NULL;

	if (!in || len == 0) {
		*reason = "empty";
		return -1;
	}
	if (len > ADDR_MAX) {
		*reason = "too long";
		return -1;
	}
	if (memchr(in, '\0', len)) {
		*reason = "contains a NUL byte";
		return -1;
	}
	if (!utf8_valid(in, len)) {
		*reason = "not valid UTF-8";
		return -1;
	}
	if (has_ctl(in, len)) {
		*reason = "contains control characters";
		return -1;
	}

	/* Trim white space and invisible marks at both ends. */
	const char *s = in;
	size_t n = len;
	uint32_t cp;
	int l;
	while (n > 0 && (l = utf8_decode(s, n, &cp)) > 0 && is_trimmable(cp)) {
		s += l;
		n -= (size_t)l;
	}
	while (n > 0) {
		size_t p = utf8_prev(s, n);
		if (utf8_decode(s + p, n - p, &cp) <= 0 || !is_trimmable(cp))
			break;
		n = p;
	}
	if (n == 0) {
		*reason = "empty";
		return -1;
	}

	int rc;
	switch (kind) {
	case ADDR_SMS:
		rc = phone_normalize(s, n, default_country, out, reason);
		break;
	case ADDR_EMAIL:
		rc = email_normalize(s, n, out, reason);
		break;
	case ADDR_CHAT:
		rc = chat_normalize(s, n, out, reason);
		break;
	default:
		*reason = "unknown address kind";
		rc = -1;
		break;
	}
	if (rc < 0) {
		out[0] = '\0';
		if (!*reason)
			*reason = "invalid address";
		return -1;
	}
	*reason = NULL;
	return 0;
}

int addr_normalize(enum addr_kind kind, const char *in, const char *default_country, char *out,
                   const char **reason)
{
	size_t len = in ? strnlen(in, ADDR_MAX + 1) : 0;
	return addr_normalize_n(kind, in, len, default_country, out, reason);
}
