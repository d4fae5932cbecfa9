/*
 * Credentials: password hashing (scrypt through OpenSSL's EVP_KDF "SCRYPT"),
 * random tokens, and token digests.  The only module that includes OpenSSL.
 */
#ifndef CA_CRED_H
#define CA_CRED_H

#include <stddef.h>
#include <stdint.h>

/* Minimum password length accepted by ca_cred_hash_password's callers. */
#define CA_PASSWORD_MIN 10

/* Encoded hash: "scrypt$N$r$p$<salt hex>$<hash hex>"; buf >= CA_CRED_HASH_LEN. */
#define CA_CRED_HASH_LEN 200
int ca_cred_hash_password(const char *password, char *out, size_t outlen);

/* 0 if password matches the encoded hash, CA_EAUTH if not; constant time. */
int ca_cred_verify_password(const char *password, const char *encoded);

/* Hash a throwaway password so an unknown user costs the same time. */
void ca_cred_burn_time(const char *password);

/* 32 random bytes as 64 hex characters + NUL (out >= 65 bytes). */
int ca_cred_random_token(char *out, size_t outlen);

/* SHA-256 of s as 64 hex characters + NUL (out >= 65). Stored session ids. */
void ca_cred_digest(const char *s, char *out, size_t outlen);

/* Readable random password for the first admin (out >= 25). */
int ca_cred_random_password(char *out, size_t outlen);

/*
 * Streaming MD5, for checking downloads against Content-MD5 /
 * x-ms-blob-content-md5 (an integrity check, not a security one).
 * ca_cred_md5_new returns NULL on ENOMEM; the caller frees with
 * ca_cred_md5_free (accepts NULL).  ca_cred_md5_final_b64 writes the
 * base64 digest (out >= 25) and returns 0, or -1 on failure.
 */
struct ca_md5;
struct ca_md5 *ca_cred_md5_new(void);
void ca_cred_md5_update(struct ca_md5 *m, const void *buf, size_t len);
int ca_cred_md5_final_b64(struct ca_md5 *m, char *out, size_t outlen);
void ca_cred_md5_free(struct ca_md5 *m);

#endif
