/*
 * test_email_smtp.c - the smtp driver on a real libuv loop against
 * tests/fakes/smtp_sink.py (aiosmtpd, a child process on a free 127.0.0.1
 * port): Persian subjects, names and bodies parsed back exactly by
 * Python's email package, multipart/alternative, Message-ID round trip,
 * List-Unsubscribe, 50 messages over few sessions, 451/550 at RCPT and
 * after the dot, dropped connections, bad password (PERMFAIL, no secret in
 * reasons or logs), STARTTLS required/verified/refused (certificates made
 * here with the openssl CLI), no plain-text password without TLS, header
 * injection refused, connection refused, timeouts, stop with messages
 * queued and in flight, config errors.  No message is ever reported OK
 * unless the sink stored it.  Every test ends with uv_loop_close() == 0.
 * Waits are bounded; no assertion depends on elapsed time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "callback.h"
#include "channel.h"
#include "config.h"
#include "email_drivers.h"
#include "log.h"
#include "mime.h"
#include "testlib.h"
#include "util.h"

#define PY "/usr/bin/python3"

static char tmpdir[256];
static char script[PATH_MAX + 64];
static char cert[320], key[320], other_cert[320], other_key[320];
static char pw_good[320], pw_bad[320], cb_secret[320];
static const char *const PASSWORD = "Sup3r-Secret-pw\xd8\xb3";
static const char *const WRONG = "wr0ng-Passw0rd-XYZ";

static const char *const fa_subject =
    "سلام! تخفیف ویژهٔ نوروز برای اعضای باشگاه — فقط تا پایان هفته 😀 کد NOWRUZ1403";
static const char *const fa_text = "سلام مریم جان،\nسفارش شما ارسال شد.\n.\nFrom: باشگاه\n";
static const char *const fa_name = "باشگاه مشتریان کافه نادری، شعبهٔ مرکزی تهران";

/* ---- helpers ----------------------------------------------------------------- */

/* Run argv, return its stdout (bounded); exit status in *status. */
static char *run_capture(char *const argv[], int *status)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	struct buf b;
	buf_init(&b, 4 << 20);
	char tmp[4096];
	for (;;) {
		ssize_t r = read(fds[0], tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		assert_int_equal(buf_append(&b, tmp, (size_t)r), 0);
	}
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return b.p ? buf_steal(&b) : xstrdup("");
}

struct sink {
	pid_t pid;
	int port;
	char dir[512];
};

static int sink_seq;
static pid_t live_sinks[8]; /* killed by the teardowns if a test fails early */

static void sink_track(pid_t pid, int add)
{
	for (size_t i = 0; i < ARRAY_SIZE(live_sinks); i++)
		if (add ? live_sinks[i] == 0 : live_sinks[i] == pid) {
			live_sinks[i] = add ? pid : 0;
			return;
		}
	assert_false(add); /* more than 8 at once: a leak in the tests */
}

static void sinks_kill_all(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(live_sinks); i++)
		if (live_sinks[i] > 0) {
			tl_kill(live_sinks[i]);
			live_sinks[i] = 0;
		}
}

/* Start the sink with extra arguments (NULL-terminated). */
static void sink_start(struct sink *s, ...)
{
	memset(s, 0, sizeof s[0]);
	snprintf(s->dir, sizeof s->dir, "%s/sink%d", tmpdir, ++sink_seq);
	const char *argv[24];
	int n = 0;
	argv[n++] = PY;
	argv[n++] = script;
	argv[n++] = "serve";
	argv[n++] = "--dir";
	argv[n++] = s->dir;
	va_list ap;
	va_start(ap, s);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
		assert_true(n < 23);
		argv[n++] = a;
	}
	va_end(ap);
	argv[n] = NULL;
	pid_t pid = tl_spawn_fake(argv, &s->port);
	if (pid < 0)
		fail_msg("smtp sink did not start");
	s->pid = pid;
	sink_track(pid, 1);
}

