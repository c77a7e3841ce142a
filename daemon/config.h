/*
 * config.h - the one typed option table and the parsed configuration.
 *
 * Fixed sections ([api], [redis], [sched], [dispatch], [contacts], [prefs],
 * [log], [outbox]) map onto struct config through a table of rows (section,
 * name, type, default, min, max, reloadable, help).  Channel sections
 * ([channel.sms], [channel.email], [channel.chat]) keep their raw key/value
 * pairs (with line numbers) so each channel driver validates its own keys
 * through cfg_sec_* helpers; the common channel keys are parsed here.
 */
#ifndef CLUBD_CONFIG_H
#define CLUBD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* An error that names file, line and key: "clubd.conf:12: api.port: ..." */
struct cfg_error {
	char msg[512];
};

struct cfg_kv {
	char *key;
	char *value;
	int line;
	int used; /* set when a driver consumed the key; unused keys are errors */
};

struct cfg_section {
	char *name;       /* full section name, e.g. "channel.sms" */
	const char *file; /* borrowed from struct config */
	int line;
	struct cfg_kv *kv;
	size_t nkv;
};

/* Channel kinds are fixed: an address kind each. */
#define CFG_CHANNEL_KINDS 3 /* sms, email, chat */

struct cfg_channel {
	char *name;              /* "sms", "email" or "chat" */
	char *driver;            /* "outbox", "webhook", ... */
	int max_inflight;        /* concurrent sends on this channel */
	double rate;             /* token bucket, messages per second; 0 = unlimited */
	int burst;               /* bucket size */
	int64_t timeout_ms;      /* per-send deadline the driver must honour */
	double price;            /* one SMS segment (sms) or one message; 0 = free/unknown */
	struct cfg_section *sec; /* all keys, for the driver */
};

struct config {
	char *path;

	/* [api] */
	char *api_listen;          /* address, "127.0.0.1" */
	int api_port;              /* 0 = pick a free port (tests); the port is logged */
	char *api_tokens_file;     /* "name role sha256hex" lines */
	int64_t api_max_body;      /* bytes, JSON bodies */
	int64_t api_max_bulk_body; /* bytes, NDJSON streams */
	int api_max_connections;
	int64_t api_connection_timeout_ms; /* idle connection */
	int64_t api_request_timeout_ms;    /* whole request incl. Redis work */
	char *api_callback_secret_file;    /* signs provider callback URLs (delivery reports) */
	char *api_port_file;               /* if set, the bound port is written here */

	/* [redis] */
	char *redis_host;
	int redis_port;
	char *redis_socket; /* unix socket path; wins over host/port */
	char *redis_password_file;
	int redis_db;
	char *redis_prefix; /* key prefix, "clubd:" */
	int64_t redis_command_timeout_ms;
	int64_t redis_connect_timeout_ms;
	int64_t redis_reconnect_min_ms;
	int64_t redis_reconnect_max_ms;

	/* [sched] */
	int64_t sched_tick_ms; /* due-set scan period */
	int sched_batch;       /* items moved per Lua call */
	int64_t sched_retry_min_ms;
	int64_t sched_retry_max_ms;
	int sched_max_attempts;
	int64_t sched_message_ttl_ms;  /* default expiry after creation */
	int64_t sched_reclaim_idle_ms; /* XAUTOCLAIM min idle */
	int64_t sched_reclaim_interval_ms;
	int64_t sched_retention_ms; /* keep ended messages this long; 0 = forever */

	/* [dispatch] */
	int dispatch_max_inflight;         /* messages claimed and not yet settled */
	int64_t dispatch_drain_timeout_ms; /* SIGTERM: wait for in-flight */
	int64_t dispatch_block_ms;         /* XREADGROUP BLOCK */
	int64_t dispatch_status_poll_ms;   /* delivery status polling period */

	/* [campaigns] */
	int64_t camp_tick_ms;  /* runner period */
	int camp_fanout_batch; /* contacts per fan-out batch */
	int camp_pump_batch;   /* messages made per pump call */
	int camp_window;       /* a campaign's messages made and not yet ended */

