/*
 * test_mime.c - the MIME builder: RFC 2047 encoded words (Persian, emoji,
 * long ASCII; boundaries never split a UTF-8 character, words <= 75 chars,
 * lines <= 76), quoted-printable and base64 bodies decoded back exactly,
 * the transfer-encoding choice, multipart boundaries, header injection
 * refused, Message-ID round trips, dates, address checks and splitting.
 * Decoders here are independent of the encoders in mime.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mime.h"
#include "util.h"

/* ---- independent decoders ------------------------------------------------ */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict: groups of 4, '=' only as padding at the very end. */
static void b64_decode(struct buf *out, const char *s, size_t n)
{
	assert_int_equal(n % 4, 0);
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=') {
				assert_true(i + 4 == n && k >= 2);
				pad++;
				v[k] = 0;
			} else {
				assert_int_equal(pad, 0);
				v[k] = b64val((unsigned char)s[i + k]);
				assert_true(v[k] >= 0);
			}
		}
		unsigned char o[3] = {(unsigned char)(v[0] << 2 | v[1] >> 4),
		                      (unsigned char)(v[1] << 4 | v[2] >> 2),
		                      (unsigned char)(v[2] << 6 | v[3])};
		buf_append(out, o, (size_t)(3 - pad));
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lowercase is not what we emit */
}

/* Strict UTF-8 check (no overlongs or surrogates). */
static int valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t l;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			l = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			l = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			l = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + l > n)
			return 0;
		for (size_t k = 1; k < l; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += l;
	}
	return 1;
}

/* Every line of a CRLF text is at most max characters; no bare CR or LF. */
static void check_lines(const char *s, size_t n, size_t max)
{
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < n && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_true(s[i] != '\n');
		col++;
		if (col > max)
			fail_msg("line longer than %zu at offset %zu: %.*s", max, i,
			         (int)(n - i > 40 ? 40 : n - i), s + i - col + 1);
	}
}

/*
 * Decode one header ("Name: value\r\n" with folds) the RFC 2047 way:
 * unfold, drop whitespace between adjacent encoded words, decode them.
 * Each encoded word must be <= 75 chars and hold whole UTF-8 characters.
 * Returns the malloc'd value; *nwords counts encoded words.
 */
static char *decode_header(const char *h, const char *name, int *nwords)
{
	size_t nl = strlen(name);
	assert_memory_equal(h, name, nl);
	assert_true(h[nl] == ':');
	/* unfold */
	struct buf u;
	buf_init(&u, 0);
	const char *end = strstr(h, "\r\n");
	for (const char *p = h + nl + 1;;) {
		assert_non_null(end);
		buf_append(&u, p, (size_t)(end - p));
		if (end[2] == ' ' || end[2] == '\t') {
			p = end + 2;
			end = strstr(p, "\r\n");
			continue;
		}
		break;
	}
	struct buf out;
	buf_init(&out, 0);
	*nwords = 0;
	const char *p = u.p + 1; /* the one space after the colon */
	int prev_ew = 0;
	const char *pending_ws = NULL;
	size_t pending_n = 0;
	while (*p) {
		size_t ws = strspn(p, " \t");
		if (ws) {
			pending_ws = p;
			pending_n = ws;
			p += ws;
			continue;
		}
		size_t tl = strcspn(p, " \t");
		int is_ew = tl > 12 && strncmp(p, "=?UTF-8?", 8) == 0 && p[9] == '?' &&
		            strncmp(p + tl - 2, "?=", 2) == 0;
		if (!(is_ew && prev_ew) && pending_ws)
			buf_append(&out, pending_ws, pending_n);
		pending_ws = NULL;
		if (is_ew) {
			assert_true(tl <= 75);
			(*nwords)++;
			struct buf w;
			buf_init(&w, 0);
			const char *payload = p + 10;
			size_t pl = tl - 12;
			if (p[8] == 'B') {
				b64_decode(&w, payload, pl);
			} else {
				assert_true(p[8] == 'Q');
				for (size_t i = 0; i < pl; i++) {
					if (payload[i] == '_') {
						buf_append(&w, " ", 1);
					} else if (payload[i] == '=') {
						assert_true(i + 2 < pl);
						int hi = hexval(payload[i + 1]),
						    lo = hexval(payload[i + 2]);
						assert_true(hi >= 0 && lo >= 0);
						unsigned char c = (unsigned char)(hi << 4 | lo);
						buf_append(&w, &c, 1);
						i += 2;
					} else {
						assert_true(
						    strchr("!*+-/", payload[i]) ||
						    (payload[i] >= 'a' && payload[i] <= 'z') ||
						    (payload[i] >= 'A' && payload[i] <= 'Z') ||
						    (payload[i] >= '0' && payload[i] <= '9'));
						buf_append(&w, payload + i, 1);
					}
				}
			}
			/* whole characters in every word */
			assert_true(valid_utf8((const unsigned char *)(w.p ? w.p : ""), w.len));
			buf_append(&out, w.p ? w.p : "", w.len);
			buf_free(&w);
		} else {
			buf_append(&out, p, tl);
		}
		prev_ew = is_ew;
		p += tl;
	}
	if (pending_ws)
		buf_append(&out, pending_ws, pending_n);
	buf_free(&u);
	if (!out.p)
		return xstrdup("");
	return buf_steal(&out);
}

