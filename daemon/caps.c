/*
 * caps.c - message categories by name and frequency caps in their text
 * form.  Pure parsing, no I/O and no ICU, so the config loader (and the
 * man page generator built from it) can validate [prefs] caps.  The
 * counting itself is in lua/msg_claim.lua.
 */
#include <stdio.h>
#include <string.h>

#include "prefs.h"
#include "util.h"

const char *const category_names[CAT__N] = {
    [CAT_TRANSACTIONAL] = "transactional",
    [CAT_PROMOTIONAL] = "promotional",
    [CAT_SURVEY] = "survey",
    [CAT_LOTTERY] = "lottery",
    [CAT_OCCASION] = "occasion",
};

int category_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < CAT__N; i++)
		if (strcmp(s, category_names[i]) == 0)
			return i;
	return -1;
}

const char *category_name(enum category c)
{
	if ((unsigned)c >= CAT__N)
		return "unknown";
	return category_names[c];
}

int prefs_parse_caps(const char *s, struct prefs_cap *out, int max, char *why, size_t whylen)
{
	int n = 0;
	const char *p = s ? s : "";
	while (*p == ' ')
		p++;
	while (*p) {
		size_t len = strcspn(p, ",");
		char item[64];
		if (len == 0 || len >= sizeof item) {
			snprintf(why, whylen,
			         "a cap is CATEGORY:MAX/WINDOW, e.g. promotional:2/1d");
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		char *colon = strchr(item, ':'), *slash = colon ? strchr(colon, '/') : NULL;
		int64_t m, w;
		if (!colon || !slash) {
			snprintf(why, whylen,
			         "%s: a cap is CATEGORY:MAX/WINDOW, e.g. promotional:2/1d", item);
			return -1;
		}
		*colon = *slash = '\0';
		char *cat = item;
		while (*cat == ' ')
			cat++;
		int c = category_parse(cat);
		if (c < 0 || c == CAT_TRANSACTIONAL) {
			snprintf(why, whylen,
			         "%s: not a cappable category (promotional, survey, lottery, "
			         "occasion)",
			         cat);
			return -1;
		}
		if (parse_i64(colon + 1, 1, 1000, &m) < 0) {
			snprintf(why, whylen, "%s: the maximum must be 1..1000", colon + 1);
			return -1;
		}
		char *ws = slash + 1;
		size_t wl = strlen(ws);
		while (wl > 0 && ws[wl - 1] == ' ')
			ws[--wl] = '\0';
		if (parse_duration_ms(ws, &w) < 0 || w < 60000 || w > 366LL * 86400000) {
			snprintf(why, whylen, "%s: the window must be a duration from 1m to 366d",
			         ws);
			return -1;
		}
		if (n >= max) {
			snprintf(why, whylen, "at most %d caps", max);
			return -1;
		}
		out[n].category = (enum category)c;
		out[n].max = (int)m;
		out[n].window_ms = w;
		n++;
		p += len;
		if (*p == ',')
			p++;
		while (*p == ' ')
			p++;
	}
	return n;
}
