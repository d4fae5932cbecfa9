/*
 * Unit tests for core/cred.c: scrypt hashes, tokens, digests, passwords.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ca_error.h"
#include "cred.h"
#include "unit.h"

static int is_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (strchr("0123456789abcdef", s[i]) == NULL)
            return 0;
    return 1;
}

static void test_hash_verify(void)
{
    char h1[CA_CRED_HASH_LEN], h2[CA_CRED_HASH_LEN];

    CHECK_EQ_U(ca_cred_hash_password("correct horse battery", h1, sizeof(h1)), 0);
    CHECK(strncmp(h1, "scrypt$32768$8$1$", 17) == 0);
    CHECK(strlen(h1) == 17 + 32 + 1 + 64);
    CHECK_EQ_U(ca_cred_verify_password("correct horse battery", h1), 0);
    CHECK(ca_cred_verify_password("correct horse batterY", h1) == CA_EAUTH);
    CHECK(ca_cred_verify_password("", h1) == CA_EAUTH);
    /* Same password, different salt, different hash; both verify. */
    CHECK_EQ_U(ca_cred_hash_password("correct horse battery", h2, sizeof(h2)), 0);
    CHECK(strcmp(h1, h2) != 0);
    CHECK_EQ_U(ca_cred_verify_password("correct horse battery", h2), 0);
    /* Too small a buffer is refused. */
    CHECK(ca_cred_hash_password("x", h2, 20) == CA_EINVAL);
}

static void test_bad_formats(void)
{
    char h[CA_CRED_HASH_LEN], bad[CA_CRED_HASH_LEN + 8];
    const char *const cases[] = {
        "",
        "scrypt",
        "bcrypt$32768$8$1$00$00",
        "scrypt$32768$8$1$$00112233445566778899aabbccddeeff",
        "scrypt$32767$8$1$00112233$00112233445566778899aabbccddeeff",
        "scrypt$99999999999$8$1$00112233$00112233445566778899aabbccddeeff",
        "scrypt$32768$0$1$00112233$00112233445566778899aabbccddeeff",
        "scrypt$32768$8$1$0011223g$00112233445566778899aabbccddeeff",
        "scrypt$32768$8$1$00112233445566778899aabbccddeeff$0011",
        "scrypt$32768$8$1$00112233$00112233445566778899aabbccddeefX",
        "scrypt$32768$8$1",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK(ca_cred_verify_password("password", cases[i]) == CA_EAUTH);
    CHECK(ca_cred_verify_password("password", NULL) == CA_EAUTH);
    CHECK(ca_cred_verify_password(NULL, "scrypt$1$1$1$00$00") == CA_EAUTH);

    /* Truncating a valid hash or flipping its last digit fails. */
    CHECK_EQ_U(ca_cred_hash_password("password12", h, sizeof(h)), 0);
    strcpy(bad, h);
    bad[strlen(bad) - 2] = '\0';
    CHECK(ca_cred_verify_password("password12", bad) == CA_EAUTH);
    strcpy(bad, h);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    CHECK(ca_cred_verify_password("password12", bad) == CA_EAUTH);
    ca_cred_burn_time("whatever");
    ca_cred_burn_time(NULL);
}

static void test_tokens(void)
{
    char a[65], b[65], d1[65], d2[65];

    CHECK_EQ_U(ca_cred_random_token(a, sizeof(a)), 0);
    CHECK_EQ_U(ca_cred_random_token(b, sizeof(b)), 0);
    CHECK(is_hex(a, 64));
    CHECK(is_hex(b, 64));
    CHECK(strcmp(a, b) != 0);
    CHECK(ca_cred_random_token(a, 64) == CA_EINVAL);

    ca_cred_digest("abc", d1, sizeof(d1));
    CHECK(strcmp(d1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    ca_cred_digest(b, d2, sizeof(d2));
    CHECK(is_hex(d2, 64));
    CHECK(strcmp(d2, b) != 0);
}

static void test_random_password(void)
{
    char a[25], b[25];

    CHECK_EQ_U(ca_cred_random_password(a, sizeof(a)), 0);
    CHECK_EQ_U(ca_cred_random_password(b, sizeof(b)), 0);
    CHECK(strlen(a) == 20);
    CHECK(strcmp(a, b) != 0);
    CHECK(strlen(a) >= CA_PASSWORD_MIN);
    CHECK(strpbrk(a, "0O1lI") == NULL);
    CHECK(ca_cred_random_password(a, 10) == CA_EINVAL);
}

/* The cost is real (N=2^15, r=8: 32 MiB and tens of ms per hash), and the
 * same for an unknown user (burn_time) as for a real verification. */
static void test_hash_cost(void)
{
    char h[CA_CRED_HASH_LEN];
    struct timespec t0, t1, t2;
    double hash_ms, burn_ms;

    CHECK(CA_PASSWORD_MIN >= 10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_U(ca_cred_hash_password("a long enough password", h, sizeof(h)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ca_cred_burn_time("a long enough password");
    clock_gettime(CLOCK_MONOTONIC, &t2);
    hash_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    burn_ms = (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6;
    printf("# scrypt hash %.1f ms, burn %.1f ms\n", hash_ms, burn_ms);
    CHECK(hash_ms > 10);
    CHECK(burn_ms > hash_ms / 3 && burn_ms < hash_ms * 3);
    /* 16-byte salt and 32-byte key, hex. */
    CHECK(strlen(strrchr(h, '$') + 1) == 64);
}

/* Known digests (RFC 1321 test suite), fed in pieces as a download is. */
static void test_md5(void)
{
    struct ca_md5 *m = ca_cred_md5_new();
    char out[32];

    CHECK(m != NULL);
    CHECK(ca_cred_md5_final_b64(m, out, sizeof(out)) == 0);
    CHECK(strcmp(out, "1B2M2Y8AsgTpgAmY7PhCfg==") == 0);
    ca_cred_md5_free(m);

    m = ca_cred_md5_new();
    ca_cred_md5_update(m, "a", 1);
    ca_cred_md5_update(m, "bc", 2);
    CHECK(ca_cred_md5_final_b64(m, out, 8) == -1); /* too small for 24 chars + NUL */
    ca_cred_md5_free(m);

    m = ca_cred_md5_new();
    ca_cred_md5_update(m, "a", 1);
    ca_cred_md5_update(m, "bc", 2);
    CHECK(ca_cred_md5_final_b64(m, out, sizeof(out)) == 0);
    CHECK(strcmp(out, "kAFQmDzST7DWlj99KOF/cg==") == 0);
    ca_cred_md5_free(m);
    ca_cred_md5_free(NULL);
}

int main(void)
{
    unit_run("cred: hash and verify", test_hash_verify);
    unit_run("cred: malformed hashes rejected", test_bad_formats);
    unit_run("cred: tokens and digests", test_tokens);
    unit_run("cred: random password", test_random_password);
    unit_run("cred: scrypt cost and equal time for unknown users", test_hash_cost);
    unit_run("cred: streaming MD5 in base64", test_md5);
    return unit_done();
}
