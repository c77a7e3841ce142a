/*
 * load.c - a load generator for clubd's HTTP API: posts N messages
 * (POST /v1/messages) with C concurrent transfers on one libcurl multi handle
 * (keep-alive connections, reused easy handles) and reports accepted/s.
 *
 * Owns: its curl handles and counters.  Never touches Redis or clubd's files.
 * Sends only to 127.0.0.1: any other host in --url is refused, proxies from
 * the environment are ignored, redirects are not followed.  Bounded: stops
 * after N messages or --timeout seconds, whichever comes first.  The token
 * is read from --token or CLUBD_TOKEN and never printed.
 *
 * Messages go either to an address ({"to":"+98912xxxxxxx","channel":"sms",
 * ...}; --phones P distinct numbers, round robin) or, with --contacts K, to
 * K contacts created first through POST /v1/contacts ({"contact_id":...}).
 *
 * Output (stdout, line-buffered): one "load t=..." line per second and a
 * final "load summary ..." line with key=value pairs; wall-clock ms since
 * the epoch for first_accept_ms/last_accept_ms (bench/run lines them up
 * with the sink's times).  Exit 0 when every message was accepted, 3 when
 * some were not, 1 on a fatal error, 2 on bad usage.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LOAD_MAX_RESP  (64 * 1024)
#define LOAD_MAX_BODY  2048
#define LOAD_SHOW_ERRS 5

enum phase { PHASE_CONTACTS, PHASE_MESSAGES };

struct slot {
	CURL *e;
	struct load *l;
	int64_t idx;
	char body[LOAD_MAX_BODY];
	struct buf resp;
	int active;
};

struct load {
	CURLM *m;
	struct slot *slots;
	int conc;
	struct curl_slist *hdrs;
	char *url_messages, *url_contacts;

	/* options */
	int64_t n, phones, ncontacts, timeout_s;
	const char *channel, *category, *text;

	/* the phase in progress */
	enum phase phase;
	int64_t total, next, done;
	int64_t ok, http_err[6], transport_err;
	int64_t first_ok_ms, last_ok_ms, phase_start_ms;
	int shown_errs;

	char **contact_ids;
	int64_t ncontact_ids;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *arg)
{
	struct slot *s = arg;

	/* over the cap the rest is dropped: the status code is what counts */
	(void)buf_append(&s->resp, p, sz * nm);
	return sz * nm;
}

