/*
 * common/conf.c - reads mapi.conf (format in conf.h) into struct mapi_conf. Global keys and the
 * keys of each section are described by tables, so parsing, validation and defaults live in
 * one place. Unknown keys are errors (a typo should not silently change behaviour).
 */
#include "common/conf.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum key_type { K_STR, K_INT, K_SIZE, K_SIZE32, K_IGNORE };

struct key_def {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* K_STR: buffer size */
};

#define STR_KEY(st, name, field)                                                                   \
    {                                                                                              \
        name, K_STR, offsetof(st, field), sizeof(((st *)0)->field)                                 \
    }
#define NUM_KEY(st, name, type, field)                                                             \
    {                                                                                              \
        name, type, offsetof(st, field), 0                                                         \
    }

static const struct key_def global_keys[] = {
    STR_KEY(struct mapi_conf, "libpath", libpath),
    STR_KEY(struct mapi_conf, "drvpath", drvpath),
    STR_KEY(struct mapi_conf, "libs", libs),
    NUM_KEY(struct mapi_conf, "dimapi_port", K_INT, dimapi_port),
    NUM_KEY(struct mapi_conf, "syslog_level", K_INT, syslog_level),
    STR_KEY(struct mapi_conf, "logfile", logfile),
    STR_KEY(struct mapi_conf, "socket", socket),
    STR_KEY(struct mapi_conf, "socket_group", socket_group),
    NUM_KEY(struct mapi_conf, "buffer_size", K_SIZE, buffer_size),
    NUM_KEY(struct mapi_conf, "max_flows_per_user", K_INT, max_flows_per_user),
    NUM_KEY(struct mapi_conf, "max_flows_per_client", K_INT, max_flows_per_user), /* old name */
    NUM_KEY(struct mapi_conf, "max_functions_per_flow", K_INT, max_functions_per_flow),
    NUM_KEY(struct mapi_conf, "max_shm_per_user", K_SIZE, max_shm_per_user),
    NUM_KEY(struct mapi_conf, "max_shm_per_client", K_SIZE, max_shm_per_user), /* old name */
    NUM_KEY(struct mapi_conf, "max_connections_per_user", K_INT, max_connections_per_user),
    NUM_KEY(struct mapi_conf, "max_threads_per_user", K_INT, max_threads_per_user),
    NUM_KEY(struct mapi_conf, "max_input_per_user", K_SIZE, max_input_per_user),
    NUM_KEY(struct mapi_conf, "max_connections", K_INT, max_connections),
    NUM_KEY(struct mapi_conf, "max_input_total", K_SIZE, max_input_total),
    NUM_KEY(struct mapi_conf, "message_timeout", K_INT, message_timeout),
    NUM_KEY(struct mapi_conf, "max_devices_per_user", K_INT, max_devices_per_user),
    STR_KEY(struct mapi_conf, "dimapi_listen", dimapi_listen),
    STR_KEY(struct mapi_conf, "dimapi_cert", dimapi_cert),
    STR_KEY(struct mapi_conf, "dimapi_key", dimapi_key),
    STR_KEY(struct mapi_conf, "dimapi_client_ca", dimapi_client_ca),
    STR_KEY(struct mapi_conf, "dimapi_ca", dimapi_ca),
    STR_KEY(struct mapi_conf, "dimapi_client_cert", dimapi_client_cert),
    STR_KEY(struct mapi_conf, "dimapi_client_key", dimapi_client_key),
    NUM_KEY(struct mapi_conf, "dimapi_plaintext", K_INT, dimapi_plaintext),
    NUM_KEY(struct mapi_conf, "dimapi_timeout", K_INT, dimapi_timeout),
    NUM_KEY(struct mapi_conf, "dimapi_max_clients", K_INT, dimapi_max_clients),
    NUM_KEY(struct mapi_conf, "dimapi_idle_timeout", K_INT, dimapi_idle_timeout),
    NUM_KEY(struct mapi_conf, "dimapi_handshake_timeout", K_INT, dimapi_handshake_timeout),
    NUM_KEY(struct mapi_conf, "dimapi_max_handshakes", K_INT, dimapi_max_handshakes),
    NUM_KEY(struct mapi_conf, "dimapi_max_handshakes_per_address", K_INT,
            dimapi_max_handshakes_per_address),
    NUM_KEY(struct mapi_conf, "dimapi_max_connections_per_identity", K_INT,
            dimapi_max_connections_per_identity),
    NUM_KEY(struct mapi_conf, "dimapi_max_flows_per_identity", K_INT,
            dimapi_max_flows_per_identity),
    NUM_KEY(struct mapi_conf, "dimapi_max_memory", K_SIZE, dimapi_max_memory),
    NUM_KEY(struct mapi_conf, "dimapi_max_memory_per_identity", K_SIZE,
            dimapi_max_memory_per_identity),
    STR_KEY(struct mapi_conf, "dimapi_file_dir", dimapi_file_dir),
    STR_KEY(struct mapi_conf, "anon_key_file", anon_key_file),
    STR_KEY(struct mapi_conf, "anon_key_group", anon_key_group),
    NUM_KEY(struct mapi_conf, "regexp_match_limit", K_INT, regexp_match_limit),
    NUM_KEY(struct mapi_conf, "regexp_heap_limit", K_SIZE, regexp_heap_limit),
    NUM_KEY(struct mapi_conf, "regexp_time_limit", K_INT, regexp_time_limit),
    NUM_KEY(struct mapi_conf, "print_packet_rate", K_INT, print_packet_rate),
    NUM_KEY(struct mapi_conf, "print_packet_burst", K_INT, print_packet_burst),
    NUM_KEY(struct mapi_conf, "res2file_max_empty", K_INT, res2file_max_empty),
    NUM_KEY(struct mapi_conf, "bpf_filter_max_len", K_INT, bpf_filter_max_len),
    {"devgroup", K_IGNORE, 0, 0},
    {NULL, K_IGNORE, 0, 0},
};

