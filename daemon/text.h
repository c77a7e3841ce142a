/*
 * text.h - UTF-8 validation and the text normalisation every input path
 * shares: Persian (U+06F0..U+06F9) and Arabic-Indic (U+0660..U+0669) digits
 * to ASCII, Arabic yeh/kaf (U+064A, U+0643) to Persian (U+06CC, U+06A9),
 * trimming of ASCII and Unicode white space, ASCII case folding.  ZWNJ
 * (U+200C) is kept: it is part of Persian spelling.
 */
#ifndef CLUBD_TEXT_H
#define CLUBD_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* Number of code points in valid UTF-8. */
size_t utf8_len(const char *s, size_t n);
/* 1 when s has a C0 control (other than TAB, LF, CR when allow_nl) or DEL.
 * With allow_nl == 0, TAB, LF and CR count as controls too. */
int text_has_ctl(const char *s, int allow_nl);

/* Persian/Arabic-Indic digits to ASCII, copying into a new string. */
char *text_ascii_digits(const char *s);
/* Full normalisation for matching (keywords, answers): digits, yeh/kaf,
 * trim, collapse inner white space runs to one space, ASCII lower-case.
 * Returns a new string; NULL if s is not valid UTF-8. */
char *text_normalize(const char *s);

/*
 * Decode one strict UTF-8 sequence at s[0..n): its length (1..4) with the
 * code point in *cp, or -1 when malformed, overlong, a surrogate, above
 * U+10FFFF or truncated (including n == 0).
 */
int utf8_decode(const char *s, size_t n, uint32_t *cp);
/* 1 for the white space text_normalize() trims and collapses: ASCII
 * space/TAB/LF/VT/FF/CR, U+0085, U+00A0, U+1680, U+2000..U+200B, U+2028,
 * U+2029, U+202F, U+205F, U+3000, U+FEFF.  Not ZWNJ (U+200C). */
int text_is_space(uint32_t cp);
/* 0..9 for an ASCII, Persian or Arabic-Indic digit, else -1. */
int text_digit_value(uint32_t cp);

#endif