/* ---- encoded words ------------------------------------------------------------ */

static const char *const samples[] = {
    "سلام",
    "سلام! تخفیف ویژهٔ نوروز برای اعضای باشگاه — فقط تا پایان هفته",
    /* emoji, ZWNJ (U+200C), ASCII code words */
    "تخفیف 😀 ویژه \xe2\x80\x8cنوروز\xe2\x80\x8c"
    "(ZWNJ) با کد NOWRUZ1403 و ارسال رایگان",
    "Café crème brûlée — 20% off this week only, for members of the club",
    "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
    "a=?b?c?=d",
    "Tab\tinside and  double  spaces",
};

static void test_subject_encoded_words(void **state)
{
	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(samples); s++) {
		/* every prefix length, so word boundaries land everywhere */
		const char *full = samples[s];
		size_t n = strlen(full);
		for (size_t len = 0; len <= n; len++) {
			char *v = xstrndup(full, len);
			if (!valid_utf8((const unsigned char *)v, len)) {
				struct buf b;
				buf_init(&b, 0);
				assert_int_equal(mime_header_text(&b, "Subject", v), -EINVAL);
				assert_int_equal(b.len, 0);
				free(v);
				continue;
			}
			struct buf b;
			buf_init(&b, 0);
			assert_int_equal(mime_header_text(&b, "Subject", v), 0);
			check_lines(b.p, b.len, MIME_LINE_MAX);
			int nw;
			char *back = decode_header(b.p, "Subject", &nw);
			assert_string_equal(back, v);
			free(back);
			buf_free(&b);
			free(v);
		}
	}
}

static void test_subject_plain_folding(void **state)
{
	(void)state;
	/* printable ASCII stays readable, folded at spaces */
	struct buf long_s;
	buf_init(&long_s, 0);
	for (int i = 0; i < 40; i++)
		buf_printf(&long_s, "word%d ", i);
	buf_puts(&long_s, "end");
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", long_s.p), 0);
	assert_null(strstr(b.p, "=?"));
	check_lines(b.p, b.len, MIME_LINE_MAX);
	assert_true(strstr(b.p, "\r\n ") != NULL); /* it did fold */
	int nw;
	char *back = decode_header(b.p, "Subject", &nw);
	assert_int_equal(nw, 0);
	assert_string_equal(back, long_s.p);
	free(back);
	buf_free(&b);
	buf_free(&long_s);

	/* short ASCII: one line, verbatim */
	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", "Your order #42 has shipped"), 0);
	assert_string_equal(b.p, "Subject: Your order #42 has shipped\r\n");
	buf_free(&b);

	/* a word too long for any line, and text that looks like an encoded
	 * word, are encoded instead */
	char lw[120];
	memset(lw, 'x', sizeof lw - 1);
	lw[sizeof lw - 1] = '\0';
	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", lw), 0);
	check_lines(b.p, b.len, MIME_LINE_MAX);
	back = decode_header(b.p, "Subject", &nw);
	assert_true(nw >= 2);
	assert_string_equal(back, lw);
	free(back);
	buf_free(&b);

	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", "=?UTF-8?B?aGk=?="), 0);
	back = decode_header(b.p, "Subject", &nw);
	assert_int_equal(nw, 1);
	assert_string_equal(back, "=?UTF-8?B?aGk=?=");
	free(back);
	buf_free(&b);

	/* mostly ASCII with one accent: Q encoding (readable), Persian: B */
	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", "Caf\xc3\xa9 opening hours"), 0);
	assert_non_null(strstr(b.p, "=?UTF-8?Q?"));
	buf_free(&b);
	buf_init(&b, 0);
	assert_int_equal(mime_header_text(&b, "Subject", "سلام دوست عزیز"), 0);
	assert_non_null(strstr(b.p, "=?UTF-8?B?"));
	buf_free(&b);
}

