/*
 * examples/remote_count.c - "Using DiMAPI", section 6.4 of the MAPI tutorial: count the web
 * packets on several remote monitoring sensors at once, with one flow over a network scope.
 *
 * Usage: remote_count [SCOPE [FILTER [SECONDS]]]
 *   SCOPE    the sensors and their interfaces, "host:dev, host:port:dev, [v6addr]:dev, ..."
 *            (default "localhost:eth0": the mapicommd of this machine)
 *   FILTER   BPF filter (default "tcp and port 80", the tutorial's web packets)
 *   SECONDS  how many one-second reads (default 0: until SIGINT, SIGQUIT or SIGTERM)
 * Every second it prints one line per sensor, in scope order, and the total:
 *   pkts in host 0 (sensor1:eth0): 1234
 *   ...
 *   Total pkts: 5678
 * libmapi reads its DiMAPI settings (the CA that signs the sensors' certificates, the client
 * certificate, the timeout) from $MAPI_CONF; see docs/dimapi.md. mapicommd must run on every
 * sensor.
 *
 * A sensor that stops answering does not stop the others: its line shows 0 and a warning
 * naming it goes to stderr (a new flow reaches it again once it is back).
 *
 * Differences from the tutorial's listing: the scope, filter and duration come from the
 * command line; `loop` is initialised; the total is that of the current read (the listing
 * added up the running totals of all reads); the signal handler only sets a flag, and the
 * flow is closed in main (mapi_close_flow is not async-signal-safe); errors print MAPI's
 * message, which names the sensor that failed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mapi.h>

static volatile sig_atomic_t stop;

/* SIGINT, SIGQUIT, SIGTERM: leave the loop, close the flow and exit. */
static void terminate(int sig)
{
    (void)sig;
    stop = 1;
}

/* Prints the last MAPI error on stderr. */
static void print_mapi_error(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: MAPI error %d: %s\n", what, err, msg);
}

/* Copies the i-th item of the scope (trimmed) into buf, for the labels; "" if there is none. */
static void scope_item(const char *scope, int i, char *buf, size_t len)
{
    const char *p = scope;
    while (i-- > 0 && p != NULL) {
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    buf[0] = '\0';
    if (p == NULL)
        return;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, ",");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

int main(int argc, char *argv[])
{
    int fd, fid;
    mapi_results_t *dres;
    unsigned long long count, total_count;
    int i, loop;
    int number_of_sensors;
    const char *scope = argc > 1 ? argv[1] : "localhost:eth0";
    const char *filter = argc > 2 ? argv[2] : "tcp and port 80";
    loop = argc > 3 ? atoi(argv[3]) : 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = terminate; /* no SA_RESTART: sleep() returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* create a flow using a scope of (here: any number of) monitoring sensors */
    fd = mapi_create_flow(scope);
    if (fd < 0) {
        printf("Could not create flow\n");
        print_mapi_error(scope);
        exit(EXIT_FAILURE);
    }

    /* keep only the web packets (or those of the given filter) */
    if (mapi_apply_function(fd, "BPF_FILTER", filter) < 0) {
        printf("Could not apply BPF_FILTER function\n");
        print_mapi_error("BPF_FILTER");
        exit(EXIT_FAILURE);
    }

    /* count them in every monitoring sensor */
    fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (fid < 0) {
        printf("Could not apply PKT_COUNTER function\n");
        print_mapi_error("PKT_COUNTER");
        exit(EXIT_FAILURE);
    }

    /* connect to the flow */
    if (mapi_connect(fd) < 0) {
        printf("Could not connect to flow %d\n", fd);
        print_mapi_error("mapi_connect");
        exit(EXIT_FAILURE);
    }

    /* get the number of the monitoring sensors */
    number_of_sensors = mapi_get_scope_size(fd);

    /* read the results of the applied PKT_COUNTER function from all hosts every 1 sec */
    int status = EXIT_SUCCESS;
    for (int n = 0; !stop && (loop <= 0 || n < loop); n++) {
        sleep(1);
        if (stop)
            break;

        dres = mapi_read_results(fd, fid);
        if (dres == NULL) {
            /* no sensor answered */
            print_mapi_error("mapi_read_results");
            status = EXIT_FAILURE;
            break;
        }
        /* a sensor that is down has an empty entry (size 0), and its error is left to read */
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        if (mapi_read_error(&err, msg) == 0 && err != 0)
            fprintf(stderr, "warning: MAPI error %d: %s\n", err, msg);

        total_count = 0;
        for (i = 0; i < number_of_sensors; i++) {
            char name[MAPI_STR_LENGTH];
            scope_item(scope, i, name, sizeof name);
            count = 0;
            if (dres[i].res != NULL && dres[i].size >= (int)sizeof count)
                memcpy(&count, dres[i].res, sizeof count);
            printf("pkts in host %d (%s): %llu\n", i, name, count);
            total_count += count;
        }
        printf("Total pkts: %llu\n", total_count);
        fflush(stdout);
    }

    /* free the resources of the flow in every monitoring sensor */
    mapi_close_flow(fd);
    return status;
}
