/*
 * tests/fuzz/conf_fuzz.c - libFuzzer target for the mapi.conf parser (common/conf.c): the input
 * is a configuration file, written to a private temporary file and loaded with mapi_conf_load.
 *
 * Properties (abort on a violation):
 *   - a refusal returns -1 with a message that names the file, and leaves no lists behind;
 *   - an accepted file gives terminated strings within their fields, a non-empty socket path,
 *     absolute paths for the path keys (relative ones are made relative to the file's
 *     directory), a device name in every [driver] section;
 *   - round trip: the loaded configuration written back as mapi.conf text (mapi_conf_write:
 *     every key of conf.c's tables, every section) loads again, to the same values (it writes
 *     the same text again).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"

static char path1[64], path2[64];

static void cleanup(void)
{
    unlink(path1);
    unlink(path2);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

#define STRLEN_OK(field) (strnlen((field), sizeof(field)) < sizeof(field))

static const char *const path_keys[] = {"libpath",
                                        "drvpath",
                                        "logfile",
                                        "socket",
                                        "dimapi_cert",
                                        "dimapi_key",
                                        "dimapi_client_ca",
                                        "dimapi_ca",
                                        "dimapi_client_cert",
                                        "dimapi_client_key",
                                        "anon_key_file"};

static void check_loaded(const struct mapi_conf *c)
{
    if (!STRLEN_OK(c->path) || !STRLEN_OK(c->libpath) || !STRLEN_OK(c->libs) ||
        !STRLEN_OK(c->socket) || !STRLEN_OK(c->socket_group) || !STRLEN_OK(c->logfile) ||
        !STRLEN_OK(c->anon_key_file) || !STRLEN_OK(c->dimapi_listen))
        abort();
    if (c->socket[0] == 0)
        abort();
    for (size_t i = 0; i < sizeof path_keys / sizeof path_keys[0]; i++) {
        const char *v = mapi_conf_string(c, path_keys[i]);
        if (!v || (v[0] != 0 && v[0] != '/'))
            abort();
    }
    if (c->ndevices < 0 || c->nformats < 0 || (c->ndevices > 0 && !c->devices) ||
        (c->nformats > 0 && !c->formats))
        abort();
    for (int i = 0; i < c->ndevices; i++) {
        const struct mapi_conf_device *d = &c->devices[i];
        if (d->device[0] == 0 || !STRLEN_OK(d->device) || !STRLEN_OK(d->driver) ||
            !STRLEN_OK(d->description) || !STRLEN_OK(d->alias))
            abort();
    }
    for (int i = 0; i < c->nformats; i++) {
        const struct mapi_conf_format *f = &c->formats[i];
        if (!STRLEN_OK(f->format) || !STRLEN_OK(f->driver) || !STRLEN_OK(f->description))
            abort();
    }
}

/* c as mapi.conf text (mapi_conf_write) in a malloc'd string, or NULL when a line is too long
 * for the loader (4096 bytes with the newline; values may fill their 4096-byte fields). */
static char *serialise(const struct mapi_conf *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out || mapi_conf_write(c, out) != 0)
        abort();
    if (fclose(out) != 0)
        abort();
    for (const char *l = buf; *l;) {
        const char *nl = strchr(l, '\n');
        if (!nl)
            abort(); /* every line ends with a newline */
        if (nl - l >= 4000) {
            free(buf);
            return NULL;
        }
        l = nl + 1;
    }
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path1[0]) {
        const char *t = getenv("TMPDIR");
        (void)t;
        snprintf(path1, sizeof path1, "/tmp/mapi-conf-fuzz-%d.conf", (int)getpid());
        snprintf(path2, sizeof path2, "/tmp/mapi-conf-fuzz-%d-2.conf", (int)getpid());
        atexit(cleanup);
    }
    write_file(path1, data, size);
    static struct mapi_conf c, c2;
    char err[8192] = "";
    if (mapi_conf_load(&c, path1, err, sizeof err) != 0) {
        if (strncmp(err, path1, strlen(path1)) != 0)
            abort(); /* a refusal names the file (and the line) */
        if (c.devices || c.formats)
            abort();
        return 0;
    }
    check_loaded(&c);
    char *text = serialise(&c);
    if (text) {
        write_file(path2, text, strlen(text));
        char err2[8192] = "";
        if (mapi_conf_load(&c2, path2, err2, sizeof err2) != 0)
            abort(); /* what was accepted, written back, is accepted */
        char *text2 = serialise(&c2);
        if (!text2 || strcmp(text, text2) != 0)
            abort(); /* ... to the same values (every key of the table, every section) */
        free(text2);
        free(text);
        mapi_conf_free(&c2);
    }
    mapi_conf_free(&c);
    return 0;
}
