/*
 * api.h - the HTTP server glue: libmicrohttpd in external-epoll mode inside
 * the libuv loop, routing, bearer-token auth with roles, body limits, JSON
 * answers and errors, and asynchronous (suspended) requests.
 *
 * Handlers never block.  A handler that needs Redis issues its commands and
 * returns; the connection stays suspended until the handler (or a callback
 * it set up) calls one api_reply_*().  Every request has a deadline
 * ([api] request_timeout): if no answer was given by then the client gets
 * 503 and a later reply is dropped.  The request struct lives until both the
 * connection completed and every api_hold() was matched by api_release(),
 * so an asynchronous callback may always touch its request.
 *
 * Errors are always {"error":{"code":"...","message":"...","field":"..."}}.
 */
#ifndef CLUBD_API_H
#define CLUBD_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

struct api_req;
struct api_server;

enum api_role { ROLE_NONE = 0, ROLE_VIEWER = 1, ROLE_MARKETER = 2, ROLE_ADMIN = 3 };
/* "viewer" ... "admin"; ROLE_NONE (0) when unknown. */
enum api_role api_role_parse(const char *s);
const char *api_role_name(enum api_role r);

enum api_body {
	API_BODY_NONE,   /* body refused with 400 if present */
	API_BODY_JSON,   /* buffered up to [api] max_body, parsed, must be an object */
	API_BODY_STREAM, /* handed over in chunks, up to [api] max_bulk_body */
};

struct api_route {
	const char *method; /* "GET", "POST", "PATCH", "DELETE" */
	const char *path;   /* "/v1/contacts/{id}"; {name} matches one segment */
	enum api_role role; /* minimum role; ROLE_NONE = no token needed */
	enum api_body body;
	/* NONE/JSON: called once the body is complete.  STREAM: called before
	 * the first chunk. */
	void (*handle)(struct api_req *rq);
	/* STREAM only.  Consume up to len bytes, return how many were taken
	 * (0..len) or -1 after replying with an error.  Taking fewer than len
	 * suspends the upload until api_resume(). */
	long (*chunk)(struct api_req *rq, const char *data, size_t len);
	/* STREAM only: the body is complete (all chunks taken). */
	void (*end)(struct api_req *rq);
};

/* routes and app are borrowed for the server's lifetime. */
struct api_server *api_server_new(uv_loop_t *loop, const struct config *cfg,
                                  const struct api_route *routes, size_t nroutes, void *app);
/* --check-config: parse the tokens file; 0 with *n tokens, or -1 with err. */
int api_tokens_check(const char *path, size_t *n, struct cfg_error *err);
/* Load tokens and bind; 0 or -1 with err. */
int api_server_start(struct api_server *s, struct cfg_error *err);
int api_server_port(const struct api_server *s);
/* SIGHUP: re-read the tokens file and limits; on error keep the old ones. */
int api_server_reload(struct api_server *s, const struct config *cfg, struct cfg_error *err);
/* Stop accepting connections (SIGTERM, first step of the drain). */
void api_server_stop_intake(struct api_server *s);
/* Answer every suspended request with 503, close, then cb.  Frees s. */
void api_server_close(struct api_server *s, void (*cb)(void *arg), void *arg);
/* Requests handled, by status class, for /metrics. */
void api_server_stats(const struct api_server *s, uint64_t counts[6]);
/* The same for route i of the table given to api_server_new (i == nroutes:
 * requests no route matched). */
void api_server_route_stats(const struct api_server *s, size_t i, uint64_t counts[6]);

/* Request accessors (all borrowed, valid until the request is freed). */
void *api_app(struct api_req *rq);
const char *api_method(struct api_req *rq);
const char *api_path(struct api_req *rq);
const char *api_param(struct api_req *rq, const char *name); /* path {name} */
const char *api_query(struct api_req *rq, const char *name); /* ?name= */
const char *api_header(struct api_req *rq, const char *name);
json_t *api_json(struct api_req *rq);           /* API_BODY_JSON: the parsed object */
const char *api_token_name(struct api_req *rq); /* "" for ROLE_NONE routes */
enum api_role api_req_role(struct api_req *rq);

/* Per-request handler state, freed with free_fn when the request goes. */
void api_set_data(struct api_req *rq, void *data, void (*free_fn)(void *));
void *api_data(struct api_req *rq);

/* Restart this request's deadline at ms (> 0) from now, e.g. for a long
 * upload or export; ignored once answered.  The default is [api]
 * request_timeout, counted from the request head. */
void api_set_timeout(struct api_req *rq, int64_t ms);

void api_hold(struct api_req *rq);
void api_release(struct api_req *rq);
void api_resume(struct api_req *rq); /* STREAM: continue the upload */
int api_replied(const struct api_req *rq);

/* Add a response header before replying (copied; CR/LF refused). */
void api_add_header(struct api_req *rq, const char *name, const char *value);
/* Reply once; later calls are ignored.  json is stolen. */
void api_reply_json(struct api_req *rq, unsigned status, json_t *json);
void api_reply_error(struct api_req *rq, unsigned status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void api_reply_raw(struct api_req *rq, unsigned status, const char *content_type, const char *data,
                   size_t len);

struct buf; /* util.h */
/*
 * Small JSON answers on hot paths without a jansson document: append s to b
 * as a JSON string literal, quotes included, escaped as jansson's
 * json_dumps() writes it (no JSON_ENSURE_ASCII).  0; -EINVAL when s is NULL
 * or not valid UTF-8, or -ENOSPC from b's cap (b unchanged on error).
 */
int api_json_quote(struct buf *b, const char *s);
/* Reply with the JSON text in b (a newline is added, as api_reply_json
 * does); b's memory is taken and b left empty. */
void api_reply_json_buf(struct api_req *rq, unsigned status, struct buf *b);

/*
 * A streamed answer (chunked transfer encoding), for exports of any size.
 * The connection calls fill(rq, buf, max) on the loop whenever the client
 * can take more: it copies up to max bytes and returns how many; 0 when it
 * has nothing yet (the connection waits, suspended, until
 * api_stream_wake()); API_STREAM_END when the answer is complete; or
 * API_STREAM_ERROR to cut the connection (the client sees a chunked body
 * without its end).  The request deadline stops here: a stalled producer
 * must end the stream itself.  fill is never called after the connection
 * completed; handler state (api_set_data) lives until then.
 */
#define API_STREAM_END   (-1L)
#define API_STREAM_ERROR (-2L)
typedef long (*api_stream_fill)(struct api_req *rq, char *buf, size_t max);
void api_reply_stream(struct api_req *rq, unsigned status, const char *content_type,
                      api_stream_fill fill);
/* The producer has data (or its end) for fill: wake the connection. */
void api_stream_wake(struct api_req *rq);

#endif
