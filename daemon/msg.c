/*
 * msg.c - message states and the allowed-transition table.  Pure data; the
 * table here and the one in lua/msg_settle.lua must agree (test_msg checks
 * the Lua text against this table).
 */
#include "msg.h"

#include <string.h>

static const char *const names[MSG__NSTATES] = {
    "scheduled", "ready",      "sending", "sent",      "delivered",
    "failed",    "suppressed", "expired", "cancelled",
};

/* allowed[from] is a bit set of the states it may move to. */
#define B(s) (1u << (s))
static const unsigned allowed[MSG__NSTATES] = {
    [MSG_SCHEDULED] = B(MSG_READY) | B(MSG_CANCELLED) | B(MSG_EXPIRED) | B(MSG_SUPPRESSED),
    [MSG_READY] = B(MSG_SENDING) | B(MSG_CANCELLED) | B(MSG_EXPIRED) | B(MSG_SUPPRESSED),
    [MSG_SENDING] = B(MSG_SENT) | B(MSG_SCHEDULED) | B(MSG_FAILED) | B(MSG_SUPPRESSED) |
                    B(MSG_EXPIRED) | B(MSG_SENDING),
    [MSG_SENT] = B(MSG_DELIVERED) | B(MSG_FAILED),
    [MSG_DELIVERED] = 0,
    [MSG_FAILED] = 0,
    [MSG_SUPPRESSED] = 0,
    [MSG_EXPIRED] = 0,
    [MSG_CANCELLED] = 0,
};

const char *msg_state_name(enum msg_state s)
{
	return (unsigned)s < MSG__NSTATES ? names[s] : "unknown";
}

int msg_state_parse(const char *s)
{
	for (int i = 0; i < MSG__NSTATES; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int msg_transition_ok(enum msg_state from, enum msg_state to)
{
	if ((unsigned)from >= MSG__NSTATES || (unsigned)to >= MSG__NSTATES)
		return 0;
	return (allowed[from] & B(to)) != 0;
}

int msg_state_final(enum msg_state s)
{
	return s == MSG_DELIVERED || s == MSG_FAILED || s == MSG_SUPPRESSED || s == MSG_EXPIRED ||
	       s == MSG_CANCELLED;
}