	/* [contacts] */
	char *contacts_default_country; /* ISO 3166 alpha-2, "IR" */
	char *contacts_default_tz;      /* IANA zone, "Asia/Tehran" */
	char *contacts_default_lang;
	int contacts_timeline_max; /* entries kept per contact */

	/* [prefs] */
	char *prefs_quiet_hours;       /* default "22:00-08:00" or "" */
	int prefs_quiet_transactional; /* 1: quiet hours hold transactional too */
	char *prefs_caps;              /* frequency caps, prefs_parse_caps() form */

	/* [log] */
	int log_level;    /* syslog priority */
	char *log_format; /* "kv" or "json" */
	char *log_trace;  /* subsystems */

	/* [outbox] */
	char *outbox_dir; /* default directory for outbox drivers */

	/* [points] [events] [referrals] (daemon/club/, docs/club.md) */
	int points_earn_points;          /* points per earn_amount of a purchase; 0 = off */
	int points_earn_amount;          /* currency units */
	char *points_currency;           /* only purchases in it earn; "" = any */
	int points_signup_points;        /* first signup event */
	int64_t points_expire_after_ms;  /* 0 = never */
	char *points_tiers;              /* "bronze:0, silver:1000"; "" = none */
	char *points_tier_template;      /* message on a promotion; "" = none */
	char *points_tier_category;      /* its message category */
	char *events_thank_you_template; /* after a purchase; "" = none */
	int64_t events_thank_you_delay_ms;
	char *events_thank_you_category;
	int referrals_referrer_points;
	int referrals_referee_points;

	/* [links] */
	char *links_base_url; /* public base of tracked links; "" = tracking off */
	int64_t links_ttl_ms; /* how long a tracked link keeps working */

	/* [occasions] (occasions_run.c, docs/occasions.md) */
	int occasions_enabled;         /* this instance evaluates occasion rules */
	int64_t occasions_interval_ms; /* period of each rule's pass */
	char *occasions_window;        /* default send window, HH:MM-HH:MM local */
	int64_t occasions_grace_ms;    /* late sends after the window's end */
	int64_t occasions_lease_ms;    /* a run's lease (another instance takes over after) */
	int occasions_batch;           /* contacts per step */
	int64_t occasions_idem_ttl_ms; /* lifetime of the (rule, contact, year) keys */
	int64_t occasions_expire_ms;   /* a message not sent this long after due expires */

	/* [inbound] (daemon/inbound*.c, docs/inbound.md) */
	int inbound_create_leads;     /* unknown senders become lead contacts */
	char *inbound_stop_keywords;  /* comma-separated */
	char *inbound_start_keywords; /* comma-separated */
	char *inbound_help_keywords;  /* comma-separated */
	char *inbound_stop_scope;     /* "categories" or "channel" */
	/* confirmations, English and Persian; "" = none */
	char *inbound_stop_reply, *inbound_start_reply, *inbound_help_reply;
	char *inbound_stop_reply_fa, *inbound_start_reply_fa, *inbound_help_reply_fa;
	char *inbound_twilio_url;             /* "" = rebuilt from Host */
	char *inbound_twilio_auth_token_file; /* "" = the twilio channel's */
	char *inbound_chat;                   /* "off", "webhook" or "poll" */
	char *inbound_chat_secret_file;       /* X-Telegram-Bot-Api-Secret-Token */
	int64_t inbound_chat_poll_timeout_ms; /* getUpdates timeout */
	int64_t inbound_kavenegar_poll_ms;    /* 0 = no receive polling */
	char *inbound_kavenegar_line;         /* "" = the channel's sender */

	/* [imap] email replies (daemon/imap_poll.c, docs/inbound.md) */
	char *imap_url;                /* imap://host:port or imaps://host:port; "" = off */
	char *imap_username;           /* login */
	char *imap_password_file;      /* secret spec (file, env:, cred:) */
	char *imap_mailbox;            /* polled mailbox, "INBOX" */
	int64_t imap_interval_ms;      /* poll period */
	int imap_tls;                  /* 1: TLS required (imaps, or STARTTLS on imap://) */
	char *imap_ca_file;            /* PEM CAs checking the server; "" = the system's */
	int64_t imap_max_message_size; /* bigger messages are refused (marked seen, audited) */

