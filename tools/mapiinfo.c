/*
 * tools/mapiinfo.c - lists what a running mapid offers: its devices, the function libraries it
 * loaded with their functions and argument descriptors, and the flows it runs with the
 * functions applied to them and their packet statistics.
 *
 * The original MAPI's mapiinfo, as a real command: it uses only the public management calls of
 * mapi.h (mapi_get_next_device_info, mapi_get_next_library_info, mapi_get_next_libfunct_info,
 * mapi_get_next_flow_info, mapi_get_next_function_info), so it also shows how an application
 * walks those lists (the management loop of the tutorial's section 4). mapid is found like
 * every application finds it: through $MAPI_CONF or the installed mapi.conf.
 *
 * Usage: mapiinfo [-d] [-l] [-f] [-o] [-u] [-a] [--json] [-h]
 *   -d  devices              -l  libraries             -f  functions with their argdescr
 *   -o  flows (with CPU_MS: milliseconds mapid's capture thread spent in the flow's
 *       functions, estimated by sampling: who costs what on a shared device)
 *                            -u  flows and the functions applied to them (name, packets
 *                                seen, packets passed, result size)
 *   -a  all of these (the default when no list is named)
 *   --json  one JSON document on stdout instead of the tables
 *
 * Everything is collected first and printed afterwards, so a failure prints no half document.
 * Exit status: 0 on success, 1 if mapid cannot be reached or a call fails (the MAPI error
 * number and text from mapi_read_error go to stderr), 2 on a usage error.
 *
 * Functions of flows that belong to other applications are listed with
 * mapi_get_next_function_info(flow id, ...), where the flow id is the one
 * mapi_get_next_flow_info reports (info.fd), as the original mapiinfo did. When libmapi refuses
 * that id (error 6145: it accepts only the caller's own flow descriptors), the flow is shown
 * with its number of functions and the error instead of the list.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mapi.h>

/* Error numbers that end a "next" iteration (mapi/errors.h), from lib/info.c. */
#define END_OF_DEVICES 6157   /* MAPI_DEVICE_INFO_ERR */
#define END_OF_LIBRARIES 6151 /* MAPI_LIBRARY_LOAD_ERR, also the end of a library's functions */
#define END_OF_FLOWS 6149     /* MAPI_FLOW_INFO_ERR */
#define END_OF_FUNCTIONS 6150 /* MAPI_FUNCTION_INFO_ERR */
#define INVALID_FLOW 6145     /* MAPI_INVALID_FLOW: flow gone, or not ours */

#define SHOW_DEVICES 0x01u
#define SHOW_LIBRARIES 0x02u
#define SHOW_FUNCTIONS 0x04u
#define SHOW_FLOWS 0x08u
#define SHOW_FLOW_FUNCTIONS 0x10u
#define SHOW_ALL 0x1fu

/* A library with the functions it offers. */
struct library {
    mapi_lib_info_t info;
    mapi_libfunct_info_t *functions;
    int nfunctions;
};

/* A flow with the functions applied to it (when asked for and visible). */
struct flow {
    mapi_flow_info_t info;
    mapi_function_info_t *functions;
    int nfunctions;
    int functions_error; /* 0, or the MAPI error that kept the list from us */
    char functions_errmsg[MAPI_ERRORSTR_LENGTH];
};

struct listing {
    mapi_device_info_t *devices;
    int ndevices;
    struct library *libraries;
    int nlibraries;
    struct flow *flows;
    int nflows;
};

/* The error of the call that just failed. */
struct mapi_failure {
    int code;
    char text[MAPI_ERRORSTR_LENGTH];
};

static void read_failure(struct mapi_failure *f)
{
    f->code = 0;
    f->text[0] = 0;
    mapi_read_error(&f->code, f->text);
}

/* Prints "mapiinfo: WHAT: MAPI error N: TEXT" on stderr. */
static void report_failure(const char *what, const struct mapi_failure *f)
{
    fprintf(stderr, "mapiinfo: %s: MAPI error %d: %s\n", what, f->code,
            f->text[0] ? f->text : "(no text)");
}

/* Returns the array base (n elements of size bytes) reallocated to n + 1 elements, the new
 * one zeroed; exits when out of memory. */
