/*
 * store.c - shared store plumbing: the argv builder, the embedded Lua scripts
 * and how they are called, key building, reply helpers and time formats.
 * Owns the script table; knows the prefix, not the resources.
 */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

extern const char lua_msg_create[], lua_msg_promote[], lua_msg_claim[], lua_msg_settle[],
    lua_msg_get[], lua_contact_write[], lua_contact_list[], lua_contact_delete[], lua_msg_report[],
    lua_dlq_retry[], lua_unsubscribe[], lua_inbound[];

extern const char lua_tpl_write[], lua_tpl_list[];
extern const char lua_camp_write[], lua_camp_state[], lua_camp_fan[], lua_camp_pump[],
    lua_camp_reserve[], lua_camp_snap[];

extern const char lua_link_save[], lua_link_click[], lua_link_get[];

extern const char lua_seg_write[], lua_seg_list[];

extern const char lua_points_ledger[];

extern const char lua_occ_write[], lua_occ_get[], lua_occ_run[];

extern const char lua_raffle_write[], lua_raffle_enter[], lua_raffle_read[];

extern const char lua_contact_erase[];
/* surveys (store_surveys.c) */
extern const char lua_survey_def[], lua_survey_conv[], lua_survey_read[];
/* the complaints desk (store_desk.c) */
extern const char lua_desk_write[], lua_desk_ticket[], lua_desk_read[];
/* the IMAP poller (imap_poll.c) */
extern const char lua_imap[];

static struct redis_script scripts[SCRIPT__N] = {
    [SCRIPT_MSG_CREATE] = {"msg_create", lua_msg_create, ""},
    [SCRIPT_MSG_PROMOTE] = {"msg_promote", lua_msg_promote, ""},
    [SCRIPT_MSG_CLAIM] = {"msg_claim", lua_msg_claim, ""},
    [SCRIPT_MSG_SETTLE] = {"msg_settle", lua_msg_settle, ""},
    [SCRIPT_MSG_GET] = {"msg_get", lua_msg_get, ""},
    [SCRIPT_CONTACT_WRITE] = {"contact_write", lua_contact_write, ""},
    [SCRIPT_CONTACT_LIST] = {"contact_list", lua_contact_list, ""},
    [SCRIPT_CONTACT_DELETE] = {"contact_delete", lua_contact_delete, ""},
    [SCRIPT_MSG_REPORT] = {"msg_report", lua_msg_report, ""},
    [SCRIPT_DLQ_RETRY] = {"dlq_retry", lua_dlq_retry, ""},
    [SCRIPT_UNSUBSCRIBE] = {"unsubscribe", lua_unsubscribe, ""},
    [SCRIPT_INBOUND] = {"inbound", lua_inbound, ""},
    [SCRIPT_TPL_WRITE] = {"tpl_write", lua_tpl_write, ""},
    [SCRIPT_TPL_LIST] = {"tpl_list", lua_tpl_list, ""},
    [SCRIPT_CAMP_WRITE] = {"camp_write", lua_camp_write, ""},
    [SCRIPT_CAMP_STATE] = {"camp_state", lua_camp_state, ""},
    [SCRIPT_CAMP_FAN] = {"camp_fan", lua_camp_fan, ""},
    [SCRIPT_CAMP_PUMP] = {"camp_pump", lua_camp_pump, ""},
    [SCRIPT_CAMP_RESERVE] = {"camp_reserve", lua_camp_reserve, ""},
    [SCRIPT_CAMP_SNAP] = {"camp_snap", lua_camp_snap, ""},
    [SCRIPT_LINK_SAVE] = {"link_save", lua_link_save, ""},
    [SCRIPT_LINK_CLICK] = {"link_click", lua_link_click, ""},
    [SCRIPT_LINK_GET] = {"link_get", lua_link_get, ""},
    [SCRIPT_SEG_WRITE] = {"seg_write", lua_seg_write, ""},
    [SCRIPT_SEG_LIST] = {"seg_list", lua_seg_list, ""},
    [SCRIPT_POINTS_LEDGER] = {"points_ledger", lua_points_ledger, ""},
    [SCRIPT_OCC_WRITE] = {"occ_write", lua_occ_write, ""},
    [SCRIPT_OCC_GET] = {"occ_get", lua_occ_get, ""},
    [SCRIPT_OCC_RUN] = {"occ_run", lua_occ_run, ""},
    [SCRIPT_RAFFLE_WRITE] = {"raffle_write", lua_raffle_write, ""},
    [SCRIPT_RAFFLE_ENTER] = {"raffle_enter", lua_raffle_enter, ""},
    [SCRIPT_RAFFLE_READ] = {"raffle_read", lua_raffle_read, ""},
    [SCRIPT_CONTACT_ERASE] = {"contact_erase", lua_contact_erase, ""},
    [SCRIPT_SURVEY_DEF] = {"survey_def", lua_survey_def, ""},
    [SCRIPT_SURVEY_CONV] = {"survey_conv", lua_survey_conv, ""},
    [SCRIPT_SURVEY_READ] = {"survey_read", lua_survey_read, ""},
    [SCRIPT_DESK_WRITE] = {"desk_write", lua_desk_write, ""},
    [SCRIPT_DESK_TICKET] = {"desk_ticket", lua_desk_ticket, ""},
    [SCRIPT_DESK_READ] = {"desk_read", lua_desk_read, ""},
    [SCRIPT_IMAP] = {"imap", lua_imap, ""},
};

