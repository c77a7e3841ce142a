/*
 * ctl.c - the helpers every clubctl command shares: access to parsed
 * options, error and usage reporting with the exit-code convention, the
 * one API call path (ctl_api) that turns HTTP answers into output and exit
 * codes, JSON printing, small-file reading and the --at/--expires time
 * syntax.
 *
 * Owns nothing beyond the lazily created HTTP handle in struct ctl.  Never
 * prints the token: it only reaches http.c.  Limits: answers are held in
 * memory (capped in http.c); input files read here are capped by callers.
 */
#include "clubctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "jalali.h"
#include "out.h"
#include "text.h"
#include "util.h"

const char *ctl_arg(const struct ctl_args *a, int key)
{
	const char *v = NULL;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].key == key)
			v = a->v[i].val ? a->v[i].val : "";
	return v;
}

int ctl_has(const struct ctl_args *a, int key)
{
	return ctl_arg(a, key) != NULL;
}

const char *ctl_arg_next(const struct ctl_args *a, int key, size_t *it)
{
	for (; *it < a->n; (*it)++) {
		if (a->v[*it].key == key) {
			const char *v = a->v[*it].val ? a->v[*it].val : "";
			(*it)++;
			return v;
		}
	}
	return NULL;
}

int ctl_usage(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	fputs("clubctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'clubctl help%s%s' for more information.\n",
	        c && c->cmdpath ? " " : "", c && c->cmdpath ? c->cmdpath : "");
	return CTL_EUSAGE;
}

