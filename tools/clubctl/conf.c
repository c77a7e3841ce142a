/*
 * conf.c - clubctl's configuration sources: the INI-ish config file
 * ("key = value" lines, '#' or ';' comments, no sections), token files,
 * and the ownership/permission check both must pass, like ssh does for
 * private keys: owned by the user, no access for group or others.
 *
 * Owns the strings in struct conf.  Never prints a token or a line that may
 * hold one (errors name the file, line and key only).  Limits: files up to
 * 64 KiB, lines up to 4 KiB, tokens up to 4096 bytes.
 */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clubctl.h"
#include "util.h"

#define CONF_MAX_FILE (64 * 1024)
#define TOKEN_MAX     4096

char *conf_default_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x == '/')
		return xasprintf("%s/clubctl/config", x);
	const char *home = getenv("HOME");
	if (home && *home)
		return xasprintf("%s/.config/clubctl/config", home);
	return NULL;
}

void conf_wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void conf_free(struct conf *cf)
{
	free(cf->path);
	free(cf->url);
	conf_wipe(cf->token);
	free(cf->token_file);
	memset(cf, 0, sizeof *cf);
	cf->dates = -1;
}

int conf_token_ok(const char *tok)
{
	size_t n = strlen(tok);
	if (n == 0 || n > TOKEN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7E)
			return -EINVAL;
	return 0;
}

int conf_parse_timeout(const char *s, int64_t *ms)
{
	int64_t v;
	if (parse_i64(s, 1, 86400, &v) == 0) {
		*ms = v * 1000;
		return 0;
	}
	if (parse_duration_ms(s, &v) < 0 || v < 1 || v > 86400000)
		return -EINVAL;
	*ms = v;
	return 0;
}

/*
 * Open path and read it whole (<= max bytes) after checking that it is a
 * regular file owned by us with no group/other access.  0, -ENOENT (not
 * printed), or CTL_EUSAGE after printing why.
 */
static int read_private(const char *path, const char *what, size_t max, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT;
		return ctl_fail(CTL_EUSAGE, "cannot open %s %s: %s", what, path, strerror(errno));
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = ctl_fail(CTL_EUSAGE, "cannot stat %s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ctl_fail(CTL_EUSAGE, "%s %s is not a regular file", what, path);
		goto out;
	}
	if (st.st_uid != getuid()) {
		rc = ctl_fail(CTL_EUSAGE, "bad owner for %s %s: it must belong to you (uid %u)",
		              what, path, (unsigned)getuid());
		goto out;
	}
	if (st.st_mode & 077) {
		fprintf(stderr,
		        "clubctl: permissions %04o for '%s' are too open.\n"
		        "clubctl: it %s the API token and must not be accessible by others; "
		        "run: chmod 600 '%s'\n",
		        (unsigned)(st.st_mode & 07777), path,
		        strcmp(what, "token file") == 0 ? "holds" : "may hold", path);
		rc = CTL_EUSAGE;
		goto out;
	}
	buf_init(out, max);
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ctl_fail(CTL_EUSAGE, "cannot read %s %s: %s", what, path,
			              strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (buf_append(out, chunk, (size_t)n) < 0) {
			rc =
			    ctl_fail(CTL_EUSAGE, "%s %s is larger than %zu bytes", what, path, max);
			break;
		}
	}
	explicit_bzero(chunk, sizeof chunk);
	if (rc == 0 && !out->p)
		buf_append(out, "", 0);
	if (rc != 0) {
		if (out->p)
			explicit_bzero(out->p, out->len);
		buf_free(out);
	}
out:
	close(fd);
	return rc;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* "~/x" -> $HOME/x; relative -> relative to dir; caller frees. */
static char *resolve(const char *v, const char *dir)
{
	const char *home = getenv("HOME");
	if (v[0] == '~' && v[1] == '/' && home)
		return xasprintf("%s/%s", home, v + 2);
	if (v[0] == '/' || !dir)
		return xstrdup(v);
	return xasprintf("%s/%s", dir, v);
}

int conf_read_token(const char *path, char **out)
{
	struct buf b;
	int rc = read_private(path, "token file", TOKEN_MAX + 2, &b);
	if (rc == -ENOENT)
		return ctl_fail(CTL_EUSAGE, "token file %s does not exist", path);
	if (rc != 0)
		return rc;
	char *nl = strchr(b.p, '\n');
	if (nl)
		*nl = '\0';
	char *t = trim(b.p);
	if (conf_token_ok(t) < 0) {
		explicit_bzero(b.p, b.len);
		buf_free(&b);
		return ctl_fail(CTL_EUSAGE,
		                "token file %s: the first line must be the token (printable ASCII, "
		                "no spaces, at most %d bytes)",
		                path, TOKEN_MAX);
	}
	*out = xstrdup(t);
	explicit_bzero(b.p, b.len);
	buf_free(&b);
	return 0;
}

int conf_load(const char *path, int must_exist, struct conf *cf)
{
	struct buf b;
	int rc = read_private(path, "config file", CONF_MAX_FILE, &b);
	if (rc == -ENOENT) {
		if (must_exist)
			return ctl_fail(CTL_EUSAGE, "config file %s does not exist", path);
		return 0;
	}
	if (rc != 0)
		return rc;
	cf->path = xstrdup(path);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else {
		free(dir);
		dir = NULL;
	}
	char *line;
	int lineno = 0;
	char *p = b.p;
	while (p && rc == 0) {
		line = p;
		char *nl = strchr(p, '\n');
		if (nl) {
			*nl = '\0';
			p = nl + 1;
		} else {
			p = NULL;
		}
		lineno++;
		line = trim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			rc = ctl_fail(CTL_EUSAGE, "%s:%d: expected \"key = value\"", path, lineno);
			break;
		}
		*eq = '\0';
		char *key = trim(line), *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
			val[vl - 1] = '\0';
			val++;
		}
		if (strcmp(key, "url") == 0) {
			free(cf->url);
			cf->url = xstrdup(val);
		} else if (strcmp(key, "token") == 0) {
			if (conf_token_ok(val) < 0) {
				rc = ctl_fail(
				    CTL_EUSAGE,
				    "%s:%d: token: printable ASCII without spaces expected", path,
				    lineno);
				break;
			}
			conf_wipe(cf->token);
			cf->token = xstrdup(val);
		} else if (strcmp(key, "token_file") == 0) {
			free(cf->token_file);
			cf->token_file = resolve(val, dir);
		} else if (strcmp(key, "timeout") == 0) {
			if (conf_parse_timeout(val, &cf->timeout_ms) < 0)
				rc = ctl_fail(CTL_EUSAGE,
				              "%s:%d: timeout: seconds or a duration such as 30s "
				              "expected",
				              path, lineno);
		} else if (strcmp(key, "dates") == 0) {
			if (strcmp(val, "auto") == 0)
				cf->dates = -1;
			else if (strcmp(val, "jalali") == 0)
				cf->dates = 1;
			else if (strcmp(val, "gregorian") == 0)
				cf->dates = 0;
			else
				rc = ctl_fail(CTL_EUSAGE,
				              "%s:%d: dates: auto, jalali or gregorian expected",
				              path, lineno);
		} else {
			rc = ctl_fail(CTL_EUSAGE,
			              "%s:%d: unknown key \"%s\" (url, token, token_file, timeout, "
			              "dates)",
			              path, lineno, key);
		}
	}
	explicit_bzero(b.p, b.len);
	buf_free(&b);
	free(dir);
	return rc;
}
