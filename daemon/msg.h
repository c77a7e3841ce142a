/*
 * msg.h - the message state machine: states, names, and the table of
 * allowed transitions.  The same table is enforced again inside Redis by
 * the settle script (daemon/lua/msg_settle.lua), which is the one place a
 * message's state is written after creation.
 *
 *   scheduled -> ready -> sending -> sent -> delivered
 *                            |         \-> failed (undelivered report)
 *                            +-> scheduled (transient failure, deferral)
 *                            +-> failed | suppressed | expired
 *   scheduled/ready -> cancelled | expired | suppressed
 */
#ifndef CLUBD_MSG_H
#define CLUBD_MSG_H

enum msg_state {
	MSG_SCHEDULED = 0,
	MSG_READY,
	MSG_SENDING,
	MSG_SENT,
	MSG_DELIVERED,
	MSG_FAILED,
	MSG_SUPPRESSED,
	MSG_EXPIRED,
	MSG_CANCELLED,
	MSG__NSTATES
};

const char *msg_state_name(enum msg_state s);
int msg_state_parse(const char *s); /* -1 when unknown */
int msg_transition_ok(enum msg_state from, enum msg_state to);
int msg_state_final(enum msg_state s);

#endif
