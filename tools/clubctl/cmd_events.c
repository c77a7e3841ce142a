/*
 * cmd_events.c - `clubctl events post` (POST /v1/events) and the loyalty
 * account commands `clubctl points show|spend|adjust|referral` over
 * /v1/contacts/{id}/points and /referral.  Two groups in one file: they
 * are one feature (docs/club.md) and share their output helpers.
 *
 * Owns the JSON it builds.  Never retries a post by itself: a timeout or a
 * 503 is reported, and a retry with the same --idempotency-key is safe.
 * Persian digits are accepted in amounts and point counts.  Limits:
 * --properties 4 KiB (the server's), history pages of 1..200 entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clubctl.h"
#include "out.h"
#include "text.h"
#include "util.h"

enum {
	O_TYPE = 256,
	O_CONTACT,
	O_PHONE,
	O_EMAIL,
	O_CHAT,
	O_AMOUNT,
	O_CURRENCY,
	O_AT,
	O_PROP,
	O_PROPS,
	O_CODE,
	O_IDEM,
	O_LIMIT,
	O_CURSOR,
	O_REASON,
	O_REF,
};

static const struct ctl_opt post_opts[] = {
    {"type", O_TYPE, "TYPE", "purchase, signup or a custom type (a-z 0-9 _ . -)", 0, NULL},
    {"contact", O_CONTACT, "ID", "the contact's id", 0, NULL},
    {"phone", O_PHONE, "PHONE", "the contact by phone (unknown: created)", 0, NULL},
    {"email", O_EMAIL, "EMAIL", "the contact by email (unknown: created)", 0, NULL},
    {"chat", O_CHAT, "CHAT", "the contact by chat id (unknown: created)", 0, NULL},
    {"amount", O_AMOUNT, "AMOUNT", "purchase amount, at most 2 decimals (125000, 12.50)", 0, NULL},
    {"currency", O_CURRENCY, "CUR", "ISO 4217 currency (IRR, EUR)", 0, NULL},
    {"at", O_AT, "TIME", "when it happened (RFC 3339, 'YYYY-MM-DD HH:MM' local, now)", 0, NULL},
    {"prop", O_PROP, "K=V", "a property (string value; K:=JSON for other values)", CTL_OPT_MULTI,
     NULL},
    {"properties", O_PROPS, "JSON", "all properties as one JSON object", 0, NULL},
    {"referral-code", O_CODE, "CODE", "a friend's referral code (signup)", 0, NULL},
    {"idempotency-key", O_IDEM, "KEY", "the same KEY within 24 h records nothing new", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt show_opts[] = {
    {"limit", O_LIMIT, "N", "ledger entries to show (1..200, default 20)", 0, NULL},
    {"cursor", O_CURSOR, "CURSOR", "start after this ledger entry", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

static const struct ctl_opt spend_opts[] = {
    {"reason", O_REASON, "TEXT", "why (shown in the ledger)", 0, NULL},
    {"ref", O_REF, "REF", "your reference (order, receipt)", 0, NULL},
    {"idempotency-key", O_IDEM, "KEY", "the same KEY within 24 h changes nothing more", 0, NULL},
    {NULL, 0, NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- helpers */

static int key_ok(struct ctl *c, const char *key)
{
	size_t n = strlen(key);
	int ok = n >= 1 && n <= 200;
	for (size_t i = 0; i < n && ok; i++)
		ok = key[i] >= 0x21 && key[i] <= 0x7E;
	if (!ok)
		ctl_usage(c, "--idempotency-key: 1..200 printable ASCII characters without spaces "
		             "expected");
	return ok;
}

static char *int_text(const json_t *v)
{
	return json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : NULL;
}

static void kv_int(int w, const char *k, const json_t *v)
{
	char *s = int_text(v);
	out_kv(stdout, w, k, s);
	free(s);
}

static void kv_time(int w, const char *k, const char *rfc)
{
	char *s = out_time(rfc);
	out_kv(stdout, w, k, s);
	free(s);
}