/* Refuse anything but http://127.0.0.1[:port][/path].  0 or -EINVAL. */
static int check_url(const char *url, char *errmsg, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
	int rc = -EINVAL;

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		snprintf(errmsg, errlen, "not a URL");
		goto out;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (scheme == NULL || strcmp(scheme, "http") != 0)
		snprintf(errmsg, errlen, "only http:// is supported");
	else if (host == NULL || strcmp(host, "127.0.0.1") != 0)
		snprintf(errmsg, errlen, "host must be 127.0.0.1 (loopback only)");
	else if (user != NULL || query != NULL)
		snprintf(errmsg, errlen, "no user info or query in the base URL");
	else
		rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static void json_str(struct buf *b, const char *s)
{
	json_t *j = json_string(s);
	char *d = json_dumps(j, JSON_ENCODE_ANY);

	buf_puts(b, d);
	free(d);
	json_decref(j);
}

/* Fill s->body for item idx of the current phase. */
static void build_body(struct load *l, struct slot *s, int64_t idx)
{
	struct buf b;

	buf_init(&b, LOAD_MAX_BODY - 1);
	if (l->phase == PHASE_CONTACTS) {
		buf_printf(&b,
		           "{\"name\":\"bench %" PRId64
		           "\",\"addresses\":{\"sms\":\"+98912%07" PRId64 "\"}}",
		           idx, idx % 10000000);
	} else {
		buf_puts(&b, "{");
		if (l->ncontact_ids > 0) {
			buf_puts(&b, "\"contact_id\":");
			json_str(&b, l->contact_ids[idx % l->ncontact_ids]);
			buf_puts(&b, ",");
		} else
			buf_printf(&b, "\"to\":\"+98912%07" PRId64 "\",",
			           (idx % l->phones) % 10000000);
		buf_puts(&b, "\"channel\":");
		json_str(&b, l->channel);
		buf_puts(&b, ",\"category\":");
		json_str(&b, l->category);
		buf_puts(&b, ",\"text\":");
		json_str(&b, l->text);
		buf_puts(&b, "}");
	}
	snprintf(s->body, sizeof s->body, "%s", b.p ? b.p : "");
	buf_free(&b);
}

static int slot_start(struct load *l, struct slot *s)
{
	if (l->next >= l->total || interrupted)
		return 0;
	s->idx = l->next++;
	build_body(l, s, s->idx);
	buf_reset(&s->resp);
	curl_easy_setopt(s->e, CURLOPT_URL,
	                 l->phase == PHASE_CONTACTS ? l->url_contacts : l->url_messages);
	curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->e, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	if (curl_multi_add_handle(l->m, s->e) != CURLM_OK)
		return -EIO;
	s->active = 1;
	return 1;
}

static void show_error(struct load *l, struct slot *s, long status, const char *what)
{
	char snip[201];
	size_t i;

	if (l->shown_errs >= LOAD_SHOW_ERRS)
		return;
	l->shown_errs++;
	snprintf(snip, sizeof snip, "%s", s->resp.p ? s->resp.p : "");
	for (i = 0; snip[i]; i++)
		if ((unsigned char)snip[i] < 0x20)
			snip[i] = ' ';
	fprintf(stderr, "load: item=%" PRId64 " status=%ld error=\"%s\" body=\"%s\"\n", s->idx,
	        status, what, snip);
}

static void slot_done(struct load *l, struct slot *s, CURLcode res)
{
	long status = 0;

	curl_multi_remove_handle(l->m, s->e);
	s->active = 0;
	l->done++;
	if (res != CURLE_OK) {
		l->transport_err++;
		show_error(l, s, 0, curl_easy_strerror(res));
		return;
	}
	curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		l->http_err[status >= 100 && status < 600 ? status / 100 : 0]++;
		show_error(l, s, status, "http status");
		return;
	}
	l->last_ok_ms = now_ms();
	if (l->ok == 0)
		l->first_ok_ms = l->last_ok_ms;
	l->ok++;
	if (l->phase == PHASE_CONTACTS) {
		json_t *j = json_loads(s->resp.p ? s->resp.p : "", 0, NULL);
		const char *id = json_string_value(json_object_get(j, "id"));

		if (id != NULL)
			l->contact_ids[l->ncontact_ids++] = xstrdup(id);
		else
			show_error(l, s, status, "no id in answer");
		json_decref(j);
	}
}

static int64_t errors(const struct load *l)
{
	int64_t e = l->transport_err;

	for (int i = 0; i < 6; i++)
		e += l->http_err[i];
	return e;
}

static const char *phase_name(const struct load *l)
{
	return l->phase == PHASE_CONTACTS ? "contacts" : "messages";
}

