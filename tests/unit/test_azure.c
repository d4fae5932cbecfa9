/*
 * Unit tests of core/azure.c (SAS URLs, redaction, List Blobs XML,
 * Network Watcher paths, errors in words) and of the address policy of
 * core/fetch.c.  No network.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "azure.h"
#include "ca_error.h"
#include "fetch.h"
#include "unit.h"

static void t_parse_blob(void)
{
    struct ca_azure_url u;
    char err[128];

    CHECK(ca_azure_parse("https://acct.blob.core.windows.net/caps/dir/a%20b.cap?sv=2021-08-06&se="
                         "2017-02-22T10%3A00Z&sr=b&sp=r&sig=abc%2Bdef",
                         &u, err, sizeof(err)) == 0);
    CHECK(u.kind == CA_AZURE_BLOB);
    CHECK(strcmp(u.account, "acct") == 0);
    CHECK(strcmp(u.container, "caps") == 0);
    CHECK(strcmp(u.path, "dir/a b.cap") == 0);
    CHECK(strcmp(u.se, "2017-02-22T10:00Z") == 0);
    CHECK(strcmp(u.base, "https://acct.blob.core.windows.net") == 0);
    /* path style (emulator) */
    CHECK(ca_azure_parse("https://127.0.0.1:10000/devstoreaccount1/c/x.pcap?sig=z", &u, err,
                         sizeof(err)) == 0);
    CHECK(u.kind == CA_AZURE_BLOB && strcmp(u.account, "devstoreaccount1") == 0);
    CHECK(strcmp(u.base, "https://127.0.0.1:10000/devstoreaccount1") == 0);
}

static void t_parse_container(void)
{
    struct ca_azure_url u;
    char buf[1024];

    CHECK(ca_azure_parse("https://a.blob.core.windows.net/caps?sr=c&sig=x", &u, NULL, 0) == 0);
    CHECK(u.kind == CA_AZURE_CONTAINER);
    CHECK(ca_azure_parse("https://a.blob.core.windows.net/caps/vm1/2017/?sr=c&sig=x", &u, NULL,
                         0) == 0);
    CHECK(u.kind == CA_AZURE_CONTAINER && strcmp(u.path, "vm1/2017/") == 0);
    CHECK(ca_azure_list_url(&u, "m&1", 2, buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "https://a.blob.core.windows.net/caps?restype=container&comp=list&"
                      "maxresults=2&prefix=vm1%2F2017%2F&marker=m%261&sr=c&sig=x") == 0);
    CHECK(ca_azure_blob_url(&u, "vm1/a b#.cap", buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "https://a.blob.core.windows.net/caps/vm1/a%20b%23.cap?sr=c&sig=x") == 0);
    /* not Azure: a plain download */
    CHECK(ca_azure_parse("https://example.com/x.pcap?token=1", &u, NULL, 0) == 0);
    CHECK(u.kind == CA_AZURE_NONE);
    CHECK(ca_azure_parse("ftp://example.com/x", &u, NULL, 0) == CA_EINVAL);
    CHECK(ca_azure_parse("https://u:p@example.com/x", &u, NULL, 0) == CA_EINVAL);
    CHECK(ca_azure_parse("https://example.com/a b", &u, NULL, 0) == CA_EINVAL);
}

static void t_redact(void)
{
    char b[256];

    ca_url_redact("https://a.blob.core.windows.net/c/b.cap?sv=1&sig=SECRET#frag", b, sizeof(b));
    CHECK(strcmp(b, "https://a.blob.core.windows.net/c/b.cap?\xe2\x80\xa6") == 0);
    ca_url_redact("https://user:pw@h/x", b, sizeof(b));
    CHECK(strcmp(b, "https://h/x") == 0);
    ca_url_redact("https://h/x?sig=SECRET", b, 12);
    CHECK(strstr(b, "SECRET") == NULL && strlen(b) < 12);
}