/* "silver (up from bronze)" */
static char *tier_text(const json_t *tier, const json_t *change)
{
	const char *t = json_string_value(tier);
	const char *dir = json_string_value(json_object_get(change, "direction"));
	const char *from = json_string_value(json_object_get(change, "from"));
	if (!t)
		return xstrdup("-");
	if (!dir || strcmp(dir, "initial") == 0)
		return xstrdup(t);
	return xasprintf("%s (%s from %s)", t, dir, from ? from : "none");
}

static void print_messages(int w, const json_t *msgs)
{
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m)
	{
		const char *kind = ctl_jstr(m, "kind"), *id = ctl_jstr(m, "message_id");
		char *s = id ? xasprintf("%s %s (%s)", kind ? kind : "", id,
		                         ctl_jstr(m, "channel") ? ctl_jstr(m, "channel") : "-")
		             : xasprintf("%s not sent: %s", kind ? kind : "",
		                         ctl_jstr(m, "skipped") ? ctl_jstr(m, "skipped") : "-");
		out_kv(stdout, w, i ? "" : "messages", s);
		free(s);
	}
}

/* ---------------------------------------------------------------- events post */

static void print_event(struct ctl *c, const json_t *e)
{
	const int w = 10;
	if (c->quiet) {
		printf("%s\n", ctl_jstr(e, "id") ? ctl_jstr(e, "id") : "");
		return;
	}
	char *s;
	out_kv(stdout, w, "event", ctl_jstr(e, "id"));
	out_kv(stdout, w, "type", ctl_jstr(e, "type"));
	s = xasprintf("%s%s", ctl_jstr(e, "contact_id") ? ctl_jstr(e, "contact_id") : "-",
	              json_is_true(json_object_get(e, "contact_created")) ? " (new)" : "");
	out_kv(stdout, w, "contact", s);
	free(s);
	kv_time(w, "at", ctl_jstr(e, "at"));
	if (ctl_jstr(e, "amount")) {
		char *amt = out_digits(ctl_jstr(e, "amount"));
		s = xasprintf("%s %s", amt, ctl_jstr(e, "currency") ? ctl_jstr(e, "currency") : "");
		out_kv(stdout, w, "amount", s);
		free(s);
		free(amt);
	}
	const json_t *p = json_object_get(e, "points");
	char *earned = int_text(json_object_get(p, "earned"));
	char *bal = int_text(json_object_get(p, "balance"));
	s = xasprintf("+%s, balance %s", earned ? earned : "0", bal ? bal : "-");
	out_kv(stdout, w, "points", s);
	free(s);
	free(earned);
	free(bal);
	s = tier_text(json_object_get(p, "tier"), json_object_get(p, "tier_change"));
	out_kv(stdout, w, "tier", s);
	free(s);
	const json_t *at = json_object_get(e, "attribution");
	if (json_is_object(at)) {
		s = xasprintf("%s / %s", ctl_jstr(at, "campaign") ? ctl_jstr(at, "campaign") : "-",
		              ctl_jstr(at, "variant") ? ctl_jstr(at, "variant") : "-");
		out_kv(stdout, w, "campaign", s);
		free(s);
	}
	const json_t *ref = json_object_get(e, "referral");
	if (json_is_object(ref)) {
		s = json_is_true(json_object_get(ref, "credited"))
		        ? xasprintf("credited to %s", ctl_jstr(ref, "referrer_id"))
		        : xasprintf("not credited (%s)", ctl_jstr(ref, "reason"));
		out_kv(stdout, w, "referral", s);
		free(s);
	}
	print_messages(w, json_object_get(e, "messages"));
}

static int add_prop(struct ctl *c, json_t *props, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return ctl_usage(c, "--prop %s: K=V or K:=JSON expected", kv);
	int raw = eq > kv && eq[-1] == ':';
	char *k = xstrndup(kv, (size_t)(eq - kv - raw));
	json_t *v = raw ? json_loads(eq + 1, JSON_DECODE_ANY, NULL) : json_string(eq + 1);
	if (!v || !*k) {
		free(k);
		json_decref(v);
		return ctl_usage(c, "--prop %s: %s", kv,
		                 raw ? "the value after := is not JSON" : "not valid UTF-8");
	}
	json_object_set_new(props, k, v);
	free(k);
	return CTL_OK;
}

