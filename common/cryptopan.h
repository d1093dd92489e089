/*
 * common/cryptopan.h - Crypto-PAn, the prefix-preserving anonymisation of IP addresses of Xu,
 * Fan, Ammar and Moon (AES-128 as the pseudo-random function), computing exactly what
 * libtrace's `traceanon -c KEY` computes, so that traces anonymised by MAPI and by libtrace
 * (and by MAPI on different sensors, with the same key) can be joined.
 *
 * The key is 32 bytes: the first 16 are the AES key, the last 16 are encrypted once to give
 * the padding block. A key given as a string shorter than 32 bytes is padded with NUL bytes,
 * as traceanon does with -c. Shared by anonflib (ANONYMIZE ... PREFIX_PRESERVING) and
 * extraflib (ANONYMIZEIP); the implementation (common/cryptopan.c) uses OpenSSL's AES.
 */
#ifndef MAPI_COMMON_CRYPTOPAN_H
#define MAPI_COMMON_CRYPTOPAN_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTOPAN_KEY_LEN 32

struct cryptopan;

/* A context for key (CRYPTOPAN_KEY_LEN bytes). NULL if out of memory or OpenSSL fails. Not
 * thread-safe: one context per thread (each flow's functions run on one capture thread). */
struct cryptopan *cryptopan_new(const uint8_t key[CRYPTOPAN_KEY_LEN]);
/* Pads a key string (at most 32 bytes used) with NUL bytes into key, as traceanon -c. */
void cryptopan_key_from_string(const char *s, uint8_t key[CRYPTOPAN_KEY_LEN]);
void cryptopan_free(struct cryptopan *cp);
/*
 * Reads a key file (mapi.conf's anon_key_file): a file of 32 bytes or more gives its first 32
 * bytes, raw (as traceanon -f); a shorter one is a text key without its trailing newline (LF or
 * CRLF), NUL-padded (as traceanon -c). As in traceanon, bytes after a NUL byte count as NUL.
 * Returns 0, or -1 with the reason in err (unreadable, empty). Shared by anonflib and
 * extraflib, so both read a key file the same way.
 */
int cryptopan_key_from_file(const char *path, uint8_t key[CRYPTOPAN_KEY_LEN], char *err,
                            size_t errlen);

/* An IPv4 address in network byte order -> its anonymised form, in network byte order. */
uint32_t cryptopan_ip4(struct cryptopan *cp, uint32_t addr);
/* An IPv6 address (16 bytes) -> its anonymised form (out may equal in). */
void cryptopan_ip6(struct cryptopan *cp, const uint8_t in[16], uint8_t out[16]);

#endif /* MAPI_COMMON_CRYPTOPAN_H */
