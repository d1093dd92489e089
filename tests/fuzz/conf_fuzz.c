/*
 * tests/fuzz/conf_fuzz.c - libFuzzer target for the mapi.conf parser (common/conf.c): the input
 * is a configuration file, written to a private temporary file and loaded with mapi_conf_load.
 *
 * Properties (abort on a violation):
 *   - a refusal returns -1 with a message that names the file, and leaves no lists behind;
 *   - an accepted file gives terminated strings within their fields, a non-empty socket path,
 *     absolute paths for the path keys (relative ones are made relative to the file's
 *     directory), a device name in every [driver] section;
 *   - round trip: the loaded configuration written back as mapi.conf text (the keys below)
 *     loads again, to the same values.
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

static const char *const str_keys[] = {
    "libpath",           "drvpath",       "libs",
    "logfile",           "socket",        "socket_group",
    "dimapi_listen",     "dimapi_cert",   "dimapi_key",
    "dimapi_client_ca",  "dimapi_ca",     "dimapi_client_cert",
    "dimapi_client_key", "anon_key_file",
};
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

/* Writes c as mapi.conf text; returns the length, or 0 when a line would be too long. */
static size_t serialise(const struct mapi_conf *c, char *out, size_t cap)
{
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(out + n, cap - n, __VA_ARGS__);                                          \
        if (w_ < 0 || (size_t)w_ >= cap - n || w_ > 4000)                                          \
            return 0;                                                                              \
        n += (size_t)w_;                                                                           \
    } while (0)
    for (size_t i = 0; i < sizeof str_keys / sizeof str_keys[0]; i++)
        PUT("%s=%s\n", str_keys[i], mapi_conf_string(c, str_keys[i]));
    PUT("dimapi_port=%d\nsyslog_level=%d\nbuffer_size=%llu\n", c->dimapi_port, c->syslog_level,
        (unsigned long long)c->buffer_size);
    PUT("max_flows_per_client=%d\nmax_functions_per_flow=%d\nmax_shm_per_client=%llu\n",
        c->max_flows_per_client, c->max_functions_per_flow,
        (unsigned long long)c->max_shm_per_client);
    PUT("dimapi_plaintext=%d\ndimapi_timeout=%d\ndimapi_max_clients=%d\n"
        "dimapi_idle_timeout=%d\n",
        c->dimapi_plaintext, c->dimapi_timeout, c->dimapi_max_clients, c->dimapi_idle_timeout);
    for (int i = 0; i < c->ndevices; i++) {
        const struct mapi_conf_device *d = &c->devices[i];
        PUT("[driver]\ndevice=%s\ndriver=%s\ndescription=%s\nalias=%s\n", d->device, d->driver,
            d->description, d->alias);
        PUT("promisc=%d\nsnaplen=%u\nring_size=%u\nlink_speed=%d\nmpls=%d\nvlan=%d\n", d->promisc,
            d->snaplen, d->ring_bytes, d->link_speed, d->mpls, d->vlan);
    }
    for (int i = 0; i < c->nformats; i++) {
        const struct mapi_conf_format *f = &c->formats[i];
        PUT("[format]\nformat=%s\ndriver=%s\ndescription=%s\n", f->format, f->driver,
            f->description);
    }
#undef PUT
    return n;
}

static int same(const struct mapi_conf *a, const struct mapi_conf *b)
{
    for (size_t i = 0; i < sizeof str_keys / sizeof str_keys[0]; i++)
        if (strcmp(mapi_conf_string(a, str_keys[i]), mapi_conf_string(b, str_keys[i])) != 0)
            return 0;
    if (a->dimapi_port != b->dimapi_port || a->syslog_level != b->syslog_level ||
        a->buffer_size != b->buffer_size || a->max_flows_per_client != b->max_flows_per_client ||
        a->max_functions_per_flow != b->max_functions_per_flow ||
        a->max_shm_per_client != b->max_shm_per_client ||
        a->dimapi_plaintext != b->dimapi_plaintext || a->dimapi_timeout != b->dimapi_timeout ||
        a->dimapi_max_clients != b->dimapi_max_clients ||
        a->dimapi_idle_timeout != b->dimapi_idle_timeout || a->ndevices != b->ndevices ||
        a->nformats != b->nformats)
        return 0;
    for (int i = 0; i < a->ndevices; i++) {
        const struct mapi_conf_device *x = &a->devices[i], *y = &b->devices[i];
        if (strcmp(x->device, y->device) || strcmp(x->driver, y->driver) ||
            strcmp(x->description, y->description) || strcmp(x->alias, y->alias) ||
            x->promisc != y->promisc || x->snaplen != y->snaplen ||
            x->ring_bytes != y->ring_bytes || x->link_speed != y->link_speed ||
            x->mpls != y->mpls || x->vlan != y->vlan)
            return 0;
    }
    for (int i = 0; i < a->nformats; i++) {
        const struct mapi_conf_format *x = &a->formats[i], *y = &b->formats[i];
        if (strcmp(x->format, y->format) || strcmp(x->driver, y->driver) ||
            strcmp(x->description, y->description))
            return 0;
    }
    return 1;
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
    static char text[1 << 20];
    size_t n = serialise(&c, text, sizeof text);
    if (n > 0) {
        write_file(path2, text, n);
        char err2[8192] = "";
        if (mapi_conf_load(&c2, path2, err2, sizeof err2) != 0)
            abort(); /* what was accepted, written back, is accepted */
        if (!same(&c, &c2))
            abort();
        mapi_conf_free(&c2);
    }
    mapi_conf_free(&c);
    return 0;
}
