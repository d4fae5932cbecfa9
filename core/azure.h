/*
 * Azure Blob Storage, as far as importing needs it, with no network in it:
 * parsing a SAS URL (account, container, blob, the SAS's expiry), the
 * redacted form of any URL that may be shown or stored, the List Blobs
 * request URL and a bounded parser of its XML answer, the labels hidden in
 * Network Watcher blob paths, and errors in words.  core/fetch.c does the
 * I/O.  Everything here is pure and unit-testable.
 *
 * Two URL styles are understood: the service's own
 *   https://<account>.blob.core.windows.net/<container>/<blob path>?<SAS>
 * and the path style of the emulator (Azurite) and of custom endpoints,
 *   https://127.0.0.1:10000/<account>/<container>/<blob path>?<SAS>
 * which is assumed when the host is an IP address or "localhost".
 */
#ifndef CA_AZURE_H
#define CA_AZURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CA_AZURE_URL_MAX 8192

enum ca_azure_kind {
    CA_AZURE_NONE = 0,  /* not a Blob Storage URL: a plain HTTPS download */
    CA_AZURE_BLOB,      /* one blob */
    CA_AZURE_CONTAINER, /* a container, or a "folder" prefix ending in '/' */
};

struct ca_azure_url {
    enum ca_azure_kind kind;
    char base[1024]; /* scheme://host[:port][/account] (no trailing '/') */
    char account[256];
    char container[256];
    char path[2048]; /* blob name, or the prefix for a container; %-decoded */
    char sas[4096];  /* query string without '?', "" when none */
    char se[64];     /* the SAS's signed expiry, "" when none */
};

/*
 * Parses url.  Returns 0 (u->kind tells what it is; CA_AZURE_NONE for any
 * other http(s) URL), or CA_EINVAL with a message for something that is
 * no http(s) URL at all.  A URL is a container when it has no blob path,
 * when it ends in '/', or when its SAS says sr=c and the path is empty.
 */
int ca_azure_parse(const char *url, struct ca_azure_url *u, char *err, size_t errlen);

/*
 * The form of url that may be logged, stored and shown: scheme, host and
 * path, with any user info, query and fragment removed; "?…" is appended
 * when there was a query.  Always NUL-terminates (truncates if needed).
 */
void ca_url_redact(const char *url, char *buf, size_t len);

/* Container URL for List Blobs, with marker (may be NULL) and page size. */
int ca_azure_list_url(const struct ca_azure_url *u, const char *marker, int maxresults, char *buf,
                      size_t len);

/* URL of blob name in u's container, with u's SAS.  name is %-encoded here. */
int ca_azure_blob_url(const struct ca_azure_url *u, const char *name, char *buf, size_t len);

/*
 * Parses one List Blobs answer.  Appends one object per blob to blobs:
 * {"name", "size", "last_modified", "md5"|null, "vm"|null,
 *  "capture_time"|null}; stores NextMarker ("" at the end) in marker.
 * At most max_blobs entries in total; names are bounded.  CA_EFORMAT when
 * the text is no EnumerationResults document.
 */
int ca_azure_parse_list(const char *xml, size_t len, json_t *blobs, size_t max_blobs, char *marker,
                        size_t markerlen, char *err, size_t errlen);

/*
 * Network Watcher's blob paths:
 *   .../virtualMachines/<vm>/<yyyy>/<mm>/<dd>/packetcapture_<HH>_<MM>_<SS>_<mmm>.cap
 * Fills vm and iso ("2017-02-22T10:42:48.238Z") and returns 1, or 0 when the
 * path is not one (vm/iso then empty).  Case-insensitive on the fixed words.
 */
int ca_azure_nw_parse(const char *path, char *vm, size_t vmlen, char *iso, size_t isolen);

/*
 * An HTTP failure from storage in words, e.g. for 403: "the SAS link was
 * refused by storage: expired or wrong permissions (se=2017-02-22T10:00Z)".
 * code is the x-ms-error-code header ("" when none).
 */
void ca_azure_http_error(const struct ca_azure_url *u, long status, const char *code, char *buf,
                         size_t len);

#endif
