/*
 * template.h - a small Mustache-style template engine for message texts:
 * compile once, render many times against a jansson context object.
 * The language is described for marketers in docs/templates.md.
 *
 *   {{first_name|"مشتری گرامی"}}   variable with a default
 *   {{attrs.city}}                  dotted path (a number indexes an array)
 *   {{event.amount|num|fa}}         filters, chained left to right
 *   {{event.at|jdate:"d MMMM yyyy"}}  Jalali date; date:"..." for Gregorian
 *   {{#vip}}..{{/vip}} {{^vip}}..{{/vip}}  sections (arrays repeat) / inverted
 *   {{{raw}}} or {{&raw}}           no HTML escaping
 *   {{! comment }}                  removed
 *   {{url|track}} {{"https://shop.example/yalda"|track}}
 *                                   a tracked short link (see opts.link)
 *
 * Single-threaded with respect to tz.c and jalali.c (date filters use their
 * ICU caches): render on the loop thread.
 */
#ifndef CLUBD_TEMPLATE_H
#define CLUBD_TEMPLATE_H

#include <jansson.h>

#include "util.h"

#define TMPL_MAX_SRC     (64 * 1024) /* bytes of template source */
#define TMPL_MAX_DEPTH   16          /* nested sections */
#define TMPL_MAX_FILTERS 8           /* pipe stages in one tag */
#define TMPL_MAX_PATH    16          /* segments in a dotted path */
#define TMPL_MAX_STEPS   (1 << 20)   /* tags and texts visited in one render */
#define TMPL_URL_MAX     2048        /* bytes of a URL given to the track filter */

struct tmpl;

/* Where and why compiling (or rendering) failed.  line and col are 1-based;
 * col counts code points, so it matches what an editor shows for Persian
 * text.  offset is the byte offset.  line == 0 when the error concerns the
 * whole template (too large) or no particular tag. */
struct tmpl_error {
	int line;
	int col;
	size_t offset;
	char reason[160];
};

struct tmpl_opts {
	/* 1: escape & < > " ' in substituted values ({{{x}}} and {{&x}} are
	 * never escaped; literal template text is never escaped). */
	int html;
	/* IANA zone for instants in date filters; NULL or unknown = "UTC". */
	const char *zone;
	/* Language of month and weekday names in date filters: "fa" (and
	 * "fa-IR", "fa_IR") gives Persian names, anything else (NULL
	 * included) Latin/English ones. */
	const char *lang;
	/* The track filter ({{url|track}}, always the tag's last filter): the
	 * value must pass tmpl_url_check() or the render fails with -EINVAL
	 * and the tag's position.  Then link(link_arg, url, len, out) appends
	 * the link to show instead (a short tracked URL) and returns 0, or a
	 * negative errno that fails the render.  link NULL: the URL is shown
	 * as it is (previews, messages outside campaigns). */
	int (*link)(void *arg, const char *url, size_t len, struct buf *out);
	void *link_arg;
};

/*
 * A URL the track filter accepts: http:// or https:// (any case) and a
 * host, 1..TMPL_URL_MAX bytes of valid UTF-8 without spaces, C0/C1 control
 * characters or DEL.  0, or -EINVAL with *why (static text) saying what is
 * wrong.
 */
int tmpl_url_check(const char *url, size_t len, const char **why);

/*
 * Compile src (NUL-terminated, valid UTF-8, at most TMPL_MAX_SRC bytes).
 * On success *out owns a copy of everything it needs (src may be freed) and
 * 0 is returned.  Otherwise -EINVAL (syntax: unclosed tag or section,
 * mismatched section, unknown filter, bad date format, invalid UTF-8,
 * nesting deeper than TMPL_MAX_DEPTH, ...) or -E2BIG (too large), *out is
 * NULL and err (may be NULL) says where and why.
 */
int tmpl_compile(const char *src, struct tmpl **out, struct tmpl_error *err);
void tmpl_free(struct tmpl *t);

/*
 * Render t with ctx (a JSON object; borrowed) appending to out.  o may be
 * NULL (plain text, UTC, Latin names).  Missing values, null, objects and
 * arrays render as "" (or the tag's default).  0, or -ENOSPC when the output
 * would exceed out->max, -E2BIG past TMPL_MAX_STEPS, -EINVAL when ctx is not
 * an object; on error out holds a partial result the caller should discard,
 * and err (may be NULL) names the tag.  The output is valid UTF-8.
 */
int tmpl_render(const struct tmpl *t, const json_t *ctx, const struct tmpl_opts *o, struct buf *out,
                struct tmpl_error *err);

#endif