static void sink_stop(struct sink *s)
{
	if (s->pid > 0) {
		tl_kill(s->pid);
		sink_track(s->pid, 0);
		s->pid = -1;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The messages the sink stored, sorted (connection, then sequence). */
static size_t sink_list(const struct sink *s, char ***names)
{
	char d[600];
	snprintf(d, sizeof d, "%s/new", s->dir);
	DIR *dir = opendir(d);
	size_t n = 0, cap = 16;
	char **v = xcalloc(cap, sizeof *v);
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			if (n == cap)
				v = xrealloc(v, (cap *= 2) * sizeof *v);
			v[n++] = xstrdup(de->d_name);
		}
		closedir(dir);
	}
	qsort(v, n, sizeof *v, cmp_str);
	*names = v;
	return n;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static json_t *sink_parse(const struct sink *s, const char *name)
{
	char path[800];
	snprintf(path, sizeof path, "%s/new/%s", s->dir, name);
	char *argv[] = {(char *)PY, script, (char *)"parse", path, NULL};
	int st;
	char *out = run_capture(argv, &st);
	assert_int_equal(st, 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j)
		fail_msg("parse output is not JSON: %s", out);
	free(out);
	return j;
}

static json_t *sink_meta(const struct sink *s, const char *name)
{
	char path[800];
	snprintf(path, sizeof path, "%s/meta/%s.json", s->dir, name);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	assert_non_null(j);
	return j;
}

static int sink_conns(const struct sink *s)
{
	char path[600];
	snprintf(path, sizeof path, "%s/conns", s->dir);
	char *t = tl_read_file(path, NULL);
	if (!t)
		return 0;
	t[strcspn(t, "\n")] = '\0';
	int64_t v = 0;
	parse_i64(t, 0, 1000000, &v);
	free(t);
	return (int)v;
}

/* ---- the loop ---------------------------------------------------------------- */

/* Run the loop until *count >= want; a 60 s guard only catches hangs. */
static void run_until(uv_loop_t *loop, const int *count, int want)
{
	assert_int_equal(tl_loop_until(loop, count, want, 60000), 0);
}

static void mk_msg(struct tl_send *s, int *counter, const char *to, const char *subject,
                   const char *text, const char *html, const char *category)
{
	tl_send_init(s, counter, "email", to, text);
	s->m.category = category;
	s->m.contact_id = "c/42 x";
	s->m.subject = subject;
	s->m.html = html;
}

struct rig {
	uv_loop_t loop;
	struct config *cfg;
	struct chan *c;
	int ndone;
};

/* Load a whole config file text, configure and start its [channel.email]
 * with the smtp driver; 0, or -1 with err (nothing left to free). */
static int rig_open_text(struct rig *g, const char *text, struct cfg_error *err)
{
	memset(g, 0, sizeof *g);
	g->cfg = tl_load_config(tmpdir, "smtp.conf", text, err);
	if (!g->cfg)
		return -1; /* the config layer refused it (err names the key) */
	g->c = tl_chan_configure(g->cfg, "email", &chan_email_smtp_driver, err);
	if (!g->c) {
		config_free(g->cfg);
		return -1;
	}
	uv_loop_init(&g->loop);
	assert_int_equal(chan_start_all(g->c, 1, &g->loop), 0);
	return 0;
}

/* [channel.email] driver=smtp to 127.0.0.1:port with more `keys`. */
static int rig_open(struct rig *g, int port, const char *keys, struct cfg_error *err)
{
	char *text =
	    xasprintf("[channel.email]\ndriver = smtp\nmax_inflight = 500\nwindow_initial = 500\n"
	              "breaker_failures = 0\ntimeout = 5s\n"
	              "host = 127.0.0.1\nport = %d\nfrom_address = club@example.ir\n%s",
	              port, keys);
	int r = rig_open_text(g, text, err);
	free(text);
	return r;
}

static void rig_send(struct rig *g, struct tl_send *s)
{
	assert_int_equal(chan_send(g->c, &s->m, tl_send_done, s), 0);
	assert_int_equal(s->done, 0); /* never from inside send */
}

static void rig_close(struct rig *g)
{
	tl_stop_all_and_close(&g->loop, g->c, 1);
	config_free(g->cfg);
}

static void expect_ok(const struct tl_send *s)
{
	if (s->r.status != CHAN_OK)
		fail_msg("%s: status %d reason %s", s->m.to, s->r.status, s->r.reason);
}

static void expect_fail(const struct tl_send *s, enum chan_status st, const char *in_reason)
{
	if (s->r.status != st)
		fail_msg("%s: status %d (want %d) reason %s", s->m.to, s->r.status, st,
		         s->r.reason);
	if (in_reason && !strstr(s->r.reason, in_reason))
		fail_msg("%s: reason '%s' lacks '%s'", s->m.to, s->r.reason, in_reason);
	assert_string_equal(s->r.provider_id, "");
}

/* ---- Persian, multipart, Message-ID, List-Unsubscribe ------------------ */

static void test_persian_roundtrip(void **state)
{
	(void)state;
	struct sink sk;
	char auth[400];
	snprintf(auth, sizeof auth, "clubuser:%s", pw_good);
	sink_start(&sk, "--auth", auth, NULL);
	struct rig g;
	struct cfg_error err;
	char *keys = xasprintf("starttls = off\nusername = clubuser\npassword_file = %s\n"
	                       "from_name = %s\nhelo_name = mta.example.ir\n"
	                       "unsubscribe_mailto = unsubscribe@example.ir\n"
	                       "unsubscribe_url_base = https://club.example.ir/v1/unsubscribe\n",
	                       pw_good, fa_name);
	assert_int_equal(rig_open(&g, sk.port, keys, &err), 0);
	free(keys);

	static struct tl_send s[3];
	mk_msg(&s[0], &g.ndone, "maryam@example.com", fa_subject, fa_text, NULL, "promotional");
	mk_msg(&s[1], &g.ndone, "ali@example.com", "Your receipt — رسید شما",
	       "plain part\nwith two lines", "<p dir=\"rtl\">رسید <b>شما</b></p>", "promotional");
	mk_msg(&s[2], &g.ndone, "ali@example.com", "Password reset", "code 1234\n", NULL,
	       "transactional");
	for (int i = 0; i < 3; i++)
		rig_send(&g, &s[i]);
	run_until(&g.loop, &g.ndone, 3);
	for (int i = 0; i < 3; i++)
		expect_ok(&s[i]);
	rig_close(&g);

	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		json_t *j = sink_parse(&sk, names[i]);
		json_t *meta = sink_meta(&sk, names[i]);
		const char *xid = tl_jstr(j, "x_clubd_message_id");
		assert_non_null(xid);
		int k = -1;
		for (int q = 0; q < 3; q++)
			if (strcmp(xid, s[q].id) == 0)
				k = q;
		assert_true(k >= 0);
		/* Message-ID is the provider id and leads back to the message */
		assert_string_equal(tl_jstr(j, "message_id"), s[k].r.provider_id);
		char back[MIME_MSGID_MAX + 1];
		assert_int_equal(mime_message_id_to_msg(s[k].r.provider_id, back), 0);
		assert_string_equal(back, s[k].id);
		char *irt = xasprintf("<CAxyz@mail.gmail.com> %s", tl_jstr(j, "message_id"));
		assert_int_equal(mime_message_id_to_msg(irt, back), 0);
		assert_string_equal(back, s[k].id);
		free(irt);
		assert_string_equal(strstr(s[k].r.provider_id, "@"), "@example.ir>");
		/* headers decoded exactly */
		assert_string_equal(tl_jstr(j, "subject"), s[k].m.subject);
		assert_string_equal(tl_jstr(j, "from_name"), fa_name);
		assert_string_equal(tl_jstr(j, "from_addr"), "club@example.ir");
		assert_string_equal(tl_jstr(j, "to_addr"), s[k].m.to);
		assert_true(json_is_true(json_object_get(j, "date_ok")));
		assert_string_equal(tl_jstr(j, "mime_version"), "1.0");
		/* 7-bit, CRLF, short lines, no duplicate headers from libESMTP */
		assert_true(json_is_false(json_object_get(j, "bare_lf")));
		assert_true(json_is_false(json_object_get(j, "bare_cr")));
		assert_true(json_is_false(json_object_get(j, "eight_bit")));
		/* lines <= 78, except a URI too long to fold, alone on its line */
		assert_true(json_integer_value(json_object_get(j, "max_line")) <= 998);
		json_t *ll = json_object_get(j, "long_lines");
		for (size_t q = 0; q < json_array_size(ll); q++) {
			const char *l = json_string_value(json_array_get(ll, q));
			if (strncmp(l, " <mailto:", 9) != 0 && strncmp(l, " <https://", 10) != 0)
				fail_msg("long line: %s", l);
		}
		assert_int_equal(json_array_size(json_object_get(j, "defects")), 0);
		json_t *hc = json_object_get(j, "header_counts");
		static const char *const once[] = {"date",       "from",         "to",
		                                   "message-id", "mime-version", "subject"};
		for (size_t q = 0; q < ARRAY_SIZE(once); q++)
			assert_int_equal(json_integer_value(json_object_get(hc, once[q])), 1);
		/* bodies */
		json_t *parts = json_object_get(j, "parts");
		if (k == 1) {
			assert_string_equal(tl_jstr(j, "content_type"), "multipart/alternative");
			assert_int_equal(json_array_size(parts), 2);
			json_t *p0 = json_array_get(parts, 0), *p1 = json_array_get(parts, 1);
			assert_string_equal(tl_jstr(p0, "type"), "text/plain");
			assert_string_equal(tl_jstr(p0, "content"), s[1].m.text);
			assert_string_equal(tl_jstr(p0, "charset"), "utf-8");
			assert_string_equal(tl_jstr(p1, "type"), "text/html");
			assert_string_equal(tl_jstr(p1, "content"), s[1].m.html);
			assert_string_equal(tl_jstr(p1, "cte"), "base64"); /* mostly Persian */
			assert_string_equal(tl_jstr(p0, "cte"), "quoted-printable");
		} else {
			assert_string_equal(tl_jstr(j, "content_type"), "text/plain");
			assert_int_equal(json_array_size(parts), 1);
			json_t *p0 = json_array_get(parts, 0);
			assert_string_equal(tl_jstr(p0, "content"), s[k].m.text);
			assert_string_equal(tl_jstr(p0, "cte"),
			                    k == 0 ? "base64" : "quoted-printable");
		}
		/* List-Unsubscribe: promotional yes (mailto + https one-click) */
		if (k == 2) {
			assert_null(json_string_value(json_object_get(j, "list_unsubscribe")));
			assert_null(json_string_value(json_object_get(j, "list_unsubscribe_post")));
		} else {
			/* the one-click link is signed for /v1/unsubscribe */
			char sig[CALLBACK_SIG_LEN + 1];
			assert_int_equal(callback_sign("unsub", s[k].id, sig), 0);
			assert_true(callback_verify("unsub", s[k].id, sig));
			char *want =
			    xasprintf("<mailto:unsubscribe@example.ir?subject=unsubscribe%%20%s>, "
			              "<https://club.example.ir/v1/unsubscribe?m=%s&k=%s>",
			              s[k].id, s[k].id, sig);
			const char *lu = tl_jstr(j, "list_unsubscribe");
			assert_non_null(lu);
			while (*lu == ' ')
				lu++;
			assert_string_equal(lu, want);
			free(want);
			assert_string_equal(tl_jstr(j, "list_unsubscribe_post"),
			                    "List-Unsubscribe=One-Click");
		}
		/* the envelope, AUTH and HELO as the sink saw them */
		assert_string_equal(tl_jstr(meta, "mail_from"), "club@example.ir");
		json_t *rc = json_object_get(meta, "rcpt_tos");
		assert_int_equal(json_array_size(rc), 1);
		assert_string_equal(json_string_value(json_array_get(rc, 0)), s[k].m.to);
		assert_string_equal(tl_jstr(meta, "auth_user"), "clubuser");
		assert_string_equal(tl_jstr(meta, "helo"), "mta.example.ir");
		json_decref(meta);
		json_decref(j);
	}
	free_list(names, n);
	sink_stop(&sk);
}

