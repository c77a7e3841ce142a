/*
 * store_privacy.c - `clubd --rotate-key OLD NEW` (store_privacy.h,
 * docs/privacy.md): every value sealed under OLD is opened and sealed again
 * under NEW, and the address reverse indexes P ix:{kind}:{sealed address}
 * are renamed to the new sealed form.  Runs with every clubd stopped, over
 * its own blocking Redis connection (hiredis' synchronous API), never
 * inside the daemon's loop.
 *
 * Knows which keys and fields hold personal data in clear when clubd runs
 * without a key (PLAIN_FIELDS), so OLD "none" can seal a database written
 * before [privacy] key_file was set; any value sealed under OLD is found
 * wherever it is (hash values, stream entries, strings, set and zset
 * members, list items), also inside JSON text ("\u0001..."), so fields
 * sealed by other modules rotate too.  A stream whose entries change is
 * rebuilt under a temporary key with the same ids and renamed over the old
 * one (streams with consumer groups are never rebuilt: they hold no
 * personal data).
 *
 * Owns its connection and the two keys; never prints a key or a value.
 * Limits: SCAN/XRANGE pages of `batch`; one hash or stream in memory at a
 * time.
 */
#include "store_privacy.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "privacy.h"
#include "util.h"

struct rot {
	redisContext *c;
	const char *prefix;
	size_t plen;
	const struct privacy_key *old, *nu; /* NULL = none (clear text) */
	FILE *out;
	int batch;
	long long keys, resealed, renamed, rebuilt, unknown, failed;
	int broken; /* the connection or a command failed */
};

/* The fields clubd writes in clear when it runs without a key. */
static const struct {
	const char *key;   /* key name without the prefix: "c:" is a prefix, "inbound" exact */
	int exact;         /* 1: the whole name */
	const char *field; /* "a:" matches every a:<kind> */
	char type;         /* 'a' address, 't' text */
} PLAIN_FIELDS[] = {
    {"c:", 0, "name", 't'},       {"c:", 0, "first_name", 't'}, {"c:", 0, "last_name", 't'},
    {"c:", 0, "a:", 'a'},         {"m:", 0, "to", 'a'},         {"m:", 0, "text", 't'},
    {"m:", 0, "subject", 't'},    {"m:", 0, "html", 't'},       {"tl:", 0, "text", 't'},
    {"tl:", 0, "chat", 'a'},      {"tl:", 0, "phone", 'a'},     {"inbound", 1, "from", 'a'},
    {"inbound", 1, "phone", 'a'}, {"inbound", 1, "text", 't'},
};

static char plain_type(const char *tail, const char *field, size_t flen)
{
	for (size_t i = 0; i < ARRAY_SIZE(PLAIN_FIELDS); i++) {
		const char *k = PLAIN_FIELDS[i].key, *f = PLAIN_FIELDS[i].field;
		int kmatch =
		    PLAIN_FIELDS[i].exact ? strcmp(tail, k) == 0 : strncmp(tail, k, strlen(k)) == 0;
		if (!kmatch)
			continue;
		size_t n = strlen(f);
		if (f[n - 1] == ':' ? flen > n && memcmp(field, f, n) == 0
		                    : flen == n && memcmp(field, f, n) == 0)
			return PLAIN_FIELDS[i].type;
	}
	return 0;
}

