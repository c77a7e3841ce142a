/*
 * mail_parse.c - a received email into the inbound router's fields, with
 * GMime 3 (see mail_parse.h).
 *
 * GMime does the MIME work: header unfolding and RFC 2047 words (8-bit
 * headers without a charset are tried as UTF-8, then windows-1256),
 * quoted-printable and base64, the charset of each text part through
 * iconv, multipart trees, address lists and References.  This file picks
 * the body (the first text/plain that is not an attachment, else the first
 * text/html reduced to text; parts of attached messages are not looked
 * into), makes the text valid UTF-8 without control characters (an
 * undeclared 8-bit text that is not UTF-8 is read as windows-1256), strips
 * the quoted previous message and keeps MAIL_TEXT_MAX bytes of it.
 *
 * Owns: nothing past a call (the parsed struct's text belongs to the
 * caller).  Never touches: the network, the store, the clock, the log.
 * Limits: GMime parses recursively, so a message with more than
 * MAIL_CONTAINERS_MAX "multipart/" or "message/" mentions is refused before
 * GMime sees it; ids are cut at MAIL_ID_MAX bytes; the HTML reduction is a
 * tag stripper (no CSS, no layout), good enough for the words of a reply.
 */
#include "mail_parse.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

/* ---- small helpers ----------------------------------------------------------- */

static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		n = cap - 1;
	/* never end inside a UTF-8 sequence */
	while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
		n--;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* An id or address for a struct field: printable ASCII only, else "". */
static void copy_token(char *dst, size_t cap, const char *src)
{
	dst[0] = '\0';
	if (!src)
		return;
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)src[i] <= 0x20 || (unsigned char)src[i] >= 0x7F)
			return;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive memmem for ASCII needles. */
static const char *find_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++) {
		size_t j = 0;
		while (j < k && lower((unsigned char)s[i + j]) == needle[j])
			j++;
		if (j == k)
			return s + i;
	}
	return NULL;
}

/* Containers GMime would recurse into, counted on the raw bytes. */
static size_t count_containers(const char *s, size_t n)
{
	size_t c = 0;
	static const char *const needles[] = {"multipart/", "message/"};
	for (size_t k = 0; k < ARRAY_SIZE(needles); k++) {
		const char *p = s, *end = s + n;
		while ((p = find_ci(p, (size_t)(end - p), needles[k]))) {
			c++;
			p += strlen(needles[k]);
			if (c > MAIL_CONTAINERS_MAX)
				return c;
		}
	}
	return c;
}

/* ---- text clean-up ------------------------------------------------------------ */

/*
 * In place: CRLF and lone CR to LF, NUL, DEL and C0 controls other than
 * TAB and LF dropped.  s must be valid UTF-8 (controls are single bytes).
 */
static size_t clean_controls(char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r') {
			if (i + 1 < n && s[i + 1] == '\n')
				continue;
			s[w++] = '\n';
		} else if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7F)) {
			s[w++] = (char)c;
		}
	}
	s[w] = '\0';
	return w;
}

/* A GLib string (NULL: none) as valid UTF-8 (g_free'd here); returns a
 * malloc'd copy. */
static char *to_valid_utf8(char *g, size_t *len)
{
	if (!g) {
		*len = 0;
		return xstrdup("");
	}
	size_t n = strlen(g);
	char *out;
	if (utf8_valid(g, n)) {
		out = xstrndup(g, n);
	} else {
		/* Undeclared 8-bit text: Persian senders' old default first. */
		gsize wn = 0;
		gchar *conv = g_convert(g, (gssize)n, "UTF-8", "WINDOWS-1256", NULL, &wn, NULL);
		if (conv && utf8_valid(conv, wn) && !memchr(conv, '\0', wn)) {
			out = xstrndup(conv, wn);
		} else {
			gchar *fixed = g_utf8_make_valid(g, (gssize)n);
			out = xstrdup(fixed);
			g_free(fixed);
		}
		g_free(conv);
	}
	g_free(g);
	*len = clean_controls(out, strlen(out));
	return out;
}

/* ---- HTML to text ---------------------------------------------------------- */

struct h2t {
	struct buf *out;
	int full;      /* the cap was hit */
	int space;     /* a space is pending */
	int line_open; /* something was written since the last newline */
};