static void *grow(void *base, int n, size_t size)
{
    char *grown = realloc(base, (size_t)(n + 1) * size);
    if (grown == NULL) {
        fprintf(stderr, "mapiinfo: out of memory\n");
        exit(1);
    }
    memset(grown + (size_t)n * size, 0, size);
    return grown;
}

/* Each collector returns 0, or -1 after reporting the failure (nothing is left to print). */

static int collect_devices(struct listing *l)
{
    mapi_device_info_t info;
    struct mapi_failure f;
    int id = 0;

    while (mapi_get_next_device_info(id, &info) == 0) {
        l->devices = grow(l->devices, l->ndevices, sizeof *l->devices);
        l->devices[l->ndevices++] = info;
        id = info.id;
    }
    read_failure(&f);
    if (f.code == END_OF_DEVICES)
        return 0;
    report_failure("mapi_get_next_device_info", &f);
    return -1;
}

static int collect_libraries(struct listing *l, int with_functions)
{
    mapi_lib_info_t info;
    struct mapi_failure f;
    int id = -1;

    while (mapi_get_next_library_info(id, &info) == 0) {
        l->libraries = grow(l->libraries, l->nlibraries, sizeof *l->libraries);
        struct library *lib = &l->libraries[l->nlibraries++];
        lib->info = info;
        id = info.id;
        if (!with_functions)
            continue;
        mapi_libfunct_info_t fn;
        for (int fnum = -1; mapi_get_next_libfunct_info(info.id, fnum, &fn) == 0; fnum++) {
            lib->functions = grow(lib->functions, lib->nfunctions, sizeof *lib->functions);
            lib->functions[lib->nfunctions++] = fn;
        }
        read_failure(&f);
        if (f.code != END_OF_LIBRARIES) {
            report_failure("mapi_get_next_libfunct_info", &f);
            return -1;
        }
    }
    read_failure(&f);
    if (f.code == END_OF_LIBRARIES)
        return 0;
    report_failure("mapi_get_next_library_info", &f);
    return -1;
}

/* The functions of one flow. A refused or vanished flow is recorded in the flow, not fatal. */
static int collect_flow_functions(struct flow *fl)
{
    mapi_function_info_t info;
    struct mapi_failure f;
    int fid = 0;

    while (mapi_get_next_function_info(fl->info.fd, fid, &info) == 0) {
        fl->functions = grow(fl->functions, fl->nfunctions, sizeof *fl->functions);
        fl->functions[fl->nfunctions++] = info;
        fid = info.fid;
    }
    read_failure(&f);
    if (f.code == END_OF_FUNCTIONS)
        return 0;
    if (f.code == INVALID_FLOW) {
        fl->functions_error = f.code;
        snprintf(fl->functions_errmsg, sizeof fl->functions_errmsg, "%s", f.text);
        return 0;
    }
    report_failure("mapi_get_next_function_info", &f);
    return -1;
}

static int collect_flows(struct listing *l, int with_functions)
{
    mapi_flow_info_t info;
    struct mapi_failure f;
    int id = 0;

    while (mapi_get_next_flow_info(id, &info) == 0) {
        l->flows = grow(l->flows, l->nflows, sizeof *l->flows);
        struct flow *fl = &l->flows[l->nflows++];
        fl->info = info;
        id = info.fd;
        if (with_functions && collect_flow_functions(fl) < 0)
            return -1;
    }
    read_failure(&f);
    if (f.code == END_OF_FLOWS)
        return 0;
    report_failure("mapi_get_next_flow_info", &f);
    return -1;
}

static void free_listing(struct listing *l)
{
    for (int i = 0; i < l->nlibraries; i++)
        free(l->libraries[i].functions);
    for (int i = 0; i < l->nflows; i++)
        free(l->flows[i].functions);
    free(l->devices);
    free(l->libraries);
    free(l->flows);
}

/* Name of a flow status. */
static const char *status_name(enum mapi_flow_status s)
{
    switch (s) {
    case FLOW_INIT:
        return "INIT";
    case FLOW_ACTIVE:
        return "ACTIVE";
    case FLOW_FINISHED:
        return "FINISHED";
    case FLOW_CLOSED:
        return "CLOSED";
    }
    return "UNKNOWN";
}

