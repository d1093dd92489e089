/*
 * common/conf.h - mapi.conf: the configuration of mapid (and the keys libmapi needs, such as
 * the socket path). The format of the MAPI tutorial (section 5.2): `key=value` lines, `#`
 * comments, `[driver]` sections (device=, driver=, description=, alias=, plus our promisc=,
 * snaplen=, ring_size=, link_speed=, mpls=, vlan=) and `[format]` sections (format=, driver=,
 * description=). Our own global keys: socket=, socket_group=, buffer_size=, the per-user
 * limits of mapid max_flows_per_user= (old name max_flows_per_client=, still accepted),
 * max_functions_per_flow=, max_shm_per_user= (old name max_shm_per_client=),
 * max_connections_per_user=, max_threads_per_user=, max_input_per_user=,
 * max_devices_per_user=, the global
 * max_connections=, max_input_total= and message_timeout= (see docs/security.md), and for DiMAPI
 * dimapi_listen=, dimapi_cert=, dimapi_key=, dimapi_client_ca=, dimapi_ca=,
 * dimapi_client_cert=, dimapi_client_key=, dimapi_plaintext=, dimapi_timeout=,
 * dimapi_max_clients=, dimapi_idle_timeout=, and mapicommd's limits dimapi_handshake_timeout=,
 * dimapi_max_handshakes=, dimapi_max_handshakes_per_address=,
 * dimapi_max_connections_per_identity=, dimapi_max_flows_per_identity=, dimapi_max_memory=,
 * dimapi_max_memory_per_identity=, dimapi_file_dir= (see struct mapi_conf and
 * docs/dimapi.md), anon_key_file= (the default key of anonflib's keyed functions),
 * anon_key_group= (who may use it), and the bounds
 * of function libraries' per-packet work: regexp_match_limit=, regexp_heap_limit=,
 * regexp_time_limit= (REGEXP), print_packet_rate=, print_packet_burst= (PRINT_PACKET),
 * res2file_max_empty= (RES2FILE), bpf_filter_max_len= (BPF_FILTER's compile time).
 * Sizes accept K, M and G suffixes (powers of 1024). Relative paths (libpath, drvpath, logfile,
 * socket, the dimapi_* files and dimapi_file_dir, anon_key_file) are relative to the directory of
 * the configuration file.
 */
#ifndef MAPI_COMMON_CONF_H
#define MAPI_COMMON_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* In a directory mapid creates and owns (root, group socket_group, mode 0750), so no other
 * local user can take the path first. */
#define MAPI_DEFAULT_SOCKET_DIR "/run/mapi"
#define MAPI_DEFAULT_SOCKET MAPI_DEFAULT_SOCKET_DIR "/mapid.sock"

struct mapi_conf_device {
    char device[256];
    char driver[256];
    char description[1024];
    char alias[256];
    int promisc;         /* default 1 */
    uint32_t snaplen;    /* default 65535 */
    uint32_t ring_bytes; /* kernel capture ring, default 32 MiB */
    int link_speed, mpls, vlan;
};

struct mapi_conf_format {
    char format[64]; /* MFF_PCAP, MFF_DAG_ERF */
    char driver[256];
    char description[1024];
};