static int run_post(struct ctl *c, const struct ctl_args *a)
{
	const char *v, *key = ctl_arg(a, O_IDEM);
	json_t *o = json_object(), *ans = NULL, *props = NULL;
	char *hdr = NULL, *when = NULL, *amount = NULL;
	long status = 0;
	int rc = CTL_OK, who = 0;

	if (!(v = ctl_arg(a, O_TYPE))) {
		rc = ctl_usage(c, "--type is required (purchase, signup or a custom type)");
		goto out;
	}
	json_object_set_new(o, "type", json_string(v));
	static const struct {
		int key;
		const char *field;
	} addrs[] = {{O_PHONE, "phone"}, {O_EMAIL, "email"}, {O_CHAT, "chat"}};
	if ((v = ctl_arg(a, O_CONTACT))) {
		json_object_set_new(o, "contact_id", json_string(v));
		who++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		if ((v = ctl_arg(a, addrs[i].key))) {
			json_t *s = json_string(v);
			if (!s) {
				rc = ctl_usage(c, "--%s: not valid UTF-8", addrs[i].field);
				goto out;
			}
			json_object_set_new(o, "contact", json_pack("{s:o}", addrs[i].field, s));
			who++;
		}
	if (who != 1) {
		rc = ctl_usage(c, "give exactly one of --contact, --phone, --email, --chat");
		goto out;
	}
	if ((v = ctl_arg(a, O_AMOUNT))) {
		amount = text_ascii_digits(v);
		json_object_set_new(o, "amount", json_string(amount ? amount : v));
	}
	if ((v = ctl_arg(a, O_CURRENCY)))
		json_object_set_new(o, "currency", json_string(v));
	if ((v = ctl_arg(a, O_AT))) {
		if (ctl_parse_when(v, &when) < 0) {
			rc =
			    ctl_usage(c,
			              "--at %s: RFC 3339, 'YYYY-MM-DD HH:MM' in local time (a year "
			              "below 1700 is Jalali), +DURATION or now expected",
			              v);
			goto out;
		}
		json_object_set_new(o, "at", json_string(when));
	}
	if ((v = ctl_arg(a, O_PROPS))) {
		props = json_loads(v, 0, NULL);
		if (!json_is_object(props)) {
			rc = ctl_usage(c, "--properties: a JSON object expected");
			goto out;
		}
	}
	size_t it = 0;
	while ((v = ctl_arg_next(a, O_PROP, &it))) {
		if (!props)
			props = json_object();
		if ((rc = add_prop(c, props, v)) != CTL_OK)
			goto out;
	}
	if (props)
		json_object_set(o, "properties", props);
	if ((v = ctl_arg(a, O_CODE)))
		json_object_set_new(o, "referral_code", json_string(v));
	if (key && !key_ok(c, key)) {
		rc = CTL_EUSAGE;
		goto out;
	}
	const char *headers[2] = {NULL, NULL};
	if (key) {
		hdr = xasprintf("Idempotency-Key: %s", key);
		headers[0] = hdr;
	}
	rc = ctl_api(c, "POST", "/v1/events", o, headers, &ans, &status);
	if (rc != CTL_OK)
		goto out;
	if (c->json) {
		ctl_print_json(ans);
	} else {
		if (status == 200)
			ctl_info(c,
			         "the idempotency key was used before: nothing new was recorded; "
			         "this is the event it recorded");
		print_event(c, ans);
	}
out:
	free(hdr);
	free(when);
	free(amount);
	json_decref(props);
	json_decref(o);
	json_decref(ans);
	return rc;
}

/* ---------------------------------------------------------------- points */

static void print_account(struct ctl *c, const json_t *p)
{
	const int w = 10;
	char *s;
	if (c->quiet) {
		s = int_text(json_object_get(p, "balance"));
		printf("%s\n", s ? s : "0");
		free(s);
		return;
	}
	out_kv(stdout, w, "contact", ctl_jstr(p, "contact_id"));
	kv_int(w, "balance", json_object_get(p, "balance"));
	kv_int(w, "lifetime", json_object_get(p, "lifetime"));
	out_kv(stdout, w, "tier", ctl_jstr(p, "tier"));
	const json_t *nx = json_object_get(p, "next_tier");
	if (json_is_object(nx)) {
		s = xasprintf("%s in %lld points", ctl_jstr(nx, "name"),
		              (long long)json_integer_value(json_object_get(nx, "points_needed")));
		out_kv(stdout, w, "next tier", s);
		free(s);
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(p, "expiring"), i, e)
	{
		char *t = out_time(ctl_jstr(e, "at"));
		s = xasprintf("%lld on %s",
		              (long long)json_integer_value(json_object_get(e, "points")), t);
		out_kv(stdout, w, i ? "" : "expiring", s);
		free(s);
		free(t);
	}
	const json_t *hist = json_object_get(p, "history");
	if (json_array_size(hist) == 0)
		return;
	static const char *const head[] = {"AT", "POINTS", "BALANCE", "REASON", "REF", "NOTE"};
	struct out_table *t = out_table_new(head, 6);
	out_table_align(t, 1, OUT_RIGHT);
	out_table_align(t, 2, OUT_RIGHT);
	out_table_max(t, 5, 40);
	json_array_foreach(hist, i, e)
	{
		char *at = out_time(ctl_jstr(e, "at"));
		json_int_t d = json_integer_value(json_object_get(e, "delta"));
		char *delta = xasprintf("%+lld", (long long)d);
		char *bal = int_text(json_object_get(e, "balance"));
		const char *row[] = {
		    at, delta, bal, ctl_jstr(e, "reason"), ctl_jstr(e, "ref"), ctl_jstr(e, "note")};
		out_table_add(t, row);
		free(at);
		free(delta);
		free(bal);
	}
	fputc('\n', stdout);
	out_table_flush(t, stdout);
	out_table_free(t);
	if (ctl_jstr(p, "next_cursor"))
		ctl_info(c, "more: --cursor %s", ctl_jstr(p, "next_cursor"));
}

static int run_show(struct ctl *c, const struct ctl_args *a)
{
	int64_t limit = 20;
	const char *v;
	if ((v = ctl_arg(a, O_LIMIT)) && parse_i64(v, 1, 200, &limit) < 0)
		return ctl_usage(c, "--limit %s: a number from 1 to 200 expected", v);
	char *base = ctl_path(c, "/v1/contacts/", a->pos[0], "/points");
	char *path;
	if ((v = ctl_arg(a, O_CURSOR))) {
		char *e = ctl_escape(c, v);
		path = xasprintf("%s?limit=%lld&cursor=%s", base, (long long)limit, e);
		free(e);
	} else {
		path = xasprintf("%s?limit=%lld", base, (long long)limit);
	}
	free(base);
	json_t *ans = NULL;
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			print_account(c, ans);
	}
	json_decref(ans);
	return rc;
}

