/*
 * cmd_raffles.c - `clubctl raffles ...`: list, get, create, entries, enter,
 * draw and verify over /v1/raffles.  verify downloads the published draw
 * record and re-runs the draw locally with clubd-draw-verify itself (the
 * same daemon/draw.c the server used), feeding it the record's entry list
 * on standard input, so a verified draw is checked by code that does not
 * trust the server's answer.
 *
 * Owns the JSON it builds and the verifier child process (waited for before
 * returning).  Never checks a definition itself: the server is the judge.
 * Limits: definition files up to 4 MiB (codes lists); listings hold one page
 * (<= 200 raffles, <= 500 entries) at a time.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clubctl.h"
#include "out.h"
#include "res.h"
#include "util.h"

#define FILE_MAX      (4u << 20)
#define PAGE_MAX      200
#define ENTRIES_PAGE  500
#define VERIFIER      "clubd-draw-verify"
#define VERIFY_OUTPUT (1u << 20) /* the verifier prints a few lines per winner */

enum {
	O_LIMIT = 256,
	O_ALL,
	O_CONTACT,
	O_METHOD,
	O_CODE,
	O_REF,
	O_COUNT,
	O_AMOUNT,
	O_CURRENCY,
	O_FORCE,
	O_VERIFIER,
};

static const struct ctl_opt list_opts[] = {
    {"limit", O_LIMIT, "N", "show at most N (default 50)", 0, NULL},
    {"all", O_ALL, NULL, "show everything, following the cursor", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt enter_opts[] = {
    {"contact", O_CONTACT, "ID", "the contact to enter (required)", 0, NULL},
    {"method", O_METHOD, "METHOD", "how they enter (default keyword)", 0,
     "keyword code purchase points"},
    {"code", O_CODE, "CODE", "the code (method code)", 0, NULL},
    {"ref", O_REF, "REF", "your reference: a retry with the same one enters once", 0, NULL},
    {"count", O_COUNT, "N", "entries to buy with points (method points)", 0, NULL},
    {"amount", O_AMOUNT, "AMOUNT", "the purchase amount (method purchase)", 0, NULL},
    {"currency", O_CURRENCY, "CUR", "the purchase currency, e.g. IRR", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt draw_opts[] = {
    {"force", O_FORCE, NULL, "draw before the entry window ends", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt verify_opts[] = {
    {"verifier", O_VERIFIER, "PATH", "the clubd-draw-verify to run", CTL_OPT_FILE, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- output */

static void kv_time(const char *k, const char *v)
{
	char *t = out_time(v);
	out_kv(stdout, 16, k, t);
	free(t);
}

static void print_raffle(struct ctl *c, const json_t *r)
{
	const int w = 16;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(r, "id") ? ctl_jstr(r, "id") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(r, "id"));
	out_kv(stdout, w, "name", ctl_jstr(r, "name"));
	out_kv(stdout, w, "prize", ctl_jstr(r, "prize"));
	out_kv(stdout, w, "state", ctl_jstr(r, "state"));
	kv_time("starts", ctl_jstr(r, "starts_at"));
	kv_time("ends", ctl_jstr(r, "ends_at"));
	struct buf m;
	buf_init(&m, 0);
	buf_append(&m, "", 0);
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(r, "methods"), i, x)
	{
		buf_printf(&m, "%s%s", i ? ", " : "",
		           json_string_value(x) ? json_string_value(x) : "?");
	}
	out_kv(stdout, w, "methods", m.p);
	buf_free(&m);
	out_kv(stdout, w, "keyword", ctl_jstr(r, "keyword"));
	const json_t *p = json_object_get(r, "purchase");
	if (json_is_object(p)) {
		char *pv = xasprintf("%s %s and more%s%s", ctl_jstr(p, "min_amount"),
		                     ctl_jstr(p, "currency"),
		                     ctl_jstr(p, "entries_per") ? ", one entry per " : "",
		                     ctl_jstr(p, "entries_per") ? ctl_jstr(p, "entries_per") : "");
		out_kv(stdout, w, "purchase", pv);
		free(pv);
	}
	char *s = res_llstr(json_object_get(r, "points_cost"));
	if (s)
		out_kv(stdout, w, "points per entry", s);
	free(s);
	s = res_llstr(json_object_get(r, "max_entries_per_contact"));
	out_kv(stdout, w, "max entries", s);
	free(s);
	s = res_llstr(json_object_get(r, "winners"));
	out_kv(stdout, w, "winners", s);
	free(s);
	const json_t *e = json_object_get(r, "entries");
	s = xasprintf("%lld by %lld contacts (weight %lld)",
	              (long long)json_integer_value(json_object_get(e, "count")),
	              (long long)json_integer_value(json_object_get(e, "contacts")),
	              (long long)json_integer_value(json_object_get(e, "weight")));
	out_kv(stdout, w, "entries", s);
	free(s);
	if (json_is_integer(json_object_get(r, "codes_total"))) {
		s = xasprintf("%lld of %lld used",
		              (long long)json_integer_value(json_object_get(r, "codes_used")),
		              (long long)json_integer_value(json_object_get(r, "codes_total")));
		out_kv(stdout, w, "codes", s);
		free(s);
	}
	out_kv(stdout, w, "commit", ctl_jstr(r, "commit"));
	if (ctl_jstr(r, "seed")) {
		out_kv(stdout, w, "seed", ctl_jstr(r, "seed"));
		kv_time("drawn", ctl_jstr(r, "drawn_at"));
	}
}

/* ---------------------------------------------------------------- list, get, create */

static int list_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	char *n = res_llstr(json_object_get(json_object_get(it, "entries"), "count"));
	char *ends = out_time(ctl_jstr(it, "ends_at"));
	const char *row[] = {ctl_jstr(it, "id"), ctl_jstr(it, "name"), ctl_jstr(it, "state"), n,
	                     ends};
	out_table_add(t, row);
	free(n);
	free(ends);
	return CTL_OK;
}

static int run_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ID", "NAME", "STATE", "ENTRIES", "ENDS"};
	struct res_page p = {
	    .path = "/v1/raffles", .limit = 50, .page_max = PAGE_MAX, .row = list_row};
	int rc = res_page_args(c, a, O_LIMIT, O_ALL, 0, &p);
	if (rc == CTL_OK && !c->json && !c->quiet) {
		p.t = out_table_new(head, 5);
		out_table_align(p.t, 3, OUT_RIGHT);
		out_table_max(p.t, 1, 30);
	}
	if (rc == CTL_OK)
		rc = res_page_run(c, &p);
	res_page_free(&p);
	return rc;
}

static int run_get(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/raffles/", a->pos[0], NULL);
	int rc = res_get(c, path, print_raffle);
	free(path);
	return rc;
}

static int run_create(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	int rc = res_send_file(c, "POST", "/v1/raffles", a->pos[0], FILE_MAX, "a raffle definition",
	                       &ans);
	if (rc != CTL_OK)
		return rc;
	if (res_echo(c, ans)) {
		char *id = out_clean(ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : "");
		printf("created raffle %s\ncommitment (SHA-256 of the secret seed): %s\n", id,
		       ctl_jstr(ans, "commit") ? ctl_jstr(ans, "commit") : "?");
		free(id);
	}
	json_decref(ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- entries */

static int entry_row(struct ctl *c, struct out_table *t, const json_t *it, void *arg)
{
	(void)c;
	(void)arg;
	char *n = res_llstr(json_object_get(it, "entries"));
	char *wt = res_llstr(json_object_get(it, "weight"));
	char *at = out_time(ctl_jstr(it, "at"));
	const char *row[] = {
	    ctl_jstr(it, "id"), ctl_jstr(it, "contact_id"), ctl_jstr(it, "method"), n, wt, at};
	out_table_add(t, row);
	free(n);
	free(wt);
	free(at);
	return CTL_OK;
}

static int run_entries(struct ctl *c, const struct ctl_args *a)
{
	static const char *const head[] = {"ENTRY", "CONTACT", "METHOD", "N", "WEIGHT", "AT"};
	char *base = ctl_path(c, "/v1/raffles/", a->pos[0], "/entries");
	struct res_page p = {.path = base,
	                     .limit = 50,
	                     .page_max = ENTRIES_PAGE,
	                     .quiet_key = "contact_id",
	                     .row = entry_row};
	int rc = res_page_args(c, a, O_LIMIT, O_ALL, 0, &p);
	if (rc == CTL_OK && !c->json && !c->quiet) {
		p.t = out_table_new(head, 6);
		out_table_align(p.t, 3, OUT_RIGHT);
		out_table_align(p.t, 4, OUT_RIGHT);
	}
	if (rc == CTL_OK)
		rc = res_page_run(c, &p);
	res_page_free(&p);
	free(base);
	return rc;
}

static int run_enter(struct ctl *c, const struct ctl_args *a)
{
	const char *contact = ctl_arg(a, O_CONTACT), *v;
	if (!contact)
		return ctl_usage(c, "--contact is required");
	json_t *body = json_pack("{s:s, s:s}", "contact_id", contact, "method",
	                         ctl_arg(a, O_METHOD) ? ctl_arg(a, O_METHOD) : "keyword");
	if ((v = ctl_arg(a, O_CODE)))
		json_object_set_new(body, "code", json_string(v));
	if ((v = ctl_arg(a, O_REF)))
		json_object_set_new(body, "ref", json_string(v));
	if ((v = ctl_arg(a, O_AMOUNT)))
		json_object_set_new(body, "amount", json_string(v));
	if ((v = ctl_arg(a, O_CURRENCY)))
		json_object_set_new(body, "currency", json_string(v));
	if ((v = ctl_arg(a, O_COUNT))) {
		int64_t n;
		if (parse_i64(v, 1, 1000, &n) < 0) {
			json_decref(body);
			return ctl_usage(c, "--count: 1..1000 expected");
		}
		json_object_set_new(body, "count", json_integer(n));
	}
	char *path = ctl_path(c, "/v1/raffles/", a->pos[0], "/entries");
	json_t *ans;
	long status = 0;
	int rc = ctl_api(c, "POST", path, body, NULL, &ans, &status);
	free(path);
	json_decref(body);
	if (rc != CTL_OK)
		return rc;
	if (c->json) {
		ctl_print_json(ans);
	} else if (c->quiet) {
		printf("%s\n", ctl_jstr(ans, "entry") ? ctl_jstr(ans, "entry") : "");
	} else {
		printf(
		    "%s %s: %lld entr%s (weight %lld), %lld in all for this contact%s\n",
		    json_is_true(json_object_get(ans, "replayed")) ? "already entered" : "entered",
		    ctl_jstr(ans, "entry") ? ctl_jstr(ans, "entry") : "?",
		    (long long)json_integer_value(json_object_get(ans, "entries")),
		    json_integer_value(json_object_get(ans, "entries")) == 1 ? "y" : "ies",
		    (long long)json_integer_value(json_object_get(ans, "weight")),
		    (long long)json_integer_value(json_object_get(ans, "contact_entries")),
		    json_is_true(json_object_get(ans, "capped")) ? " (capped at the maximum)" : "");
	}
	json_decref(ans);
	return CTL_OK;
}

/* ---------------------------------------------------------------- draw, verify */

static void print_record(struct ctl *c, const json_t *r)
{
	const int w = 16;
	if (c->quiet) {
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(r, "winners"), i, x)
		{
			printf("%s\n", json_string_value(x) ? json_string_value(x) : "");
		}
		return;
	}
	out_kv(stdout, w, "raffle", ctl_jstr(r, "raffle_id"));
	kv_time("drawn", ctl_jstr(r, "drawn_at"));
	out_kv(stdout, w, "seed", ctl_jstr(r, "seed"));
	out_kv(stdout, w, "commit", ctl_jstr(r, "commit"));
	out_kv(stdout, w, "entries digest", ctl_jstr(r, "entries_digest"));
	char *s = xasprintf("%lld (total weight %lld)",
	                    (long long)json_integer_value(json_object_get(r, "entries_count")),
	                    (long long)json_integer_value(json_object_get(r, "total_weight")));
	out_kv(stdout, w, "entries", s);
	free(s);
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(r, "winners"), i, x)
	{
		char k[32];
		snprintf(k, sizeof k, "winner %zu", i + 1);
		out_kv(stdout, w, k, json_string_value(x));
	}
	json_array_foreach(json_object_get(r, "notifications"), i, x)
	{
		char *line = xasprintf(
		    "%s: %s%s", ctl_jstr(x, "contact_id") ? ctl_jstr(x, "contact_id") : "?",
		    ctl_jstr(x, "message_id") ? "message " : "skipped: ",
		    ctl_jstr(x, "message_id")
		        ? ctl_jstr(x, "message_id")
		        : (ctl_jstr(x, "skipped") ? ctl_jstr(x, "skipped") : "?"));
		out_kv(stdout, w, i ? "" : "notified", line);
		free(line);
	}
}

static int run_draw(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/raffles/", a->pos[0],
	                      ctl_has(a, O_FORCE) ? "/draw?force=true" : "/draw");
	json_t *ans;
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	if (c->json)
		ctl_print_json(ans);
	else
		print_record(c, ans);
	json_decref(ans);
	return CTL_OK;
}

/* The verifier to run: --verifier, $CLUBD_DRAW_VERIFY, the one next to this
 * clubctl, else the name alone (PATH).  Caller frees. */
static char *find_verifier(const struct ctl_args *a)
{
	const char *v = ctl_arg(a, O_VERIFIER);
	if (v)
		return xstrdup(v);
	v = getenv("CLUBD_DRAW_VERIFY");
	if (v && *v)
		return xstrdup(v);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			char *p = xasprintf("%s/%s", self, VERIFIER);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup(VERIFIER);
}

/* Write all of s to fd; 0 or -1. */
static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Run the verifier with argv, entries on its stdin; its stdout into out
 * (capped), its stderr passed through.  The exit status (0..255), or -1
 * when it could not run (127 from the child: not found).
 */
static int run_verifier(char *const *argv, const char *entries, struct buf *out)
{
	int in[2], op[2];
	if (pipe(in) < 0)
		return -1;
	if (pipe(op) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		close(op[0]);
		close(op[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(op[1], 1);
		close(in[0]);
		close(in[1]);
		close(op[0]);
		close(op[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "clubctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(op[1]);
	/* the verifier reads its whole input before it prints a line, so
	 * writing everything first cannot deadlock */
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	write_all(in[1], entries, strlen(entries));
	close(in[1]);
	char chunk[4096];
	ssize_t got;
	while ((got = read(op[0], chunk, sizeof chunk)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		buf_append(out, chunk, (size_t)got); /* beyond the cap: dropped */
	}
	close(op[0]);
	signal(SIGPIPE, old);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The value of "key: value" in the verifier's output, or NULL; caller frees. */
static char *out_field(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > kl + 2 && strncmp(p, key, kl) == 0 && p[kl] == ':' && p[kl + 1] == ' ')
			return xstrndup(p + kl + 2, len - kl - 2);
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int run_verify(struct ctl *c, const struct ctl_args *a)
{
	char *path = ctl_path(c, "/v1/raffles/", a->pos[0], "/draw");
	json_t *rec;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &rec, NULL);
	free(path);
	if (rc != CTL_OK)
		return rc;
	const char *seed = ctl_jstr(rec, "seed"), *commit = ctl_jstr(rec, "commit");
	const char *entries = ctl_jstr(rec, "entries"), *digest = ctl_jstr(rec, "entries_digest");
	const json_t *winners = json_object_get(rec, "winners");
	json_int_t k = json_integer_value(json_object_get(rec, "winners_count"));
	if (!seed || !commit || !entries || !digest || !json_is_array(winners)) {
		json_decref(rec);
		return ctl_fail(CTL_EAPI, "the draw record lacks seed, commit, entries or winners");
	}
	if (k == 0) {
		json_decref(rec);
		return ctl_fail(CTL_EAPI, "nobody entered: there is no draw to verify");
	}
	struct buf expect;
	buf_init(&expect, 0);
	buf_append(&expect, "", 0);
	size_t i;
	json_t *x;
	json_array_foreach(winners, i, x)
	{
		buf_printf(&expect, "%s%s", i ? "," : "",
		           json_string_value(x) ? json_string_value(x) : "");
	}
	char kbuf[32];
	snprintf(kbuf, sizeof kbuf, "%lld", (long long)k);
	char *verifier = find_verifier(a);
	char *argv[] = {verifier,       "--seed",    (char *)seed, "--commit",
	                (char *)commit, "--winners", kbuf,         "--expect",
	                expect.p,       "-",         NULL};
	struct buf out;
	buf_init(&out, VERIFY_OUTPUT);
	int st = run_verifier(argv, entries, &out);
	const char *text = out.p ? out.p : "";
	char *vdigest = out_field(text, "entries_digest");
	int digest_ok = vdigest && strcmp(vdigest, digest) == 0;
	int verified = st == 0 && digest_ok;
	if (c->json) {
		json_t *doc = json_pack("{s:s, s:b, s:i, s:s, s:s?, s:O, s:s, s:s}", "raffle_id",
		                        a->pos[0], "verified", verified, "verifier_exit", st,
		                        "entries_digest", digest, "verifier_digest", vdigest,
		                        "winners", winners, "verifier", verifier, "output", text);
		ctl_print_json(doc);
		json_decref(doc);
	} else if (!c->quiet) {
		fputs(text, stdout);
		if (st == 0 && !digest_ok)
			printf("digest: MISMATCH (the record says %s)\n", digest);
		printf("%s\n", verified ? "verified: the published seed and entry list give these "
		                          "winners"
		                        : "NOT verified");
	}
	if (st < 0 || st == 127)
		ctl_fail(CTL_EUSAGE, "could not run %s (use --verifier PATH)", verifier);
	rc = verified ? CTL_OK : (st < 0 || st == 127 || st == 2 ? CTL_EUSAGE : CTL_EAPI);
	free(vdigest);
	free(verifier);
	buf_free(&out);
	buf_free(&expect);
	json_decref(rec);
	return rc;
}

static const struct ctl_cmd raffles_cmds[] = {
    {"list", NULL, 0, 0, "list raffles by id", NULL, list_opts, run_list},
    {"get", "ID", 1, 1, "show a raffle: rules, entries, commitment (and seed once drawn)", NULL,
     NULL, run_get},
    {"create", "FILE", 1, 1, "create a raffle from a JSON definition (- for stdin)",
     "FILE holds {\"name\", \"starts_at\", \"ends_at\", \"methods\", \"winners\", ...}\n"
     "(see docs/raffles.md).  Prints the commitment: SHA-256 of the secret seed the\n"
     "draw will use; publish it before entries open.",
     NULL, run_create},
    {"entries", "ID", 1, 1, "list a raffle's entries, oldest first", NULL, list_opts, run_entries},
    {"enter", "ID", 1, 1, "enter a contact into a raffle",
     "One entry by --method (keyword by default).  The same contact, method and\n"
     "--ref enter once: a retry prints the first entry.  The server enforces the\n"
     "window, the maximum per contact, single-use codes and the points balance.",
     enter_opts, run_enter},
    {"draw", "ID", 1, 1, "draw the winners (once; admin)",
     "Reveals the seed, draws with clubd-draw-v1 and queues each winner's message.\n"
     "Before the entry window ends the server refuses unless --force.",
     draw_opts, run_draw},
    {"verify", "ID", 1, 1, "re-run a published draw locally with clubd-draw-verify",
     "Downloads the draw record (seed, commitment, entry list, winners) and runs\n"
     "clubd-draw-verify on it: exit 0 only when SHA-256(seed) is the commitment\n"
     "published at creation, the entry list's digest is the one recorded, and the\n"
     "draw gives exactly the announced winners in order.  The verifier is\n"
     "--verifier, $CLUBD_DRAW_VERIFY, the one installed next to clubctl, or the\n"
     "one on PATH.",
     verify_opts, run_verify},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_raffles = {"raffles", "raffles: entries, draws, verification",
                                            raffles_cmds};
