/*
 * main.c - clubctl's entry point: the global options, one pass over argv
 * that finds the command in the group tables (groups.def) and collects its
 * options, the resolution of URL, token, timeout and date style (flags,
 * then environment, then the config file), help, the hidden `_complete`
 * helper behind the bash completion, the hidden `_selftest`, and dispatch.
 *
 * Owns struct ctl for the run; wipes the token at exit and overwrites a
 * --token value in argv so it does not linger in /proc/PID/cmdline.  Never
 * talks to the server itself.  Limits: options are GNU style (--name VALUE,
 * --name=VALUE, -x VALUE); short options do not bundle.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clubctl.h"
#include "conf.h"
#include "http.h"
#include "jalali.h"
#include "out.h"
#include "text.h"
#include "util.h"

#define DEFAULT_URL     "http://127.0.0.1:8025"
#define DEFAULT_TIMEOUT 30000

enum {
	G_URL = 1000,
	G_TOKEN,
	G_TOKEN_FILE,
	G_CONFIG,
	G_JSON,
	G_TIMEOUT,
	G_JALALI,
	G_GREGORIAN,
	G_VERSION,
	G_QUIET = 'q',
	G_HELP = 'h',
};

const struct ctl_opt ctl_global_opts[] = {
    {"url", G_URL, "URL", "server base URL (env CLUBD_URL; default " DEFAULT_URL ")", 0, NULL},
    {"token-file", G_TOKEN_FILE, "FILE", "read the API token from FILE (mode 0600)", CTL_OPT_FILE,
     NULL},
    {"token", G_TOKEN, "TOKEN", "API token (env CLUBD_TOKEN; prefer --token-file)", 0, NULL},
    {"config", G_CONFIG, "FILE", "config file (default ~/.config/clubctl/config)", CTL_OPT_FILE,
     NULL},
    {"json", G_JSON, NULL, "print the API's JSON instead of tables", 0, NULL},
    {"quiet", G_QUIET, NULL, "no progress or informational lines", 0, NULL},
    {"timeout", G_TIMEOUT, "DURATION", "per-request timeout (30, 30s, 2m; default 30s)", 0, NULL},
    {"jalali", G_JALALI, NULL, "Jalali dates with Persian digits (default when LANG=fa*)", 0, NULL},
    {"gregorian", G_GREGORIAN, NULL, "Gregorian dates with ASCII digits", 0, NULL},
    {"help", G_HELP, NULL, "show help for the command", 0, NULL},
    {"version", G_VERSION, NULL, "print the version and exit", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

#define CTL_GROUP(n) &ctl_group_##n,
static const struct ctl_group *const groups[] = {
#include "groups.def"
};
#undef CTL_GROUP

/* ---------------------------------------------------------------- lookup */

static const struct ctl_group *find_group(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		if (strcmp(groups[i]->name, name) == 0)
			return groups[i];
	return NULL;
}

static int has_subcommands(const struct ctl_group *g)
{
	return g->cmds[0].name != NULL;
}

static const struct ctl_cmd *find_cmd(const struct ctl_group *g, const char *name)
{
	for (const struct ctl_cmd *c = g->cmds; c->run; c++)
		if (c->name && name && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static const struct ctl_opt *find_opt(const struct ctl_opt *const *tables, const char *name,
                                      int key)
{
	for (int t = 0; tables[t]; t++)
		for (const struct ctl_opt *o = tables[t]; o->name; o++)
			if ((name && strcmp(o->name, name) == 0) || (!name && o->key == key))
				return o;
	return NULL;
}

/* ---------------------------------------------------------------- help */

static void print_opts(FILE *f, const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o && o->name; o++) {
		char left[64];
		if (o->key < 256 && o->key > ' ')
			snprintf(left, sizeof left, "-%c, --%s%s%s", o->key, o->name,
			         o->meta ? " " : "", o->meta ? o->meta : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", o->name, o->meta ? " " : "",
			         o->meta ? o->meta : "");
		fprintf(f, "  %-26s %s", left, o->help);
		if (o->choices)
			fprintf(f, " (%s)", o->choices);
		if (o->flags & CTL_OPT_MULTI)
			fputs(" [repeatable]", f);
		fputc('\n', f);
	}
}

static void cmd_title(char *out, size_t n, const struct ctl_group *g, const struct ctl_cmd *c)
{
	snprintf(out, n, "%s%s%s", g->name, c->name ? " " : "", c->name ? c->name : "");
}

/* Width of the "group cmd ARGS" column over every command. */
static int usage_width(void)
{
	size_t w = 0;
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		for (const struct ctl_cmd *c = groups[i]->cmds; c->run; c++) {
			size_t n = strlen(groups[i]->name) + (c->name ? strlen(c->name) + 1 : 0) +
			           (c->args ? strlen(c->args) + 1 : 0);
			if (n > w)
				w = n;
		}
	}
	return (int)w;
}

