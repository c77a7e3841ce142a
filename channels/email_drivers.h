/*
 * email_drivers.h - email channel drivers (rows for the registry in
 * channel.c) and their introspection.
 */
#ifndef CLUBD_EMAIL_DRIVERS_H
#define CLUBD_EMAIL_DRIVERS_H

#include <stdint.h>

#include "channel.h"

/* Driver "smtp": submission through libESMTP (see email_smtp.c). */
extern const struct chan_driver chan_email_smtp_driver;

/* Counters of one smtp channel since start (loop thread; for metrics and
 * tests).  sessions: SMTP sessions run; messages: messages those sessions
 * carried; ok/tempfail/permfail: reports; refused: messages that never
 * reached a session (bad address or header input, shutting down). */
struct email_smtp_stats {
	uint64_t sessions, messages, ok, tempfail, permfail, refused;
};
void email_smtp_get_stats(const struct chan *c, struct email_smtp_stats *out);

#endif