/* ---- session reuse ------------------------------------------------------------ */

/* Messages per connection, from the sink's file names. */
static int per_conn_max(char **names, size_t n, int *nconns)
{
	int best = 0, cur = 0;
	*nconns = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strncmp(names[i], names[i - 1], 6) != 0) {
			(*nconns)++;
			cur = 0;
		}
		if (++cur > best)
			best = cur;
	}
	return best;
}

static void test_many_messages_few_sessions(void **state)
{
	(void)state;
	for (int round = 0; round < 2; round++) {
		int smax = round == 0 ? 100 : 10;
		struct sink sk;
		sink_start(&sk, NULL);
		struct rig g;
		struct cfg_error err;
		char keys[200];
		snprintf(keys, sizeof keys,
		         "starttls = off\nsessions = 2\nsession_max_messages = %d\n", smax);
		assert_int_equal(rig_open(&g, sk.port, keys, &err), 0);
		static struct tl_send s[50];
		for (int i = 0; i < 50; i++) {
			char *to = xasprintf("user%d@example.com", i);
			mk_msg(&s[i], &g.ndone, to, "سلام", "متن", NULL, "promotional");
			rig_send(&g, &s[i]);
		}
		run_until(&g.loop, &g.ndone, 50);
		for (int i = 0; i < 50; i++)
			expect_ok(&s[i]);
		struct email_smtp_stats st;
		email_smtp_get_stats(g.c, &st);
		assert_int_equal(st.messages, 50);
		assert_int_equal(st.ok, 50);
		assert_true(st.sessions < 50);
		assert_true(st.sessions >= (uint64_t)(50 / smax));
		rig_close(&g);
		for (int i = 0; i < 50; i++)
			free((char *)s[i].m.to);

		char **names;
		size_t n = sink_list(&sk, &names);
		assert_int_equal(n, 50);
		int nconns;
		int most = per_conn_max(names, n, &nconns);
		assert_true(nconns < 50);
		assert_int_equal((uint64_t)nconns, st.sessions);
		assert_true(most <= smax);
		assert_int_equal(sink_conns(&sk), nconns);
		free_list(names, n);
		sink_stop(&sk);
	}
}

