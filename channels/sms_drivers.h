/*
 * sms_drivers.h - the HTTP SMS provider drivers (rows for the registry in
 * channel.c).  Each reads its keys from c->cfg->sec, which is either
 * [channel.sms] itself or the [provider.NAME] profile it names.
 *
 *   "kannel"       Kannel's sendsms interface (GET query or POST with
 *                  X-Kannel-* headers), dlr-url pointing back at clubd.
 *   "generic_http" URL, method, headers and body as templates with
 *                  placeholders, plus a success rule (status codes and/or a
 *                  JSON pointer).
 *
 * Both support the common SMS keys of sms_segments.h (sender,
 * price_per_segment, max_segments) and fill segments and cost_micros.
 */
#ifndef CLUBD_SMS_DRIVERS_H
#define CLUBD_SMS_DRIVERS_H

#include "channel.h"

extern const struct chan_driver chan_sms_kannel_driver;
extern const struct chan_driver chan_sms_generic_driver;

#endif