/* ---- text output ------------------------------------------------------------------------ */

/* Local time of t as "YYYY-MM-DD HH:MM:SS", or "-" for 0. Returns buf. */
static const char *time_text(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (t == 0 || localtime_r(&t, &tm) == NULL)
        snprintf(buf, size, "-");
    else
        strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static void print_text(const struct listing *l, unsigned show)
{
    int first = 1;

    if (show & SHOW_DEVICES) {
        printf("Devices\n%-4s %-24s %-16s %-12s %s\n", "ID", "DEVICE", "DRIVER", "ALIAS",
               "DESCRIPTION");
        for (int i = 0; i < l->ndevices; i++) {
            const mapi_device_info_t *d = &l->devices[i];
            printf("%-4d %-24s %-16s %-12s %s\n", d->id, d->device, d->name,
                   d->alias[0] ? d->alias : "-", d->description);
        }
        first = 0;
    }
    if (show & (SHOW_LIBRARIES | SHOW_FUNCTIONS)) {
        printf("%sLibraries\n%-4s %-16s %s\n", first ? "" : "\n", "ID", "NAME", "FUNCTIONS");
        for (int i = 0; i < l->nlibraries; i++) {
            const struct library *lib = &l->libraries[i];
            printf("%-4d %-16s %u\n", lib->info.id, lib->info.libname, lib->info.functs);
            if (!(show & SHOW_FUNCTIONS))
                continue;
            for (int j = 0; j < lib->nfunctions; j++) {
                const mapi_libfunct_info_t *fn = &lib->functions[j];
                int len = (int)strlen(fn->argdescr);
                printf("     %-14s (%s)%*s %s\n", fn->name, fn->argdescr, len < 10 ? 10 - len : 0,
                       "", fn->descr);
            }
        }
        if (show & SHOW_FUNCTIONS)
            printf("Arguments: s=string  S=list of functions \"fid@fd,...\"  R=list of flows "
                   "\"fd,...\"  i=int  r=reference to a flow  f=reference to a function  "
                   "c=char  l=unsigned long long  w=file name of a writable file\n");
        first = 0;
    }
    if (show & (SHOW_FLOWS | SHOW_FLOW_FUNCTIONS)) {
        char start[32], end[32];
        printf("%sFlows\n%-5s %-6s %-9s %-5s %-24s %-19s %-19s %12s %s\n", first ? "" : "\n", "ID",
               "UID", "STATUS", "DEVID", "DEVICE", "START", "END", "CPU_MS", "FUNCTIONS");
        for (int i = 0; i < l->nflows; i++) {
            const struct flow *fl = &l->flows[i];
            printf("%-5d %-6u %-9s %-5d %-24s %-19s %-19s %12.3f %u\n", fl->info.fd,
                   (unsigned)fl->info.uid, status_name(fl->info.status), fl->info.devid,
                   fl->info.device, time_text(fl->info.start, start, sizeof start),
                   time_text(fl->info.end, end, sizeof end), (double)fl->info.cpu_ns / 1e6,
                   fl->info.num_functions);
            if (!(show & SHOW_FLOW_FUNCTIONS))
                continue;
            if (fl->functions_error) {
                printf("      functions not available: MAPI error %d: %s\n", fl->functions_error,
                       fl->functions_errmsg);
                continue;
            }
            printf("      %-4s %-14s %-10s %-7s %12s %12s %s\n", "FID", "NAME", "LIBRARY",
                   "DEVTYPE", "PKTS", "PASSED", "RESULT_SIZE");
            for (int j = 0; j < fl->nfunctions; j++) {
                const mapi_function_info_t *fn = &fl->functions[j];
                printf("      %-4d %-14s %-10s %-7s %12llu %12llu %d\n", fn->fid, fn->name,
                       fn->libname, fn->devtype, fn->pkts, fn->passed_pkts, fn->result_size);
            }
        }
    }
}

/* ---- JSON output ------------------------------------------------------------------------ */

/* Prints s as a JSON string: quotes, backslashes and control characters escaped; bytes >= 0x80
 * are passed through when they form valid UTF-8 and escaped as \u00XX (Latin-1) otherwise, so
 * the document is always valid UTF-8. */
static void json_string(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    putchar('"');
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
            p++;
        } else if (c == '\n') {
            fputs("\\n", stdout);
            p++;
        } else if (c == '\t') {
            fputs("\\t", stdout);
            p++;
        } else if (c == '\r') {
            fputs("\\r", stdout);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            putchar(c);
            p++;
        } else {
            /* Length of a valid UTF-8 sequence starting here (0 if invalid). */
            int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            for (int k = 1; k < n; k++)
                if ((p[k] & 0xc0) != 0x80)
                    n = 0;
            if (n == 0) {
                printf("\\u%04x", c);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, stdout);
                p += n;
            }
        }
    }
    putchar('"');
}