/* ---- failures ------------------------------------------------------------------ */

static void test_reply_codes(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, NULL);
	struct rig g;
	struct cfg_error err;
	/* one session carries them all, so RSET after failures is exercised */
	assert_int_equal(rig_open(&g, sk.port, "starttls = off\nsessions = 1\n", &err), 0);
	static struct tl_send s[6];
	static const char *const to[] = {"ok1@example.com",         "tempfail-rcpt@example.com",
	                                 "reject-rcpt@example.com", "tempfail-data@example.com",
	                                 "reject-data@example.com", "ok2@example.com"};
	for (int i = 0; i < 6; i++) {
		mk_msg(&s[i], &g.ndone, to[i], "subject", "body\n", NULL, "promotional");
		rig_send(&g, &s[i]);
	}
	run_until(&g.loop, &g.ndone, 6);
	expect_ok(&s[0]);
	expect_fail(&s[1], CHAN_TEMPFAIL, "RCPT TO rejected: 451 ");
	expect_fail(&s[2], CHAN_PERMFAIL, "RCPT TO rejected: 550 5.1.1 No such user here");
	expect_fail(&s[3], CHAN_TEMPFAIL, "message rejected: 451 4.3.0 Try again later");
	expect_fail(&s[4], CHAN_PERMFAIL, "message rejected: 554 ");
	expect_ok(&s[5]);
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 2); /* exactly the two OK ones */
	for (size_t i = 0; i < n; i++) {
		json_t *meta = sink_meta(&sk, names[i]);
		const char *r =
		    json_string_value(json_array_get(json_object_get(meta, "rcpt_tos"), 0));
		assert_true(strcmp(r, "ok1@example.com") == 0 || strcmp(r, "ok2@example.com") == 0);
		json_decref(meta);
	}
	free_list(names, n);
	sink_stop(&sk);
}

static void test_dropped_connection(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, NULL);
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open(&g, sk.port, "starttls = off\nsessions = 1\n", &err), 0);
	/* the server takes the whole message, then hangs up without a reply */
	static struct tl_send s[3];
	mk_msg(&s[0], &g.ndone, "drop-data@example.com", "s", "body\n", NULL, NULL);
	mk_msg(&s[1], &g.ndone, "after-the-drop@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &s[0]);
	rig_send(&g, &s[1]);
	run_until(&g.loop, &g.ndone, 2);
	expect_fail(&s[0], CHAN_TEMPFAIL, "session ended before the server accepted the message");
	/* the next one failed with it when it was in the same session, else
	 * went through a new one: OK exactly when the sink has it */
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, s[1].r.status == CHAN_OK ? 1 : 0);
	free_list(names, n);
	/* and at RCPT */
	mk_msg(&s[2], &g.ndone, "drop-rcpt@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &s[2]);
	run_until(&g.loop, &g.ndone, 3);
	expect_fail(&s[2], CHAN_TEMPFAIL, NULL);
	rig_close(&g);
	n = sink_list(&sk, &names);
	assert_int_equal(n, s[1].r.status == CHAN_OK ? 1 : 0);
	free_list(names, n);
	sink_stop(&sk);
}

static void test_timeout(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, "--slow", "3", NULL);
	struct rig g;
	struct cfg_error err;
	/* channel timeout 1 s: the reply after the dot comes 3 s later */
	char *text = xasprintf("[channel.email]\ndriver = smtp\ntimeout = 1s\nhost = 127.0.0.1\n"
	                       "port = %d\nfrom_address = club@example.ir\nstarttls = off\n",
	                       sk.port);
	assert_int_equal(rig_open_text(&g, text, &err), 0);
	free(text);
	static struct tl_send s;
	mk_msg(&s, &g.ndone, "slow-data@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &s);
	run_until(&g.loop, &g.ndone, 1);
	expect_fail(&s, CHAN_TEMPFAIL, "session ended before the server accepted the message");
	rig_close(&g);
	sink_stop(&sk);
}

/* Capture fd 2 (the log) while fn runs. */
static char *with_stderr_captured(void (*fn)(void *), void *arg)
{
	char path[512];
	snprintf(path, sizeof path, "%s/stderr.log", tmpdir);
	int saved = tl_capture_stderr_begin(path, 0);
	assert_true(saved >= 0);
	fn(arg);
	tl_capture_stderr_end(saved);
	return tl_read_file(path, NULL);
}

