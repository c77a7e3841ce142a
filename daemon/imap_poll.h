/*
 * imap_poll.h - email replies read from an IMAP mailbox ([imap]): every
 * interval the mailbox's unseen messages are fetched by UID through the
 * loop's shared libcurl multi handle (channels/http.c), parsed
 * (mail_parse.h) and handed to inbound_route_reply(); a message is marked
 * \Seen only after the router stored it (or found it a duplicate), so a
 * store failure or a crash leaves it unseen for the next poll, and the
 * dedupe on its Message-ID keeps a second delivery from counting twice.
 */
#ifndef CLUBD_IMAP_POLL_H
#define CLUBD_IMAP_POLL_H

#include <uv.h>

#include "config.h"
#include "store.h"

struct imap_poll;

/* Check [imap] (url and tls agree, username and password_file are set when
 * url is, the password can be read).  For --check-config and start: 0, or
 * -1 with err.  Nothing is kept. */
int imap_poll_check(const struct config *cfg, struct cfg_error *err);

/* The poller, or NULL with err on a configuration error.  With [imap] url
 * empty: a poller that does nothing (never NULL for that).  Borrows loop,
 * st and cfg (a reload's config comes through imap_poll_reconfigure). */
struct imap_poll *imap_poll_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                struct cfg_error *err);
/* Start polling (the first poll at once). */
void imap_poll_start(struct imap_poll *p);
/* The config routed messages see from now on (keywords, leads). */
void imap_poll_reconfigure(struct imap_poll *p, const struct config *cfg);
/* No new polls or steps; what is in flight finishes. */
void imap_poll_stop(struct imap_poll *p);
/* Cancel the request in flight, wait for pending store calls, close the
 * timer, free p (the password wiped), then cb.  NULL p: cb at once. */
void imap_poll_close(struct imap_poll *p, void (*cb)(void *arg), void *arg);

/* ---- the IMAP answers, exported for tests and the fuzzer ------------------ */

/* [UIDVALIDITY n] in a SELECT / EXAMINE answer: 0 with *v, or -ENOENT. */
int imap_parse_uidvalidity(const char *s, size_t n, uint32_t *v);
/* The UIDs of "* SEARCH ..." lines, ascending, at most max into uids: the
 * number found (>= 0; only the max smallest are kept). */
size_t imap_parse_search(const char *s, size_t n, uint32_t *uids, size_t max);
/* One "* N FETCH (... UID u ... RFC822.SIZE s ... INTERNALDATE "d" ...)"
 * per message: cb(arg, uid, size, internaldate_ms or 0) for each line with
 * a UID and a size.  The number of lines reported. */
size_t imap_parse_fetch(const char *s, size_t n,
                        void (*cb)(void *arg, uint32_t uid, uint64_t size, int64_t date_ms),
                        void *arg);
/* IMAP's date-time "23-Nov-2026 10:15:00 +0330" into ms: 0, or -EINVAL. */
int imap_parse_date(const char *s, size_t n, int64_t *ms);

#endif