static redisReply *run(struct rot *r, int argc, const char **argv, const size_t *len)
{
	redisReply *rep = redisCommandArgv(r->c, argc, argv, len);
	if (!rep) {
		fprintf(r->out, "rotate: redis: %s\n", r->c->errstr);
		r->broken = 1;
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		fprintf(r->out, "rotate: redis %s: %s\n", argv[0], rep->str);
		r->broken = 1;
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

static redisReply *run2(struct rot *r, const char *a0, const char *a1)
{
	const char *v[] = {a0, a1};
	size_t l[] = {strlen(a0), strlen(a1)};
	return run(r, 2, v, l);
}

static int b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* The length of the sealed token at s (s[0] is the mark), 0 when none. */
static size_t token_len(const char *s, size_t n)
{
	if (n < 2 + PRIVACY_KEYID_LEN + 1 || (s[1] != 'a' && s[1] != 't'))
		return 0;
	for (size_t i = 2; i < 2 + PRIVACY_KEYID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	size_t i = 2 + PRIVACY_KEYID_LEN;
	while (i < n && b64url(s[i]))
		i++;
	return i > 2 + PRIVACY_KEYID_LEN ? i : 0;
}

/*
 * One sealed token: NULL when it stays (under NEW, or under a third key:
 * counted), else what replaces it.  json: the token sits inside a JSON
 * string (its mark written \u0001), so the replacement is escaped alike.
 */
static char *reseal_one(struct rot *r, const char *v, size_t n, size_t *nl, int json)
{
	char st = 0, id[PRIVACY_KEYID_LEN + 1];
	privacy_sealed_info(v, n, &st, id);
	if (r->nu && strcmp(id, privacy_key_id(r->nu)) == 0)
		return NULL;
	if (!r->old || strcmp(id, privacy_key_id(r->old)) != 0) {
		r->unknown++;
		return NULL;
	}
	char *p = xmalloc(n + 1);
	size_t pl = 0;
	if (privacy_open_with(r->old, v, n, p, &pl) < 0) {
		r->failed++;
		free(p);
		return NULL;
	}
	r->resealed++;
	char *out = NULL;
	if (r->nu) {
		out = privacy_seal_with(r->nu, st, p, pl, nl);
		if (out && json) {
			char *e = xasprintf("\\u0001%s", out + 1);
			free(out);
			out = e;
			*nl = strlen(e);
		}
	} else if (json) {
		json_t *j = json_stringn(p, pl);
		char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
		json_decref(j);
		if (d && strlen(d) >= 2) {
			*nl = strlen(d) - 2;
			out = xstrndup(d + 1, *nl); /* without the quotes */
		} else {
			r->failed++;
		}
		free(d);
	} else {
		out = xstrndup(p, pl);
		*nl = pl;
	}
	explicit_bzero(p, pl);
	free(p);
	return out;
}

/*
 * What value v (n bytes) becomes: NULL when it stays, else the new value
 * (caller frees, length in *nl).  A value that is one sealed token, or that
 * holds sealed tokens (raw, or inside JSON as \u0001...), is re-sealed
 * token by token.  type: the value's kind when clubd writes it in clear
 * (0: not personal data), sealed whole when NEW is a key.
 */
static char *transform(struct rot *r, char type, const char *v, size_t n, size_t *nl)
{
	if (n > 0 && v[0] == PRIVACY_MARK && token_len(v, n) == n)
		return reseal_one(r, v, n, nl, 0);
	struct buf out;
	int changed = 0, marked = 0;
	size_t last = 0;
	for (size_t i = 0; i < n; i++) {
		size_t skip;
		int json = 0;
		if (v[i] == PRIVACY_MARK) {
			skip = 1;
		} else if (v[i] == '\\' && n - i >= 6 && memcmp(v + i, "\\u0001", 6) == 0) {
			skip = 6;
			json = 1;
		} else {
			continue;
		}
		size_t rest = n - i - skip;
		char *cand = xmalloc(rest + 1);
		cand[0] = PRIVACY_MARK;
		memcpy(cand + 1, v + i + skip, rest);
		size_t tl = token_len(cand, rest + 1);
		if (!tl) {
			free(cand);
			continue;
		}
		marked = 1;
		size_t rl = 0;
		char *rs = reseal_one(r, cand, tl, &rl, json);
		free(cand);
		size_t end = i + skip + tl - 1;
		if (rs) {
			if (!changed)
				buf_init(&out, 8 * n + 4096);
			changed = 1;
			buf_append(&out, v + last, i - last);
			buf_append(&out, rs, rl);
			free(rs);
			last = end;
		}
		i = end - 1;
	}
	if (changed) {
		buf_append(&out, v + last, n - last);
		*nl = out.len;
		return buf_steal(&out);
	}
	if (type && !marked && r->nu && n > 0) {
		r->resealed++;
		return privacy_seal_with(r->nu, type, v, n, nl);
	}
	return NULL;
}

/* Lists: items re-sealed in place (LSET), a page at a time. */
static void do_list(struct rot *r, const char *key, size_t klen)
{
	for (long long at = 0;; at += r->batch) {
		char a[24], b[24];
		snprintf(a, sizeof a, "%lld", at);
		snprintf(b, sizeof b, "%lld", at + r->batch - 1);
		const char *v[] = {"LRANGE", key, a, b};
		size_t l[] = {6, klen, strlen(a), strlen(b)};
		redisReply *page = run(r, 4, v, l);
		if (!page || page->type != REDIS_REPLY_ARRAY) {
			if (page)
				freeReplyObject(page);
			return;
		}
		for (size_t i = 0; i < page->elements; i++) {
			const redisReply *x = page->element[i];
			size_t nl = 0;
			char *nv = x->type == REDIS_REPLY_STRING
			               ? transform(r, 0, x->str, x->len, &nl)
			               : NULL;
			if (!nv)
				continue;
			char idx[24];
			snprintf(idx, sizeof idx, "%lld", at + (long long)i);
			const char *w[] = {"LSET", key, idx, nv};
			size_t wl[] = {4, klen, strlen(idx), nl};
			redisReply *ok = run(r, 4, w, wl);
			if (ok)
				freeReplyObject(ok);
			free(nv);
		}
		size_t got = page->elements;
		freeReplyObject(page);
		if (got < (size_t)r->batch || r->broken)
			return;
	}
}

/* P ix:{kind}:{address}: the name itself holds the address. */
static void do_index(struct rot *r, const char *key, size_t klen)
{
	const char *tail = key + r->plen + 3; /* after "ix:" */
	const char *colon = memchr(tail, ':', klen - (size_t)(tail - key));
	if (!colon)
		return;
	const char *addr = colon + 1;
	size_t alen = klen - (size_t)(addr - key), nl = 0;
	char *na = transform(r, 'a', addr, alen, &nl);
	if (!na)
		return;
	size_t head = (size_t)(addr - key);
	char *nk = xmalloc(head + nl + 1);
	memcpy(nk, key, head);
	memcpy(nk + head, na, nl);
	nk[head + nl] = '\0';
	const char *v[] = {"RENAMENX", key, nk};
	size_t l[] = {8, klen, head + nl};
	redisReply *rep = run(r, 3, v, l);
	if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
		r->renamed++;
	} else if (rep) {
		/* the new name exists already (an earlier, interrupted run) */
		const char *g1[] = {"GET", key}, *g2[] = {"GET", nk};
		size_t l1[] = {3, klen}, l2[] = {3, head + nl};
		redisReply *a = run(r, 2, g1, l1), *b = run(r, 2, g2, l2);
		if (a && b && a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING &&
		    a->len == b->len && memcmp(a->str, b->str, a->len) == 0) {
			const char *d[] = {"DEL", key};
			freeReplyObject(run(r, 2, d, l1));
			r->renamed++;
		} else {
			fprintf(r->out, "rotate: an address index and its new name name different "
			                "contacts; left as it is\n");
			r->failed++;
		}
		if (a)
			freeReplyObject(a);
		if (b)
			freeReplyObject(b);
	}
	if (rep)
		freeReplyObject(rep);
	free(na);
	free(nk);
}

static void do_hash(struct rot *r, const char *key, size_t klen)
{
	const char *v[] = {"HGETALL", key};
	size_t l[] = {7, klen};
	redisReply *h = run(r, 2, v, l);
	if (!h)
		return;
	struct argv a;
	argv_init(&a);
	argv_add(&a, "HSET");
	argv_addn(&a, key, klen);
	for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
		const redisReply *f = h->element[i], *x = h->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || x->type != REDIS_REPLY_STRING)
			continue;
		size_t nl = 0;
		char *nv =
		    transform(r, plain_type(key + r->plen, f->str, f->len), x->str, x->len, &nl);
		if (nv) {
			argv_addn(&a, f->str, f->len);
			argv_addn(&a, nv, nl);
			free(nv);
		}
	}
	if (a.n > 2)
		freeReplyObject(run(r, a.n, (const char **)a.v, a.len));
	argv_free(&a);
	freeReplyObject(h);
}