struct bad_pw_run {
	struct sink *sk;
	struct tl_send s[2];
};

static void bad_password_body(void *arg)
{
	struct bad_pw_run *b = arg;
	struct rig g;
	struct cfg_error err;
	char *keys = xasprintf("starttls = off\nsessions = 1\nusername = clubuser\n"
	                       "password_file = %s\n",
	                       pw_bad);
	assert_int_equal(rig_open(&g, b->sk->port, keys, &err), 0);
	free(keys);
	mk_msg(&b->s[0], &g.ndone, "ali@example.com", "s", "body\n", NULL, NULL);
	mk_msg(&b->s[1], &g.ndone, "maryam@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &b->s[0]);
	rig_send(&g, &b->s[1]);
	run_until(&g.loop, &g.ndone, 2);
	rig_close(&g);
}

static void test_bad_password(void **state)
{
	(void)state;
	struct sink sk;
	char auth[400];
	snprintf(auth, sizeof auth, "clubuser:%s", pw_good);
	sink_start(&sk, "--auth", auth, NULL);
	static struct bad_pw_run b;
	memset(&b, 0, sizeof b);
	b.sk = &sk;
	log_setup(LOG_DEBUG, LOG_FMT_KV);
	log_set_trace("all");
	char *logs = with_stderr_captured(bad_password_body, &b);
	log_set_trace("");
	log_setup(LOG_WARNING, LOG_FMT_KV);
	for (int i = 0; i < 2; i++) {
		expect_fail(&b.s[i], CHAN_PERMFAIL, "authentication failed: 535");
		assert_null(strstr(b.s[i].r.reason, WRONG));
		assert_null(strstr(b.s[i].r.reason, PASSWORD));
	}
	/* the failure is logged, the secret never (nor its base64 in AUTH PLAIN) */
	assert_non_null(strstr(logs, "authentication failed"));
	assert_null(strstr(logs, WRONG));
	assert_null(strstr(logs, "d3IwbmctUGFzc3cwcmQtWFla")); /* base64(WRONG) */
	assert_null(strstr(logs, "AGNsdWJ1c2VyAHdyMG5n"));     /* base64("\0clubuser\0wr0ng") */
	free(logs);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 0);
	free_list(names, n);
	sink_stop(&sk);
}

/* ---- TLS ------------------------------------------------------------------------------ */

static void test_starttls_required_plain_sink(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, NULL); /* no STARTTLS offered */
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open(&g, sk.port, "starttls = required\ntls_verify = no\n", &err), 0);
	static struct tl_send s[2];
	for (int i = 0; i < 2; i++) {
		mk_msg(&s[i], &g.ndone, "ali@example.com", "s", "body\n", NULL, NULL);
		rig_send(&g, &s[i]);
	}
	run_until(&g.loop, &g.ndone, 2);
	for (int i = 0; i < 2; i++)
		expect_fail(&s[i], CHAN_TEMPFAIL,
		            "STARTTLS is required but the server does not offer it");
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 0);
	assert_true(sink_conns(&sk) >= 1); /* it did talk to the server */
	free_list(names, n);
	sink_stop(&sk);
}

/* One message through a TLS sink; the sink's meta, or NULL when the
 * message was not delivered (s holds the result). */
static json_t *tls_one(struct sink *sk, const char *keys, struct tl_send *s)
{
	struct rig g;
	struct cfg_error err;
	if (rig_open(&g, sk->port, keys, &err) < 0)
		fail_msg("config: %s", err.msg);
	mk_msg(s, &g.ndone, "ali@example.com", "سلام TLS", "body\n", NULL, NULL);
	rig_send(&g, s);
	run_until(&g.loop, &g.ndone, 1);
	rig_close(&g);
	if (s->r.status != CHAN_OK)
		return NULL;
	char **names;
	size_t n = sink_list(sk, &names);
	json_t *meta = NULL;
	for (size_t i = 0; i < n && !meta; i++) {
		meta = sink_meta(sk, names[i]);
		if (strcmp(tl_jstr(meta, "x_clubd_message_id"), s->id) != 0) {
			json_decref(meta);
			meta = NULL;
		}
	}
	free_list(names, n);
	assert_non_null(meta);
	return meta;
}

static void test_starttls(void **state)
{
	(void)state;
	struct sink sk;
	char auth[400];
	snprintf(auth, sizeof auth, "clubuser:%s", pw_good);
	sink_start(&sk, "--tls", cert, key, "--auth", auth, NULL);
	static struct tl_send s;
	char keys[1200];

	/* required, unverified: TLS 1.2 (pinned), AUTH PLAIN inside TLS */
	snprintf(keys, sizeof keys,
	         "starttls = required\ntls_verify = no\nusername = clubuser\npassword_file = %s\n",
	         pw_good);
	json_t *m = tls_one(&sk, keys, &s);
	if (!m)
		fail_msg("reason %s", s.r.reason);
	assert_string_equal(tl_jstr(m, "tls_version"), "TLSv1.2");
	assert_string_equal(tl_jstr(m, "auth_user"), "clubuser");
	json_decref(m);

	/* verified against our CA file, by IP address (IP SAN) */
	snprintf(keys, sizeof keys,
	         "starttls = required\nca_file = %s\nusername = clubuser\npassword_file = %s\n",
	         cert, pw_good);
	m = tls_one(&sk, keys, &s);
	if (!m)
		fail_msg("reason %s", s.r.reason);
	assert_true(json_is_null(json_object_get(m, "sni"))); /* no SNI for an IP */
	json_decref(m);

	/* verification on, system CAs only: the self-signed cert is refused */
	snprintf(keys, sizeof keys,
	         "starttls = required\nusername = clubuser\npassword_file = %s\n", pw_good);
	m = tls_one(&sk, keys, &s);
	assert_null(m);
	expect_fail(&s, CHAN_TEMPFAIL, "TLS: certificate verification failed");

	/* trusted CA but a certificate for another name */
	sink_stop(&sk);
	sink_start(&sk, "--tls", other_cert, other_key, NULL);
	snprintf(keys, sizeof keys, "starttls = required\nca_file = %s\n", other_cert);
	m = tls_one(&sk, keys, &s);
	assert_null(m);
	expect_fail(&s, CHAN_TEMPFAIL, "TLS: certificate verification failed");
	assert_non_null(strstr(s.r.reason, "mismatch"));
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 0);
	free_list(names, n);
	sink_stop(&sk);
}

