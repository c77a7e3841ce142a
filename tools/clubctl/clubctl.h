/*
 * clubctl.h - the command framework of clubctl, the command-line client of
 * clubd's HTTP API: the per-process state, option tables, parsed arguments,
 * the command and group tables, exit codes and the helpers every cmd_*.c
 * uses to call the API and print its answers.
 *
 * Adding a resource: write tools/clubctl/cmd_<name>.c defining
 * `const struct ctl_group ctl_group_<name>` and add one CTL_GROUP(<name>)
 * line to groups.def.  Options, help, usage checks and bash completion all
 * come from the tables, so nothing else changes.
 */
#ifndef CLUBCTL_H
#define CLUBCTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CLUBCTL_VERSION
#define CLUBCTL_VERSION "0.1.0"
#endif

/* Exit codes (documented in docs/clubctl.md and clubctl(1)). */
enum {
	CTL_OK = 0,     /* success */
	CTL_EAPI = 1,   /* the API answered with an error (or a refused line) */
	CTL_EUSAGE = 2, /* bad usage, bad configuration, unreadable input file */
	CTL_ECONN = 3,  /* could not talk to the server at all */
};

struct http;

/* Per-process state: resolved once in main.c before a command runs. */
struct ctl {
	const char *prog;    /* "clubctl" */
	const char *cmdpath; /* "contacts add", for messages and help hints */
	char *url;           /* base URL without a trailing slash */
	char *token;         /* may be NULL; never printed, zeroed at exit */
	int64_t timeout_ms;  /* per request (imports: stall limit) */
	int json;            /* --json: print the API's JSON */
	int quiet;           /* -q: no progress, no informational lines */
	int tty_err;         /* stderr is a terminal (progress bar) */
	struct http *http;   /* created on first use by ctl_http() */
};

/* ---------------------------------------------------------------- options */

enum ctl_opt_flags {
	CTL_OPT_MULTI = 1, /* may be repeated; every value is kept */
	CTL_OPT_FILE = 2,  /* the argument is a file name (completion) */
};

/*
 * One row of an option table; tables end with a row whose name is NULL.
 * key: a short option letter ('q') or a value >= 256 for long-only options;
 * keys are unique within one command's table and the global table.
 */
struct ctl_opt {
	const char *name;    /* long name without "--" */
	int key;             /* short letter or >= 256 */
	const char *meta;    /* argument name ("N", "FILE"); NULL for a flag */
	const char *help;    /* one line */
	unsigned flags;      /* enum ctl_opt_flags */
	const char *choices; /* space-separated allowed values, or NULL */
};

/* Parsed arguments of one command, in command-line order. */
struct ctl_argv {
	int key;
	const char *val; /* NULL for a flag; borrows argv */
};
struct ctl_args {
	struct ctl_argv *v;
	size_t n;
	char **pos; /* positional arguments (borrowed from argv) */
	int npos;
};

/* The last value given for key (or "" for a given flag), NULL when absent. */
const char *ctl_arg(const struct ctl_args *a, int key);
int ctl_has(const struct ctl_args *a, int key);
/* Iterate every value of a repeatable option: start *it at 0. */
const char *ctl_arg_next(const struct ctl_args *a, int key, size_t *it);

/* ---------------------------------------------------------------- commands */

struct ctl_cmd {
	const char *name; /* NULL: the group itself is the command ("status") */
	const char *args; /* positional usage ("ID", "FILE"), or NULL */
	int min_pos, max_pos;
	const char *summary; /* one line for the command list */
	const char *help;    /* a paragraph for `help COMMAND`, or NULL */
	const struct ctl_opt *opts;
	int (*run)(struct ctl *c, const struct ctl_args *a);
};

struct ctl_group {
	const char *name;
	const char *summary;
	const struct ctl_cmd *cmds; /* ends with a row whose run is NULL */
};

#define CTL_GROUP(n) extern const struct ctl_group ctl_group_##n;
#include "groups.def"
#undef CTL_GROUP

/* ---------------------------------------------------------------- helpers */

/* Print "clubctl: <msg>" and a help hint to stderr; returns CTL_EUSAGE. */
int ctl_usage(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "clubctl: <msg>" to stderr; returns rc. */
int ctl_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Informational line on stderr unless -q. */
void ctl_info(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The shared HTTP connection (created on first use). */
struct http *ctl_http(struct ctl *c);

/*
 * One API call.  path is already escaped (see ctl_path()); body is a JSON
 * object or NULL (borrowed); headers are extra "Name: value" lines or NULL
 * (NULL-terminated array).  On a 2xx answer returns CTL_OK with the parsed
 * JSON in *out (a new reference; NULL for an empty body such as 204) and
 * the status in *status when status is non-NULL.  On an API error prints the
 * API's message and field (and with --json the error object on stdout) and
 * returns CTL_EAPI; transport errors return CTL_ECONN.
 */
int ctl_api(struct ctl *c, const char *method, const char *path, json_t *body,
            const char *const *headers, json_t **out, long *status);
/* Report an error answer (status, body) the same way ctl_api does. */
int ctl_api_error(struct ctl *c, long status, const char *body, size_t len);
/* Report a transport error; returns CTL_ECONN. */
int ctl_conn_error(struct ctl *c, const char *detail);

/* "/v1/contacts/" + escaped segment; caller frees. */
char *ctl_path(struct ctl *c, const char *prefix, const char *segment, const char *suffix);
/* Percent-escape a query value; caller frees. */
char *ctl_escape(struct ctl *c, const char *s);

/* Print a JSON document (2-space indent, UTF-8, server's key order). */
void ctl_print_json(const json_t *j);

/*
 * Read a whole small file (or stdin for "-") into a NUL-terminated string
 * of at most max bytes.  CTL_OK, or prints why and returns CTL_EUSAGE.
 */
int ctl_read_file(const char *path, size_t max, char **out, size_t *len);

/* JSON accessors that tolerate absent keys and wrong types. */
const char *ctl_jstr(const json_t *o, const char *key);

/*
 * A time for --at/--expires: RFC 3339 with an offset (kept as is),
 * "YYYY-MM-DD[ HH:MM[:SS]]" or "YYYY-MM-DDTHH:MM[:SS]" in local time (a year
 * below 1700 is a Jalali date), "+DURATION" from now ("+30m", "+2h", "+1d"),
 * or "now".  Persian digits are accepted.  *out is an RFC 3339 string the
 * caller frees.  0 or -EINVAL.
 */
int ctl_parse_when(const char *s, char **out);

/* Globals implemented in main.c, read by help and completion. */
extern const struct ctl_opt ctl_global_opts[];

#endif