static void t_list_xml(void)
{
    static const char xml[] =
        "<?xml version=\"1.0\"?><EnumerationResults><Prefix/><Blobs>"
        "<Blob><Name>a&amp;b.pcap</Name><Properties><Last-Modified>Wed, 22 Feb 2017 10:00:00 "
        "GMT</Last-Modified><Content-Length>1234</Content-Length><Content-MD5>abc==</Content-MD5>"
        "</Properties></Blob>"
        "<Blob><Name>x/virtualMachines/vm-2/2017/02/22/packetcapture_10_42_48_238.cap</Name>"
        "<Properties><Content-Length>5</Content-Length></Properties></Blob>"
        "</Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>";
    json_t *blobs = json_array();
    char marker[64], err[128];

    CHECK(ca_azure_parse_list(xml, strlen(xml), blobs, 10, marker, sizeof(marker), err,
                              sizeof(err)) == 0);
    CHECK_EQ_U(json_array_size(blobs), 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(blobs, 0), "name")),
                 "a&b.pcap") == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(json_array_get(blobs, 0), "size")), 1234);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(blobs, 1), "vm")), "vm-2") == 0);
    CHECK(strcmp(marker, "2!abc") == 0);
    CHECK(ca_azure_parse_list(xml, strlen(xml), blobs, 3, marker, sizeof(marker), err,
                              sizeof(err)) == CA_ETOOBIG);
    CHECK(ca_azure_parse_list("<html/>", 7, blobs, 10, marker, sizeof(marker), err, sizeof(err)) ==
          CA_EFORMAT);
    json_decref(blobs);
}

static void t_nw(void)
{
    char vm[64], iso[64];

    CHECK(ca_azure_nw_parse("subscriptions/s/resourcegroups/rg/providers/microsoft.compute/"
                            "virtualmachines/VM1/2021/12/01/packetCapture_23_59_01_007.cap",
                            vm, sizeof(vm), iso, sizeof(iso)) == 1);
    CHECK(strcmp(vm, "VM1") == 0 && strcmp(iso, "2021-12-01T23:59:01.007Z") == 0);
    CHECK(ca_azure_nw_parse("virtualMachines/v/2021/13/01/packetcapture_00_00_00_000.cap", vm,
                            sizeof(vm), iso, sizeof(iso)) == 0);
    CHECK(ca_azure_nw_parse("plain.pcap", vm, sizeof(vm), iso, sizeof(iso)) == 0);
}

static void t_errors(void)
{
    struct ca_azure_url u;
    char b[256];

    ca_azure_parse("https://a.blob.core.windows.net/c/b?se=2017-02-22T10:00Z&sig=x", &u, NULL, 0);
    ca_azure_http_error(&u, 403, "", b, sizeof(b));
    CHECK(strcmp(b, "the SAS link was refused by storage: expired or wrong permissions "
                    "(se=2017-02-22T10:00Z)") == 0);
    ca_azure_http_error(&u, 404, "BlobNotFound", b, sizeof(b));
    CHECK(strcmp(b, "no such blob") == 0);
    ca_azure_http_error(&u, 404, "ContainerNotFound", b, sizeof(b));
    CHECK(strcmp(b, "no such container") == 0);
}

static int denied4(const char *ip)
{
    struct sockaddr_in s;

    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s.sin_addr);
    return ca_fetch_addr_denied(&s, NULL);
}

static int denied6(const char *ip)
{
    struct sockaddr_in6 s;

    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &s.sin6_addr);
    return ca_fetch_addr_denied(&s, NULL);
}

static void t_addr_policy(void)
{
    static const char *const bad4[] = {
        "127.0.0.1",       "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "0.0.0.0",  "224.0.0.1",  "100.64.0.1",     "255.255.255.255"};
    static const char *const bad6[] = {
        "::1", "::", "fd00::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"};

    for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
        CHECK(denied4(bad4[i]));
    for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++)
        CHECK(denied6(bad6[i]));
    CHECK(!denied4("20.60.1.1"));
    CHECK(!denied4("172.32.0.1"));
    CHECK(!denied6("2a01:111:f100::1"));
}

int main(void)
{
    unit_run("azure: blob SAS URLs, service and path style", t_parse_blob);
    unit_run("azure: container URLs, list and blob URLs, non-Azure URLs", t_parse_container);
    unit_run("azure: redaction drops query, fragment and user info", t_redact);
    unit_run("azure: List Blobs XML, entities, NextMarker, caps", t_list_xml);
    unit_run("azure: Network Watcher paths", t_nw);
    unit_run("azure: storage errors in words", t_errors);
    unit_run("fetch: internal address ranges refused", t_addr_policy);
    return unit_done();
}