static void h_put(struct h2t *h, const char *p, size_t n)
{
	if (h->full || n == 0)
		return;
	if (h->space && h->line_open && buf_append(h->out, " ", 1) < 0) {
		h->full = 1;
		return;
	}
	h->space = 0;
	if (buf_append(h->out, p, n) < 0) {
		h->full = 1;
		return;
	}
	h->line_open = 1;
}

static void h_newline(struct h2t *h)
{
	h->space = 0;
	h->line_open = 0;
	if (!h->full && buf_append(h->out, "\n", 1) < 0)
		h->full = 1;
}

static size_t utf8_put(uint32_t cp, char o[4])
{
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* An entity at s (after '&'); its length through ';' in *used, 0 when it
 * is not one we know (the '&' is then literal). */
static size_t h_entity(const char *s, size_t n, char o[4], size_t *used)
{
	static const struct {
		const char *name;
		uint32_t cp;
	} named[] = {{"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},
	             {"apos", '\''},    {"nbsp", ' '},     {"zwnj", 0x200C},   {"zwj", 0x200D},
	             {"lrm", 0x200E},   {"rlm", 0x200F},   {"ndash", 0x2013},  {"mdash", 0x2014},
	             {"laquo", 0xAB},   {"raquo", 0xBB},   {"hellip", 0x2026}, {"copy", 0xA9},
	             {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"rdquo", 0x201D},  {"ldquo", 0x201C}};
	size_t k = 0;
	while (k < n && k < 12 && s[k] != ';')
		k++;
	if (k == 0 || k >= n || s[k] != ';')
		return 0;
	*used = k + 1;
	if (s[0] == '#') {
		uint32_t cp = 0;
		size_t i = 1;
		int hex = i < k && (s[i] == 'x' || s[i] == 'X');
		if (hex)
			i++;
		if (i >= k)
			return 0;
		for (; i < k; i++) {
			int c = lower((unsigned char)s[i]), d;
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else
				return 0;
			cp = cp * (hex ? 16 : 10) + (uint32_t)d;
			if (cp > 0x10FFFF)
				cp = 0x110000; /* stays out of range: U+FFFD */
		}
		if (cp < 0x20 && cp != '\t' && cp != '\n')
			cp = ' ';
		return utf8_put(cp, o);
	}
	for (size_t i = 0; i < ARRAY_SIZE(named); i++)
		if (strlen(named[i].name) == k && strncmp(s, named[i].name, k) == 0)
			return utf8_put(named[i].cp, o);
	return 0;
}

static int is_block(const char *t)
{
	static const char *const blocks[] = {"br",    "p",   "div", "tr", "li",      "h1",     "h2",
	                                     "h3",    "h4",  "h5",  "h6", "ul",      "ol",     "hr",
	                                     "table", "pre", "dd",  "dt", "address", "section"};
	for (size_t i = 0; i < ARRAY_SIZE(blocks); i++)
		if (strcmp(t, blocks[i]) == 0)
			return 1;
	return 0;
}

void mail_html_to_text(const char *s, size_t n, struct buf *out)
{
	struct h2t h = {.out = out};
	char skip_to[16] = ""; /* inside script/style/head/title: until its end tag */
	int quote_depth = 0;   /* inside blockquote */
	size_t i = 0;
	while (i < n && !h.full) {
		unsigned char c = (unsigned char)s[i];
		if (c == '<') {
			if (i + 3 < n && memcmp(s + i, "<!--", 4) == 0) {
				const char *e = memmem(s + i + 4, n - i - 4, "-->", 3);
				i = e ? (size_t)(e - s) + 3 : n;
				continue;
			}
			size_t j = i + 1;
			int closing = 0;
			if (j < n && s[j] == '/') {
				closing = 1;
				j++;
			}
			char tag[16];
			size_t tl = 0;
			while (j < n &&
			       ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') ||
			        (s[j] >= '0' && s[j] <= '9'))) {
				if (tl < sizeof tag - 1)
					tag[tl++] = (char)lower((unsigned char)s[j]);
				j++;
			}
			tag[tl] = '\0';
			if (tl == 0 && !(j < n && (s[j] == '!' || s[j] == '?'))) {
				/* a lone '<' is text */
				if (!skip_to[0] && !quote_depth)
					h_put(&h, "<", 1);
				i++;
				continue;
			}
			/* to the end of the tag, over quoted attribute values */
			char q = 0;
			while (j < n && (q || s[j] != '>')) {
				if (q && s[j] == q)
					q = 0;
				else if (!q && (s[j] == '"' || s[j] == '\''))
					q = s[j];
				j++;
			}
			i = j < n ? j + 1 : n;
			if (skip_to[0]) {
				if (closing && strcmp(tag, skip_to) == 0)
					skip_to[0] = '\0';
				continue;
			}
			if (strcmp(tag, "blockquote") == 0) {
				if (closing && quote_depth > 0)
					quote_depth--;
				else if (!closing)
					quote_depth++;
				if (h.line_open)
					h_newline(&h);
				continue;
			}
			if (!closing && (strcmp(tag, "script") == 0 || strcmp(tag, "style") == 0 ||
			                 strcmp(tag, "head") == 0 || strcmp(tag, "title") == 0)) {
				memcpy(skip_to, tag, tl + 1);
				continue;
			}
			if (!quote_depth && is_block(tag) &&
			    (h.line_open || strcmp(tag, "br") == 0 || strcmp(tag, "p") == 0))
				h_newline(&h);
			continue;
		}
		if (skip_to[0] || quote_depth) {
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
			h.space = 1;
			i++;
			continue;
		}
		if (c == '&') {
			char o[4];
			size_t used = 0, k = h_entity(s + i + 1, n - i - 1, o, &used);
			if (k) {
				if (k == 1 && o[0] == ' ')
					h.space = 1;
				else
					h_put(&h, o, k);
				i += 1 + used;
				continue;
			}
		}
		size_t start = i;
		while (i < n && s[i] != '<' && s[i] != '&' && s[i] != ' ' && s[i] != '\t' &&
		       s[i] != '\r' && s[i] != '\n' && s[i] != '\f')
			i++;
		if (i == start)
			i++;
		h_put(&h, s + start, i - start);
	}
}

/* ---- quote stripping ----------------------------------------------------------- */

struct line {
	char *p;
	size_t n;
};

/* Bidi marks and embeddings Persian mail clients put around lines. */
static size_t bidi_mark_len(const char *s, size_t n)
{
	uint32_t cp;
	int k = utf8_decode(s, n, &cp);
	if (k > 0 && (cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
	              (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || cp == 0xA0))
		return (size_t)k;
	return 0;
}

/* The line without surrounding white space, bidi marks and '*' (Outlook's
 * bold in plain text), normalised (text_normalize: digits, yeh/kaf, case);
 * NULL for a blank or very long line.  Caller frees. */
static char *line_core(const struct line *l)
{
	if (l->n > 400)
		return NULL;
	char tmp[401];
	size_t w = 0;
	for (size_t i = 0; i < l->n;) {
		size_t k = bidi_mark_len(l->p + i, l->n - i);
		if (k) {
			tmp[w++] = ' ';
			i += k;
			continue;
		}
		tmp[w++] = l->p[i] == '*' ? ' ' : l->p[i];
		i++;
	}
	tmp[w] = '\0';
	char *norm = text_normalize(tmp);
	if (norm && !*norm) {
		free(norm);
		return NULL;
	}
	return norm;
}

static int starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int ends(const char *s, const char *e)
{
	size_t n = strlen(s), k = strlen(e);
	return n >= k && strcmp(s + n - k, e) == 0;
}

#define FA_ON    "\xd8\xaf\xd8\xb1 \xd8\xaa\xd8\xa7\xd8\xb1\xdb\x8c\xd8\xae" /* در تاریخ */
#define FA_WROTE "\xd9\x86\xd9\x88\xd8\xb4\xd8\xaa"                          /* نوشت */

static int ends_wrote(const char *c)
{
	return ends(c, "wrote:") || ends(c, FA_WROTE ":") || ends(c, FA_WROTE " :");
}

/* "On ... wrote:" / "در تاریخ ... نوشت:" at line i (maybe wrapped onto
 * i+1): the number of lines it takes, else 0. */
static int attribution(struct line *L, size_t nl, size_t i)
{
	char *c = line_core(&L[i]);
	int r = 0;
	if (c && (starts(c, "on ") || starts(c, FA_ON " "))) {
		if (ends_wrote(c)) {
			r = 1;
		} else if (i + 1 < nl) {
			char *d = line_core(&L[i + 1]);
			if (d && strlen(d) < 120 && ends_wrote(d))
				r = 2;
			free(d);
		}
	}
	free(c);
	return r;
}

static int header_label(const char *c)
{
	static const char *const labels[] = {
	    "sent:",
	    "date:",
	    "to:",
	    "subject:",
	    "cc:",
	    "\xd8\xa7\xd8\xb1\xd8\xb3\xd8\xa7\xd9\x84 \xd8\xb4\xd8\xaf\xd9\x87:", /* ارسال شده: */
	    "\xd8\xaa\xd8\xa7\xd8\xb1\xdb\x8c\xd8\xae:",                          /* تاریخ: */
	    "\xd8\xa8\xd9\x87:",                                                  /* به: */
	    "\xd9\x85\xd9\x88\xd8\xb6\xd9\x88\xd8\xb9:"};                         /* موضوع: */
	for (size_t k = 0; k < ARRAY_SIZE(labels); k++)
		if (starts(c, labels[k]))
			return 1;
	return 0;
}

/* Where the previous message starts without ">" quoting: Outlook's
 * separator or header block, a forwarded message, a signature. */
static int cut_here(struct line *L, size_t nl, size_t i)
{
	if ((L[i].n == 2 && memcmp(L[i].p, "--", 2) == 0) ||
	    (L[i].n == 3 && memcmp(L[i].p, "-- ", 3) == 0))
		return 1;
	char *c = line_core(&L[i]);
	if (!c)
		return 0;
	int r = 0;
	if (starts(c, "--") &&
	    (strstr(c, "original message") || strstr(c, "forwarded message") ||
	     strstr(c, "\xd9\xbe\xdb\x8c\xd8\xa7\xd9\x85 \xd8\xa7\xd8\xb5\xd9\x84"
	               "\xdb\x8c") /* پیام اصلی */)) {
		r = 1;
	} else if (starts(c, "from:") || starts(c, "\xd8\xa7\xd8\xb2:") /* از: */) {
		int labels = 0;
		for (size_t k = i + 1; k < nl && k <= i + 6; k++) {
			char *d = line_core(&L[k]);
			if (d && header_label(d))
				labels++;
			free(d);
		}
		r = labels >= 2;
	}
	free(c);
	return r;
}

static int underscores(const struct line *l)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->p[i] == '_')
			k++;
		else if (l->p[i] != ' ' && l->p[i] != '\t')
			return 0;
	}
	return k >= 8;
}

