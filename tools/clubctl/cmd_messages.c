/*
 * cmd_messages.c - `clubctl messages ...`: send, status and cancel over
 * /v1/messages.  Builds the send body from options (text and HTML from
 * options, files or stdin; times in several forms, see ctl_parse_when),
 * passes an Idempotency-Key header, and shows a message with its history.
 *
 * Owns the JSON it builds.  Never retries a send by itself: a timeout or a
 * 503 is reported, and a retry with the same --idempotency-key is safe.
 * Limits: text and HTML files up to 1 MiB (the server's own limits are
 * lower and its error names the field).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "out.h"
#include "util.h"

#define FILE_MAX (1u << 20)

enum {
	O_TO = 256,
	O_CONTACT,
	O_CHANNEL,
	O_TEXT,
	O_TEXT_FILE,
	O_SUBJECT,
	O_HTML,
	O_HTML_FILE,
	O_CATEGORY,
	O_AT,
	O_EXPIRES,
	O_IDEM,
};

static const struct ctl_opt send_opts[] = {
    {"to", O_TO, "ADDR", "recipient address (needs a concrete --channel)", 0, NULL},
    {"contact", O_CONTACT, "ID", "recipient contact id", 0, NULL},
    {"channel", O_CHANNEL, "CHANNEL", "channel (default preferred)", 0, "sms email chat preferred"},
    {"text", O_TEXT, "TEXT", "message text (- reads stdin)", 0, NULL},
    {"text-file", O_TEXT_FILE, "FILE", "message text from FILE", CTL_OPT_FILE, NULL},
    {"subject", O_SUBJECT, "SUBJECT", "email subject", 0, NULL},
    {"html", O_HTML, "HTML", "email HTML body", 0, NULL},
    {"html-file", O_HTML_FILE, "FILE", "email HTML body from FILE", CTL_OPT_FILE, NULL},
    {"category", O_CATEGORY, "CATEGORY", "message category (default transactional)", 0,
     "transactional promotional survey lottery occasion"},
    {"at", O_AT, "TIME", "send at TIME (RFC 3339, 'YYYY-MM-DD HH:MM' local, +30m, now)", 0, NULL},
    {"expires", O_EXPIRES, "TIME", "give up at TIME (same forms as --at)", 0, NULL},
    {"idempotency-key", O_IDEM, "KEY", "the same KEY within 24 h sends nothing new", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- output */

