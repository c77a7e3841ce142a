/*
 * desk.h - the complaints desk's pure parts (people in the loop): team and
 * routing-rule definitions (validation and their canonical JSON), the rule
 * match that picks a team for a reply no automatic stage consumed, the
 * ticket states and their transitions, and first-response statistics.
 * No I/O, no Redis, no clock.
 *
 * A rule names a team and any of: keywords (a normalised keyword found at
 * the start of a word of the normalised text, so "complaint" matches
 * "Complaints!" and "شکایت" matches "شكايتي" written with Arabic kaf/yeh),
 * channels, contact tiers, contact tags, campaigns.  Every condition given
 * must hold (and within one list any value will do); a rule with none
 * matches everything.  The first matching rule wins; then the default
 * team; then DESK_FALLBACK_TEAM.  A campaign's forward_replies_to wins over
 * every rule (the caller passes it in struct desk_reply).
 *
 * Ticket states: open -> assigned -> answered -> closed (desk_next_state).
 */
#ifndef CLUBD_DESK_H
#define CLUBD_DESK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define DESK_ID_MAX        64   /* team ids: [A-Za-z0-9_-] */
#define DESK_NAME_MAX      200  /* bytes: team and rule names */
#define DESK_RULES_MAX     100  /* rules in the list */
#define DESK_KEYWORDS_MAX  50   /* keywords per rule */
#define DESK_KEYWORD_MAX   100  /* bytes of one keyword */
#define DESK_VALUES_MAX    50   /* channels, tiers, tags or campaigns per rule */
#define DESK_VALUE_MAX     64   /* bytes of one tier or tag */
#define DESK_MEMBERS_MAX   100  /* members of a team */
#define DESK_OPERATOR_MAX  100  /* bytes of an operator's name */
#define DESK_URL_MAX       1024 /* a team's webhook URL */
#define DESK_TEXT_MAX      4096 /* bytes of an operator's answer */
#define DESK_FALLBACK_TEAM "default"

/* 1 when s is a team id: 1..DESK_ID_MAX of [A-Za-z0-9_-]. */
int desk_id_valid(const char *s);

/* ---- teams ------------------------------------------------------------- */

struct desk_team {
	char id[DESK_ID_MAX + 1];
	char *name;                   /* "" when not given */
	char *webhook, *email, *chat; /* notification targets; NULL when absent */
	char **members;               /* operator names */
	size_t nmembers;
};

/*
 * Validate a team definition {id, name, notify: {webhook, email, chat},
 * members}.  path_id (NULL for a create) is the id from the URL: the body's
 * id may then be left out, and must equal it when given.  A webhook is an
 * http(s) URL; email and chat are normalised (addr.h).  0, or -EINVAL with
 * *field (static: "id", "notify.webhook", "members[2]", ...) and why set.
 * Free t with desk_team_free in every case.
 */
int desk_team_parse(const json_t *j, const char *path_id, struct desk_team *t, char *field,
                    size_t fieldlen, char *why, size_t whylen);
void desk_team_free(struct desk_team *t);
/* The canonical definition {id, name, notify: {...}, members: [...]}. */
json_t *desk_team_json(const struct desk_team *t);

/* ---- rules ------------------------------------------------------------- */

struct desk_rule {
	char *name; /* "" when not given */
	char team[DESK_ID_MAX + 1];
	char **keywords; /* normalised (text_normalize) */
	size_t nkeywords;
	char **channels, **tiers, **tags, **campaigns;
	size_t nchannels, ntiers, ntags, ncampaigns;
	json_t *source; /* the keywords as given, for the canonical JSON */
};

struct desk_rules {
	struct desk_rule *rule;
	size_t n;
	char default_team[DESK_ID_MAX + 1]; /* "" = none */
};

/*
 * Validate {"rules": [rule...], "default_team": "support"} (rules required,
 * 0..DESK_RULES_MAX of {name, team, keywords, channels, tiers, tags,
 * campaigns}; unknown keys refused).  0, or -EINVAL with field
 * ("rules[2].keywords[0]") and why.  Free r with desk_rules_free in every
 * case.
 */
int desk_rules_parse(const json_t *j, struct desk_rules *r, char *field, size_t fieldlen, char *why,
                     size_t whylen);
void desk_rules_free(struct desk_rules *r);
/* The canonical form (keywords as given, lists as given). */
json_t *desk_rules_json(const struct desk_rules *r);

/* A recorded reply as routing sees it (every pointer borrowed). */
struct desk_reply {
	const char *text;    /* as received (normalised here) */
	const char *channel; /* "sms", "email", "chat" */
	const char *tier;    /* the contact's tier, NULL or "" for none */
	const char *const *tags;
	size_t ntags;
	const char *campaign; /* the attributed campaign, NULL or "" */
	const char *forward;  /* that campaign's forward_replies_to, NULL or "" */
};

enum desk_via { DESK_VIA_CAMPAIGN, DESK_VIA_RULE, DESK_VIA_DEFAULT, DESK_VIA_FALLBACK };
/* "campaign", "rule", "default", "fallback". */
const char *desk_via_name(enum desk_via v);

/*
 * The team for m: the campaign's forward team, else the first matching
 * rule's (its index in *rule), else the default team, else
 * DESK_FALLBACK_TEAM.  Never NULL; r may be NULL (no rules stored).  *via
 * and *rule (may be NULL) say why; *rule is -1 unless a rule matched.
 */
const char *desk_route(const struct desk_rules *r, const struct desk_reply *m, enum desk_via *via,
                       int *rule);
/* 1 when the normalised keyword kw occurs in the normalised text at the
 * start of a word (preceded by the start, white space or punctuation). */
int desk_keyword_in(const char *text, const char *kw);

/* ---- tickets ------------------------------------------------------------ */

enum desk_state { DESK_OPEN, DESK_ASSIGNED, DESK_ANSWERED, DESK_CLOSED, DESK_STATES };
/* "open", "assigned", "answered", "closed". */
const char *desk_state_name(enum desk_state s);
/* The state named s, or -1. */
int desk_state_parse(const char *s);

enum desk_op {
	DESK_OP_ASSIGN,   /* an operator takes the ticket */
	DESK_OP_ANSWER,   /* an operator's answer went out */
	DESK_OP_CLOSE,    /* done */
	DESK_OP_CUSTOMER, /* the customer wrote again (answered: within the reopen window) */
};
/* The state after op in state s, or -1 when op is refused there.
 * has_operator: the ticket was assigned before (a reopened ticket goes
 * back to its operator). */
int desk_next_state(enum desk_state s, enum desk_op op, int has_operator);
/* The transitions of op as "from:to,..." for the store scripts (out of n
 * bytes, 128 is plenty). */
void desk_transitions(enum desk_op op, int has_operator, char *out, size_t n);

/* ---- first-response statistics ----------------------------------------- */

struct desk_frt {
	size_t n;
	int64_t p50, p90; /* nearest rank; 0 when n == 0 */
	double mean;
};
/* Over ms[0..n) (sorted in place). */
void desk_frt_compute(int64_t *ms, size_t n, struct desk_frt *out);

#endif