static int quoted(const struct line *l)
{
	size_t i = 0;
	while (i < l->n && (l->p[i] == ' ' || l->p[i] == '\t'))
		i++;
	return i < l->n && l->p[i] == '>';
}

static int blank(const struct line *l)
{
	for (size_t i = 0; i < l->n;) {
		size_t k = bidi_mark_len(l->p + i, l->n - i);
		if (k) {
			i += k;
			continue;
		}
		if (l->p[i] != ' ' && l->p[i] != '\t')
			return 0;
		i++;
	}
	return 1;
}

static int mobile_footer(const struct line *l)
{
	char *c = line_core(l);
	int r = c && (starts(c, "sent from my ") || starts(c, "get outlook for ") ||
	              starts(c, "\xd8\xa7\xd8\xb1\xd8\xb3\xd8\xa7\xd9\x84 \xd8\xb4\xd8\xaf\xd9\x87 "
	                        "\xd8\xa7\xd8\xb2 ") /* ارسال شده از */);
	free(c);
	return r;
}

size_t mail_strip_quoted(char *s, size_t n)
{
	size_t nl = 1;
	for (size_t i = 0; i < n; i++)
		nl += s[i] == '\n';
	struct line *L = xcalloc(nl, sizeof *L);
	unsigned char *keep = xcalloc(nl, 1);
	size_t k = 0;
	for (size_t i = 0, start = 0; i <= n; i++)
		if (i == n || s[i] == '\n') {
			L[k].p = s + start;
			L[k].n = i - start;
			k++;
			start = i + 1;
		}
	nl = k;

	size_t end = nl; /* lines from here on are the previous message */
	for (size_t i = 0; i < nl; i++) {
		keep[i] = 1;
		if (quoted(&L[i])) {
			keep[i] = 0;
			continue;
		}
		int a = attribution(L, nl, i);
		if (a) {
			/* followed by ">" lines: bottom or inline posting, keep the
			 * rest; else the previous message follows unquoted: cut */
			size_t j = i + (size_t)a;
			while (j < nl && blank(&L[j]))
				j++;
			if (j < nl && quoted(&L[j])) {
				keep[i] = 0;
				if (a == 2)
					keep[i + 1] = 0;
				i += (size_t)a - 1;
				continue;
			}
			end = i;
			break;
		}
		if (cut_here(L, nl, i)) {
			end = i;
			/* Outlook's line of underscores above its header block */
			size_t j = i;
			while (j > 0 && blank(&L[j - 1]))
				j--;
			if (j > 0 && underscores(&L[j - 1]))
				end = j - 1;
			break;
		}
	}
	/* the last words: a mobile client's footer goes too */
	size_t last = end;
	while (last > 0 && (!keep[last - 1] || blank(&L[last - 1])))
		last--;
	if (last > 0 && mobile_footer(&L[last - 1]))
		keep[last - 1] = 0;

	/* write back: kept lines, blank runs collapsed, blank ends trimmed */
	size_t w = 0;
	int pending_blank = 0, any = 0;
	for (size_t i = 0; i < end; i++) {
		if (!keep[i])
			continue;
		if (blank(&L[i])) {
			pending_blank = any;
			continue;
		}
		if (any) {
			s[w++] = '\n';
			if (pending_blank)
				s[w++] = '\n';
		}
		/* trailing white space of the line goes */
		size_t ln = L[i].n;
		while (ln > 0 && (L[i].p[ln - 1] == ' ' || L[i].p[ln - 1] == '\t'))
			ln--;
		memmove(s + w, L[i].p, ln);
		w += ln;
		pending_blank = 0;
		any = 1;
	}
	if (w < n || n == 0)
		s[w] = '\0';
	free(L);
	free(keep);
	return w;
}