static const struct key_def device_keys[] = {
    STR_KEY(struct mapi_conf_device, "device", device),
    STR_KEY(struct mapi_conf_device, "driver", driver),
    STR_KEY(struct mapi_conf_device, "description", description),
    STR_KEY(struct mapi_conf_device, "alias", alias),
    NUM_KEY(struct mapi_conf_device, "promisc", K_INT, promisc),
    NUM_KEY(struct mapi_conf_device, "snaplen", K_SIZE32, snaplen),
    NUM_KEY(struct mapi_conf_device, "ring_size", K_SIZE32, ring_bytes),
    NUM_KEY(struct mapi_conf_device, "link_speed", K_INT, link_speed),
    NUM_KEY(struct mapi_conf_device, "mpls", K_INT, mpls),
    NUM_KEY(struct mapi_conf_device, "vlan", K_INT, vlan),
    {"devgroup", K_IGNORE, 0, 0},
    {NULL, K_IGNORE, 0, 0},
};

static const struct key_def format_keys[] = {
    STR_KEY(struct mapi_conf_format, "format", format),
    STR_KEY(struct mapi_conf_format, "driver", driver),
    STR_KEY(struct mapi_conf_format, "description", description),
    {NULL, K_IGNORE, 0, 0},
};

void mapi_conf_defaults(struct mapi_conf *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->libpath, sizeof(c->libpath), "%s", MAPI_DEFAULT_LIBPATH);
    snprintf(c->libs, sizeof(c->libs), "stdflib.so");
    c->dimapi_port = 2233;
    c->syslog_level = 2;
    snprintf(c->socket, sizeof(c->socket), "%s", MAPI_DEFAULT_SOCKET);
    snprintf(c->socket_group, sizeof(c->socket_group), "mapi");
    c->buffer_size = 4u << 20;
    c->max_flows_per_user = 1024;
    c->max_functions_per_flow = 256;
    c->max_shm_per_user = 4ull << 30;
    c->max_connections_per_user = 64;
    c->max_threads_per_user = 64;
    c->max_input_per_user = 16u << 20;
    c->max_connections = 1024;
    c->max_input_total = 128u << 20;
    c->message_timeout = 10000;
    c->max_devices_per_user = 16;
    c->dimapi_timeout = 5000;
    c->dimapi_max_clients = 256;
    c->dimapi_idle_timeout = 10000;
    c->dimapi_handshake_timeout = 5000;
    c->dimapi_max_handshakes = 128;
    c->dimapi_max_handshakes_per_address = 8;
    c->dimapi_max_connections_per_identity = 128;
    c->dimapi_max_flows_per_identity = 64;
    c->dimapi_max_memory = 256ull << 20;
    c->dimapi_max_memory_per_identity = 64ull << 20;
    c->regexp_match_limit = 1000;
    c->regexp_heap_limit = 1u << 20;
    c->regexp_time_limit = 1000;
    c->print_packet_rate = 10;
    c->print_packet_burst = 100;
    c->res2file_max_empty = 100;
    c->bpf_filter_max_len = 1024;
}