struct mapi_conf {
    char path[4096]; /* file this was read from, "" for defaults */
    char libpath[4096];
    char drvpath[4096];
    char libs[4096]; /* colon-separated file names, e.g. "stdflib.so:extraflib.so" */
    int dimapi_port;
    int syslog_level; /* 0 info only, 1 debug to stdout and syslog, 2 debug to syslog only */
    char logfile[4096];
    char socket[108];
    char socket_group[64]; /* default "mapi" */
    uint64_t buffer_size;  /* TO_BUFFER ring bytes, default 4 MiB */
    /* Limits of mapid. "Per user" counts every connection of one uid together (root too). */
    int max_flows_per_user;       /* flows of one uid, default 1024 */
    int max_functions_per_flow;   /* default 256 */
    uint64_t max_shm_per_user;    /* shared memory of one uid's connected flows, default 4 GiB */
    int max_connections_per_user; /* connections of one uid at once, default 64 */
    int max_threads_per_user;     /* trace capture threads of one uid, default 64 */
    uint64_t max_input_per_user;  /* buffered request bytes of one uid, default 16 MiB */
    int max_connections;          /* connections at once, all users, default 1024 */
    uint64_t max_input_total;     /* buffered request bytes, all users, default 128 MiB */
    int message_timeout;          /* ms a started request may take to arrive, default 10000 */
    int max_devices_per_user;     /* trace devices of one uid, all connections; default 16 */
    /* DiMAPI (mapicommd and libmapi's remote back end) */
    char dimapi_listen[256];       /* mapicommd: address to listen on, "" = all (IPv6 and IPv4) */
    char dimapi_cert[4096];        /* mapicommd: its certificate (PEM, chain allowed) */
    char dimapi_key[4096];         /* mapicommd: its private key (PEM) */
    char dimapi_client_ca[4096];   /* mapicommd: if set, clients must present a certificate
                                      signed by this CA (PEM) */
    char dimapi_ca[4096];          /* libmapi: CA (PEM) that signs the sensors' certificates */
    char dimapi_client_cert[4096]; /* libmapi: certificate presented to mapicommd */
    char dimapi_client_key[4096];  /* libmapi: its key */
    int dimapi_plaintext;          /* 1: plain TCP, no TLS (both sides must say so); default 0 */
    int dimapi_timeout;            /* libmapi: ms a sensor may take to answer, default 5000 */
    int dimapi_max_clients;        /* mapicommd: connections at once, default 256 */
    int dimapi_idle_timeout;       /* mapicommd: ms a message that has begun may take to
                                      arrive completely (also CLOSE_FLOW during a wait),
                                      default 10000 */
    int dimapi_handshake_timeout;  /* mapicommd: ms from accept to the end of the TLS
                                      handshake and the HELLO, default 5000 */
    int dimapi_max_handshakes;     /* mapicommd: connections before their HELLO, default 128 */
    int dimapi_max_handshakes_per_address;   /* of those, from one address (IPv4) or /64
                                                (IPv6), default 8 */
    int dimapi_max_connections_per_identity; /* mapicommd: connections of one remote identity
                                                (certificate subject, else token), default 128 */
    int dimapi_max_flows_per_identity;       /* mapicommd: open flows of one identity, 64 */
    uint64_t dimapi_max_memory;              /* mapicommd: bytes of packet/result queues and
                                                helper-thread stacks in total, default 256 MiB */
    uint64_t dimapi_max_memory_per_identity; /* of those, one identity's, default 64 MiB */
    char dimapi_file_dir[4096];              /* mapicommd: directory of remote 'w' files; ""
                                                (default): remote 'w' arguments are refused */
    char anon_key_file[4096];   /* anonflib: file holding the default anonymisation key */
    char anon_key_group[64];    /* group whose members (and root) may use anon_key_file;
                                   default "" = root only */
    int regexp_match_limit;     /* PCRE2 match limit per start position, default 1000 */
    uint64_t regexp_heap_limit; /* PCRE2 backtracking memory per match, default 1 MiB */
    int regexp_time_limit;      /* us one REGEXP rule may spend on one packet, default 1000 */
    int print_packet_rate;      /* PRINT_PACKET lines per second per flow, default 10 */
    int print_packet_burst;     /* PRINT_PACKET lines in a burst, default 100 */
    int res2file_max_empty;     /* RES2FILE empty periods written in a row, default 100 */
    int bpf_filter_max_len;     /* BPF_FILTER expression bytes, default 1024, 0 = no limit */
    struct mapi_conf_device *devices;
    int ndevices;
    struct mapi_conf_format *formats;
    int nformats;
};

/* Fills c with the defaults (no devices). */
void mapi_conf_defaults(struct mapi_conf *c);
/*
 * Loads path over the defaults. Returns 0, or -1 with a message (file, line, reason) in err.
 * On success free the lists with mapi_conf_free.
 */
int mapi_conf_load(struct mapi_conf *c, const char *path, char *err, size_t errlen);
void mapi_conf_free(struct mapi_conf *c);
/* The configuration file to use: $MAPI_CONF if set, else the installed default. */
const char *mapi_conf_default_path(void);
/* The value of a string key of c (a global key of the table in conf.c, e.g. "logfile"), or
 * NULL if there is no such string key. Points into c. */
const char *mapi_conf_string(const struct mapi_conf *c, const char *key);
/*
 * Writes c as mapi.conf text to out: every global key of the table in conf.c under its current
 * name (old names that alias a field are left out), then each [driver] and [format] section.
 * Sizes are written in bytes. What this writes loads again to the same values (the round trip
 * the conf fuzz target checks) as long as no value holds a newline (the loader never makes
 * one). `mapid -t` prints it. Returns 0, or -1 on a write error.
 */
int mapi_conf_write(const struct mapi_conf *c, FILE *out);
/*
 * The value of any global key of c as text: string keys as mapi_conf_string, numbers in
 * decimal (formatted into per-thread storage, valid until the next call on this thread).
 * NULL if there is no such key.
 */
const char *mapi_conf_text(const struct mapi_conf *c, const char *key);
/* Parses "16M"-style sizes. Returns 0 or -1. */
int mapi_parse_size(const char *s, uint64_t *out);

#endif /* MAPI_COMMON_CONF_H */