/* Run the current phase to the end (or timeout / SIGINT).  0 or -errno. */
static int run_phase(struct load *l, int64_t deadline_ms)
{
	int64_t tick_ms, tick_ok = 0;
	int running = 0;

	l->next = l->done = l->ok = l->transport_err = 0;
	memset(l->http_err, 0, sizeof l->http_err);
	l->first_ok_ms = l->last_ok_ms = 0;
	l->phase_start_ms = now_ms();
	tick_ms = l->phase_start_ms + 1000;

	for (int i = 0; i < l->conc; i++)
		if (slot_start(l, &l->slots[i]) < 0)
			return -EIO;

	for (;;) {
		CURLMsg *msg;
		int left;
		int64_t t;

		if (curl_multi_perform(l->m, &running) != CURLM_OK)
			return -EIO;
		while ((msg = curl_multi_info_read(l->m, &left)) != NULL) {
			struct slot *s;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			slot_done(l, s, msg->data.result);
			if (slot_start(l, s) < 0)
				return -EIO;
		}
		t = now_ms();
		if (t >= tick_ms) {
			printf("load t=%" PRId64 " phase=%s done=%" PRId64 " accepted=%" PRId64
			       " errors=%" PRId64 " accepted_per_s=%" PRId64 "\n",
			       (t - l->phase_start_ms) / 1000, phase_name(l), l->done, l->ok,
			       errors(l), l->ok - tick_ok);
			tick_ok = l->ok;
			tick_ms += 1000;
		}
		if (l->done >= l->total)
			break;
		if (interrupted || t >= deadline_ms) {
			int stopped = 0;

			fprintf(stderr, "load: %s, %" PRId64 " of %" PRId64 " not sent\n",
			        interrupted ? "interrupted" : "timeout", l->total - l->done,
			        l->total);
			for (int i = 0; i < l->conc; i++) {
				if (l->slots[i].active) {
					curl_multi_remove_handle(l->m, l->slots[i].e);
					l->slots[i].active = 0;
					stopped++;
				}
			}
			l->transport_err += stopped;
			return -ETIMEDOUT;
		}
		if (curl_multi_poll(l->m, NULL, 0, 100, NULL) != CURLM_OK)
			return -EIO;
	}
	return 0;
}

static void summary(struct load *l, int rc)
{
	double secs = (double)(l->last_ok_ms - l->first_ok_ms) / 1000.0;
	double wall = (double)(now_ms() - l->phase_start_ms) / 1000.0;

	printf("load summary phase=%s requests=%" PRId64 " accepted=%" PRId64 " errors=%" PRId64
	       " transport_errors=%" PRId64 " http_4xx=%" PRId64 " http_5xx=%" PRId64
	       " concurrency=%d elapsed_s=%.3f accepted_per_s=%.0f first_accept_ms=%" PRId64
	       " last_accept_ms=%" PRId64 " complete=%d\n",
	       phase_name(l), l->done, l->ok, errors(l), l->transport_err, l->http_err[4],
	       l->http_err[5], l->conc, wall,
	       secs > 0 ? (double)l->ok / secs : (wall > 0 ? (double)l->ok / wall : 0.0),
	       l->first_ok_ms, l->last_ok_ms, rc == 0);
}

