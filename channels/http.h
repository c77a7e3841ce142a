/*
 * http.h - the shared HTTP client: one libcurl multi handle per loop, driven
 * by libuv (curl_multi_socket_action), for every HTTP-speaking driver.
 *
 * Requests never follow redirects, speak only http/https (unless a
 * request's setup hook allows another protocol), use HTTP/2 only
 * over TLS (never h2c), reuse connections (keep-alive) and cap the response
 * body.  URLs are never logged: they may carry API keys.
 */
#ifndef CLUBD_HTTP_H
#define CLUBD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTP_MAX_BODY_DEFAULT (64 * 1024)
#define HTTP_TIMEOUT_DEFAULT  30000

struct http_client;

struct http_req {
	const char *method;         /* "GET", "POST", "PUT", ...; NULL: POST when body, else GET */
	const char *url;            /* copied by libcurl; never logged */
	const char *const *headers; /* NULL-terminated "Name: value" lines, copied; may be NULL */
	const char *body;           /* borrowed until done; may be NULL */
	size_t body_len;            /* bytes of body */
	int64_t timeout_ms;         /* whole transfer; <= 0: HTTP_TIMEOUT_DEFAULT */
	int64_t connect_timeout_ms; /* <= 0: the transfer timeout */
	size_t max_body;            /* response body cap; 0: HTTP_MAX_BODY_DEFAULT */
	/* Another protocol on the same multi handle (IMAP, imap_poll.c):
	 * called with the easy handle (a CURL *) after every option above is
	 * set, to set the protocol's own (CURLOPT_PROTOCOLS_STR,
	 * CURLOPT_CUSTOMREQUEST, credentials, TLS).  0, or a negative errno
	 * that http_request returns (done is then not called).  NULL: HTTP. */
	int (*setup)(void *easy, void *arg);
	void *setup_arg;
};

enum http_error {
	HTTP_E_NONE = 0,  /* a response arrived (any status) */
	HTTP_E_TIMEOUT,   /* the transfer timed out */
	HTTP_E_CONNECT,   /* resolve, connect or TLS handshake failed */
	HTTP_E_TOO_LARGE, /* the response body exceeded max_body */
	HTTP_E_CANCELLED, /* the client was closed with the request pending */
	HTTP_E_TRANSPORT, /* any other transport error */
};

/* Every pointer is valid only during the done callback. */
struct http_resp {
	long status; /* HTTP status; 0 on any error */
	enum http_error err;
	const char *error;        /* curl's error text, "" when err == HTTP_E_NONE */
	int64_t retry_after_ms;   /* Retry-After (delta-seconds or HTTP-date), 0 when absent */
	const char *content_type; /* "" when absent */
	const char *body;         /* NUL-terminated, never NULL */
	size_t body_len;
	long new_connections; /* connections the transfer opened (0: it reused one) */
};

typedef void (*http_done_cb)(void *arg, const struct http_resp *resp);

/*
 * The client for loop, created on first use; each get takes a reference.
 * put drops it; at zero every pending request is reported with status 0,
 * HTTP_E_CANCELLED ("cancelled") from inside put, the multi handle is
 * cleaned up and every uv handle closed (freed in close callbacks), so a
 * later uv_loop_close() returns 0 once the loop has run those callbacks.
 */
struct http_client *http_client_get(uv_loop_t *loop);
void http_client_put(struct http_client *h);

/*
 * Raise the per-host connection cap (CURLMOPT_MAX_HOST_CONNECTIONS, shared
 * by every driver on the client, so the largest request wins) and grow the
 * connection cache to hold the sum of what drivers asked for.
 */
void http_client_want_connections(struct http_client *h, int per_host);

/*
 * Start a request.  0, and done is called exactly once, never from inside
 * http_request; or a negative errno (-ESHUTDOWN when the client is closing,
 * -EINVAL for a bad request) and done is not called.
 */
int http_request(struct http_client *h, const struct http_req *rq, http_done_cb done, void *arg);

/* Number of requests started and not yet reported. */
int http_client_pending(const struct http_client *h);

/*
 * Parse a Retry-After value: delta-seconds or an HTTP-date (relative to
 * now_ms, a date in the past gives 0).  0 and *out_ms, or -EINVAL.
 */
int http_parse_retry_after(const char *v, int64_t now_ms, int64_t *out_ms);

#endif