static void test_mailbox_header(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(mime_header_mailbox(&b, "From", NULL, "club@example.ir"), 0);
	assert_string_equal(b.p, "From: club@example.ir\r\n");
	buf_reset(&b);
	assert_int_equal(mime_header_mailbox(&b, "From", "Club Team", "club@example.ir"), 0);
	assert_string_equal(b.p, "From: Club Team <club@example.ir>\r\n");
	buf_reset(&b);
	assert_int_equal(mime_header_mailbox(&b, "From", "Ali \"A\" Rezaei, Jr.", "a@example.ir"),
	                 0);
	assert_string_equal(b.p, "From: \"Ali \\\"A\\\" Rezaei, Jr.\" <a@example.ir>\r\n");
	buf_reset(&b);
	/* Persian display names: encoded words, long ones folded */
	const char *fa = "باشگاه مشتریان کافه نادری شعبه مرکزی تهران، خیابان انقلاب";
	assert_int_equal(mime_header_mailbox(&b, "From", fa, "club@example.ir"), 0);
	check_lines(b.p, b.len, MIME_LINE_MAX);
	int nw;
	char *back = decode_header(b.p, "From", &nw);
	assert_true(nw >= 2);
	char *want = xasprintf("%s <club@example.ir>", fa);
	assert_string_equal(back, want);
	free(want);
	free(back);
	/* refused: CR/LF in names, bad addresses; b is unchanged */
	buf_reset(&b);
	assert_int_equal(mime_header_mailbox(&b, "From", "Evil\r\nBcc: x@y.z", "a@b.c"), -EINVAL);
	assert_int_equal(mime_header_mailbox(&b, "From", "Evil\nBcc", "a@b.c"), -EINVAL);
	assert_int_equal(mime_header_mailbox(&b, "From", NULL, "a@b.c\r\nBcc: x@y.z"), -EINVAL);
	assert_int_equal(mime_header_mailbox(&b, "From", "\xff\xfe", "a@b.c"), -EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* ---- bodies -------------------------------------------------------------------- */

/* Decode QP strictly; every encoded line <= 76, no UTF-8 sequence is split
 * across a soft break. */
static void qp_decode(struct buf *out, const char *s, size_t n)
{
	check_lines(s, n, 76);
	size_t i = 0;
	while (i < n) {
		const char *eol = strstr(s + i, "\r\n");
		assert_non_null(eol);
		size_t ll = (size_t)(eol - (s + i));
		const char *l = s + i;
		int soft = ll > 0 && l[ll - 1] == '=';
		size_t content = soft ? ll - 1 : ll;
		/* no trailing whitespace before a hard line break */
		if (content && !soft)
			assert_true(l[content - 1] != ' ' && l[content - 1] != '\t');
		struct buf seg;
		buf_init(&seg, 0);
		for (size_t k = 0; k < content; k++) {
			if (l[k] == '=') {
				assert_true(k + 2 < content);
				int hi = hexval(l[k + 1]), lo = hexval(l[k + 2]);
				assert_true(hi >= 0 && lo >= 0);
				unsigned char c = (unsigned char)(hi << 4 | lo);
				buf_append(&seg, &c, 1);
				k += 2;
			} else {
				assert_true((l[k] >= 33 && l[k] <= 126) || l[k] == ' ' ||
				            l[k] == '\t');
				buf_append(&seg, l + k, 1);
			}
		}
		/* whole characters per encoded line */
		assert_true(valid_utf8((const unsigned char *)(seg.p ? seg.p : ""), seg.len));
		buf_append(out, seg.p ? seg.p : "", seg.len);
		buf_free(&seg);
		if (!soft)
			buf_append(out, "\r\n", 2);
		i += ll + 2;
	}
}

static char *canon(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	for (const char *p = s; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			buf_append(&b, "\r\n", 2);
			if (*p == '\r' && p[1] == '\n')
				p++;
		} else {
			buf_append(&b, p, 1);
		}
	}
	return b.p ? buf_steal(&b) : xstrdup("");
}

static const char *const bodies[] = {
    "",
    "hello",
    "hello\n",
    "line one\nline two\r\nline three\rline four",
    "trailing spaces   \nand tabs\t\t\nend ",
    "equals = signs == everywhere ==== and a very long line without any line breaks that goes "
    "on and on well past seventy-six characters xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ".leading dot\n.\nFrom the start\nFrom",
    "سلام علی جان،\nاین یک پیام آزمایشی است با متن فارسی که طولانی است و باید شکسته شود.\n",
    "mixed ASCII with a few Persian words سلام and emoji 😀 in a long line that must be soft "
    "broken somewhere near here 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
};

static void test_qp_body(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		/* also every shift of the long line, to move soft breaks around */
		for (size_t shift = 0; shift < 8; shift++) {
			char *in = xasprintf("%.*s%s", (int)shift, "xxxxxxxx", bodies[i]);
			struct buf b;
			buf_init(&b, 0);
			mime_qp_body(&b, in, strlen(in));
			if (!*in) {
				assert_int_equal(b.len, 0);
			} else {
				assert_true(b.len >= 2 && b.p[b.len - 2] == '\r' &&
				            b.p[b.len - 1] == '\n');
				struct buf d;
				buf_init(&d, 0);
				qp_decode(&d, b.p, b.len);
				char *want = canon(in);
				assert_int_equal(d.len, strlen(want));
				assert_memory_equal(d.p, want, d.len);
				free(want);
				buf_free(&d);
				/* no line starts with "." or "From " */
				for (const char *p = b.p; p; p = strstr(p, "\r\n")) {
					if (p != b.p)
						p += 2;
					assert_false(p[0] == '.');
					assert_false(strncmp(p, "From ", 5) == 0);
					if (!*p)
						break;
				}
			}
			buf_free(&b);
			free(in);
		}
	}
}

