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

#endif
