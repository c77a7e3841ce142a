/*
 * chat_drivers.h - chat channel drivers beyond the built-in outbox and
 * webhook: rows for the registry in channel.c.
 *
 * telegram  the Telegram Bot API's sendMessage, and every server that speaks
 *           the same API under another base URL (Bale: https://tapi.bale.ai).
 *           See channels/chat_telegram.c and docs/channels/telegram-bale.md.
 */
#ifndef CLUBD_CHAT_DRIVERS_H
#define CLUBD_CHAT_DRIVERS_H

#include "channel.h"

/* The most characters (Unicode code points) one sendMessage may carry. */
#define CHAT_TELEGRAM_MAX_TEXT 4096

extern const struct chan_driver chan_telegram_driver;

#endif