static void do_string(struct rot *r, const char *key, size_t klen)
{
	const char *v[] = {"GET", key};
	size_t l[] = {3, klen};
	redisReply *s = run(r, 2, v, l);
	if (!s)
		return;
	size_t nl = 0;
	char *nv = s->type == REDIS_REPLY_STRING ? transform(r, 0, s->str, s->len, &nl) : NULL;
	if (nv) {
		const char *w[] = {"SET", key, nv, "KEEPTTL"};
		size_t wl[] = {3, klen, nl, 7};
		freeReplyObject(run(r, 4, w, wl));
		free(nv);
	}
	freeReplyObject(s);
}

/* Sets and zsets: only members that look sealed are visited. */
static void do_members(struct rot *r, const char *key, size_t klen, int zset)
{
	char cursor[32] = "0";
	char pat[2] = {PRIVACY_MARK, '*'};
	do {
		char cnt[16];
		snprintf(cnt, sizeof cnt, "%d", r->batch);
		const char *v[] = {
		    zset ? "ZSCAN" : "SSCAN", key, cursor, "MATCH", pat, "COUNT", cnt};
		size_t l[] = {5, klen, strlen(cursor), 5, 2, 5, strlen(cnt)};
		redisReply *s = run(r, 7, v, l);
		if (!s || s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
			if (s)
				freeReplyObject(s);
			return;
		}
		snprintf(cursor, sizeof cursor, "%s",
		         s->element[0]->str ? s->element[0]->str : "0");
		const redisReply *m = s->element[1];
		size_t step = zset ? 2 : 1;
		for (size_t i = 0; i + step - 1 < m->elements; i += step) {
			size_t nl = 0;
			char *nv = transform(r, 0, m->element[i]->str, m->element[i]->len, &nl);
			if (!nv)
				continue;
			if (zset) {
				const char *a[] = {"ZADD", key, m->element[i + 1]->str, nv};
				size_t al[] = {4, klen, m->element[i + 1]->len, nl};
				freeReplyObject(run(r, 4, a, al));
			} else {
				const char *a[] = {"SADD", key, nv};
				size_t al[] = {4, klen, nl};
				freeReplyObject(run(r, 3, a, al));
			}
			const char *d[] = {zset ? "ZREM" : "SREM", key, m->element[i]->str};
			size_t dl[] = {4, klen, m->element[i]->len};
			freeReplyObject(run(r, 3, d, dl));
			free(nv);
		}
		freeReplyObject(s);
	} while (!r->broken && strcmp(cursor, "0") != 0);
}