/* ---- the message ------------------------------------------------------------- */

static gpointer init_once(gpointer arg)
{
	(void)arg;
	g_mime_init();
	return NULL;
}

struct pick {
	GMimeTextPart *plain, *html;
};

static void walk(GMimeObject *o, int depth, struct pick *p)
{
	if (!o || depth > MAIL_CONTAINERS_MAX)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			walk(g_mime_multipart_get_part(mp, i), depth + 1, p);
		return;
	}
	if (!GMIME_IS_TEXT_PART(o))
		return; /* attached messages, images, ... */
	if (g_mime_part_is_attachment(GMIME_PART(o)))
		return;
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	if (!p->plain && g_mime_content_type_is_type(ct, "text", "plain"))
		p->plain = GMIME_TEXT_PART(o);
	else if (!p->html && g_mime_content_type_is_type(ct, "text", "html"))
		p->html = GMIME_TEXT_PART(o);
}

static void first_mailbox(InternetAddressList *l, char *out, size_t cap, int depth)
{
	if (!l || depth > 2)
		return;
	int n = internet_address_list_length(l);
	for (int i = 0; i < n && !out[0]; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			copy_token(out, cap,
			           internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
		else if (INTERNET_ADDRESS_IS_GROUP(ia))
			first_mailbox(
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out,
			    cap, depth + 1);
	}
}

static int is_automatic(GMimeMessage *msg)
{
	GMimeObject *o = GMIME_OBJECT(msg);
	const char *v = g_mime_object_get_header(o, "Auto-Submitted");
	if (v && g_ascii_strncasecmp(v, "no", 2) != 0)
		return 1;
	if (g_mime_object_get_header(o, "X-Autoreply") ||
	    g_mime_object_get_header(o, "X-Autorespond"))
		return 1;
	v = g_mime_object_get_header(o, "Precedence");
	if (v && (g_ascii_strncasecmp(v, "bulk", 4) == 0 ||
	          g_ascii_strncasecmp(v, "junk", 4) == 0 || g_ascii_strncasecmp(v, "list", 4) == 0))
		return 1;
	GMimeObject *body = g_mime_message_get_mime_part(msg);
	if (body && g_mime_content_type_is_type(g_mime_object_get_content_type(body), "multipart",
	                                        "report"))
		return 1;
	return 0;
}

static void set_text(struct mail_parsed *m, char *t, size_t n)
{
	n = mail_strip_quoted(t, n);
	if (n > MAIL_TEXT_MAX) {
		n = MAIL_TEXT_MAX;
		while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
			n--;
		m->text_truncated = 1;
	}
	t[n] = '\0';
	m->text = t;
	m->text_len = n;
}

void mail_parse_init(void)
{
	static GOnce once = G_ONCE_INIT;
	g_once(&once, init_once, NULL);
}

int mail_parse(const char *raw, size_t len, struct mail_parsed *m)
{
	memset(m, 0, sizeof *m);
	m->text = xstrdup("");
	if (!raw || len == 0 || count_containers(raw, len) > MAIL_CONTAINERS_MAX)
		return -EINVAL;
	mail_parse_init();
	GMimeParserOptions *opts = g_mime_parser_options_new();
	const char *fallback[] = {"UTF-8", "windows-1256", NULL};
	g_mime_parser_options_set_fallback_charsets(opts, fallback);
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(raw, len);
	GMimeParser *ps = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_format(ps, GMIME_FORMAT_MESSAGE);
	GMimeMessage *msg = g_mime_parser_construct_message(ps, opts);
	int rc = -EINVAL;
	if (!msg)
		goto out;
	GMimeObject *mo = GMIME_OBJECT(msg);
	if (g_mime_header_list_get_count(g_mime_object_get_header_list(mo)) == 0)
		goto out;

	first_mailbox(g_mime_message_get_from(msg), m->from, sizeof m->from, 0);
	first_mailbox(g_mime_message_get_to(msg), m->to, sizeof m->to, 0);
	const char *subj = g_mime_message_get_subject(msg);
	if (subj) {
		char *s = to_valid_utf8(g_strdup(subj), &(size_t){0});
		for (char *p = s; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		copy_cut(m->subject, sizeof m->subject, s);
		free(s);
	}
	copy_token(m->message_id, sizeof m->message_id, g_mime_message_get_message_id(msg));
	const char *irt = g_mime_object_get_header(mo, "In-Reply-To");
	if (irt) {
		GMimeReferences *r = g_mime_references_parse(opts, irt);
		if (r && g_mime_references_length(r) > 0)
			copy_token(m->in_reply_to, sizeof m->in_reply_to,
			           g_mime_references_get_message_id(r, 0));
		if (r)
			g_mime_references_free(r);
	}
	const char *refs = g_mime_object_get_header(mo, "References");
	if (refs) {
		GMimeReferences *r = g_mime_references_parse(opts, refs);
		int n = r ? g_mime_references_length(r) : 0;
		int from = n > MAIL_REFS_MAX ? n - MAIL_REFS_MAX : 0;
		for (int i = from; i < n; i++) {
			copy_token(m->references[m->nrefs], sizeof m->references[0],
			           g_mime_references_get_message_id(r, i));
			if (m->references[m->nrefs][0])
				m->nrefs++;
		}
		if (r)
			g_mime_references_free(r);
	}
	GDateTime *dt = g_mime_message_get_date(msg);
	if (dt) {
		gint64 t = g_date_time_to_unix(dt);
		if (t > 0 && t < 32503680000LL) /* before the year 3000 */
			m->date_ms = (int64_t)t * 1000;
	}
	m->automatic = is_automatic(msg);

	struct pick p = {NULL, NULL};
	walk(g_mime_message_get_mime_part(msg), 0, &p);
	GMimeTextPart *tp = p.plain ? p.plain : p.html;
	if (tp) {
		size_t n = 0;
		char *t = to_valid_utf8(g_mime_text_part_get_text(tp), &n);
		if (!p.plain) {
			struct buf b;
			buf_init(&b, 4 * MAIL_TEXT_MAX);
			mail_html_to_text(t, n, &b);
			free(t);
			t = b.p ? buf_steal(&b) : xstrdup("");
			buf_free(&b);
			n = clean_controls(t, strlen(t));
			m->html = 1;
		}
		free(m->text);
		set_text(m, t, n);
	}
	rc = 0;
out:
	if (msg)
		g_object_unref(msg);
	g_object_unref(ps);
	g_object_unref(st);
	g_mime_parser_options_free(opts);
	return rc;
}

void mail_parsed_free(struct mail_parsed *m)
{
	free(m->text);
	m->text = NULL;
	m->text_len = 0;
}

int mail_reply_to_msg(const struct mail_parsed *m, char out[MIME_MSGID_MAX + 1])
{
	char h[MAIL_ID_MAX + 3];
	if (m->in_reply_to[0]) {
		snprintf(h, sizeof h, "<%s>", m->in_reply_to);
		if (mime_message_id_to_msg(h, out) == 0)
			return 0;
	}
	for (size_t i = m->nrefs; i > 0; i--) {
		snprintf(h, sizeof h, "<%s>", m->references[i - 1]);
		if (mime_message_id_to_msg(h, out) == 0)
			return 0;
	}
	return -ENOENT;
}