/* By name: SNI sent, the name checked against the certificate. */
static void test_starttls_by_name(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, "--tls", cert, key, NULL);
	char *text =
	    xasprintf("[channel.email]\ndriver = smtp\nhost = localhost\nport = %d\n"
	              "from_address = club@example.ir\nstarttls = required\nca_file = %s\n",
	              sk.port, cert);
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open_text(&g, text, &err), 0);
	free(text);
	static struct tl_send s;
	mk_msg(&s, &g.ndone, "ali@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &s);
	run_until(&g.loop, &g.ndone, 1);
	expect_ok(&s);
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 1);
	json_t *meta = sink_meta(&sk, names[0]);
	assert_string_equal(tl_jstr(meta, "sni"), "localhost");
	assert_string_equal(tl_jstr(meta, "tls_version"), "TLSv1.2");
	json_decref(meta);
	free_list(names, n);
	sink_stop(&sk);
}

/*
 * TLS 1.3 on request.  With libESMTP 1.1.0 a session can stall after the
 * EHLO that follows STARTTLS: the server's post-handshake NewSessionTicket
 * makes the socket readable before EHLO is flushed, and libESMTP reads
 * (blocking) before it writes.  The stall ends in a timeout and QUIT, and
 * smtp_start_session() still returns success.  First the version with a
 * sink that sends no tickets (deterministic), then many sessions against
 * one that does: whatever stalls must be TEMPFAIL, and every OK must be
 * in the sink.
 */
static void test_tls13_never_silently_ok(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, "--tls", cert, key, "--tls-tickets", "0", NULL);
	static struct tl_send one;
	json_t *m = tls_one(&sk, "starttls = required\ntls_verify = no\ntls13 = yes\n", &one);
	if (!m)
		fail_msg("reason %s", one.r.reason);
	assert_string_equal(tl_jstr(m, "tls_version"), "TLSv1.3");
	json_decref(m);
	sink_stop(&sk);

	sink_start(&sk, "--tls", cert, key, NULL);
	char *text = xasprintf("[channel.email]\ndriver = smtp\ntimeout = 1s\nmax_inflight = 100\n"
	                       "window_initial = 100\nbreaker_failures = 0\n"
	                       "host = 127.0.0.1\nport = %d\nfrom_address = club@example.ir\n"
	                       "starttls = required\ntls_verify = no\ntls13 = yes\nsessions = 4\n"
	                       "session_max_messages = 1\n",
	                       sk.port);
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open_text(&g, text, &err), 0);
	free(text);
	enum { N = 40 };
	static struct tl_send s[N];
	for (int i = 0; i < N; i++) {
		mk_msg(&s[i], &g.ndone, "ali@example.com", "s", "body\n", NULL, NULL);
		rig_send(&g, &s[i]);
	}
	run_until(&g.loop, &g.ndone, N);
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	int stored[N] = {0};
	for (size_t i = 0; i < n; i++) {
		json_t *j = sink_meta(&sk, names[i]);
		for (int k = 0; k < N; k++)
			if (strcmp(tl_jstr(j, "x_clubd_message_id"), s[k].id) == 0)
				stored[k]++;
		json_decref(j);
	}
	for (int k = 0; k < N; k++) {
		assert_int_equal(stored[k], s[k].r.status == CHAN_OK ? 1 : 0);
		if (s[k].r.status != CHAN_OK)
			expect_fail(&s[k], CHAN_TEMPFAIL, NULL);
	}
	free_list(names, n);
	sink_stop(&sk);
}

static void test_no_plaintext_password(void **state)
{
	(void)state;
	/* opportunistic TLS, the server offers none: PLAIN/LOGIN are not used
	 * in the clear, so the AUTH-requiring server refuses MAIL */
	struct sink sk;
	char auth[400];
	snprintf(auth, sizeof auth, "clubuser:%s", pw_good);
	sink_start(&sk, "--auth", auth, NULL);
	struct rig g;
	struct cfg_error err;
	char *keys = xasprintf(
	    "starttls = opportunistic\nusername = clubuser\npassword_file = %s\n", pw_good);
	assert_int_equal(rig_open(&g, sk.port, keys, &err), 0);
	free(keys);
	static struct tl_send s;
	mk_msg(&s, &g.ndone, "ali@example.com", "s", "body\n", NULL, NULL);
	rig_send(&g, &s);
	run_until(&g.loop, &g.ndone, 1);
	expect_fail(&s, CHAN_PERMFAIL, "MAIL FROM rejected: 530");
	assert_non_null(strstr(s.r.reason, "no usable AUTH mechanism"));
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 0);
	free_list(names, n);
	sink_stop(&sk);
}

/* ---- refusals, connection errors, stop --------------------------------------- */

