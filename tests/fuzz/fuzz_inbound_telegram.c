/*
 * fuzz_inbound_telegram.c - libFuzzer target for the Telegram Bot API
 * Update parser (inbound_tg_parse, inbound_tg_inbound in inbound.c): the
 * input is a JSON document as a webhook body or one getUpdates result.
 * Checks: an accepted Update has update_id >= 0; a text or contact update
 * either becomes a struct inbound on channel "chat" whose id names the bot
 * and the update, whose sender is the chat id and whose text is valid
 * UTF-8 within INBOUND_TEXT_MAX (a contact: a link with an E.164 phone and
 * no text), or is refused with field and why; a skipped update always says
 * why.  Owns nothing.  Build and run: see tests/fuzz/README.md.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (!j)
		return 0;
	struct inbound_tg_update u;
	if (inbound_tg_parse(j, &u) == 0) {
		if (u.update_id < 0)
			abort();
		struct inbound in;
		const char *field = NULL, *why = NULL;
		int rc = inbound_tg_inbound(&in, &u, "chat", "123456", 1, "IR", &field, &why);
		if (u.kind == INBOUND_TG_SKIP) {
			if (!u.skip || rc == 0)
				abort();
		} else if (rc == 0) {
			char want[64], chat[32];
			snprintf(want, sizeof want, "123456:%" PRId64, u.update_id);
			snprintf(chat, sizeof chat, "%" PRId64, u.chat_id);
			size_t n = strlen(in.text);
			if (strcmp(in.channel, "chat") != 0 ||
			    strcmp(in.provider, "telegram") != 0 ||
			    strcmp(in.provider_id, want) != 0 || strcmp(in.from, chat) != 0 ||
			    n > INBOUND_TEXT_MAX || !utf8_valid(in.text, n))
				abort();
			if (u.kind == INBOUND_TG_CONTACT &&
			    (in.action != INBOUND_LINK || in.phone[0] != '+' || n != 0))
				abort();
		} else if (!field || !why) {
			abort();
		}
	}
	json_decref(j);
	return 0;
}
