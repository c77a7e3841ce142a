/*
 * conf.h - where clubctl finds its server and token: the config file
 * (~/.config/clubctl/config, INI-ish "key = value"), token files, and the
 * ssh-like check that files holding a token are private to the user.
 */
#ifndef CLUBCTL_CONF_H
#define CLUBCTL_CONF_H

#include <stdint.h>

struct conf {
	char *path;         /* the file read, or NULL */
	char *url;          /* url = ... */
	char *token;        /* token = ... (never printed) */
	char *token_file;   /* token_file = ..., resolved to a full path */
	int64_t timeout_ms; /* timeout = ..., 0 when unset */
	int dates;          /* dates = auto|jalali|gregorian: -1, 1, 0 */
};

/* $XDG_CONFIG_HOME/clubctl/config or ~/.config/clubctl/config; caller
 * frees; NULL when neither variable is set. */
char *conf_default_path(void);

/*
 * Read a config file.  A missing file is fine unless must_exist.  Refuses a
 * file not owned by the user or readable/writable by group or others.
 * 0, or prints "clubctl: FILE:LINE: ..." and returns CTL_EUSAGE.
 */
int conf_load(const char *path, int must_exist, struct conf *cf);
void conf_free(struct conf *cf);

/* Read a token from the first line of a private file (same checks).
 * 0, or prints why and returns CTL_EUSAGE; *out is freed with conf_wipe(). */
int conf_read_token(const char *path, char **out);
/* 0 when tok can go in an Authorization header (printable ASCII, no
 * spaces, 1..4096 bytes), else -EINVAL. */
int conf_token_ok(const char *tok);
/* Zero and free a secret string. */
void conf_wipe(char *s);
/* Timeout: a bare number is seconds, else a duration ("500ms", "2m"). */
int conf_parse_timeout(const char *s, int64_t *ms);

#endif