static void test_refused_before_sending(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, NULL);
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open(&g, sk.port, "starttls = off\n", &err), 0);
	static struct tl_send s[5];
	mk_msg(&s[0], &g.ndone, "ali@example.com", "Hi\r\nBcc: victim@example.com", "x", NULL,
	       NULL);
	mk_msg(&s[1], &g.ndone, "ali@example.com\r\nBcc: victim@example.com", "ok", "x", NULL,
	       NULL);
	mk_msg(&s[2], &g.ndone, "", "ok", "x", NULL, NULL);
	mk_msg(&s[3], &g.ndone, "ali@example.com", "Hi\nthere", "x", NULL, NULL);
	mk_msg(&s[4], &g.ndone, "ok@example.com", "fine", "x", NULL, NULL);
	for (int i = 0; i < 5; i++)
		rig_send(&g, &s[i]);
	run_until(&g.loop, &g.ndone, 5);
	expect_fail(&s[0], CHAN_PERMFAIL, "subject");
	expect_fail(&s[1], CHAN_PERMFAIL, "to address");
	expect_fail(&s[2], CHAN_PERMFAIL, "no address");
	expect_fail(&s[3], CHAN_PERMFAIL, "subject");
	expect_ok(&s[4]);
	struct email_smtp_stats st;
	email_smtp_get_stats(g.c, &st);
	assert_int_equal(st.refused, 4);
	assert_int_equal(st.messages, 1); /* only the good one reached a session */
	rig_close(&g);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 1);
	char path[800];
	snprintf(path, sizeof path, "%s/new/%s", sk.dir, names[0]);
	char *raw = tl_read_file(path, NULL);
	assert_null(strstr(raw, "victim"));
	free(raw);
	free_list(names, n);
	sink_stop(&sk);
}

static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t l = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd); /* nobody listens there now */
	return ntohs(a.sin_port);
}

static void test_connection_refused(void **state)
{
	(void)state;
	struct rig g;
	struct cfg_error err;
	assert_int_equal(rig_open(&g, closed_port(), "starttls = off\n", &err), 0);
	static struct tl_send s[3];
	for (int i = 0; i < 3; i++) {
		mk_msg(&s[i], &g.ndone, "ali@example.com", "s", "b", NULL, NULL);
		rig_send(&g, &s[i]);
	}
	run_until(&g.loop, &g.ndone, 3);
	for (int i = 0; i < 3; i++)
		expect_fail(&s[i], CHAN_TEMPFAIL, "Connection refused");
	rig_close(&g);
}

static void test_stop_with_queue(void **state)
{
	(void)state;
	struct sink sk;
	sink_start(&sk, "--slow", "1", NULL);
	struct rig g;
	struct cfg_error err;
	assert_int_equal(
	    rig_open(&g, sk.port, "starttls = off\nsessions = 1\nsession_max_messages = 1\n", &err),
	    0);
	static struct tl_send s[6];
	mk_msg(&s[0], &g.ndone, "slow-data@example.com", "s", "b", NULL, NULL);
	rig_send(&g, &s[0]);
	/* wait (bounded) until the worker is in its session */
	for (int i = 0; i < 2000 && sink_conns(&sk) < 1; i++)
		usleep(10000);
	assert_int_equal(sink_conns(&sk), 1);
	for (int i = 1; i < 6; i++) {
		mk_msg(&s[i], &g.ndone, "queued@example.com", "s", "b", NULL, NULL);
		rig_send(&g, &s[i]);
	}
	int st = 0;
	chan_stop_all(g.c, 1, tl_on_count, &st);
	/* no new sends while stopping */
	static struct tl_send late;
	mk_msg(&late, &g.ndone, "late@example.com", "s", "b", NULL, NULL);
	assert_int_equal(chan_send(g.c, &late.m, tl_send_done, &late), -EBUSY);
	run_until(&g.loop, &st, 1);
	assert_int_equal(g.ndone, 6);
	expect_ok(&s[0]); /* the session in flight finished */
	for (int i = 1; i < 6; i++)
		expect_fail(&s[i], CHAN_TEMPFAIL, "shutting down");
	chan_free_all(g.c, 1);
	assert_int_equal(tl_loop_finish(&g.loop), 0);
	config_free(g.cfg);
	char **names;
	size_t n = sink_list(&sk, &names);
	assert_int_equal(n, 1);
	free_list(names, n);
	sink_stop(&sk);
}