	/* [privacy] (privacy.c, docs/privacy.md) */
	char *privacy_key_file; /* secret spec of the sealing key; "" = off */

	/* [desk] (desk_notify.c, api_desk.c, docs/desk.md) */
	int64_t desk_reopen_ms; /* an answered ticket reopens when the customer writes within */

	struct cfg_channel *channels;
	size_t nchannels;

	struct cfg_section *sections; /* every section, raw */
	size_t nsections;
};

/* One row of the option table (exported for docs/man generation). */
enum cfg_type { CFG_STR, CFG_INT, CFG_SIZE, CFG_DURATION, CFG_BOOL, CFG_LEVEL };
struct cfg_opt {
	const char *section;
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def;
	int64_t min, max;
	int reloadable;
	const char *help;
	/* Extra syntax check for CFG_STR values (NULL = none): 0, or -1 with a
	 * reason ("must be ...") in why.  For CFG_STR, min/max bound the length
	 * in bytes. */
	int (*check)(const char *v, char *why, size_t whylen);
};
extern const struct cfg_opt cfg_options[];
extern const size_t cfg_noptions;

/*
 * Load and validate a file.  0 and *out set (caller frees with
 * config_free), or -1 with err filled: the first error with file, line
 * and key.  path NULL loads the built-in defaults only (no channel is then
 * required).  Relative paths inside the file stay relative to the current
 * working directory.  Not thread-safe (inih's knobs are process-global).
 */
int config_load(const char *path, struct config **out, struct cfg_error *err);
void config_free(struct config *c);

/*
 * Check that `next` differs from `cur` only in reloadable options (and
 * channel rate/burst/max_inflight).  0, or -1 with err naming the first
 * option that needs a restart.
 */
int config_reload_check(const struct config *cur, const struct config *next, struct cfg_error *err);

const struct cfg_channel *config_channel(const struct config *c, const char *name);

/* Helpers for drivers validating their own [channel.X] keys.  Each marks the
 * key used; *_req variants fail when missing.  Errors name file:line:key. */
const char *cfg_sec_str(struct cfg_section *s, const char *key, const char *def);
/* Like cfg_sec_str, but a missing or empty key is an error: NULL with err. */
const char *cfg_sec_str_req(struct cfg_section *s, const char *key, struct cfg_error *err);
int cfg_sec_int(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                int64_t *out, struct cfg_error *err);
int cfg_sec_duration(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, struct cfg_error *err);
int cfg_sec_bool(struct cfg_section *s, const char *key, int def, int *out, struct cfg_error *err);
/* Sizes: bytes, or with a k/M/G suffix (powers of 1024), e.g. "64k". */
int cfg_sec_size(struct cfg_section *s, const char *key, int64_t def, int64_t min, int64_t max,
                 int64_t *out, struct cfg_error *err);
/* Plain decimal numbers ("2.5"); no hex, inf or nan. */
int cfg_sec_double(struct cfg_section *s, const char *key, double def, double min, double max,
                   double *out, struct cfg_error *err);
/* Read the secret named by the key's value through cfg_read_secret().
 * 0 with *out NULL when the key is missing, 0 with *out set (caller frees),
 * or -1 with err naming file:line:key (never the secret). */
int cfg_sec_secret(struct cfg_section *s, const char *key, char **out, struct cfg_error *err);
/* Fails with "unknown key" for the first key nobody marked used. */
int cfg_sec_check_unused(const struct cfg_section *s, struct cfg_error *err);
/* "file:line: section.key: reason", with the key's line, or the section's
 * line when the key is absent (key NULL: "file:line: section: reason"). */
void cfg_error_set(struct cfg_error *err, const struct cfg_section *s, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Read a secret from a file (trailing newline stripped) or, when the value
 * starts with "env:", from that environment variable; "cred:NAME" reads
 * $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=).  Caller frees.
 * NULL with err filled on failure; never logs the secret.  Empty secrets,
 * NUL bytes and more than 64 KiB are refused; one trailing "\n" or "\r\n"
 * is stripped; a file readable by group or others is read with a warning.
 * err has no file:line (cfg_sec_secret adds them).
 */
char *cfg_read_secret(const char *spec, struct cfg_error *err);

#endif