static void print_message(struct ctl *c, const json_t *m)
{
	const int w = 12;
	char *s;

	if (c->quiet) {
		printf("%s %s\n", ctl_jstr(m, "id") ? ctl_jstr(m, "id") : "",
		       ctl_jstr(m, "state") ? ctl_jstr(m, "state") : "");
		return;
	}
	out_kv(stdout, w, "id", ctl_jstr(m, "id"));
	out_kv(stdout, w, "state", ctl_jstr(m, "state"));
	out_kv(stdout, w, "contact", ctl_jstr(m, "contact_id"));
	if (json_object_get(m, "channel")) {
		const char *req = ctl_jstr(m, "channel"), *sent = ctl_jstr(m, "sent_channel");
		s = sent && req && strcmp(req, sent) != 0 ? xasprintf("%s (sent on %s)", req, sent)
		                                          : xstrdup(sent  ? sent
		                                                    : req ? req
		                                                          : "-");
		out_kv(stdout, w, "channel", s);
		free(s);
		out_kv(stdout, w, "category", ctl_jstr(m, "category"));
		out_kv(stdout, w, "to", ctl_jstr(m, "to"));
		json_t *att = json_object_get(m, "attempts");
		s = json_is_integer(att) ? xasprintf("%lld", (long long)json_integer_value(att))
		                         : NULL;
		out_kv(stdout, w, "attempts", s);
		free(s);
	}
	static const struct {
		const char *key, *label;
	} times[] = {{"created_at", "created"},
	             {"due_at", "due"},
	             {"sent_at", "sent"},
	             {"expires_at", "expires"}};
	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		if (!json_object_get(m, times[i].key))
			continue;
		s = out_time(ctl_jstr(m, times[i].key));
		out_kv(stdout, w, times[i].label, s);
		free(s);
	}
	if (ctl_jstr(m, "provider_id"))
		out_kv(stdout, w, "provider id", ctl_jstr(m, "provider_id"));
	if (json_is_integer(json_object_get(m, "segments"))) {
		s = xasprintf("%lld",
		              (long long)json_integer_value(json_object_get(m, "segments")));
		out_kv(stdout, w, "segments", s);
		free(s);
	}
	if (ctl_jstr(m, "last_error"))
		out_kv(stdout, w, "last error", ctl_jstr(m, "last_error"));
	if (ctl_jstr(m, "subject"))
		out_kv(stdout, w, "subject", ctl_jstr(m, "subject"));
	if (ctl_jstr(m, "text")) {
		char *clean = out_clean(ctl_jstr(m, "text"));
		s = out_fit(clean, 60);
		out_kv(stdout, w, "text", s);
		free(s);
		free(clean);
	}
	const json_t *hist = json_object_get(m, "history");
	if (json_array_size(hist) == 0)
		return;
	static const char *const head[] = {"AT", "STATE", "ATTEMPT", "DETAIL"};
	struct out_table *t = out_table_new(head, 4);
	out_table_align(t, 2, OUT_RIGHT);
	size_t i;
	json_t *h;
	json_array_foreach(hist, i, h)
	{
		char *at = out_time(ctl_jstr(h, "at"));
		json_t *att = json_object_get(h, "attempt");
		char *an = json_is_integer(att)
		               ? xasprintf("%lld", (long long)json_integer_value(att))
		               : NULL;
		/* everything else in the entry: reason, channel, ... */
		struct buf d;
		const char *k;
		json_t *v;
		buf_init(&d, 0);
		buf_append(&d, "", 0);
		json_object_foreach(h, k, v)
		{
			if (!strcmp(k, "at") || !strcmp(k, "state") || !strcmp(k, "attempt"))
				continue;
			char *vt = json_is_string(v)
			               ? xstrdup(json_string_value(v))
			               : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			if (!strcmp(k, "reason"))
				buf_printf(&d, "%s%s", d.len ? "; " : "", vt ? vt : "");
			else
				buf_printf(&d, "%s%s=%s", d.len ? "; " : "", k, vt ? vt : "");
			free(vt);
		}
		const char *row[] = {at, ctl_jstr(h, "state"), an, d.p};
		out_table_add(t, row);
		free(at);
		free(an);
		buf_free(&d);
	}
	fputc('\n', stdout);
	out_table_flush(t, stdout);
	out_table_free(t);
}

/* ---------------------------------------------------------------- commands */

static int set_text(struct ctl *c, json_t *o, const char *field, const char *inline_val,
                    const char *file, const char *optname)
{
	if (inline_val && file)
		return ctl_usage(c, "give --%s or --%s-file, not both", optname, optname);
	char *text = NULL;
	if (file || (inline_val && strcmp(inline_val, "-") == 0)) {
		int rc = ctl_read_file(file ? file : "-", FILE_MAX, &text, NULL);
		if (rc != CTL_OK)
			return rc;
		json_object_set_new(o, field, json_string(text));
		if (!json_object_get(o, field)) /* not UTF-8 */
			rc = ctl_usage(c, "--%s: the text is not valid UTF-8", optname);
		free(text);
		return rc;
	}
	if (inline_val) {
		json_t *s = json_string(inline_val);
		if (!s)
			return ctl_usage(c, "--%s: the text is not valid UTF-8", optname);
		json_object_set_new(o, field, s);
	}
	return CTL_OK;
}

static int set_time(struct ctl *c, json_t *o, const char *field, const char *val,
                    const char *optname)
{
	char *t;
	if (!val)
		return CTL_OK;
	if (ctl_parse_when(val, &t) < 0)
		return ctl_usage(
		    c,
		    "--%s %s: RFC 3339 (2026-11-23T18:30:00+03:30), 'YYYY-MM-DD HH:MM' "
		    "in local time (a year below 1700 is Jalali), +DURATION or now "
		    "expected",
		    optname, val);
	json_object_set_new(o, field, json_string(t));
	free(t);
	return CTL_OK;
}

