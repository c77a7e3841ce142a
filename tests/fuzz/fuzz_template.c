/*
 * fuzz_template.c - libFuzzer target for template.c: the input is compiled
 * as a template; when it compiles it is rendered against a fixed context in
 * plain and HTML mode (Persian names, Tehran zone) and once more into a
 * small buffer to drive the output cap.  Checks the engine's promises, not
 * just "no crash": a compile error has a position and a reason, a render
 * either succeeds or fails with -ENOSPC/-E2BIG (or -EINVAL with a "track:"
 * reason and a position, for a URL the track filter refuses), the output is
 * valid UTF-8 and within the cap, HTML mode lets no '<' from the context
 * through, and nothing leaks (ASan's leak checker runs at exit).  The HTML
 * render has a link hook (fuzz_link) that checks what it is given.
 * Owns nothing beyond the context built on the first call.
 * Build and run: see tests/fuzz/README.md.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_ctx_json[] =
    "{\"first_name\": \"سارا\", \"name_en\": \"Sara\", \"empty\": \"\", \"zero\": 0,"
    "\"vip\": true, \"no\": false, \"nothing\": null,"
    "\"attrs\": {\"city\": \"تهران\", \"wish\": \"می\u200cخواهم\", \"html\": \"<b>&\\\"'</b>\"},"
    "\"event\": {\"amount\": 1250000, \"price\": -12.5, \"big\": 9007199254740993,"
    "  \"at\": \"2024-03-20T10:30:00Z\", \"ms\": 1710930600000, \"day\": \"1990-05-12\","
    "  \"off\": \"2024-03-21T01:30:00.25+03:30\", \"url\": \"https://x.ir/?q=سلام&a=1\"},"
    "\"list\": [{\"name\": \"a\", \"qty\": 2}, {\"name\": \"<b>\", \"qty\": \"۳\"}],"
    "\"tags\": [\"x\", \"y\", 3, null, true], \"l3\": [1, 2, 3]}";

static json_t *fuzz_ctx;

/* The track filter's hook: the URL it gets must pass tmpl_url_check (the
 * engine checked it); it shows a fixed short link. */
static int fuzz_link(void *arg, const char *url, size_t len, struct buf *out)
{
	const char *why;

	if (tmpl_url_check(url, len, &why) != 0)
		abort();
	(*(int *)arg)++;
	return buf_puts(out, "https://s.example/l/AbCdEfGhIj");
}

/* A render failed: only the limits, or a URL the track filter refused
 * (then with a position and a reason naming the filter). */
static int fuzz_render_failed_ok(int rc, const struct tmpl_error *err, const char *src)
{
	if (rc == -ENOSPC || rc == -E2BIG)
		return 1;
	return rc == -EINVAL && strncmp(err->reason, "track:", 6) == 0 && err->line >= 1 &&
	       err->col >= 1 && err->offset < strlen(src) && strstr(src, "track");
}

/* HTML mode escapes every value a tag produces unless the tag is raw
 * ({{{x}}} or {{&x}}), so a template without '<' anywhere and without raw
 * tags can never render a '<', whatever the context holds. */
static int fuzz_html_clean(const char *src, const char *out, size_t n)
{
	if (strchr(src, '<') || strstr(src, "{{{") || strstr(src, "{{&"))
		return 1;
	return memchr(out, '<', n) == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tmpl *t = NULL;
	struct tmpl_error err;
	struct tmpl_opts plain = {0, "Asia/Tehran", "fa"};
	int links = 0;
	struct tmpl_opts html = {1, "Europe/Berlin", "en", fuzz_link, &links};
	struct buf out;
	char *src;
	int rc;

	if (!fuzz_ctx) {
		fuzz_ctx = json_loads(fuzz_ctx_json, 0, NULL);
		if (!fuzz_ctx)
			abort();
	}
	if (size > TMPL_MAX_SRC + 16)
		return 0;
	src = malloc(size + 1);
	if (!src)
		return 0;
	memcpy(src, data, size);
	src[size] = '\0';

	rc = tmpl_compile(src, &t, &err);
	if (rc != 0) {
		if (t || (rc != -EINVAL && rc != -E2BIG) || err.reason[0] == '\0')
			abort();
		if (rc == -EINVAL && (err.line < 1 || err.col < 1 || err.offset > strlen(src)))
			abort();
		free(src);
		return 0;
	}

	buf_init(&out, 1 << 20);
	rc = tmpl_render(t, fuzz_ctx, &plain, &out, &err);
	if (rc != 0 && !fuzz_render_failed_ok(rc, &err, src))
		abort();
	if (rc == 0 && !utf8_valid(out.p ? out.p : "", out.len))
		abort();

	buf_reset(&out);
	rc = tmpl_render(t, fuzz_ctx, &html, &out, &err);
	if (rc != 0 && !fuzz_render_failed_ok(rc, &err, src))
		abort();
	if (links > 0 && !strstr(src, "track"))
		abort();
	if (rc == 0) {
		if (!utf8_valid(out.p ? out.p : "", out.len))
			abort();
		if (out.len && !fuzz_html_clean(src, out.p, out.len))
			abort();
	}
	buf_free(&out);

	buf_init(&out, 48);
	rc = tmpl_render(t, fuzz_ctx, NULL, &out, &err);
	if (rc != 0 && !fuzz_render_failed_ok(rc, &err, src))
		abort();
	if (out.len > 48)
		abort();
	buf_free(&out);

	tmpl_free(t);
	free(src);
	return 0;
}