const char *mapi_conf_string(const struct mapi_conf *c, const char *key)
{
    for (const struct key_def *k = global_keys; k->name; k++)
        if (k->type == K_STR && strcmp(k->name, key) == 0)
            return (const char *)c + k->offset;
    return NULL;
}

/* Writes the keys of one table for the struct at base; an alias (a key whose field an earlier
 * key of the table already wrote) is skipped. */
static int write_keys(const struct key_def *keys, const void *base, FILE *out)
{
    int rc = 0;
    for (const struct key_def *k = keys; k->name; k++) {
        if (k->type == K_IGNORE)
            continue;
        int alias = 0;
        for (const struct key_def *e = keys; e != k; e++)
            alias |= e->type != K_IGNORE && e->offset == k->offset;
        if (alias)
            continue;
        const char *p = (const char *)base + k->offset;
        switch (k->type) {
        case K_STR:
            rc |= fprintf(out, "%s=%s\n", k->name, p) < 0;
            break;
        case K_INT: {
            int v;
            memcpy(&v, p, sizeof(v));
            rc |= fprintf(out, "%s=%d\n", k->name, v) < 0;
            break;
        }
        case K_SIZE32: {
            uint32_t v;
            memcpy(&v, p, sizeof(v));
            rc |= fprintf(out, "%s=%u\n", k->name, v) < 0;
            break;
        }
        case K_SIZE: {
            uint64_t v;
            memcpy(&v, p, sizeof(v));
            rc |= fprintf(out, "%s=%llu\n", k->name, (unsigned long long)v) < 0;
            break;
        }
        default:
            break;
        }
    }
    return rc ? -1 : 0;
}

int mapi_conf_write(const struct mapi_conf *c, FILE *out)
{
    int rc = write_keys(global_keys, c, out);
    for (int i = 0; rc == 0 && i < c->ndevices; i++)
        rc = fputs("[driver]\n", out) < 0 ? -1 : write_keys(device_keys, &c->devices[i], out);
    for (int i = 0; rc == 0 && i < c->nformats; i++)
        rc = fputs("[format]\n", out) < 0 ? -1 : write_keys(format_keys, &c->formats[i], out);
    return rc;
}

const char *mapi_conf_text(const struct mapi_conf *c, const char *key)
{
    static _Thread_local char num[32];
    for (const struct key_def *k = global_keys; k->name; k++) {
        if (strcmp(k->name, key) != 0)
            continue;
        const char *field = (const char *)c + k->offset;
        switch (k->type) {
        case K_STR:
            return field;
        case K_INT:
            snprintf(num, sizeof(num), "%d", *(const int *)field);
            return num;
        case K_SIZE:
            snprintf(num, sizeof(num), "%llu", (unsigned long long)*(const uint64_t *)field);
            return num;
        case K_SIZE32:
            snprintf(num, sizeof(num), "%u", *(const uint32_t *)field);
            return num;
        case K_IGNORE:
            return NULL;
        }
    }
    return NULL;
}