static void test_b64_body(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		const char *in = bodies[i];
		struct buf b;
		buf_init(&b, 0);
		mime_b64_body(&b, in, strlen(in));
		check_lines(b.p ? b.p : "", b.len, 76);
		/* every line but the last is exactly 76 */
		struct buf d;
		buf_init(&d, 0);
		size_t off = 0;
		while (off < b.len) {
			const char *eol = strstr(b.p + off, "\r\n");
			assert_non_null(eol);
			size_t ll = (size_t)(eol - (b.p + off));
			if ((size_t)(eol + 2 - b.p) < b.len)
				assert_int_equal(ll, 76);
			b64_decode(&d, b.p + off, ll);
			off += ll + 2;
		}
		char *want = canon(in);
		assert_int_equal(d.len, strlen(want));
		if (d.len)
			assert_memory_equal(d.p, want, d.len);
		free(want);
		buf_free(&d);
		buf_free(&b);
	}
}

static void test_choose_cte(void **state)
{
	(void)state;
	const char *ascii = "Hello, your order has shipped.\nThanks!";
	const char *fa = "سلام علی جان، سفارش شما ارسال شد.";
	assert_int_equal(mime_choose_cte(ascii, strlen(ascii)), MIME_QP);
	assert_int_equal(mime_choose_cte(fa, strlen(fa)), MIME_BASE64);
	assert_int_equal(mime_choose_cte("", 0), MIME_QP);
	const char *mostly = "Order 42 for Café Nadéri is ready";
	assert_int_equal(mime_choose_cte(mostly, strlen(mostly)), MIME_QP);
}

/* ---- whole messages ---------------------------------------------------------- */

static void base_msg(struct mime_msg *m)
{
	memset(m, 0, sizeof *m);
	m->from_name = "باشگاه";
	m->from_addr = "club@example.ir";
	m->to_addr = "ali@example.com";
	m->subject = "سلام";
	m->text = "text";
	m->msg_id = "01HQ3XK5V0Z8Y6W4T2R0P8N6M4";
	m->date_ms = 1700000000123;
}

