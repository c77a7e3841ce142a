/*
 * addr.h - validation and normalisation of contact addresses, one function
 * per channel kind.  Pure functions, no I/O.
 *
 * Phones become E.164 ("+989121234567"): Persian/Arabic digits are accepted,
 * spaces, dashes, dots and parentheses are dropped, "00" becomes "+", and a
 * national form ("09121234567", "9121234567" for IR) takes the configured
 * default country's calling code.  Emails keep the local part as given and
 * lower-case the domain.  Chat ids are Telegram-style signed integers or
 * @usernames.
 */
#ifndef CLUBD_ADDR_H
#define CLUBD_ADDR_H

#include <stddef.h>

#define ADDR_MAX 320 /* RFC 5321 path limit is 256; emails up to 254 */

enum addr_kind { ADDR_SMS = 0, ADDR_EMAIL = 1, ADDR_CHAT = 2, ADDR_KINDS = 3 };

/* "sms", "email", "chat" <-> kind; -1 when unknown (exact, lower-case).
 * addr_kind_name() returns "unknown" for an out-of-range kind. */
int addr_kind_parse(const char *s);
const char *addr_kind_name(enum addr_kind k);

/*
 * Normalise `in` for `kind` into out (ADDR_MAX+1 bytes).  0, or -1 with
 * *reason set to a static human-readable reason ("too short", ...).
 * default_country is an ISO 3166 alpha-2 code ("IR") or NULL.
 */
int addr_normalize(enum addr_kind kind, const char *in, const char *default_country, char *out,
                   const char **reason);

/*
 * The same with an explicit length, for callers holding strings that may
 * carry an embedded NUL (JSON, form data): a NUL inside in[0..len) is
 * refused.  addr_normalize() is this with strnlen(in, ADDR_MAX + 1).
 * On success *reason is set to NULL; on failure out is "".
 */
int addr_normalize_n(enum addr_kind kind, const char *in, size_t len, const char *default_country,
                     char *out, const char **reason);

/* Calling code for an ISO country ("IR" -> "98"); NULL when unknown.
 * Case-insensitive ("ir" works too). */
const char *addr_country_code(const char *iso2);

#endif
