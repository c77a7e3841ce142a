/*
 * links.c - tracked links: random codes, the template hook that records a
 * link per {{url|track}} into a batch, and the store calls that save a
 * batch (lua/link_save.lua), record a click (lua/link_click.lua) and read
 * a link (lua/link_get.lua).
 *
 * Owns: the batch and its records (copies of the URLs and ids).
 * Never touches: key names (the Lua scripts build them from the prefix),
 * HTTP (api_links.c), the template engine's state (it is only called back).
 * Limits: LINKS_BATCH_MAX links per batch; ids of LINKS_FIELD_MAX bytes;
 * URLs as checked by tmpl_url_check (TMPL_URL_MAX bytes).
 */
#include "links.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

static const char links_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

struct links_rec {
	char code[LINKS_CODE_LEN + 1];
	char *url;
	size_t urllen;
	char *msg, *contact, *camp, *var;
};

struct links_batch {
	char *base; /* "" = tracking off */
	size_t baselen;
	struct links_rec *v;
	size_t n, cap;
};

void links_code_new(char out[LINKS_CODE_LEN + 1])
{
	unsigned char rnd[32];
	size_t got = 0;

	/* 62 * 4 = 248: bytes from 248 up would favour the first letters, so
	 * they are dropped (rejection sampling keeps every symbol at 1/62). */
	while (got < LINKS_CODE_LEN) {
		random_bytes(rnd, sizeof rnd);
		for (size_t i = 0; i < sizeof rnd && got < LINKS_CODE_LEN; i++)
			if (rnd[i] < 248)
				out[got++] = links_alphabet[rnd[i] % 62];
	}
	out[LINKS_CODE_LEN] = '\0';
}

static int links_is_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int links_code_valid(const char *s)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < LINKS_CODE_LEN; i++)
		if (!links_is_alnum((unsigned char)s[i]))
			return 0;
	return s[i] == '\0';
}

int links_field_valid(const char *s)
{
	size_t i;

	if (!s)
		return 1;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == LINKS_FIELD_MAX ||
		    !(links_is_alnum(c) || c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

struct links_batch *links_batch_new(const char *base_url)
{
	struct links_batch *b = xcalloc(1, sizeof(*b));
	size_t n = base_url ? strlen(base_url) : 0;

	while (n > 0 && base_url[n - 1] == '/')
		n--;
	b->base = xstrndup(n ? base_url : "", n);
	b->baselen = n;
	return b;
}

void links_batch_truncate(struct links_batch *b, size_t n)
{
	while (b->n > n) {
		struct links_rec *r = &b->v[--b->n];
		free(r->url);
		free(r->msg);
		free(r->contact);
		free(r->camp);
		free(r->var);
	}
}

void links_batch_free(struct links_batch *b)
{
	if (!b)
		return;
	links_batch_truncate(b, 0);
	free(b->v);
	free(b->base);
	free(b);
}

size_t links_batch_count(const struct links_batch *b)
{
	return b ? b->n : 0;
}

const char *links_batch_code(const struct links_batch *b, size_t i)
{
	return i < b->n ? b->v[i].code : NULL;
}

const char *links_batch_url(const struct links_batch *b, size_t i)
{
	return i < b->n ? b->v[i].url : NULL;
}

int links_track(void *arg, const char *url, size_t len, struct buf *out)
{
	const struct links_ctx *ctx = arg;
	struct links_batch *b = ctx->b;
	struct links_rec *r;
	char code[LINKS_CODE_LEN + 1];
	int rc;

	if (b->baselen == 0)
		return buf_append(out, url, len);
	if (!links_field_valid(ctx->msg) || !links_field_valid(ctx->contact) ||
	    !links_field_valid(ctx->camp) || !links_field_valid(ctx->var))
		return -EINVAL;
	if (b->n == LINKS_BATCH_MAX)
		return -ENOBUFS;
	links_code_new(code);
	rc = buf_append(out, b->base, b->baselen);
	if (rc == 0)
		rc = buf_append(out, "/l/", 3);
	if (rc == 0)
		rc = buf_append(out, code, LINKS_CODE_LEN);
	if (rc < 0)
		return rc;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 4;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	r = &b->v[b->n++];
	memcpy(r->code, code, sizeof(code));
	r->url = xstrndup(url, len);
	r->urllen = len;
	r->msg = xstrdup(ctx->msg ? ctx->msg : "");
	r->contact = xstrdup(ctx->contact ? ctx->contact : "");
	r->camp = xstrdup(ctx->camp ? ctx->camp : "");
	r->var = xstrdup(ctx->var ? ctx->var : "");
	return 0;
}

void links_batch_add_args(const struct links_batch *b, struct argv *a)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct links_rec *r = &b->v[i];
		argv_add(a, r->code);
		argv_addn(a, r->url, r->urllen);
		argv_add(a, r->msg);
		argv_add(a, r->contact);
		argv_add(a, r->camp);
		argv_add(a, r->var);
	}
}

void store_links_save_checked(struct store *st, const struct links_batch *b, int64_t ttl_s,
                              int check_contacts, redis_cb cb, void *arg)
{
	struct argv a;

	argv_init(&a);
	argv_addll(&a, now_ms());
	argv_addll(&a, ttl_s > 0 ? ttl_s : 1);
	argv_add(&a, check_contacts ? "1" : "0");
	links_batch_add_args(b, &a);
	store_eval(st, SCRIPT_LINK_SAVE, &a, cb, arg);
	argv_free(&a);
}

void store_links_save(struct store *st, const struct links_batch *b, int64_t ttl_s, redis_cb cb,
                      void *arg)
{
	store_links_save_checked(st, b, ttl_s, 0, cb, arg);
}

void store_link_click(struct store *st, const char *code, int64_t now, int count, int timeline_max,
                      redis_cb cb, void *arg)
{
	struct argv a;

	argv_init(&a);
	argv_add(&a, code);
	argv_addll(&a, now);
	argv_add(&a, count ? "1" : "0");
	argv_addll(&a, timeline_max);
	store_eval(st, SCRIPT_LINK_CLICK, &a, cb, arg);
	argv_free(&a);
}

void store_link_get(struct store *st, const char *code, redis_cb cb, void *arg)
{
	struct argv a;

	argv_init(&a);
	argv_add(&a, code);
	store_eval(st, SCRIPT_LINK_GET, &a, cb, arg);
	argv_free(&a);
}
