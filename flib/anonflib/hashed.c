/*
 * flib/anonflib/hashed.c - HASHED: digests and ciphers of field values through OpenSSL's EVP.
 *
 *   MD5 (16 bytes), SHA = SHA-1 (20), SHA_2 = SHA-256 (32): EVP digests of the value.
 *   CRC32 (4 bytes, big-endian): the CRC-32 of zlib/Ethernet (polynomial 0xedb88320).
 *   DES (DES-ECB, key bytes 0..7), TRIPLEDES (DES-EDE3-ECB, key bytes 0..23), AES
 *   (AES-256-ECB, the whole 32-byte key): the value padded with NUL bytes to a multiple of
 *   the block size, encrypted; the ciphertext is the "digest". The key comes from the rule
 *   or anon_key_file (policy.c), never from the code. Single DES lives in OpenSSL 3's legacy
 *   provider: it is loaded into a private library context of the rule, so mapid's global
 *   OpenSSL state is not touched.
 * The contexts are made once per rule; nothing is allocated per packet.
 */
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>

#include "anonflib.h"

struct anon_hash {
    EVP_MD_CTX *mdctx;
    const EVP_MD *md;
    EVP_CIPHER_CTX *cctx;
    EVP_CIPHER *cipher; /* fetched (owned) */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *legacy, *deflt;
    int block;
    uint32_t crc[256];
};

int anon_hash_init(struct anon_rule *r)
{
    struct anon_hash *h = calloc(1, sizeof *h);
    const char *cname = NULL;

    if (h == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    r->hash_state = h;
    switch (r->hash_alg) {
    case ANON_H_MD5:
    case ANON_H_SHA1:
    case ANON_H_SHA256:
        h->md = r->hash_alg == ANON_H_MD5    ? EVP_md5()
                : r->hash_alg == ANON_H_SHA1 ? EVP_sha1()
                                             : EVP_sha256();
        h->mdctx = EVP_MD_CTX_new();
        if (h->md == NULL || h->mdctx == NULL) {
            anon_errmsg(r->fi, "HASHED: OpenSSL has no such digest");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        return 0;
    case ANON_H_CRC32:
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            h->crc[i] = c;
        }
        return 0;
    case ANON_H_DES:
        cname = "DES-ECB";
        h->libctx = OSSL_LIB_CTX_new();
        if (h->libctx != NULL) {
            h->legacy = OSSL_PROVIDER_load(h->libctx, "legacy");
            h->deflt = OSSL_PROVIDER_load(h->libctx, "default");
        }
        break;
    case ANON_H_3DES:
        cname = "DES-EDE3-ECB";
        break;
    default:
        cname = "AES-256-ECB";
        break;
    }
    h->cipher = EVP_CIPHER_fetch(h->libctx, cname, NULL);
    h->cctx = EVP_CIPHER_CTX_new();
    if (h->cipher == NULL || h->cctx == NULL ||
        !EVP_EncryptInit_ex2(h->cctx, h->cipher, r->key, NULL, NULL)) {
        anon_errmsg(r->fi, "HASHED: OpenSSL cannot provide %s%s", cname,
                    r->hash_alg == ANON_H_DES ? " (legacy provider missing?)" : "");
        return MFUNCT_INVALID_ARGUMENT_4;
    }
    EVP_CIPHER_CTX_set_padding(h->cctx, 0);
    h->block = EVP_CIPHER_get_block_size(h->cipher);
    if (h->block < 1)
        h->block = 1;
    return 0;
}

void anon_hash_free(struct anon_rule *r)
{
    struct anon_hash *h = r->hash_state;

    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->mdctx);
    EVP_CIPHER_CTX_free(h->cctx);
    EVP_CIPHER_free(h->cipher);
    if (h->legacy != NULL)
        OSSL_PROVIDER_unload(h->legacy);
    if (h->deflt != NULL)
        OSSL_PROVIDER_unload(h->deflt);
    OSSL_LIB_CTX_free(h->libctx);
    free(h);
    r->hash_state = NULL;
}

int anon_hash(struct anon_rule *r, const uint8_t *in, size_t len, uint8_t *out)
{
    struct anon_hash *h = r->hash_state;
    unsigned int dl = 0;
    int ol = 0;

    if (h->mdctx != NULL) {
        if (!EVP_DigestInit_ex(h->mdctx, h->md, NULL) || !EVP_DigestUpdate(h->mdctx, in, len) ||
            !EVP_DigestFinal_ex(h->mdctx, out, &dl))
            return -1;
        return (int)dl;
    }
    if (r->hash_alg == ANON_H_CRC32) {
        uint32_t c = 0xffffffffu;
        for (size_t i = 0; i < len; i++)
            c = h->crc[(c ^ in[i]) & 0xff] ^ (c >> 8);
        c ^= 0xffffffffu;
        out[0] = (uint8_t)(c >> 24);
        out[1] = (uint8_t)(c >> 16);
        out[2] = (uint8_t)(c >> 8);
        out[3] = (uint8_t)c;
        return 4;
    }
    if (len == 0)
        return 0;
    size_t padded = (len + (size_t)h->block - 1) / (size_t)h->block * (size_t)h->block;
    if (out != in)
        memmove(out, in, len);
    memset(out + len, 0, padded - len);
    if (!EVP_EncryptInit_ex2(h->cctx, NULL, NULL, NULL, NULL) ||
        !EVP_EncryptUpdate(h->cctx, out, &ol, out, (int)padded))
        return -1;
    return ol;
}