/* A stream: read it all; when an entry changes, rebuild it with the same ids. */
static void do_stream(struct rot *r, const char *key, size_t klen)
{
	struct argv *entries = NULL; /* one XADD per entry, for the rebuilt stream */
	size_t nent = 0, cap = 0;
	int changed = 0;
	char start[64] = "-";
	for (;;) {
		char cnt[16];
		snprintf(cnt, sizeof cnt, "%d", r->batch);
		const char *v[] = {"XRANGE", key, start, "+", "COUNT", cnt};
		size_t l[] = {6, klen, strlen(start), 1, 5, strlen(cnt)};
		redisReply *page = run(r, 6, v, l);
		if (!page || page->type != REDIS_REPLY_ARRAY) {
			if (page)
				freeReplyObject(page);
			goto out;
		}
		for (size_t i = 0; i < page->elements; i++) {
			const redisReply *e = page->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			if (nent == cap) {
				cap = cap ? cap * 2 : 64;
				entries = xrealloc(entries, cap * sizeof *entries);
			}
			struct argv *x = &entries[nent++];
			argv_init(x);
			argv_add(x, "XADD");
			argv_add(x, ""); /* the temporary key, set below */
			argv_addn(x, e->element[0]->str, e->element[0]->len);
			const redisReply *f = e->element[1];
			for (size_t k = 0; k + 1 < f->elements; k += 2) {
				size_t nl = 0;
				char *nv =
				    transform(r,
				              plain_type(key + r->plen, f->element[k]->str,
				                         f->element[k]->len),
				              f->element[k + 1]->str, f->element[k + 1]->len, &nl);
				argv_addn(x, f->element[k]->str, f->element[k]->len);
				if (nv) {
					changed = 1;
					argv_addn(x, nv, nl);
					free(nv);
				} else {
					argv_addn(x, f->element[k + 1]->str,
					          f->element[k + 1]->len);
				}
			}
		}
		size_t got = page->elements;
		if (got > 0) {
			const redisReply *last = page->element[got - 1];
			snprintf(start, sizeof start, "(%s",
			         last->type == REDIS_REPLY_ARRAY ? last->element[0]->str : "");
		}
		freeReplyObject(page);
		if (got < (size_t)r->batch)
			break;
	}
	if (!changed || r->broken)
		goto out;
	{
		const char *v[] = {"XINFO", "GROUPS", key};
		size_t l[] = {5, 6, klen};
		redisReply *gr = run(r, 3, v, l);
		int groups = gr && gr->type == REDIS_REPLY_ARRAY && gr->elements > 0;
		if (gr)
			freeReplyObject(gr);
		if (groups) {
			fprintf(r->out,
			        "rotate: a stream with consumer groups holds sealed values; "
			        "left as it is\n");
			r->failed++;
			goto out;
		}
	}
	char *tmp = xasprintf("%srot:tmp", r->prefix);
	freeReplyObject(run2(r, "DEL", tmp));
	for (size_t i = 0; i < nent && !r->broken; i++) {
		free(entries[i].v[1]);
		entries[i].v[1] = xstrdup(tmp);
		entries[i].len[1] = strlen(tmp);
		redisReply *x = run(r, entries[i].n, (const char **)entries[i].v, entries[i].len);
		if (x)
			freeReplyObject(x);
	}
	if (!r->broken) {
		/* keep the last generated id, so new entries still sort after deleted ones */
		const char *v[] = {"XINFO", "STREAM", key};
		size_t l[] = {5, 6, klen};
		redisReply *info = run(r, 3, v, l);
		for (size_t i = 0;
		     info && info->type == REDIS_REPLY_ARRAY && i + 1 < info->elements; i += 2)
			if (info->element[i]->str &&
			    strcmp(info->element[i]->str, "last-generated-id") == 0 &&
			    info->element[i + 1]->str) {
				const char *s[] = {"XSETID", tmp, info->element[i + 1]->str};
				size_t sl[] = {6, strlen(tmp), info->element[i + 1]->len};
				redisReply *x = redisCommandArgv(r->c, 3, s, sl);
				if (x)
					freeReplyObject(x); /* an error here only loses the gap */
			}
		if (info)
			freeReplyObject(info);
		const char *rn[] = {"RENAME", tmp, key};
		size_t rl[] = {6, strlen(tmp), klen};
		redisReply *x = run(r, 3, rn, rl);
		if (x) {
			freeReplyObject(x);
			r->rebuilt++;
		}
	}
	free(tmp);
out:
	for (size_t i = 0; i < nent; i++)
		argv_free(&entries[i]);
	free(entries);
}

