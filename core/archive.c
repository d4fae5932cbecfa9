/*
 * Zip archives through libarchive (see ca_archive.h, named so because
 * -Icore would otherwise hide libarchive's own archive.h).  Only the zip format
 * is enabled, so a tar or a 7z is refused rather than half-understood.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "ca_archive.h"
#include "ca_error.h"

struct ca_archive {
    struct archive *a;
};

int ca_archive_is_zip(const void *head, size_t n)
{
    const unsigned char *b = head;

    return n >= 4 && b[0] == 'P' && b[1] == 'K' &&
           ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6) || (b[2] == 7 && b[3] == 8));
}

int ca_archive_open(const char *path, const char *password, struct ca_archive **out, char *err,
                    size_t errlen)
{
    struct ca_archive *z;

    *out = NULL;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return CA_ENOMEM;
    z->a = archive_read_new();
    if (z->a == NULL) {
        free(z);
        return CA_ENOMEM;
    }
    archive_read_support_format_zip(z->a);
    if (password != NULL && password[0] != '\0')
        archive_read_add_passphrase(z->a, password);
    if (archive_read_open_filename(z->a, path, 1 << 16) != ARCHIVE_OK) {
        int rc = ca_seterr(err, errlen, CA_EFORMAT, "not a readable zip archive: %s",
                           archive_error_string(z->a) ? archive_error_string(z->a) : "?");

        ca_archive_close(z);
        return rc;
    }
    *out = z;
    return 0;
}

void ca_archive_close(struct ca_archive *z)
{
    if (z == NULL)
        return;
    archive_read_free(z->a);
    free(z);
}

int ca_archive_next(struct ca_archive *z, char *name, size_t namelen, int64_t *size, char *err,
                    size_t errlen)
{
    for (;;) {
        struct archive_entry *e;
        const char *n, *base;
        int r = archive_read_next_header(z->a, &e);

        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return ca_seterr(err, errlen, CA_EFORMAT, "damaged zip archive: %s",
                             archive_error_string(z->a) ? archive_error_string(z->a) : "?");
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        n = archive_entry_pathname(e);
        if (n == NULL || strncmp(n, "__MACOSX/", 9) == 0)
            continue;
        base = strrchr(n, '/');
        base = base != NULL ? base + 1 : n;
        if (base[0] == '\0' || strncmp(base, "._", 2) == 0)
            continue;
        snprintf(name, namelen, "%s", n);
        *size = archive_entry_size_is_set(e) ? (int64_t)archive_entry_size(e) : -1;
        return 1;
    }
}

ssize_t ca_archive_read(struct ca_archive *z, void *buf, size_t len, char *err, size_t errlen)
{
    la_ssize_t n = archive_read_data(z->a, buf, len);

    if (n >= 0)
        return (ssize_t)n;
    {
        const char *m = archive_error_string(z->a);

        if (m != NULL && (strstr(m, "assphrase") != NULL || strstr(m, "ncrypt") != NULL ||
                          strstr(m, "password") != NULL))
            return ca_seterr(err, errlen, CA_EAUTH,
                             "the zip archive is password-protected and the password is %s",
                             "missing or wrong");
        return ca_seterr(err, errlen, CA_EFORMAT, "damaged zip archive: %s", m ? m : "?");
    }
}
