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

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* Number of code points in valid UTF-8. */
size_t utf8_len(const char *s, size_t n);
/* 1 when s has a C0 control (other than TAB, LF, CR when allow_nl) or DEL. */
int text_has_ctl(const char *s, int allow_nl);

/* Persian/Arabic-Indic digits to ASCII, copying into a new string. */
char *text_ascii_digits(const char *s);
/* Full normalisation for matching (keywords, answers): digits, yeh/kaf,
 * trim, collapse inner white space runs to one space, ASCII lower-case.
 * Returns a new string; NULL if s is not valid UTF-8. */
char *text_normalize(const char *s);

#endif