static int run_change(struct ctl *c, const struct ctl_args *a, const char *what)
{
	int spend = strcmp(what, "spend") == 0;
	char *num = text_ascii_digits(a->pos[1]);
	int64_t n;
	int bad =
	    parse_i64(num ? num : a->pos[1], spend ? 1 : -1000000000, 1000000000, &n) < 0 || n == 0;
	free(num);
	if (bad)
		return ctl_usage(c, "%s: %s expected", a->pos[1],
		                 spend ? "a number of points from 1 to 1000000000"
		                       : "a non-zero number of points (negative to take away)");
	const char *reason = ctl_arg(a, O_REASON), *ref = ctl_arg(a, O_REF);
	const char *key = ctl_arg(a, O_IDEM);
	if (!spend && !reason)
		return ctl_usage(c, "--reason is required for an adjustment");
	if (key && !key_ok(c, key))
		return CTL_EUSAGE;
	json_t *o = json_pack("{s:I}", "points", (json_int_t)n), *ans = NULL;
	if (reason)
		json_object_set_new(o, "reason", json_string(reason));
	if (ref)
		json_object_set_new(o, "ref", json_string(ref));
	char *hdr = key ? xasprintf("Idempotency-Key: %s", key) : NULL;
	const char *headers[2] = {hdr, NULL};
	char *suffix = xasprintf("/points/%s", what);
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], suffix);
	long status = 0;
	int rc = ctl_api(c, "POST", path, o, headers, &ans, &status);
	if (rc == CTL_OK) {
		if (c->json) {
			ctl_print_json(ans);
		} else if (c->quiet) {
			char *b = int_text(json_object_get(ans, "balance"));
			printf("%s\n", b ? b : "");
			free(b);
		} else {
			if (json_is_true(json_object_get(ans, "replayed")))
				ctl_info(c, "the idempotency key was used before: nothing changed");
			char *b = int_text(json_object_get(ans, "balance"));
			char *t = tier_text(json_object_get(ans, "tier"),
			                    json_object_get(ans, "tier_change"));
			printf("%s %lld points; balance %s, tier %s\n",
			       spend   ? "spent"
			       : n > 0 ? "added"
			               : "took",
			       (long long)(n < 0 ? -n : n), b ? b : "-", t);
			free(b);
			free(t);
			if (json_array_size(json_object_get(ans, "messages")))
				print_messages(10, json_object_get(ans, "messages"));
		}
	}
	free(path);
	free(suffix);
	free(hdr);
	json_decref(o);
	json_decref(ans);
	return rc;
}