static void test_config_errors(void **state)
{
	(void)state;
	static const struct {
		const char *keys;
		const char *want;
	} bad[] = {
	    {"starttls = sometimes\n", "starttls: must be required, opportunistic or off"},
	    {"username = u\n", "password_file: is required with username"},
	    {"password_file = /nonexistent/pw\nusername = u\n", "password_file"},
	    {"tls_verify = no\nca_file = /etc/ssl/certs/ca-certificates.crt\n", "ca_file"},
	    {"sessions = 0\n", "sessions: must be between 1 and 64"},
	    {"session_max_messages = 5000\n", "session_max_messages"},
	    {"unsubscribe_url_base = ftp://x\n", "unsubscribe_url_base"},
	    {"unsubscribe_url_base = https://x/v1/unsubscribe#a\n", "unsubscribe_url_base"},
	    {"unsubscribe_mailto = not an address\n", "unsubscribe_mailto"},
	    {"from_name = bad\x01name\n", "from_name"},
	    {"from_name = bad\xffname\n", "from_name"},
	    {"helo_name = bad name\n", "helo_name"},
	    {"colour = blue\n", "colour"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct rig g;
		struct cfg_error err;
		assert_int_equal(rig_open(&g, 2525, bad[i].keys, &err), -1);
		if (!strstr(err.msg, bad[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].want);
		assert_null(strstr(err.msg, PASSWORD));
	}
	/* unsigned unsubscribe links are refused: no callback secret, no link */
	callback_cleanup();
	struct rig ug;
	struct cfg_error uerr;
	assert_int_equal(rig_open(&ug, 2525, "unsubscribe_url_base = https://x.example/u\n", &uerr),
	                 -1);
	assert_non_null(strstr(uerr.msg, "callback_secret_file"));
	char why[128];
	assert_int_equal(callback_init(cb_secret, why, sizeof why), 0);

	/* the from address and the host are checked too */
	char path[512];
	snprintf(path, sizeof path, "%s/bad.conf", tmpdir);
	static const char *const texts[] = {
	    "[channel.email]\ndriver = smtp\nhost = ::1\nfrom_address = a@b.c\n",
	    "[channel.email]\ndriver = smtp\nhost = h\nfrom_address = not-an-address\n",
	    "[channel.email]\ndriver = smtp\nfrom_address = a@b.c\n",
	};
	static const char *const want[] = {"host", "from_address", "host: is required"};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		tl_write_file(path, texts[i], 0600);
		struct config *cfg = NULL;
		struct cfg_error err;
		assert_int_equal(config_load(path, &cfg, &err), 0);
		struct chan c;
		memset(&c, 0, sizeof c);
		c.drv = &chan_email_smtp_driver;
		c.cfg = config_channel(cfg, "email");
		assert_int_equal(c.drv->configure(&c, &err), -1);
		if (!strstr(err.msg, want[i]))
			fail_msg("'%s' lacks '%s'", err.msg, want[i]);
		c.drv->destroy(&c);
		config_free(cfg);
	}
}

/* ---- setup --------------------------------------------------------------------- */

static void make_cert(const char *crt, const char *k, const char *cn, const char *san)
{
	char subj[128], ext[256];
	snprintf(subj, sizeof subj, "/CN=%s", cn);
	snprintf(ext, sizeof ext, "subjectAltName=%s", san);
	char *argv[] = {(char *)"/usr/bin/openssl",
	                (char *)"req",
	                (char *)"-x509",
	                (char *)"-newkey",
	                (char *)"rsa:2048",
	                (char *)"-nodes",
	                (char *)"-keyout",
	                (char *)k,
	                (char *)"-out",
	                (char *)crt,
	                (char *)"-days",
	                (char *)"2",
	                (char *)"-subj",
	                subj,
	                (char *)"-addext",
	                ext,
	                NULL};
	int st;
	char *out = run_capture(argv, &st);
	free(out);
	assert_int_equal(st, 0);
}

static int group_setup(void **state)
{
	(void)state;
	log_setup(LOG_WARNING, LOG_FMT_KV);
	signal(SIGPIPE, SIG_IGN);
	if (tl_mkdtemp(tmpdir, sizeof tmpdir, "smtp") < 0)
		return -1;
	if (tl_find_fake("smtp_sink.py", script, sizeof script) < 0)
		return -1;
	snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
	snprintf(key, sizeof key, "%s/key.pem", tmpdir);
	snprintf(other_cert, sizeof other_cert, "%s/other.pem", tmpdir);
	snprintf(other_key, sizeof other_key, "%s/other-key.pem", tmpdir);
	make_cert(cert, key, "localhost", "DNS:localhost,IP:127.0.0.1");
	make_cert(other_cert, other_key, "other.test", "DNS:other.test");
	snprintf(pw_good, sizeof pw_good, "%s/pw-good", tmpdir);
	snprintf(pw_bad, sizeof pw_bad, "%s/pw-bad", tmpdir);
	char *pw = xasprintf("%s\n", PASSWORD);
	tl_write_file(pw_good, pw, 0600);
	free(pw);
	pw = xasprintf("%s\n", WRONG);
	tl_write_file(pw_bad, pw, 0600);
	free(pw);
	/* signs the unsubscribe links, as [api] callback_secret_file does */
	snprintf(cb_secret, sizeof cb_secret, "%s/callback-secret", tmpdir);
	tl_write_file(cb_secret, "callback-secret-for-tests-0123456789\n", 0600);
	char why[128];
	if (callback_init(cb_secret, why, sizeof why) < 0)
		return -1;
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	sinks_kill_all();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sinks_kill_all();
	callback_cleanup();
	tl_rmtree(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_persian_roundtrip, test_teardown),
	    cmocka_unit_test_teardown(test_many_messages_few_sessions, test_teardown),
	    cmocka_unit_test_teardown(test_reply_codes, test_teardown),
	    cmocka_unit_test_teardown(test_dropped_connection, test_teardown),
	    cmocka_unit_test_teardown(test_timeout, test_teardown),
	    cmocka_unit_test_teardown(test_bad_password, test_teardown),
	    cmocka_unit_test_teardown(test_starttls_required_plain_sink, test_teardown),
	    cmocka_unit_test_teardown(test_starttls, test_teardown),
	    cmocka_unit_test_teardown(test_starttls_by_name, test_teardown),
	    cmocka_unit_test_teardown(test_tls13_never_silently_ok, test_teardown),
	    cmocka_unit_test_teardown(test_no_plaintext_password, test_teardown),
	    cmocka_unit_test_teardown(test_refused_before_sending, test_teardown),
	    cmocka_unit_test_teardown(test_connection_refused, test_teardown),
	    cmocka_unit_test_teardown(test_stop_with_queue, test_teardown),
	    cmocka_unit_test_teardown(test_config_errors, test_teardown),
	};
	const char *only = getenv("CMOCKA_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