static void list_cmds(FILE *f, const struct ctl_group *g, int w)
{
	for (const struct ctl_cmd *c = g->cmds; c->run; c++) {
		char t[64], u[128];
		cmd_title(t, sizeof t, g, c);
		snprintf(u, sizeof u, "%s%s%s", t, c->args ? " " : "", c->args ? c->args : "");
		fprintf(f, "  %-*s  %s\n", w, u, c->summary);
	}
}

static void help_all(FILE *f)
{
	fputs("clubctl - command-line client for clubd's HTTP API\n\n"
	      "Usage: clubctl [OPTIONS] COMMAND [ARGS...]\n\nCommands:\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		list_cmds(f, groups[i], usage_width());
	fputs("\nOptions (accepted before or after the command):\n", f);
	print_opts(f, ctl_global_opts);
	fputs("\nRun 'clubctl help COMMAND' for a command's options, e.g. 'clubctl help contacts "
	      "add'.\n"
	      "Exit status: 0 ok, 1 API error, 2 usage or configuration error, 3 cannot connect.\n",
	      f);
}

static void help_group(FILE *f, const struct ctl_group *g)
{
	fprintf(f, "clubctl %s - %s\n\nCommands:\n", g->name, g->summary);
	list_cmds(f, g, usage_width());
	fprintf(f, "\nRun 'clubctl help %s COMMAND' for its options.\n", g->name);
}

static void help_cmd(FILE *f, const struct ctl_group *g, const struct ctl_cmd *c)
{
	char t[64];
	cmd_title(t, sizeof t, g, c);
	fprintf(f, "Usage: clubctl %s%s%s%s\n\n%s.\n", t,
	        c->opts && c->opts->name ? " [OPTIONS]" : "", c->args ? " " : "",
	        c->args ? c->args : "", c->summary);
	if (c->help)
		fprintf(f, "\n%s\n", c->help);
	if (c->opts && c->opts->name) {
		fputs("\nOptions:\n", f);
		print_opts(f, c->opts);
	}
	fputs("\nGlobal options (--url, --token-file, --json, -q, --timeout, --jalali, ...): see "
	      "'clubctl help'.\n",
	      f);
}

/* help [GROUP [COMMAND]] */
static int do_help(struct ctl *c, int n, char **words)
{
	if (n == 0) {
		help_all(stdout);
		return CTL_OK;
	}
	const struct ctl_group *g = find_group(words[0]);
	if (!g)
		return ctl_usage(c, "unknown command '%s'", words[0]);
	if (n == 1) {
		if (has_subcommands(g))
			help_group(stdout, g);
		else
			help_cmd(stdout, g, &g->cmds[0]);
		return CTL_OK;
	}
	const struct ctl_cmd *cmd = find_cmd(g, words[1]);
	if (!cmd || n > 2)
		return ctl_usage(c, "unknown command '%s %s'", words[0], words[1]);
	help_cmd(stdout, g, cmd);
	return CTL_OK;
}

/* ---------------------------------------------------------------- completion */

static void print_names(const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o && o->name; o++)
		printf("--%s\n", o->name);
}