void argv_init(struct argv *a)
{
	memset(a, 0, sizeof *a);
}

void argv_free(struct argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	free(a->len);
	memset(a, 0, sizeof *a);
}

void argv_addn(struct argv *a, const char *p, size_t n)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->v = xrealloc(a->v, sizeof(*a->v) * (size_t)a->cap);
		a->len = xrealloc(a->len, sizeof(*a->len) * (size_t)a->cap);
	}
	a->v[a->n] = xstrndup(p, n);
	a->len[a->n] = n;
	a->n++;
}

void argv_add(struct argv *a, const char *s)
{
	argv_addn(a, s ? s : "", s ? strlen(s) : 0);
}

void argv_addf(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	argv_add(a, s);
	free(s);
}

void argv_addll(struct argv *a, long long v)
{
	char b[24];
	int n = snprintf(b, sizeof b, "%lld", v);
	argv_addn(a, b, (size_t)n);
}

struct store *store_new(struct redis *r, const char *prefix, int timeline_max)
{
	struct store *st = xcalloc(1, sizeof *st);
	st->r = r;
	st->prefix = xstrdup(prefix);
	st->timeline_max = timeline_max;
	return st;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	free(st->prefix);
	free(st);
}

void store_eval(struct store *st, enum store_script s, struct argv *a, redis_cb cb, void *arg)
{
	int argc = a->n + 1;
	const char **v = xmalloc(sizeof(*v) * (size_t)argc);
	size_t *l = xmalloc(sizeof(*l) * (size_t)argc);
	v[0] = st->prefix;
	l[0] = strlen(st->prefix);
	for (int i = 0; i < a->n; i++) {
		v[i + 1] = a->v[i];
		l[i + 1] = a->len[i];
	}
	redis_script(st->r, &scripts[s], cb, arg, 0, argc, v, l);
	free(v);
	free(l);
}

char *store_key(const struct store *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *tail = NULL;
	if (vasprintf(&tail, fmt, ap) < 0)
		abort();
	va_end(ap);
	char *k = xasprintf("%s%s", st->prefix, tail);
	free(tail);
	return k;
}

const char *reply_str(const redisReply *r)
{
	if (!r)
		return NULL;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		return r->str;
	return NULL;
}

const char *hash_get(const redisReply *arr, const char *field)
{
	if (!arr || arr->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < arr->elements; i += 2) {
		const redisReply *k = arr->element[i];
		if (k->type == REDIS_REPLY_STRING && strcmp(k->str, field) == 0)
			return reply_str(arr->element[i + 1]);
	}
	return NULL;
}

int64_t hash_get_i64(const redisReply *arr, const char *field, int64_t def)
{
	const char *s = hash_get(arr, field);
	int64_t v;
	if (!s || parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0)
		return def;
	return v;
}

void store_queue_init(struct store *st, const char *const *lanes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *k = store_key(st, "q:%s", lanes[i]);
		/* BUSYGROUP on an existing group is expected and ignored. */
		redis_cmdf(st->r, NULL, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", k, STORE_GROUP);
		free(k);
	}
}

void fmt_time(int64_t ms, char *out, size_t n)
{
	if (ms < 0)
		ms = 0; /* we never store times before the epoch */
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char b[32];
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03dZ", b, (int)(ms % 1000));
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

static int days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int parse_time(const char *s, int64_t *ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int Y, M, D, h, m, sec, frac = 0;
	const char *p = s;
	if (!s || strlen(s) > 40)
		return -1;
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (*p >= '0' && *p <= '9') {
			if (nd < 3)
				frac = frac * 10 + (*p - '0');
			nd++;
			p++;
		}
		if (nd == 0 || nd > 9)
			return -1;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p)
		return -1;
	if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 ||
	    m > 59 || sec > 60)
		return -1;
	int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	if (M == 2 && D == 29 && !leap)
		return -1;
	if (sec == 60)
		sec = 59;
	int64_t days = days_from_civil(Y, M, D);
	*ms = ((days * 86400 + h * 3600 + m * 60 + sec) - (int64_t)off * 60) * 1000 + frac;
	return *ms < 0 ? -1 : 0;
}
