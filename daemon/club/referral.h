/*
 * referral.h - referral codes: 8 characters from an alphabet without look-
 * alikes (no 0/O, 1/I/L), random, and the normalisation of a code typed by
 * a person (case, blanks, dashes, Persian digits).  Pure apart from the
 * random source.
 */
#ifndef CLUBD_REFERRAL_H
#define CLUBD_REFERRAL_H

#include <stddef.h>

#define REFERRAL_CODE_LEN 8
#define REFERRAL_ALPHABET "23456789ABCDEFGHJKMNPQRSTUVWXYZ" /* 31 symbols */

/* A fresh random code (REFERRAL_CODE_LEN + 1 bytes, NUL-terminated). */
void referral_code_new(char out[REFERRAL_CODE_LEN + 1]);
/* The same from caller-supplied random bytes (tests): bytes holds at
 * least 2 * REFERRAL_CODE_LEN bytes; rejection sampling keeps every symbol
 * equally likely, and a code that runs out of bytes returns -EAGAIN. */
int referral_code_from_bytes(const unsigned char *bytes, size_t n, char out[REFERRAL_CODE_LEN + 1]);
/* Normalise input (at most 64 bytes): ASCII letters upper-cased, Persian
 * and Arabic-Indic digits to ASCII, blanks and '-' dropped (other control
 * characters refused).  0 with the
 * code in out, or -EINVAL when the result is not REFERRAL_CODE_LEN
 * symbols of the alphabet. */
int referral_code_normalize(const char *in, char out[REFERRAL_CODE_LEN + 1]);

#endif