static int run_send(struct ctl *c, const struct ctl_args *a)
{
	const char *to = ctl_arg(a, O_TO), *contact = ctl_arg(a, O_CONTACT);
	const char *chan = ctl_arg(a, O_CHANNEL), *key = ctl_arg(a, O_IDEM), *v;
	json_t *o, *ans = NULL;
	char *hdr = NULL;
	long status = 0;
	int rc;

	if ((to && contact) || (!to && !contact))
		return ctl_usage(c, "give exactly one of --to ADDR and --contact ID");
	if (to && (!chan || strcmp(chan, "preferred") == 0))
		return ctl_usage(c, "--to needs --channel sms, email or chat");
	if (key) {
		size_t n = strlen(key);
		int ok = n >= 1 && n <= 200;
		for (size_t i = 0; i < n && ok; i++)
			ok = key[i] >= 0x21 && key[i] <= 0x7E;
		if (!ok)
			return ctl_usage(c, "--idempotency-key: 1..200 printable ASCII characters "
			                    "without spaces expected");
	}
	o = json_object();
	if (to)
		json_object_set_new(o, "to", json_string(to));
	else
		json_object_set_new(o, "contact_id", json_string(contact));
	json_object_set_new(o, "channel", json_string(chan ? chan : "preferred"));
	if ((v = ctl_arg(a, O_CATEGORY)))
		json_object_set_new(o, "category", json_string(v));
	if ((v = ctl_arg(a, O_SUBJECT)))
		json_object_set_new(o, "subject", json_string(v));
	rc = set_text(c, o, "text", ctl_arg(a, O_TEXT), ctl_arg(a, O_TEXT_FILE), "text");
	if (rc == CTL_OK)
		rc = set_text(c, o, "html", ctl_arg(a, O_HTML), ctl_arg(a, O_HTML_FILE), "html");
	if (rc == CTL_OK)
		rc = set_time(c, o, "send_at", ctl_arg(a, O_AT), "at");
	if (rc == CTL_OK)
		rc = set_time(c, o, "expires_at", ctl_arg(a, O_EXPIRES), "expires");
	if (rc != CTL_OK)
		goto out;
	if (!json_object_get(o, "text") && !json_object_get(o, "html")) {
		rc = ctl_usage(c, "give the message: --text, --text-file or (email) --html");
		goto out;
	}
	const char *headers[2] = {NULL, NULL};
	if (key) {
		hdr = xasprintf("Idempotency-Key: %s", key);
		headers[0] = hdr;
	}
	rc = ctl_api(c, "POST", "/v1/messages", o, headers, &ans, &status);
	if (rc != CTL_OK)
		goto out;
	if (c->json) {
		ctl_print_json(ans);
	} else {
		if (status == 200)
			ctl_info(c, "the idempotency key was used before: nothing new was sent; "
			            "this is the message it created");
		print_message(c, ans);
	}
out:
	free(hdr);
	json_decref(o);
	json_decref(ans);
	return rc;
}

static int run_status(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = ctl_path(c, "/v1/messages/", a->pos[0], NULL);
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			print_message(c, ans);
	}
	json_decref(ans);
	return rc;
}

static int run_cancel(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans;
	char *path = ctl_path(c, "/v1/messages/", a->pos[0], "/cancel");
	int rc = ctl_api(c, "POST", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json) {
			ctl_print_json(ans);
		} else if (!c->quiet) {
			char *id = out_clean(ctl_jstr(ans, "id") ? ctl_jstr(ans, "id") : a->pos[0]);
			printf("cancelled message %s\n", id);
			free(id);
		}
	}
	json_decref(ans);
	return rc;
}

static const struct ctl_cmd messages_cmds[] = {
    {"send", NULL, 0, 0, "send a message to a contact or an address",
     "The recipient is --contact ID (channel preferred by default: the contact's\n"
     "preferred order) or --to ADDR with a concrete --channel (an unknown address\n"
     "creates a contact).  Email needs --subject.  --at and --expires take RFC 3339\n"
     "with an offset, 'YYYY-MM-DD HH:MM' in local time (a year below 1700 is a\n"
     "Jalali date: '1405-09-02 18:30'), +DURATION (+30m, +2h, +1d) or now.\n"
     "Resend with the same --idempotency-key after a timeout: nothing is sent twice.",
     send_opts, run_send},
    {"status", "ID", 1, 1, "show a message's state and history", NULL, NULL, run_status},
    {"cancel", "ID", 1, 1, "cancel a scheduled or ready message",
     "Exits 1 (conflict) once the message is being sent or is final.", NULL, run_cancel},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_messages = {"messages", "sending and following messages",
                                             messages_cmds};