static void do_key(struct rot *r, const char *key, size_t klen, const char *type)
{
	r->keys++;
	const char *tail = key + r->plen;
	if (strncmp(tail, "ix:", 3) == 0 && strcmp(type, "string") == 0)
		do_index(r, key, klen);
	else if (strcmp(type, "hash") == 0)
		do_hash(r, key, klen);
	else if (strcmp(type, "stream") == 0)
		do_stream(r, key, klen);
	else if (strcmp(type, "string") == 0)
		do_string(r, key, klen);
	else if (strcmp(type, "set") == 0)
		do_members(r, key, klen, 0);
	else if (strcmp(type, "zset") == 0)
		do_members(r, key, klen, 1);
	else if (strcmp(type, "list") == 0)
		do_list(r, key, klen);
}

static int connect_redis(struct rot *r, const struct config *cfg)
{
	struct timeval tv = {(time_t)(cfg->redis_connect_timeout_ms / 1000),
	                     (suseconds_t)(cfg->redis_connect_timeout_ms % 1000) * 1000};
	if (cfg->redis_socket && *cfg->redis_socket)
		r->c = redisConnectUnixWithTimeout(cfg->redis_socket, tv);
	else
		r->c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
	if (!r->c || r->c->err) {
		fprintf(r->out, "rotate: cannot connect to redis: %s\n",
		        r->c ? r->c->errstr : "out of memory");
		return -1;
	}
	struct timeval ct = {(time_t)(cfg->redis_command_timeout_ms / 1000),
	                     (suseconds_t)(cfg->redis_command_timeout_ms % 1000) * 1000};
	redisSetTimeout(r->c, ct);
	if (cfg->redis_password_file && *cfg->redis_password_file) {
		struct cfg_error err = {""};
		char *pw = cfg_read_secret(cfg->redis_password_file, &err);
		if (!pw) {
			fprintf(r->out, "rotate: redis password: %s\n", err.msg);
			return -1;
		}
		redisReply *a = run2(r, "AUTH", pw);
		secret_free(pw);
		if (!a)
			return -1;
		freeReplyObject(a);
	}
	char db[16];
	snprintf(db, sizeof db, "%d", cfg->redis_db);
	redisReply *s = run2(r, "SELECT", db);
	if (!s)
		return -1;
	freeReplyObject(s);
	return 0;
}

static int load(const char *spec, struct privacy_key **k, FILE *out, const char *which)
{
	*k = NULL;
	if (strcmp(spec, "none") == 0)
		return 0;
	char why[300];
	if (privacy_key_load(spec, k, why, sizeof why) < 0) {
		fprintf(out, "rotate: %s key: %s\n", which, why);
		return -1;
	}
	return 0;
}