static int run_spend(struct ctl *c, const struct ctl_args *a)
{
	return run_change(c, a, "spend");
}

static int run_adjust(struct ctl *c, const struct ctl_args *a)
{
	return run_change(c, a, "adjust");
}

static int run_referral(struct ctl *c, const struct ctl_args *a)
{
	json_t *ans = NULL;
	char *path = ctl_path(c, "/v1/contacts/", a->pos[0], "/referral");
	int rc = ctl_api(c, "GET", path, NULL, NULL, &ans, NULL);
	free(path);
	if (rc == CTL_OK) {
		if (c->json)
			ctl_print_json(ans);
		else
			printf("%s\n", ctl_jstr(ans, "code") ? ctl_jstr(ans, "code") : "");
	}
	json_decref(ans);
	return rc;
}

static const struct ctl_cmd events_cmds[] = {
    {"post", NULL, 0, 0, "record a business event (purchase, signup, custom)",
     "The contact is --contact ID, or --phone/--email/--chat (an unknown address\n"
     "creates a contact).  A purchase needs --amount and --currency and earns points\n"
     "by the server's [points] rules; a signup may carry --referral-code.  --at takes\n"
     "the same forms as messages send --at.  Resend with the same --idempotency-key\n"
     "after a timeout: nothing is counted twice.",
     post_opts, run_post},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct ctl_cmd points_cmds[] = {
    {"show", "ID", 1, 1, "a contact's balance, tier, expiring points and ledger", NULL, show_opts,
     run_show},
    {"spend", "ID POINTS", 2, 2, "spend points (first those that expire first)",
     "Exits 1 (409 insufficient_points) when the balance is smaller; nothing changes then.",
     spend_opts, run_spend},
    {"adjust", "ID POINTS", 2, 2, "credit (or, negative, correct) points; admin token",
     "A positive adjustment counts toward the tier and may send the tier message; a\n"
     "negative one is a correction and may move the contact down.  --reason is required.\n"
     "Put a negative number after --: points adjust ID --reason R -- -100.",
     spend_opts, run_adjust},
    {"referral", "ID", 1, 1, "the contact's referral code (made on first use)", NULL, NULL,
     run_referral},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

const struct ctl_group ctl_group_events = {"events", "business events (purchases, signups)",
                                           events_cmds};
const struct ctl_group ctl_group_points = {"points", "loyalty points, tiers and referral codes",
                                           points_cmds};
