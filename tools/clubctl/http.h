/*
 * http.h - clubctl's blocking HTTP client over one libcurl easy handle
 * (keep-alive between calls): JSON requests, streamed uploads with a read
 * callback, capped answers.  The bearer token lives only here.
 */
#ifndef CLUBCTL_HTTP_H
#define CLUBCTL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Largest answer body accepted (a page of 500 contacts is well below). */
#define HTTP_MAX_ANSWER (64u << 20)
/* Returned by a read callback to abort the upload. */
#define HTTP_READ_ABORT ((size_t)-1)

struct http;

struct http_req {
	const char *method; /* GET, POST, PATCH, DELETE */
	const char *path;   /* escaped, starting with '/' */
	const char *ctype;  /* Content-Type of the body, or NULL */
	const char *body;   /* in-memory body (borrowed), or NULL */
	size_t body_len;
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
	/* A streamed body instead of `body`: read() fills dst with up to n
	 * bytes and returns the count, 0 at the end, HTTP_READ_ABORT on error. */
	size_t (*read)(char *dst, size_t n, void *arg);
	int64_t size; /* streamed size, -1 when unknown (chunked) */
	/* Called often during the transfer with the bytes uploaded so far;
	 * non-zero aborts. */
	int (*progress)(void *arg, int64_t sent);
	void *arg;
	int64_t max_send_bps; /* upload rate cap, 0 = none */
	int stall_timeout;    /* timeout = no progress for that long, not total */
	/* The body of a 2xx answer goes to sink as it arrives instead of the
	 * capped buffer (exports of any size); non-zero from sink aborts.
	 * Error answers still land in the buffer. */
	int (*sink)(const char *p, size_t n, void *arg);
};

struct http_resp {
	long status;     /* HTTP status, 0 when no answer arrived */
	struct buf body; /* answer body (capped at HTTP_MAX_ANSWER) */
	char err[256];   /* why, when status == 0 */
};

/*
 * base_url: "http(s)://host[:port][/prefix]" without a trailing slash.
 * token: copied into the Authorization header (may be NULL); the copy is
 * zeroed in http_free().  Returns NULL when libcurl cannot start.
 */
struct http *http_new(const char *base_url, const char *token, int64_t timeout_ms);
void http_free(struct http *h);

/* Percent-escaped copy of s for a path segment or query value; caller frees. */
char *http_escape(struct http *h, const char *s);

/* 0 when an HTTP answer arrived (any status), -EIO with rs->err otherwise.
 * rs is initialised here; free it with http_resp_free(). */
int http_do(struct http *h, const struct http_req *rq, struct http_resp *rs);
void http_resp_free(struct http_resp *rs);

/* "libcurl/7.88.1" for --version. */
const char *http_version(void);

#endif