int store_privacy_rotate(const struct config *cfg, const char *old_spec, const char *new_spec,
                         int batch, FILE *out)
{
	struct rot r = {.prefix = cfg->redis_prefix,
	                .plen = strlen(cfg->redis_prefix),
	                .out = out,
	                .batch = batch > 0 ? batch : 500};
	struct privacy_key *old = NULL, *nu = NULL;
	int rc = 2;
	if (load(old_spec, &old, out, "old") < 0 || load(new_spec, &nu, out, "new") < 0)
		goto done;
	if (!old && !nu) {
		fprintf(out, "rotate: OLD and NEW cannot both be none\n");
		goto done;
	}
	if (old && nu && strcmp(privacy_key_id(old), privacy_key_id(nu)) == 0) {
		fprintf(out, "rotate: OLD and NEW are the same key\n");
		goto done;
	}
	r.old = old;
	r.nu = nu;
	if (connect_redis(&r, cfg) < 0)
		goto done;
	fprintf(out, "rotate: old=%s new=%s prefix=%s\n", old ? privacy_key_id(old) : "none",
	        nu ? privacy_key_id(nu) : "none", cfg->redis_prefix);
	/* the prefix as a glob: * ? [ ] \ escaped */
	struct buf pat;
	buf_init(&pat, 256);
	for (const char *p = cfg->redis_prefix; *p; p++) {
		if (strchr("*?[]\\", *p))
			buf_append(&pat, "\\", 1);
		buf_append(&pat, p, 1);
	}
	buf_append(&pat, "*", 1);
	char *tmp = xasprintf("%srot:tmp", cfg->redis_prefix);
	redisReply *d = run2(&r, "DEL", tmp); /* left by an interrupted run */
	if (d)
		freeReplyObject(d);
	free(tmp);
	char cursor[32] = "0";
	long long next_note = 10000;
	do {
		char cnt[16];
		snprintf(cnt, sizeof cnt, "%d", r.batch);
		const char *v[] = {"SCAN", cursor, "MATCH", pat.p, "COUNT", cnt};
		size_t l[] = {4, strlen(cursor), 5, pat.len, 5, strlen(cnt)};
		redisReply *s = run(&r, 6, v, l);
		if (!s || s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
			if (s)
				freeReplyObject(s);
			break;
		}
		snprintf(cursor, sizeof cursor, "%s",
		         s->element[0]->str ? s->element[0]->str : "0");
		const redisReply *ks = s->element[1];
		/* the types of the page in one round trip */
		for (size_t i = 0; i < ks->elements; i++) {
			const char *t[] = {"TYPE", ks->element[i]->str};
			size_t tl[] = {4, ks->element[i]->len};
			redisAppendCommandArgv(r.c, 2, t, tl);
		}
		char **types = xcalloc(ks->elements + 1, sizeof *types);
		for (size_t i = 0; i < ks->elements; i++) {
			void *tr = NULL;
			if (redisGetReply(r.c, &tr) != REDIS_OK || !tr) {
				r.broken = 1;
				break;
			}
			redisReply *t = tr;
			types[i] = xstrdup(t->str ? t->str : "none");
			freeReplyObject(t);
		}
		for (size_t i = 0; i < ks->elements && !r.broken; i++)
			do_key(&r, ks->element[i]->str, ks->element[i]->len, types[i]);
		for (size_t i = 0; i < ks->elements; i++)
			free(types[i]);
		free(types);
		freeReplyObject(s);
		if (r.keys >= next_note) {
			fprintf(out, "rotate: keys=%lld resealed=%lld\n", r.keys, r.resealed);
			next_note += 10000;
		}
	} while (!r.broken && strcmp(cursor, "0") != 0);
	buf_free(&pat);
	fprintf(out,
	        "rotate: done keys=%lld resealed=%lld renamed=%lld rebuilt=%lld "
	        "other_key=%lld failed=%lld%s\n",
	        r.keys, r.resealed, r.renamed, r.rebuilt, r.unknown, r.failed,
	        r.broken ? " (stopped by an error: run it again)" : "");
	rc = r.broken ? 2 : (r.unknown || r.failed) ? 1 : 0;
done:
	if (r.c)
		redisFree(r.c);
	privacy_key_free(old);
	privacy_key_free(nu);
	return rc;
}