static int read_port_file(const char *path, int64_t *port)
{
	char line[32] = "";
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -errno;
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	return parse_i64(line, 1, 65535, port);
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: load (--url http://127.0.0.1:PORT | --port N | --port-file F)\n"
	    "            [-n MESSAGES] [-c CONCURRENCY] [--token T] [--phones P]\n"
	    "            [--contacts K] [--channel sms] [--category transactional]\n"
	    "            [--text TEXT] [--timeout SECONDS]\n"
	    "  the bearer token comes from --token or CLUBD_TOKEN; only 127.0.0.1 is allowed\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct load L, *l = &L;
	const char *url = NULL, *port_file = NULL, *token = getenv("CLUBD_TOKEN");
	int64_t port = 0, conc = 64, deadline;
	char errmsg[128], *base = NULL, *auth;
	int rc = 0;

	memset(l, 0, sizeof *l);
	l->n = 100000;
	l->phones = 10000;
	l->timeout_s = 600;
	l->channel = "sms";
	l->category = "transactional";
	l->text = "clubd bench: your order has shipped";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int ok = 1;

		if (v == NULL)
			usage();
		if (strcmp(a, "--url") == 0)
			url = v;
		else if (strcmp(a, "--port") == 0)
			ok = parse_i64(v, 1, 65535, &port) == 0;
		else if (strcmp(a, "--port-file") == 0)
			port_file = v;
		else if (strcmp(a, "-n") == 0)
			ok = parse_i64(v, 1, 100000000, &l->n) == 0;
		else if (strcmp(a, "-c") == 0)
			ok = parse_i64(v, 1, 4096, &conc) == 0;
		else if (strcmp(a, "--token") == 0)
			token = v;
		else if (strcmp(a, "--phones") == 0)
			ok = parse_i64(v, 1, 10000000, &l->phones) == 0;
		else if (strcmp(a, "--contacts") == 0)
			ok = parse_i64(v, 0, 10000000, &l->ncontacts) == 0;
		else if (strcmp(a, "--channel") == 0)
			l->channel = v;
		else if (strcmp(a, "--category") == 0)
			l->category = v;
		else if (strcmp(a, "--text") == 0)
			l->text = v;
		else if (strcmp(a, "--timeout") == 0)
			ok = parse_i64(v, 1, 86400, &l->timeout_s) == 0;
		else
			ok = 0;
		if (!ok)
			usage();
		i++;
	}
	if (port_file != NULL) {
		if (read_port_file(port_file, &port) < 0) {
			fprintf(stderr, "load: cannot read a port from %s\n", port_file);
			return 1;
		}
	}
	if (url == NULL && port == 0)
		usage();
	base = url ? xstrdup(url) : xasprintf("http://127.0.0.1:%" PRId64, port);
	if (check_url(base, errmsg, sizeof errmsg) < 0) {
		fprintf(stderr, "load: refusing %s: %s\n", base, errmsg);
		free(base);
		return 2;
	}
	if (token == NULL || *token == '\0') {
		fprintf(stderr, "load: no token (--token or CLUBD_TOKEN)\n");
		free(base);
		return 2;
	}
	while (*base && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;

	l->url_messages = xasprintf("%s/v1/messages", base);
	l->url_contacts = xasprintf("%s/v1/contacts", base);
	auth = xasprintf("Authorization: Bearer %s", token);
	l->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	l->hdrs = curl_slist_append(l->hdrs, "Expect:");
	l->hdrs = curl_slist_append(l->hdrs, auth);
	free(auth);

	l->m = curl_multi_init();
	curl_multi_setopt(l->m, CURLMOPT_MAXCONNECTS, (long)conc);
	l->conc = (int)conc;
	l->slots = xcalloc((size_t)conc, sizeof *l->slots);
	for (int i = 0; i < l->conc; i++) {
		struct slot *s = &l->slots[i];

		s->l = l;
		buf_init(&s->resp, LOAD_MAX_RESP);
		s->e = curl_easy_init();
		curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, l->hdrs);
		curl_easy_setopt(s->e, CURLOPT_POST, 1L);
		curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->e, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(s->e, CURLOPT_PROTOCOLS_STR, "http");
		curl_easy_setopt(s->e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(s->e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->e, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(s->e, CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(s->e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	}

	deadline = now_ms() + l->timeout_s * 1000;
	if (l->ncontacts > 0) {
		l->contact_ids = xcalloc((size_t)l->ncontacts, sizeof *l->contact_ids);
		l->phase = PHASE_CONTACTS;
		l->total = l->ncontacts;
		rc = run_phase(l, deadline);
		summary(l, rc);
		if (rc == 0 && l->ncontact_ids == 0)
			rc = -EIO;
	}
	if (rc == 0) {
		l->phase = PHASE_MESSAGES;
		l->total = l->n;
		rc = run_phase(l, deadline);
		summary(l, rc);
	}

	for (int i = 0; i < l->conc; i++) {
		if (l->slots[i].active)
			curl_multi_remove_handle(l->m, l->slots[i].e);
		curl_easy_cleanup(l->slots[i].e);
		buf_free(&l->slots[i].resp);
	}
	curl_multi_cleanup(l->m);
	curl_slist_free_all(l->hdrs);
	for (int64_t i = 0; i < l->ncontact_ids; i++)
		free(l->contact_ids[i]);
	free(l->contact_ids);
	free(l->slots);
	free(l->url_messages);
	free(l->url_contacts);
	free(base);
	curl_global_cleanup();
	if (rc < 0)
		return 1;
	return errors(l) > 0 || l->ok < l->total ? 3 : 0;
}
