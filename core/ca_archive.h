/*
 * Archives whose members are captures: .zip, with or without a password
 * (ZipCrypto or AES, as libarchive reads them).  Only archive.c includes
 * archive.h; no shell or external program is ever involved.  gzip of a
 * single capture is not an archive here: the engine reads it directly.
 */
#ifndef CA_CA_ARCHIVE_H
#define CA_CA_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ca_archive;

/* 1 when the first bytes (at least 4) are those of a zip archive. */
int ca_archive_is_zip(const void *head, size_t n);

/* Opens the zip at path; password may be NULL or "".  0 or a ca_err. */
int ca_archive_open(const char *path, const char *password, struct ca_archive **out, char *err,
                    size_t errlen);
void ca_archive_close(struct ca_archive *a); /* accepts NULL */

/*
 * Next regular member worth importing (directories, "__MACOSX/" and "._"
 * files are skipped): 1 with name (the path inside the archive) and size
 * (-1 when unknown), 0 at the end, or a negative ca_err.
 */
int ca_archive_next(struct ca_archive *a, char *name, size_t namelen, int64_t *size, char *err,
                    size_t errlen);

/*
 * Bytes of the current member: the count, 0 at its end, or a negative
 * ca_err (CA_EAUTH for a missing or wrong password, CA_EFORMAT for
 * damage) with err set.
 */
ssize_t ca_archive_read(struct ca_archive *a, void *buf, size_t len, char *err, size_t errlen);

#endif