static char *boundary_of(const char *msg)
{
	const char *p = strstr(msg, "boundary=\"");
	assert_non_null(p);
	p += 10;
	const char *e = strchr(p, '"');
	assert_non_null(e);
	return xstrndup(p, (size_t)(e - p));
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_multipart_boundary(void **state)
{
	(void)state;
	struct mime_msg m;
	base_msg(&m);
	/* the parts quote our own boundary prefix: it must not survive */
	m.text = "--=_clubd_ look-alike\n--=_clubd_000000000000000000000000--\n";
	m.html = "<p>--=_clubd_ and =_ and ==_clubd_</p>";
	struct buf a, b;
	struct mime_out oa, ob;
	buf_init(&a, 0);
	buf_init(&b, 0);
	assert_int_equal(mime_build(&m, &a, &oa), 0);
	assert_int_equal(mime_build(&m, &b, &ob), 0);
	check_lines(a.p, a.len, 998);
	char *ba = boundary_of(a.p), *bb = boundary_of(b.p);
	assert_string_not_equal(ba, bb); /* random */
	assert_int_equal(strncmp(ba, "=_clubd_", 8), 0);
	/* the boundary occurs exactly in the header and the three delimiters */
	assert_int_equal(count(a.p, ba), 4);
	char *d1 = xasprintf("\r\n--%s\r\n", ba), *d2 = xasprintf("\r\n--%s--\r\n", ba);
	assert_int_equal(count(a.p, d1), 2);
	assert_int_equal(count(a.p, d2), 1);
	/* the text parts never contain "=_" at all */
	const char *body = strstr(a.p, "\r\n\r\n");
	assert_non_null(body);
	char *no_delims = xstrdup(body);
	for (char *p = strstr(no_delims, ba); p; p = strstr(p, ba))
		memset(p, '#', strlen(ba));
	assert_null(strstr(no_delims, "=_"));
	assert_string_not_equal(oa.message_id, ob.message_id);
	free(no_delims);
	free(d1);
	free(d2);
	free(ba);
	free(bb);
	buf_free(&a);
	buf_free(&b);
}

static void test_message_headers(void **state)
{
	(void)state;
	struct mime_msg m;
	base_msg(&m);
	m.unsub_mailto = "mailto:unsub@example.ir?subject=unsubscribe";
	m.unsub_url = "https://club.example.ir/u/abc";
	struct buf b;
	struct mime_out o;
	buf_init(&b, 0);
	assert_int_equal(mime_build(&m, &b, &o), 0);
	check_lines(b.p, b.len, MIME_LINE_MAX);
	assert_non_null(strstr(b.p, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	assert_non_null(strstr(b.p, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(b.p, "X-Clubd-Message-Id: 01HQ3XK5V0Z8Y6W4T2R0P8N6M4\r\n"));
	assert_non_null(strstr(b.p, "<mailto:unsub@example.ir?subject=unsubscribe>,"));
	assert_non_null(strstr(b.p, "<https://club.example.ir/u/abc>\r\n"));
	assert_non_null(strstr(b.p, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
	assert_non_null(strstr(b.p, "Content-Type: text/plain; charset=UTF-8\r\n"));
	char *mid = xasprintf("Message-ID: %s\r\n", o.message_id);
	assert_non_null(strstr(b.p, mid));
	free(mid);
	/* headers end before the body; no bare LF anywhere */
	assert_non_null(strstr(b.p, "\r\n\r\n"));
	buf_free(&b);

	/* http (not https): List-Unsubscribe but no one-click Post */
	m.unsub_mailto = NULL;
	m.unsub_url = "http://club.example.ir/u/abc";
	buf_init(&b, 0);
	assert_int_equal(mime_build(&m, &b, &o), 0);
	assert_non_null(strstr(b.p, "List-Unsubscribe: <http://club.example.ir/u/abc>\r\n"));
	assert_null(strstr(b.p, "List-Unsubscribe-Post"));
	buf_free(&b);

	/* none: neither header; html only: a single text/html part */
	m.unsub_url = NULL;
	m.text = NULL;
	m.html = "<p>hi</p>";
	buf_init(&b, 0);
	assert_int_equal(mime_build(&m, &b, &o), 0);
	assert_null(strstr(b.p, "List-Unsubscribe"));
	assert_null(strstr(b.p, "multipart"));
	assert_non_null(strstr(b.p, "Content-Type: text/html; charset=UTF-8\r\n"));
	buf_free(&b);
}

static void test_injection_refused(void **state)
{
	(void)state;
	static const struct {
		int field;
		const char *value;
	} bad[] = {
	    {0, "Hi\r\nBcc: victim@example.com"},
	    {0, "Hi\nBcc: victim@example.com"},
	    {0, "Hi\rthere"},
	    {0, "bell\x07"},
	    {0, "bad \xc3\x28 utf8"},
	    {1, "Club\r\nBcc: x@y.z"},
	    {2, "Ali\nX: y"},
	    {3, "club@example.ir\r\nBcc: x@y.z"},
	    {3, "club @example.ir"},
	    {3, "<club@example.ir>"},
	    {4, "ali@example.com\r\n"},
	    {4, "ali@example.com, bob@example.com"},
	    {4, "علی@example.com"},
	    {5, "mailto:u@example.ir\r\nBcc: x@y.z"},
	    {5, "mailto:u@example.ir x"},
	    {5, "https://example.ir/u"},
	    {6, "https://example.ir/u\r\nX: y"},
	    {6, "https://example.ir/u>, <https://evil"},
	    {6, "javascript:alert(1)"},
	    {7, "01HQ3@example"},
	    {7, "01HQ3>\r\nX"},
	    {7, ""},
	    {8, "text \xff"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct mime_msg m;
		base_msg(&m);
		switch (bad[i].field) {
		case 0:
			m.subject = bad[i].value;
			break;
		case 1:
			m.from_name = bad[i].value;
			break;
		case 2:
			m.to_name = bad[i].value;
			break;
		case 3:
			m.from_addr = bad[i].value;
			break;
		case 4:
			m.to_addr = bad[i].value;
			break;
		case 5:
			m.unsub_mailto = bad[i].value;
			break;
		case 6:
			m.unsub_url = bad[i].value;
			break;
		case 7:
			m.msg_id = bad[i].value;
			break;
		case 8:
			m.text = bad[i].value;
			break;
		}
		struct buf b;
		struct mime_out o;
		buf_init(&b, 0);
		buf_puts(&b, "keep");
		if (mime_build(&m, &b, &o) != -EINVAL)
			fail_msg("case %zu (%s) was not refused", i, bad[i].value);
		assert_non_null(o.why);
		assert_string_equal(b.p, "keep"); /* nothing appended */
		buf_free(&b);
	}
	/* a tab is fine in a subject */
	struct mime_msg m;
	base_msg(&m);
	m.subject = "a\tb";
	struct buf b;
	struct mime_out o;
	buf_init(&b, 0);
	assert_int_equal(mime_build(&m, &b, &o), 0);
	buf_free(&b);
}

/* ---- Message-ID, dates, addresses ----------------------------------------- */

static void test_message_id(void **state)
{
	(void)state;
	char mid[128], out[MIME_MSGID_MAX + 1];
	assert_int_equal(
	    mime_message_id("01HQ3XK5V0Z8Y6W4T2R0P8N6M4", "example.ir", mid, sizeof mid), 0);
	assert_int_equal(strlen(mid), 1 + 26 + 1 + 16 + 1 + 10 + 1);
	assert_int_equal(mime_message_id_to_msg(mid, out), 0);
	assert_string_equal(out, "01HQ3XK5V0Z8Y6W4T2R0P8N6M4");
	/* bare, in References among others (the last of ours wins) */
	char mid2[128];
	assert_int_equal(
	    mime_message_id("01HQ3XK5V0Z8Y6W4T2R0P8N6M9", "example.ir", mid2, sizeof mid2), 0);
	char *refs = xasprintf("<CAF00@mail.gmail.com>\r\n %s <x.y@z> %s <abc@def>", mid, mid2);
	assert_int_equal(mime_message_id_to_msg(refs, out), 0);
	assert_string_equal(out, "01HQ3XK5V0Z8Y6W4T2R0P8N6M9");
	free(refs);
	char bare[128];
	snprintf(bare, sizeof bare, "%.*s", (int)strlen(mid) - 2, mid + 1);
	assert_int_equal(mime_message_id_to_msg(bare, out), 0);
	assert_string_equal(out, "01HQ3XK5V0Z8Y6W4T2R0P8N6M4");
	/* not ours */
	assert_int_equal(mime_message_id_to_msg("<CAF00@mail.gmail.com>", out), -ENOENT);
	assert_int_equal(mime_message_id_to_msg("<abc.0123456789abcdeg@x>", out), -ENOENT);
	assert_int_equal(mime_message_id_to_msg("<abc.0123456789ABCDEF@x>", out), -ENOENT);
	assert_int_equal(mime_message_id_to_msg("<a@b.0123456789abcdef@x>", out), -ENOENT);
	assert_int_equal(mime_message_id_to_msg("", out), -ENOENT);
	assert_int_equal(mime_message_id_to_msg(NULL, out), -EINVAL);
	/* bad inputs */
	assert_int_equal(mime_message_id("a@b", "example.ir", mid, sizeof mid), -EINVAL);
	assert_int_equal(mime_message_id("abc", "exa mple.ir", mid, sizeof mid), -EINVAL);
	assert_int_equal(mime_message_id("abc", "example.ir", mid, 20), -ENOSPC);
	char longid[MIME_MSGID_MAX + 2];
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(mime_message_id(longid, "example.ir", mid, sizeof mid), -EINVAL);
}

static void test_date(void **state)
{
	(void)state;
	char d[64];
	mime_date(1700000000123, 0, d, sizeof d);
	assert_string_equal(d, "Tue, 14 Nov 2023 22:13:20 +0000");
	mime_date(0, 0, d, sizeof d);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	char *old = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
	setenv("TZ", "Asia/Tehran", 1);
	tzset();
	mime_date(1700000000123, 1, d, sizeof d);
	assert_string_equal(d, "Wed, 15 Nov 2023 01:43:20 +0330");
	setenv("TZ", "America/St_Johns", 1);
	tzset();
	mime_date(1700000000123, 1, d, sizeof d);
	assert_string_equal(d, "Tue, 14 Nov 2023 18:43:20 -0330");
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old);
}

static void test_addresses(void **state)
{
	(void)state;
	static const char *const good[] = {"a@b.c", "ali.rezaei+club@example.co.ir",
	                                   "x_y-z!#$%&'*/=?^`{|}~@mail-1.example",
	                                   "root@localhost"};
	static const char *const badv[] = {"",         "a",         "@b.c",          "a@",
	                                   "a@@b.c",   "a@b@c",     ".a@b.c",        "a.@b.c",
	                                   "a..b@c.d", "a b@c.d",   "a@b..c",        "a@-b_c",
	                                   "a@b.c.",   "\"a\"@b.c", "a@[127.0.0.1]", "علی@b.c"};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(mime_addr_valid(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(badv); i++)
		if (mime_addr_valid(badv[i]))
			fail_msg("accepted %s", badv[i]);
	assert_false(mime_addr_valid(NULL));

	char name[64], addr[64];
	assert_int_equal(
	    mime_split_mailbox("clubd <clubd@localhost>", name, sizeof name, addr, sizeof addr), 0);
	assert_string_equal(name, "clubd");
	assert_string_equal(addr, "clubd@localhost");
	assert_int_equal(
	    mime_split_mailbox("  club@example.ir ", name, sizeof name, addr, sizeof addr), 0);
	assert_string_equal(name, "");
	assert_string_equal(addr, "club@example.ir");
	assert_int_equal(mime_split_mailbox("\"Club, \\\"Inc\\\"\" <c@example.ir>", name,
	                                    sizeof name, addr, sizeof addr),
	                 0);
	assert_string_equal(name, "Club, \"Inc\"");
	assert_int_equal(
	    mime_split_mailbox("باشگاه <c@example.ir>", name, sizeof name, addr, sizeof addr), 0);
	assert_string_equal(name, "باشگاه");
	assert_int_equal(
	    mime_split_mailbox("Club <c@example.ir", name, sizeof name, addr, sizeof addr),
	    -EINVAL);
	assert_int_equal(
	    mime_split_mailbox("Club c@example.ir", name, sizeof name, addr, sizeof addr), -EINVAL);
	assert_int_equal(
	    mime_split_mailbox("Club\n <c@example.ir>", name, sizeof name, addr, sizeof addr),
	    -EINVAL);
	assert_int_equal(mime_split_mailbox("A very long display name <c@example.ir>", name, 8,
	                                    addr, sizeof addr),
	                 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subject_encoded_words),
	    cmocka_unit_test(test_subject_plain_folding),
	    cmocka_unit_test(test_mailbox_header),
	    cmocka_unit_test(test_qp_body),
	    cmocka_unit_test(test_b64_body),
	    cmocka_unit_test(test_choose_cte),
	    cmocka_unit_test(test_multipart_boundary),
	    cmocka_unit_test(test_message_headers),
	    cmocka_unit_test(test_injection_refused),
	    cmocka_unit_test(test_message_id),
	    cmocka_unit_test(test_date),
	    cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
