/*
 * gen-man-conf.c - prints the roff of the options part of clubd.conf(5)
 * from the option table itself (cfg_options[] in daemon/config.c), so the
 * man page cannot drift from the code.  tools/gen-man-conf compiles it
 * with daemon/config.c, util.c and log.c and splices the output between the
 * marker comments of man/clubd.conf.5; tests/integration/test_packaging.py
 * fails when the committed page differs.
 *
 * Owns: nothing but its output.  Never touches: files, the network, the
 * table (read only).  Limits: one line of help per option (the table's
 * help string); channel keys are not in the table and are written by hand
 * in the page.  Output is plain ASCII roff: '-' becomes "\-", '\' becomes
 * "\e", and a line never starts with '.' or '\''.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

#define KB  1024LL
#define MB  (1024LL * KB)
#define GB  (1024LL * MB)
#define SEC 1000LL
#define MIN (60 * SEC)
#define HR  (60 * MIN)
#define DAY (24 * HR)

/* Text for a roff line: escape '\' and '-'. */
static void put_text(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else if (*s == '-')
			fputs("\\-", stdout);
		else
			putchar(*s);
	}
}

/* The same unit choice as config.c's messages: the largest exact unit. */
static void fmt_duration(int64_t ms, char *buf, size_t n)
{
	static const struct {
		int64_t mult;
		const char *suf;
	} u[] = {{DAY, "d"}, {HR, "h"}, {MIN, "m"}, {SEC, "s"}};
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		if (ms != 0 && ms % u[i].mult == 0) {
			snprintf(buf, n, "%lld%s", (long long)(ms / u[i].mult), u[i].suf);
			return;
		}
	snprintf(buf, n, "%lldms", (long long)ms);
}

static void fmt_size(int64_t b, char *buf, size_t n)
{
	if (b != 0 && b % GB == 0)
		snprintf(buf, n, "%lldG", (long long)(b / GB));
	else if (b != 0 && b % MB == 0)
		snprintf(buf, n, "%lldM", (long long)(b / MB));
	else if (b != 0 && b % KB == 0)
		snprintf(buf, n, "%lldk", (long long)(b / KB));
	else
		snprintf(buf, n, "%lld", (long long)b);
}

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STR:
		return "string";
	case CFG_INT:
		return "integer";
	case CFG_SIZE:
		return "size";
	case CFG_DURATION:
		return "duration";
	case CFG_BOOL:
		return "bool";
	case CFG_LEVEL:
		return "level";
	}
	return "?";
}

/* "1 to 255 bytes", "0 to 65535", "10ms to 5m"; empty for bool and level. */
static void fmt_range(const struct cfg_opt *o, char *buf, size_t n)
{
	char a[32], b[32];
	buf[0] = '\0';
	switch (o->type) {
	case CFG_STR:
		if (o->min == o->max)
			snprintf(buf, n, "%lld bytes", (long long)o->max);
		else
			snprintf(buf, n, "%lld to %lld bytes", (long long)o->min,
			         (long long)o->max);
		break;
	case CFG_INT:
		snprintf(buf, n, "%lld to %lld", (long long)o->min, (long long)o->max);
		break;
	case CFG_SIZE:
		fmt_size(o->min, a, sizeof a);
		fmt_size(o->max, b, sizeof b);
		snprintf(buf, n, "%s to %s", a, b);
		break;
	case CFG_DURATION:
		fmt_duration(o->min, a, sizeof a);
		fmt_duration(o->max, b, sizeof b);
		snprintf(buf, n, "%s to %s", a, b);
		break;
	case CFG_BOOL:
	case CFG_LEVEL:
		break;
	}
}

static void put_option(const struct cfg_opt *o)
{
	char range[96];
	size_t hl = strlen(o->help);

	fputs(".TP\n.B ", stdout);
	put_text(o->name);
	putchar('\n');
	/* the help is never empty and never starts a line with '.' or '\'' */
	if (o->help[0] == '.' || o->help[0] == '\'')
		fputs("\\&", stdout);
	put_text(o->help);
	if (hl > 0 && o->help[hl - 1] != '.')
		putchar('.');
	fputs("\n.br\n", stdout);

	printf("\\fI%s\\fR", type_name(o->type));
	fmt_range(o, range, sizeof range);
	if (range[0]) {
		fputs(", ", stdout);
		put_text(range);
	}
	fputs("; default ", stdout);
	if (o->def[0]) {
		fputs("\\fB", stdout);
		put_text(o->def);
		fputs("\\fR", stdout);
	} else {
		fputs("empty", stdout);
	}
	printf("; %s.\n", o->reloadable ? "applied by SIGHUP" : "needs a restart");
}

int main(void)
{
	const char *section = NULL;
	for (size_t i = 0; i < cfg_noptions; i++) {
		const struct cfg_opt *o = &cfg_options[i];
		if (!section || strcmp(section, o->section) != 0) {
			/* The table keeps each section's rows together. */
			for (size_t k = 0; k < i; k++)
				if (strcmp(cfg_options[k].section, o->section) == 0) {
					fprintf(stderr,
					        "gen-man-conf: rows of [%s] are not together\n",
					        o->section);
					return 1;
				}
			section = o->section;
			fputs(".SS \"[", stdout);
			put_text(section);
			fputs("]\"\n", stdout);
		}
		put_option(o);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("gen-man-conf: stdout");
		return 1;
	}
	return 0;
}