/* Prints `"key": ` with the key escaped. */
static void json_key(const char *key)
{
    json_string(key);
    fputs(": ", stdout);
}

static void json_devices(const struct listing *l)
{
    json_key("devices");
    putchar('[');
    for (int i = 0; i < l->ndevices; i++) {
        const mapi_device_info_t *d = &l->devices[i];
        printf("%s\n    {\"id\": %d, ", i ? "," : "", d->id);
        json_key("device");
        json_string(d->device);
        fputs(", ", stdout);
        json_key("driver");
        json_string(d->name);
        fputs(", ", stdout);
        json_key("alias");
        json_string(d->alias);
        fputs(", ", stdout);
        json_key("description");
        json_string(d->description);
        printf(", \"link_speed\": %d, \"mpls\": %d, \"vlan\": %d}", d->link_speed, d->mpls,
               d->vlan);
    }
    fputs(l->ndevices ? "\n  ]" : "]", stdout);
}

static void json_libraries(const struct listing *l, int with_functions)
{
    json_key("libraries");
    putchar('[');
    for (int i = 0; i < l->nlibraries; i++) {
        const struct library *lib = &l->libraries[i];
        printf("%s\n    {\"id\": %d, ", i ? "," : "", lib->info.id);
        json_key("name");
        json_string(lib->info.libname);
        printf(", \"nfunctions\": %u", lib->info.functs);
        if (with_functions) {
            fputs(", \"functions\": [", stdout);
            for (int j = 0; j < lib->nfunctions; j++) {
                const mapi_libfunct_info_t *fn = &lib->functions[j];
                printf("%s\n      {", j ? "," : "");
                json_key("name");
                json_string(fn->name);
                fputs(", ", stdout);
                json_key("argdescr");
                json_string(fn->argdescr);
                fputs(", ", stdout);
                json_key("devtype");
                json_string(fn->devtype);
                fputs(", ", stdout);
                json_key("descr");
                json_string(fn->descr);
                putchar('}');
            }
            fputs(lib->nfunctions ? "\n    ]" : "]", stdout);
        }
        putchar('}');
    }
    fputs(l->nlibraries ? "\n  ]" : "]", stdout);
}

static void json_flows(const struct listing *l, int with_functions)
{
    json_key("flows");
    putchar('[');
    for (int i = 0; i < l->nflows; i++) {
        const struct flow *fl = &l->flows[i];
        printf("%s\n    {\"id\": %d, \"uid\": %u, ", i ? "," : "", fl->info.fd,
               (unsigned)fl->info.uid);
        json_key("status");
        json_string(status_name(fl->info.status));
        printf(", \"devid\": %d, ", fl->info.devid);
        json_key("device");
        json_string(fl->info.device);
        printf(", \"cpu_ns\": %llu", fl->info.cpu_ns);
        printf(", \"num_functions\": %u, \"start\": %lld, \"end\": %lld", fl->info.num_functions,
               (long long)fl->info.start, (long long)fl->info.end);
        if (with_functions && fl->functions_error) {
            printf(", \"functions_error\": {\"code\": %d, ", fl->functions_error);
            json_key("message");
            json_string(fl->functions_errmsg);
            putchar('}');
        } else if (with_functions) {
            fputs(", \"functions\": [", stdout);
            for (int j = 0; j < fl->nfunctions; j++) {
                const mapi_function_info_t *fn = &fl->functions[j];
                printf("%s\n      {\"fid\": %d, ", j ? "," : "", fn->fid);
                json_key("name");
                json_string(fn->name);
                fputs(", ", stdout);
                json_key("library");
                json_string(fn->libname);
                fputs(", ", stdout);
                json_key("devtype");
                json_string(fn->devtype);
                printf(", \"pkts\": %llu, \"passed_pkts\": %llu, \"result_size\": %d}", fn->pkts,
                       fn->passed_pkts, fn->result_size);
            }
            fputs(fl->nfunctions ? "\n    ]" : "]", stdout);
        }
        putchar('}');
    }
    fputs(l->nflows ? "\n  ]" : "]", stdout);
}

