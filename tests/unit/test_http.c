/*
 * Unit tests for the pure request parsing of capatlasd (fcgi/http.c):
 * %-decoding, query strings, Cookie headers, route patterns, strict
 * numbers, display names, token comparison.  fcgi/http.c has no FastCGI
 * in it, so it is compiled into this test directly.
 */
#include <string.h>

#include "../../fcgi/http.c"
#include "unit.h"

static void test_pct_decode(void)
{
    char out[64];

    CHECK(http_pct_decode("a%20b", 5, out, sizeof(out), 0) == 3 && strcmp(out, "a b") == 0);
    CHECK(http_pct_decode("a+b", 3, out, sizeof(out), 1) == 3 && strcmp(out, "a b") == 0);
    CHECK(http_pct_decode("a+b", 3, out, sizeof(out), 0) == 3 && strcmp(out, "a+b") == 0);
    CHECK(http_pct_decode("%2f%2F", 6, out, sizeof(out), 0) == 2 && strcmp(out, "//") == 0);
    CHECK(http_pct_decode("%C3%A9", 6, out, sizeof(out), 0) == 2 && strcmp(out, "\xc3\xa9") == 0);
    CHECK(http_pct_decode("", 0, out, sizeof(out), 0) == 0 && out[0] == '\0');
    /* Truncated, non-hex and NUL escapes are refused. */
    CHECK(http_pct_decode("%", 1, out, sizeof(out), 0) == -1);
    CHECK(http_pct_decode("%2", 2, out, sizeof(out), 0) == -1);
    CHECK(http_pct_decode("ab%2", 4, out, sizeof(out), 0) == -1);
    CHECK(http_pct_decode("%zz", 3, out, sizeof(out), 0) == -1);
    CHECK(http_pct_decode("a%00b", 5, out, sizeof(out), 0) == -1);
    /* The length bounds the read, not a NUL. */
    CHECK(http_pct_decode("abc%41", 3, out, sizeof(out), 0) == 3 && strcmp(out, "abc") == 0);
    /* Too small an output buffer. */
    CHECK(http_pct_decode("abcdef", 6, out, 4, 0) == -1);
}

static void test_query(void)
{
    struct http_kv *kv = NULL;
    size_t n = 0;
    char big[HTTP_KV_MAX * 4 + 16] = "";

    CHECK(http_query_parse("limit=10&after=4294967297&name=a%20b+c&flag&&=x", &kv, &n) == 0);
    CHECK_EQ_U(n, 5);
    CHECK(strcmp(http_kv_get(kv, n, "limit"), "10") == 0);
    CHECK(strcmp(http_kv_get(kv, n, "after"), "4294967297") == 0);
    CHECK(strcmp(http_kv_get(kv, n, "name"), "a b c") == 0);
    CHECK(strcmp(http_kv_get(kv, n, "flag"), "") == 0);
    CHECK(strcmp(http_kv_get(kv, n, ""), "x") == 0);
    CHECK(http_kv_get(kv, n, "missing") == NULL);
    http_kv_free(kv, n);

    /* First of duplicated keys wins. */
    CHECK(http_query_parse("a=1&a=2", &kv, &n) == 0);
    CHECK(n == 2 && strcmp(http_kv_get(kv, n, "a"), "1") == 0);
    http_kv_free(kv, n);

    CHECK(http_query_parse(NULL, &kv, &n) == 0 && kv == NULL && n == 0);
    CHECK(http_query_parse("", &kv, &n) == 0 && kv == NULL && n == 0);
    CHECK(http_query_parse("&&&", &kv, &n) == 0 && kv == NULL && n == 0);
    CHECK(http_query_parse("a=%zz", &kv, &n) == -1 && kv == NULL);
    CHECK(http_query_parse("a=%00", &kv, &n) == -1 && kv == NULL);
    CHECK(http_query_parse("%4", &kv, &n) == -1 && kv == NULL);

    /* More than HTTP_KV_MAX pairs is refused. */
    for (int i = 0; i <= HTTP_KV_MAX; i++)
        strcat(big, "a=1&");
    CHECK(http_query_parse(big, &kv, &n) == -1 && kv == NULL);
}

static void test_cookies(void)
{
    struct http_kv *kv = NULL;
    size_t n = 0;

    CHECK(http_cookie_parse("theme=dark; __Host-capatlas=abc123;other=%41 ", &kv, &n) == 0);
    CHECK_EQ_U(n, 3);
    CHECK(strcmp(http_kv_get(kv, n, "theme"), "dark") == 0);
    CHECK(strcmp(http_kv_get(kv, n, "__Host-capatlas"), "abc123") == 0);
    /* Cookie values are not %-decoded. */
    CHECK(strcmp(http_kv_get(kv, n, "other"), "%41") == 0);
    http_kv_free(kv, n);

    CHECK(http_cookie_parse(";;  ; ", &kv, &n) == 0 && n == 0);
    CHECK(http_cookie_parse("novalue", &kv, &n) == 0 && n == 1);
    CHECK(strcmp(http_kv_get(kv, n, "novalue"), "") == 0);
    http_kv_free(kv, n);
    CHECK(http_cookie_parse("a=b=c", &kv, &n) == 0 && n == 1);
    CHECK(strcmp(http_kv_get(kv, n, "a"), "b=c") == 0);
    http_kv_free(kv, n);
}