static void print_choices(const char *choices)
{
	const char *p = choices;
	while (*p) {
		size_t n = strcspn(p, " ");
		printf("%.*s\n", (int)n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
}

/*
 * `clubctl _complete WORD...`: the candidates for the word after WORDs, one
 * per line; "@file" asks the shell for file names.  Never reads config.
 */
static int do_complete(int n, char **w)
{
	const struct ctl_group *g = NULL;
	const struct ctl_cmd *cmd = NULL;
	int help = 0;
	const struct ctl_opt *tables[3] = {ctl_global_opts, NULL, NULL};

	for (int i = 0; i < n; i++) {
		if (w[i][0] == '-' && w[i][1]) {
			const char *name = w[i][1] == '-' ? w[i] + 2 : NULL;
			if (name && strchr(name, '='))
				continue;
			const struct ctl_opt *o = find_opt(tables, name, name ? 0 : w[i][1]);
			if (o && o->meta) {
				if (i == n - 1) {
					if (o->choices)
						print_choices(o->choices);
					else if (o->flags & CTL_OPT_FILE)
						puts("@file");
					return CTL_OK;
				}
				i++;
			}
			continue;
		}
		if (!g && !help && strcmp(w[i], "help") == 0) {
			help = 1;
		} else if (!g) {
			g = find_group(w[i]);
			if (!g)
				return CTL_OK;
			if (!has_subcommands(g))
				cmd = &g->cmds[0];
		} else if (!cmd) {
			cmd = find_cmd(g, w[i]);
			if (!cmd)
				return CTL_OK;
		}
		if (cmd)
			tables[1] = cmd->opts;
	}
	if (!g) {
		for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
			puts(groups[i]->name);
		if (!help) {
			puts("help");
			print_names(ctl_global_opts);
		}
	} else if (!cmd) {
		for (const struct ctl_cmd *c = g->cmds; c->run; c++)
			puts(c->name);
	} else if (!help) {
		print_names(cmd->opts);
		print_names(ctl_global_opts);
		if (cmd->args && strstr(cmd->args, "FILE"))
			puts("@file");
	}
	return CTL_OK;
}

/* ---------------------------------------------------------------- self-test */

static int selftest(void)
{
	char err[256];
	int bad = 0;
	if (jalali_selfcheck(err, sizeof err) < 0) {
		fprintf(stderr, "selftest: jalali: %s\n", err);
		bad = 1;
	}
	static const struct {
		const char *s;
		size_t w;
	} widths[] = {
	    {"abc", 3},
	    {"سارا", 4},
	    {"مُحَمَّد", 4},                /* harakat U+064F U+064E U+0651 U+064E are zero width */
	    {"می\xE2\x80\x8Cخواهم", 7}, /* ZWNJ */
	    {"\xD8\xA7\xD9\xB0", 1},    /* alef + superscript alef U+0670 */
	    {"中文", 4},
	    {"e\xCC\x81", 1}, /* e + combining acute */
	    {"۱۴۰۵", 4},
	};
	for (size_t i = 0; i < ARRAY_SIZE(widths); i++) {
		size_t w = out_width(widths[i].s);
		if (w != widths[i].w) {
			fprintf(stderr, "selftest: width of '%s' is %zu, want %zu\n", widths[i].s,
			        w, widths[i].w);
			bad = 1;
		}
	}
	char *fit = out_fit("سارا احمدی", 5);
	if (strcmp(fit, "سارا\xE2\x80\xA6") != 0) {
		fprintf(stderr, "selftest: out_fit gave '%s'\n", fit);
		bad = 1;
	}
	free(fit);
	int64_t ms;
	if (out_parse_rfc3339("2026-11-23T10:00:00.250Z", &ms) < 0 || ms != 1795428000250LL ||
	    out_parse_rfc3339("2026-11-23T13:30:00+03:30", &ms) < 0 || ms != 1795428000000LL) {
		fprintf(stderr, "selftest: rfc3339 parsing\n");
		bad = 1;
	}
	out_set_jalali(1);
	char *d = out_digits("1404-01-01");
	if (strcmp(d, "۱۴۰۴-۰۱-۰۱") != 0) {
		fprintf(stderr, "selftest: persian digits gave '%s'\n", d);
		bad = 1;
	}
	free(d);
	out_set_jalali(0);
	if (!bad)
		puts("selftest: ok");
	return bad ? 1 : 0;
}

/* ---------------------------------------------------------------- argv */

struct parsed {
	struct ctl_args a;
	const struct ctl_group *g;
	const struct ctl_cmd *cmd;
	int help_cmd; /* "help" was the command */
	char **words; /* after "help" */
	int nwords;
};

static void add_arg(struct ctl_args *a, int key, const char *val)
{
	a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
	a->v[a->n].key = key;
	a->v[a->n].val = val;
	a->n++;
}

static int parse_argv(struct ctl *c, int argc, char **argv, struct parsed *p)
{
	const struct ctl_opt *tables[3] = {ctl_global_opts, NULL, NULL};
	int dashdash = 0;

	p->a.pos = xcalloc((size_t)argc + 1, sizeof *p->a.pos);
	p->words = xcalloc((size_t)argc + 1, sizeof *p->words);
	for (int i = 1; i < argc; i++) {
		char *s = argv[i];
		if (!dashdash && strcmp(s, "--") == 0) {
			dashdash = 1;
			continue;
		}
		if (!dashdash && s[0] == '-' && s[1]) {
			const struct ctl_opt *o;
			char *val = NULL;
			if (s[1] == '-') {
				char *eq = strchr(s + 2, '=');
				char name[64];
				size_t nl = eq ? (size_t)(eq - (s + 2)) : strlen(s + 2);
				snprintf(name, sizeof name, "%.*s", (int)nl, s + 2);
				o = find_opt(tables, name, 0);
				if (!o)
					return ctl_usage(c, "unknown option --%s%s%s", name,
					                 c->cmdpath ? " for " : "",
					                 c->cmdpath ? c->cmdpath : "");
				if (eq && !o->meta)
					return ctl_usage(c, "option --%s takes no value", o->name);
				val = eq ? eq + 1 : NULL;
			} else {
				o = s[2] ? NULL : find_opt(tables, NULL, (unsigned char)s[1]);
				if (!o)
					return ctl_usage(c, "unknown option %s%s%s", s,
					                 c->cmdpath ? " for " : "",
					                 c->cmdpath ? c->cmdpath : "");
			}
			if (o->meta && !val) {
				if (i + 1 >= argc)
					return ctl_usage(c, "option --%s needs a value (%s)",
					                 o->name, o->meta);
				val = argv[++i];
			}
			if (o->choices && val) {
				/* the value must be one of the words in choices */
				const char *q = o->choices;
				int ok = 0;
				size_t vl = strlen(val);
				while (*q && !ok) {
					size_t n = strcspn(q, " ");
					ok = n == vl && strncmp(q, val, n) == 0;
					q += n;
					while (*q == ' ')
						q++;
				}
				if (!ok)
					return ctl_usage(c, "--%s must be one of: %s", o->name,
					                 o->choices);
			}
			if (o->key == G_TOKEN && val) {
				/* keep it out of /proc/PID/cmdline: use a copy */
				char *copy = xstrdup(val);
				memset(val, 'x', strlen(val));
				val = copy;
			}
			int again = ctl_has(&p->a, o->key);
			add_arg(&p->a, o->key, val);
			if (again && o->meta && !(o->flags & CTL_OPT_MULTI))
				return ctl_usage(c, "option --%s given twice", o->name);
			continue;
		}
		if (p->help_cmd) {
			p->words[p->nwords++] = s;
		} else if (!p->g) {
			if (strcmp(s, "help") == 0) {
				p->help_cmd = 1;
				continue;
			}
			p->g = find_group(s);
			if (!p->g)
				return ctl_usage(c, "unknown command '%s'", s);
			if (!has_subcommands(p->g)) {
				p->cmd = &p->g->cmds[0];
				c->cmdpath = p->g->name;
				tables[1] = p->cmd->opts;
			}
		} else if (!p->cmd) {
			p->cmd = find_cmd(p->g, s);
			if (!p->cmd)
				return ctl_usage(c, "unknown command '%s %s'", p->g->name, s);
			c->cmdpath = xasprintf("%s %s", p->g->name, p->cmd->name);
			tables[1] = p->cmd->opts;
		} else {
			p->a.pos[p->a.npos++] = s;
		}
	}
	return CTL_OK;
}

/* ---------------------------------------------------------------- settings */

static int resolve(struct ctl *c, const struct ctl_args *a)
{
	struct conf cf = {.dates = -1};
	const char *cpath = ctl_arg(a, G_CONFIG);
	char *def = NULL;
	int rc;

	if (cpath) {
		rc = conf_load(cpath, 1, &cf);
	} else {
		def = conf_default_path();
		rc = def ? conf_load(def, 0, &cf) : CTL_OK;
	}
	free(def);
	if (rc != CTL_OK)
		goto out;

	/* URL: flag, environment, config, default */
	const char *url = ctl_arg(a, G_URL);
	if (!url)
		url = getenv("CLUBD_URL");
	if (!url || !*url)
		url = cf.url;
	if (!url || !*url)
		url = DEFAULT_URL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		rc = ctl_usage(c, "the URL must start with http:// or https:// (got '%s')", url);
		goto out;
	}
	c->url = xstrdup(url);
	size_t ul = strlen(c->url);
	while (ul > 8 && c->url[ul - 1] == '/')
		c->url[--ul] = '\0';

	/* token: flag, token-file flag, environment, config */
	const char *tok = ctl_arg(a, G_TOKEN), *tfile = ctl_arg(a, G_TOKEN_FILE);
	if (tok) {
		if (conf_token_ok(tok) < 0) {
			rc = ctl_usage(c, "--token: printable ASCII without spaces expected");
			goto out;
		}
		c->token = xstrdup(tok);
	} else if (tfile) {
		rc = conf_read_token(tfile, &c->token);
	} else if (getenv("CLUBD_TOKEN") && *getenv("CLUBD_TOKEN")) {
		if (conf_token_ok(getenv("CLUBD_TOKEN")) < 0) {
			rc = ctl_usage(c, "CLUBD_TOKEN: printable ASCII without spaces expected");
			goto out;
		}
		c->token = xstrdup(getenv("CLUBD_TOKEN"));
	} else if (getenv("CLUBD_TOKEN_FILE") && *getenv("CLUBD_TOKEN_FILE")) {
		rc = conf_read_token(getenv("CLUBD_TOKEN_FILE"), &c->token);
	} else if (cf.token) {
		c->token = xstrdup(cf.token);
	} else if (cf.token_file) {
		rc = conf_read_token(cf.token_file, &c->token);
	}
	if (rc != CTL_OK)
		goto out;

	const char *to = ctl_arg(a, G_TIMEOUT);
	c->timeout_ms = cf.timeout_ms ? cf.timeout_ms : DEFAULT_TIMEOUT;
	if (to && conf_parse_timeout(to, &c->timeout_ms) < 0) {
		rc = ctl_usage(c, "--timeout: seconds or a duration such as 30s or 2m expected");
		goto out;
	}
	if (ctl_has(a, G_JALALI))
		out_set_jalali(1);
	else if (ctl_has(a, G_GREGORIAN))
		out_set_jalali(0);
	else if (cf.dates >= 0)
		out_set_jalali(cf.dates);
	else
		out_set_jalali(out_locale_is_fa());
out:
	conf_free(&cf);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl c = {.prog = "clubctl"};
	struct parsed p = {0};
	int rc;

	if (argc >= 2 && strcmp(argv[1], "_complete") == 0)
		return do_complete(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "_selftest") == 0)
		return selftest();

	rc = parse_argv(&c, argc, argv, &p);
	if (rc != CTL_OK)
		goto out;
	c.json = ctl_has(&p.a, G_JSON);
	c.quiet = ctl_has(&p.a, G_QUIET);
	c.tty_err = isatty(STDERR_FILENO);
	if (ctl_has(&p.a, G_VERSION)) {
		printf("clubctl %s (%s, jansson/%s)\n", CLUBCTL_VERSION, http_version(),
		       jansson_version_str());
		goto out;
	}
	if (p.help_cmd) {
		rc = do_help(&c, p.nwords, p.words);
		goto out;
	}
	if (ctl_has(&p.a, G_HELP)) {
		if (p.cmd)
			help_cmd(stdout, p.g, p.cmd);
		else if (p.g)
			help_group(stdout, p.g);
		else
			help_all(stdout);
		goto out;
	}
	if (!p.g) {
		help_all(stderr);
		rc = CTL_EUSAGE;
		goto out;
	}
	if (!p.cmd) {
		help_group(stderr, p.g);
		rc = CTL_EUSAGE;
		goto out;
	}
	if (p.a.npos < p.cmd->min_pos) {
		rc = ctl_usage(&c, "missing %s", p.cmd->args ? p.cmd->args : "arguments");
		goto out;
	}
	if (p.a.npos > p.cmd->max_pos) {
		rc = ctl_usage(&c, "unexpected argument '%s'", p.a.pos[p.cmd->max_pos]);
		goto out;
	}
	rc = resolve(&c, &p.a);
	if (rc != CTL_OK)
		goto out;
	rc = p.cmd->run(&c, &p.a);
	fflush(stdout);
	if (ferror(stdout) && rc == CTL_OK)
		rc = ctl_fail(CTL_EUSAGE, "cannot write the output");
out:
	http_free(c.http);
	conf_wipe(c.token);
	for (size_t i = 0; i < p.a.n; i++)
		if (p.a.v[i].key == G_TOKEN)
			conf_wipe((char *)p.a.v[i].val);
	free(p.a.v);
	free(p.a.pos);
	free(p.words);
	if (c.cmdpath && p.g && has_subcommands(p.g))
		free((char *)c.cmdpath);
	free(c.url);
	return rc;
}