/* One object with a member per list asked for: devices, libraries (with their functions for
 * -f), flows (with their functions for -u). */
static void print_json(const struct listing *l, unsigned show)
{
    const char *sep = "\n  ";

    putchar('{');
    if (show & SHOW_DEVICES) {
        fputs(sep, stdout);
        json_devices(l);
        sep = ",\n  ";
    }
    if (show & (SHOW_LIBRARIES | SHOW_FUNCTIONS)) {
        fputs(sep, stdout);
        json_libraries(l, (show & SHOW_FUNCTIONS) != 0);
        sep = ",\n  ";
    }
    if (show & (SHOW_FLOWS | SHOW_FLOW_FUNCTIONS)) {
        fputs(sep, stdout);
        json_flows(l, (show & SHOW_FLOW_FUNCTIONS) != 0);
    }
    fputs("\n}\n", stdout);
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "Usage: mapiinfo [-d] [-l] [-f] [-o] [-u] [-a] [--json] [-h]\n"
                 "Lists what the running mapid offers (found through $MAPI_CONF or the installed "
                 "mapi.conf).\n"
                 "  -d, --devices         devices\n"
                 "  -l, --libraries       function libraries\n"
                 "  -f, --functions       libraries and their functions with argument descriptors\n"
                 "  -o, --flows           flows\n"
                 "  -u, --flow-functions  flows and the functions applied to them (packets seen, "
                 "passed, result size)\n"
                 "  -a, --all             everything (the default)\n"
                 "      --json            one JSON document on stdout\n"
                 "  -h, --help            this help\n"
                 "Exit status: 0 ok, 1 mapid unreachable or a MAPI error, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"devices", no_argument, NULL, 'd'},
        {"libraries", no_argument, NULL, 'l'},
        {"functions", no_argument, NULL, 'f'},
        {"flows", no_argument, NULL, 'o'},
        {"flow-functions", no_argument, NULL, 'u'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned show = 0;
    int json = 0, opt;

    while ((opt = getopt_long(argc, argv, "dlfouah", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            show |= SHOW_DEVICES;
            break;
        case 'l':
            show |= SHOW_LIBRARIES;
            break;
        case 'f':
            show |= SHOW_FUNCTIONS;
            break;
        case 'o':
            show |= SHOW_FLOWS;
            break;
        case 'u':
            show |= SHOW_FLOW_FUNCTIONS;
            break;
        case 'a':
            show |= SHOW_ALL;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mapiinfo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (show == 0)
        show = SHOW_ALL;

    struct listing l;
    memset(&l, 0, sizeof l);
    int rc = 0;
    if ((show & SHOW_DEVICES) && collect_devices(&l) < 0)
        rc = 1;
    if (rc == 0 && (show & (SHOW_LIBRARIES | SHOW_FUNCTIONS)) &&
        collect_libraries(&l, (show & SHOW_FUNCTIONS) != 0) < 0)
        rc = 1;
    if (rc == 0 && (show & (SHOW_FLOWS | SHOW_FLOW_FUNCTIONS)) &&
        collect_flows(&l, (show & SHOW_FLOW_FUNCTIONS) != 0) < 0)
        rc = 1;
    if (rc == 0) {
        if (json)
            print_json(&l, show);
        else
            print_text(&l, show);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            perror("mapiinfo: stdout");
            rc = 1;
        }
    }
    free_listing(&l);
    return rc;
}