void mapi_conf_free(struct mapi_conf *c)
{
    free(c->devices);
    free(c->formats);
    c->devices = NULL;
    c->formats = NULL;
    c->ndevices = c->nformats = 0;
}

/*
 * $MAPI_CONF, else the default of the configured prefix, else (a tree installed with
 * `cmake --install --prefix P` elsewhere) P/etc/mapi/mapi.conf found from the location of
 * the binary that holds this code (libmapi.so or mapid): <dir>/../etc/mapi/mapi.conf.
 */
const char *mapi_conf_default_path(void)
{
    static _Thread_local char found[4096];
    const char *e = getenv("MAPI_CONF");
    if (e && *e)
        return e;
    if (access(MAPI_DEFAULT_CONF, F_OK) == 0)
        return MAPI_DEFAULT_CONF;
    Dl_info info;
    if (dladdr((void *)mapi_conf_default_path, &info) && info.dli_fname) {
        char self[4096];
        if (!realpath(info.dli_fname, self) && !realpath("/proc/self/exe", self))
            return MAPI_DEFAULT_CONF;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(found, sizeof(found), "%.4000s/../etc/mapi/mapi.conf", self);
            if (access(found, F_OK) == 0)
                return found;
        }
    }
    return MAPI_DEFAULT_CONF;
}

int mapi_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 0:
        break;
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        return -1;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* Sets key=value in the struct at base. 0, or -1 with a reason in why. */
static int set_key(const struct key_def *keys, void *base, const char *key, const char *val,
                   const char **why)
{
    for (const struct key_def *k = keys; k->name; k++) {
        if (strcmp(k->name, key) != 0)
            continue;
        char *field = (char *)base + k->offset;
        uint64_t size;
        char *end;
        long v;
        switch (k->type) {
        case K_IGNORE:
            return 0;
        case K_STR:
            if (strlen(val) >= k->size) {
                *why = "value too long";
                return -1;
            }
            memcpy(field, val, strlen(val) + 1);
            return 0;
        case K_INT:
            errno = 0;
            v = strtol(val, &end, 10);
            if (errno || end == val || *end || v < -2147483647L || v > 2147483647L) {
                *why = "not an integer";
                return -1;
            }
            *(int *)field = (int)v;
            return 0;
        case K_SIZE:
        case K_SIZE32:
            if (mapi_parse_size(val, &size) < 0 || (k->type == K_SIZE32 && size > UINT32_MAX)) {
                *why = "not a size (a number with an optional K, M or G)";
                return -1;
            }
            if (k->type == K_SIZE)
                *(uint64_t *)field = size;
            else
                *(uint32_t *)field = (uint32_t)size;
            return 0;
        }
    }
    *why = "unknown key";
    return -1;
}

