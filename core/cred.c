/*
 * Credentials: scrypt password hashes, random tokens, SHA-256 digests and
 * readable random passwords.  This is the only file that includes OpenSSL,
 * so a change of crypto library touches nothing else.
 *
 * Hashes are stored as "scrypt$N$r$p$<salt hex>$<key hex>" so the cost can
 * be raised later without invalidating old hashes: verification always
 * uses the parameters written in the hash (within sane bounds, since a
 * hash read from the store is not trusted to name a huge cost).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "ca_error.h"
#include "cred.h"

#define CRED_N (1u << 15)
#define CRED_R 8u
#define CRED_P 1u
#define CRED_SALT_LEN 16
#define CRED_KEY_LEN 32
#define CRED_MAXMEM (64ull * 1024 * 1024)
/* Bounds accepted when verifying a stored hash (it is not trusted to name a huge cost). */
#define CRED_N_MAX (1u << 20)
#define CRED_R_MAX 32u
#define CRED_P_MAX 16u
#define CRED_SALT_MAX 64

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly len hex characters at s into out; -1 on a bad digit. */
static int from_hex(const char *s, size_t len, unsigned char *out)
{
    if (len % 2 != 0)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int scrypt_derive(const char *password, const unsigned char *salt, size_t saltlen,
                         uint64_t n, uint32_t r, uint32_t p, unsigned char *key, size_t keylen)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[7], *q = params;
    uint64_t maxmem = CRED_MAXMEM;
    int rc = CA_EINTERNAL;

    kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf == NULL)
        goto out;
    kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
                                             strlen(password));
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *q = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, key, keylen, params) != 1)
        goto out;
    rc = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

int ca_cred_hash_password(const char *password, char *out, size_t outlen)
{
    unsigned char salt[CRED_SALT_LEN], key[CRED_KEY_LEN];
    char salthex[2 * CRED_SALT_LEN + 1], keyhex[2 * CRED_KEY_LEN + 1];
    int rc, n;

    if (password == NULL || out == NULL || outlen == 0)
        return CA_EINVAL;
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return CA_EINTERNAL;
    rc = scrypt_derive(password, salt, sizeof(salt), CRED_N, CRED_R, CRED_P, key, sizeof(key));
    if (rc != 0)
        goto out;
    to_hex(salt, sizeof(salt), salthex);
    to_hex(key, sizeof(key), keyhex);
    n = snprintf(out, outlen, "scrypt$%u$%u$%u$%s$%s", CRED_N, CRED_R, CRED_P, salthex, keyhex);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        rc = CA_EINVAL;
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* Parses a decimal field ending at '$'; advances *s past the '$'. */
static int parse_uint(const char **s, unsigned long long max, unsigned long long *v)
{
    const char *p = *s;
    unsigned long long x = 0;

    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        x = x * 10 + (unsigned long long)(*p - '0');
        if (x > max)
            return -1;
        p++;
    }
    if (*p != '$')
        return -1;
    *s = p + 1;
    *v = x;
    return 0;
}

int ca_cred_verify_password(const char *password, const char *encoded)
{
    unsigned char salt[CRED_SALT_MAX], want[CRED_KEY_LEN], got[CRED_KEY_LEN];
    unsigned long long n, r, p;
    const char *s, *dollar;
    size_t saltlen, keylen;
    int rc = CA_EAUTH;

    if (password == NULL || encoded == NULL || strncmp(encoded, "scrypt$", 7) != 0)
        return CA_EAUTH;
    s = encoded + 7;
    if (parse_uint(&s, CRED_N_MAX, &n) != 0 || parse_uint(&s, CRED_R_MAX, &r) != 0 ||
        parse_uint(&s, CRED_P_MAX, &p) != 0)
        return CA_EAUTH;
    if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0)
        return CA_EAUTH;
    dollar = strchr(s, '$');
    if (dollar == NULL)
        return CA_EAUTH;
    saltlen = (size_t)(dollar - s);
    if (saltlen < 2 * CRED_SALT_LEN || saltlen > 2 * CRED_SALT_MAX ||
        from_hex(s, saltlen, salt) != 0)
        return CA_EAUTH;
    saltlen /= 2;
    s = dollar + 1;
    /* A fixed key length: a truncated key would still match its prefix. */
    keylen = strlen(s);
    if (keylen != 2 * CRED_KEY_LEN || from_hex(s, keylen, want) != 0)
        return CA_EAUTH;
    keylen /= 2;
    if (scrypt_derive(password, salt, saltlen, n, (uint32_t)r, (uint32_t)p, got, keylen) != 0)
        goto out;
    rc = CRYPTO_memcmp(got, want, keylen) == 0 ? 0 : CA_EAUTH;
out:
    OPENSSL_cleanse(got, sizeof(got));
    return rc;
}

void ca_cred_burn_time(const char *password)
{
    unsigned char salt[CRED_SALT_LEN] = {0}, key[CRED_KEY_LEN];

    (void)scrypt_derive(password != NULL ? password : "", salt, sizeof(salt), CRED_N, CRED_R,
                        CRED_P, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
}

int ca_cred_random_token(char *out, size_t outlen)
{
    unsigned char b[32];

    if (out == NULL || outlen < 2 * sizeof(b) + 1)
        return CA_EINVAL;
    if (RAND_bytes(b, sizeof(b)) != 1)
        return CA_EINTERNAL;
    to_hex(b, sizeof(b), out);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

void ca_cred_digest(const char *s, char *out, size_t outlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (out == NULL || outlen == 0)
        return;
    out[0] = '\0';
    if (outlen < 65 || s == NULL)
        return;
    if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    to_hex(md, mdlen, out);
}

int ca_cred_random_password(char *out, size_t outlen)
{
    /* No 0/O, 1/l/I, 5/S, 2/Z: easy to read aloud and copy by hand. */
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRTUVWXY346789";
    const size_t alen = sizeof(alphabet) - 1, len = 20;
    unsigned char b;
    size_t i = 0;

    if (out == NULL || outlen < len + 1)
        return CA_EINVAL;
    while (i < len) {
        if (RAND_bytes(&b, 1) != 1)
            return CA_EINTERNAL;
        /* Rejection sampling keeps every character equally likely. */
        if (b >= 256 - 256 % alen)
            continue;
        out[i++] = alphabet[b % alen];
    }
    out[len] = '\0';
    return 0;
}

/* The MD5 context is OpenSSL's own; the struct only names it for callers. */
struct ca_md5 *ca_cred_md5_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return (struct ca_md5 *)ctx;
}

void ca_cred_md5_update(struct ca_md5 *m, const void *buf, size_t len)
{
    if (m != NULL)
        EVP_DigestUpdate((EVP_MD_CTX *)m, buf, len);
}

int ca_cred_md5_final_b64(struct ca_md5 *m, char *out, size_t outlen)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;

    if (m == NULL || EVP_DigestFinal_ex((EVP_MD_CTX *)m, d, &dl) != 1 ||
        outlen < 4 * ((dl + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, d, (int)dl);
    return 0;
}

void ca_cred_md5_free(struct ca_md5 *m)
{
    EVP_MD_CTX_free((EVP_MD_CTX *)m);
}