static void test_path_match(void)
{
    uint64_t ids[HTTP_PATH_IDS];

    CHECK(http_path_match("/api/health", "/api/health", ids) == 1);
    CHECK(http_path_match("/api/health", "/api/health/", ids) == 0);
    CHECK(http_path_match("/api/health", "/api/healt", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/42", ids) == 1);
    CHECK_EQ_U(ids[0], 42);
    CHECK(http_path_match("/api/workspaces/{ws}/flows/{flow}",
                          "/api/workspaces/7/flows/18446744073709551615", ids) == 1);
    CHECK_EQ_U(ids[0], 7);
    CHECK(ids[1] == UINT64_MAX);
    /* Not numeric, zero, empty, signed, overflowing, trailing garbage. */
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/abc", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/0", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/-1", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/+1", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/18446744073709551616", ids) ==
          0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/123456789012345678901234",
                          ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/1x", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}", "/api/workspaces/1/captures", ids) == 0);
    CHECK(http_path_match("/api/workspaces/{ws}/captures", "/api/workspaces/1/captures", ids) == 1);
    CHECK(http_path_match("/api/workspaces/{ws}/captures", "/api/workspaces/1%2F/captures", ids) ==
          0);
    CHECK(http_path_match("/api/jobs/{job}", "/api/jobs/9", ids) == 1 && ids[0] == 9);
}

static void test_numbers_names(void)
{
    uint64_t v;

    CHECK(http_parse_u64("0", &v) == 0 && v == 0);
    CHECK(http_parse_u64("1000", &v) == 0 && v == 1000);
    CHECK(http_parse_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
    CHECK(http_parse_u64("18446744073709551616", &v) == -1);
    CHECK(http_parse_u64("", &v) == -1);
    CHECK(http_parse_u64(NULL, &v) == -1);
    CHECK(http_parse_u64("-1", &v) == -1);
    CHECK(http_parse_u64(" 1", &v) == -1);
    CHECK(http_parse_u64("1e3", &v) == -1);
    CHECK(http_parse_u64("0x10", &v) == -1);

    CHECK(http_valid_name("capture.pcap") == 1);
    CHECK(http_valid_name("chrome 443 (1).pcapng") == 1);
    CHECK(http_valid_name("caf\xc3\xa9.pcap") == 1);
    CHECK(http_valid_name("") == 0);
    CHECK(http_valid_name("a/b") == 0);
    CHECK(http_valid_name("a\nb") == 0);
    CHECK(http_valid_name("a\x7f") == 0);
    CHECK(http_valid_name("a\xc2\x85") == 0); /* C1 control NEL */
    CHECK(http_valid_name("\xff\xfe") == 0);
    CHECK(http_valid_name("\xc3") == 0);         /* truncated sequence */
    CHECK(http_valid_name("\xed\xa0\x80") == 0); /* surrogate */
    {
        char n[HTTP_NAME_MAX + 2];

        memset(n, 'a', sizeof(n));
        n[HTTP_NAME_MAX] = '\0';
        CHECK(http_valid_name(n) == 1);
        n[HTTP_NAME_MAX] = 'a';
        n[HTTP_NAME_MAX + 1] = '\0';
        CHECK(http_valid_name(n) == 0);
    }
}

static void test_tokens_errors(void)
{
    json_t *e;

    CHECK(http_token_eq("abc", "abc") == 1);
    CHECK(http_token_eq("abc", "abd") == 0);
    CHECK(http_token_eq("abc", "abcd") == 0);
    CHECK(http_token_eq("", "") == 0); /* an empty CSRF token never matches */

    e = http_error_json("name", "bad name");
    CHECK(e != NULL);
    CHECK(strcmp(json_string_value(json_object_get(e, "error")), "bad name") == 0);
    CHECK(strcmp(json_string_value(json_object_get(e, "field")), "name") == 0);
    json_decref(e);
    e = http_error_json(NULL, "\xff invalid utf-8");
    CHECK(e != NULL && json_is_null(json_object_get(e, "field")));
    CHECK(json_is_string(json_object_get(e, "error")));
    json_decref(e);
    CHECK(strcmp(http_reason(404), "Not Found") == 0);
    CHECK(strcmp(http_reason(599), "Internal Server Error") == 0);
}

int main(void)
{
    unit_run("percent-decoding", test_pct_decode);
    unit_run("query strings", test_query);
    unit_run("cookie headers", test_cookies);
    unit_run("route patterns", test_path_match);
    unit_run("numbers and names", test_numbers_names);
    unit_run("tokens and error bodies", test_tokens_errors);
    return unit_done();
}