int ctl_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	fputs("clubctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

void ctl_info(const struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	if (c->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct http *ctl_http(struct ctl *c)
{
	if (!c->http) {
		c->http = http_new(c->url, c->token, c->timeout_ms);
		if (!c->http) {
			ctl_fail(CTL_ECONN, "cannot initialise libcurl");
			exit(CTL_ECONN);
		}
	}
	return c->http;
}

char *ctl_escape(struct ctl *c, const char *s)
{
	return http_escape(ctl_http(c), s);
}

char *ctl_path(struct ctl *c, const char *prefix, const char *segment, const char *suffix)
{
	char *e = ctl_escape(c, segment);
	char *p = xasprintf("%s%s%s", prefix, e, suffix ? suffix : "");
	free(e);
	return p;
}

void ctl_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	fflush(stdout);
}

const char *ctl_jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int ctl_conn_error(struct ctl *c, const char *detail)
{
	return ctl_fail(CTL_ECONN, "cannot talk to %s: %s", c->url, detail);
}

int ctl_api_error(struct ctl *c, long status, const char *body, size_t len)
{
	json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *msg = ctl_jstr(e, "message"), *code = ctl_jstr(e, "code");
	const char *field = ctl_jstr(e, "field");

	if (c->json && json_is_object(e))
		ctl_print_json(j);
	if (msg) {
		char *m = out_clean(msg);
		char *f = field ? out_clean(field) : NULL;
		fprintf(stderr, "clubctl: %s%s%s (%s, HTTP %ld)\n", f ? f : "", f ? ": " : "", m,
		        code ? code : "error", status);
		free(m);
		free(f);
	} else {
		/* not our JSON error (a proxy, libmicrohttpd's own 431) */
		char *raw = xstrndup(body ? body : "", len > 200 ? 200 : len);
		char *m = out_clean(raw);
		fprintf(stderr, "clubctl: HTTP %ld from %s%s%s\n", status, c->url, *m ? ": " : "",
		        m);
		free(raw);
		free(m);
	}
	if (status == 401 && !c->token)
		fputs("clubctl: no token configured: use --token-file, CLUBD_TOKEN or token_file "
		      "in ~/.config/clubctl/config\n",
		      stderr);
	json_decref(j);
	return CTL_EAPI;
}

int ctl_api(struct ctl *c, const char *method, const char *path, json_t *body,
            const char *const *headers, json_t **out, long *status)
{
	struct http_req rq = {.method = method, .path = path, .headers = headers};
	struct http_resp rs;
	char *text = NULL;
	int rc = CTL_OK;

	*out = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			abort();
		rq.body = text;
		rq.body_len = strlen(text);
		rq.ctype = "application/json";
	}
	if (http_do(ctl_http(c), &rq, &rs) < 0) {
		rc = ctl_conn_error(c, rs.err);
		goto out;
	}
	if (status)
		*status = rs.status;
	if (rs.status < 200 || rs.status > 299) {
		rc = ctl_api_error(c, rs.status, rs.body.p, rs.body.len);
		goto out;
	}
	if (rs.body.len > 0) {
		json_error_t err;
		*out = json_loadb(rs.body.p, rs.body.len, 0, &err);
		if (!*out)
			rc = ctl_fail(CTL_EAPI,
			              "the server answered HTTP %ld with unreadable JSON: %s",
			              rs.status, err.text);
	}
out:
	free(text);
	http_resp_free(&rs);
	return rc;
}

int ctl_read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct buf b;
	int rc = CTL_OK;
	if (!f)
		return ctl_fail(CTL_EUSAGE, "cannot open %s: %s", path, strerror(errno));
	buf_init(&b, max);
	buf_append(&b, "", 0);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (buf_append(&b, chunk, n) < 0) {
			rc = ctl_fail(CTL_EUSAGE, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	if (rc == CTL_OK && ferror(f))
		rc = ctl_fail(CTL_EUSAGE, "cannot read %s: %s", path, strerror(errno));
	if (f != stdin)
		fclose(f);
	if (rc != CTL_OK) {
		buf_free(&b);
		return rc;
	}
	if (len)
		*len = b.len;
	*out = buf_steal(&b);
	return CTL_OK;
}

/* ---------------------------------------------------------------- times */

static char *utc_string(time_t t)
{
	struct tm tm;
	char s[32];
	gmtime_r(&t, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(s);
}

static int num(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int ctl_parse_when(const char *s, char **out)
{
	char *a = text_ascii_digits(s);
	int rc = -EINVAL;
	int64_t ms;
	const char *p = a;

	if (!a)
		return -EINVAL;
	if (strcmp(a, "now") == 0) {
		*out = utc_string(time(NULL));
		rc = 0;
	} else if (a[0] == '+') {
		if (parse_duration_ms(a + 1, &ms) == 0 && ms >= 0) {
			*out = utc_string(time(NULL) + (time_t)((ms + 999) / 1000));
			rc = 0;
		}
	} else if (out_parse_rfc3339(a, &ms) == 0) {
		*out = xstrdup(a); /* has an offset: the server understands it */
		rc = 0;
	} else {
		int y, mo, d, h = 0, mi = 0, sec = 0;
		if (num(&p, 4, &y) < 0 || *p++ != '-' || num(&p, 2, &mo) < 0 || *p++ != '-' ||
		    num(&p, 2, &d) < 0)
			goto out;
		if (*p == ' ' || *p == 'T') {
			p++;
			if (num(&p, 2, &h) < 0 || *p++ != ':' || num(&p, 2, &mi) < 0)
				goto out;
			if (*p == ':' && (p++, num(&p, 2, &sec) < 0))
				goto out;
		}
		if (*p || h > 23 || mi > 59 || sec > 59)
			goto out;
		if (y < 1700) {
			if (!jalali_valid(y, mo, d))
				goto out;
			jalali_to_gregorian(y, mo, d, &y, &mo, &d);
		} else if (mo < 1 || mo > 12 || d < 1 || d > 31) {
			goto out;
		}
		struct tm tm = {0};
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = sec;
		tm.tm_isdst = -1;
		time_t t = mktime(&tm);
		if (t == (time_t)-1 || tm.tm_mday != d) /* 31 in a 30-day month */
			goto out;
		*out = utc_string(t);
		rc = 0;
	}
out:
	free(a);
	return rc;
}