int mapi_conf_load(struct mapi_conf *c, const char *path, char *err, size_t errlen)
{
    mapi_conf_defaults(c);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    enum { S_GLOBAL, S_DRIVER, S_FORMAT, S_OTHER } section = S_GLOBAL;
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == 0 || *s == '#' || *s == ';')
            continue;
        const char *why = NULL;
        if (*s == '[') {
            if (strcmp(s, "[driver]") == 0) {
                void *n = realloc(c->devices, sizeof(*c->devices) * (size_t)(c->ndevices + 1));
                if (!n) {
                    why = "out of memory";
                } else {
                    c->devices = n;
                    struct mapi_conf_device *d = &c->devices[c->ndevices++];
                    memset(d, 0, sizeof(*d));
                    d->promisc = 1;
                    d->snaplen = 65535;
                    d->ring_bytes = 32u << 20;
                    section = S_DRIVER;
                }
            } else if (strcmp(s, "[format]") == 0) {
                void *n = realloc(c->formats, sizeof(*c->formats) * (size_t)(c->nformats + 1));
                if (!n) {
                    why = "out of memory";
                } else {
                    c->formats = n;
                    memset(&c->formats[c->nformats++], 0, sizeof(*c->formats));
                    section = S_FORMAT;
                }
            } else {
                /* Other sections (e.g. [ipfixflib]) belong to function libraries. */
                section = S_OTHER;
                if (strchr(s, ']') == NULL)
                    why = "unterminated section name";
            }
        } else {
            char *eq = strchr(s, '=');
            if (!eq) {
                why = "expected key=value";
            } else {
                *eq = 0;
                char *key = trim(s), *val = trim(eq + 1);
                if (section == S_GLOBAL)
                    set_key(global_keys, c, key, val, &why);
                else if (section == S_OTHER)
                    why = NULL;
                else if (section == S_DRIVER)
                    set_key(device_keys, &c->devices[c->ndevices - 1], key, val, &why);
                else
                    set_key(format_keys, &c->formats[c->nformats - 1], key, val, &why);
            }
        }
        if (why) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    fclose(f);
    for (int i = 0; rc == 0 && i < c->ndevices; i++) {
        if (c->devices[i].device[0] == 0) {
            snprintf(err, errlen, "%s: [driver] section %d has no device=", path, i + 1);
            rc = -1;
        }
    }
    /* Relative paths are relative to the directory of the configuration file, so a daemon
     * that changed directory (mapid -d) and its clients agree on them. */
    char dir[4096];
    if (rc == 0 && realpath(path, dir)) {
        char *slash = strrchr(dir, '/');
        *slash = 0;
        struct {
            char *field;
            size_t size;
        } paths[] = {{c->libpath, sizeof(c->libpath)},
                     {c->drvpath, sizeof(c->drvpath)},
                     {c->logfile, sizeof(c->logfile)},
                     {c->socket, sizeof(c->socket)},
                     {c->dimapi_cert, sizeof(c->dimapi_cert)},
                     {c->dimapi_key, sizeof(c->dimapi_key)},
                     {c->dimapi_client_ca, sizeof(c->dimapi_client_ca)},
                     {c->dimapi_ca, sizeof(c->dimapi_ca)},
                     {c->dimapi_client_cert, sizeof(c->dimapi_client_cert)},
                     {c->dimapi_client_key, sizeof(c->dimapi_client_key)},
                     {c->dimapi_file_dir, sizeof(c->dimapi_file_dir)},
                     {c->anon_key_file, sizeof(c->anon_key_file)}};
        for (size_t i = 0; rc == 0 && i < sizeof(paths) / sizeof(paths[0]); i++) {
            char *f = paths[i].field;
            if (f[0] == 0 || f[0] == '/')
                continue;
            char abs[8192];
            int n = snprintf(abs, sizeof(abs), "%s/%s", dir, f);
            if (n < 0 || (size_t)n >= paths[i].size) {
                snprintf(err, errlen, "%s: path %s/%s is too long", path, dir, f);
                rc = -1;
                break;
            }
            memcpy(f, abs, (size_t)n + 1);
        }
    }
    if (rc == 0 && c->socket[0] == 0) {
        snprintf(err, errlen, "%s: socket= is empty", path);
        rc = -1;
    }
    if (rc == 0 &&
        (c->max_connections < 1 || c->max_connections_per_user < 1 || c->message_timeout < 1)) {
        snprintf(err, errlen,
                 "%s: max_connections, max_connections_per_user and message_timeout must be at "
                 "least 1",
                 path);
        rc = -1;
    }
    if (rc < 0)
        mapi_conf_free(c);
    return rc;
}
