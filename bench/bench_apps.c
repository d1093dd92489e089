/*
 * bench/bench_apps.c - benchmark client of W3 (many applications): several separate client
 * processes, each with one flow and its own BPF filter and packet counter, all on the same
 * offline device (one pass over the trace in mapid serves them all).
 *
 * Usage: bench_apps TRACE FILTER COUNT [FILTER COUNT]...
 *   COUNT   the expected packet count of FILTER ("-": not checked)
 *
 * The first process (the coordinator) creates the offline device with
 * mapi_create_offline_device and starts one application process per FILTER (fork + exec of
 * this program as "bench_apps -a DEVICE FILTER COUNT FD"). Each application opens its own
 * connection to mapid, creates a flow on the device by name, applies BPF_FILTER FILTER and
 * PKT_COUNTER, connects, and reports "connected" by writing a byte to the pipe FD. When all
 * are connected the coordinator starts the device (mapi_start_offline_device). Each
 * application waits until its flow is FLOW_FINISHED (bench.h: its counter, checked every
 * millisecond, has stopped and mapid says so), prints "FILTER<TAB>packets" and exits with 0
 * if the count is the expected one, 1 if not. The coordinator waits for all of them, deletes
 * the device and exits with 0 if every application succeeded. MAPI_CONF names mapid's
 * configuration.
 */
#include <signal.h>
#include <sys/wait.h>

#include "bench.h"

static int app(const char *dev, const char *filter, const char *count, const char *fdstr)
{
    long long want = bench_parse_count(count);
    int ready_fd = atoi(fdstr);
    int fd = mapi_create_flow(dev);
    if (fd < 0)
        bench_die_mapi("mapi_create_flow");
    if (mapi_apply_function(fd, "BPF_FILTER", filter) < 0)
        bench_die_mapi("BPF_FILTER");
    int fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (fid < 0)
        bench_die_mapi("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        bench_die_mapi("mapi_connect");
    if (write(ready_fd, "r", 1) != 1)
        bench_die("writing to the coordinator: %s", strerror(errno));
    close(ready_fd);
    bench_wait_finished(fd, fid, 300);
    unsigned long long n = bench_read_u64(fd, fid);
    printf("%s\t%llu\n", filter, n);
    fflush(stdout);
    int bad = bench_check(filter, n, want);
    mapi_close_flow(fd);
    return bad;
}

int main(int argc, char **argv)
{
    bench_prog = "bench_apps";
    if (argc == 6 && strcmp(argv[1], "-a") == 0)
        return app(argv[2], argv[3], argv[4], argv[5]);
    if (argc < 4 || (argc - 2) % 2 != 0) {
        fprintf(stderr, "usage: bench_apps TRACE FILTER COUNT [FILTER COUNT]...\n");
        return 2;
    }
    int napps = (argc - 2) / 2;
    pid_t *pids = calloc((size_t)napps, sizeof *pids);
    int *ready = calloc((size_t)napps, sizeof *ready);
    if (!pids || !ready)
        bench_die("out of memory");
    char *dev = mapi_create_offline_device(argv[1], MFF_PCAP);
    if (dev == NULL)
        bench_die_mapi("mapi_create_offline_device");

    for (int i = 0; i < napps; i++) {
        int p[2];
        if (pipe(p) < 0)
            bench_die("pipe: %s", strerror(errno));
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] < 0)
            bench_die("fork: %s", strerror(errno));
        if (pids[i] == 0) {
            char fdbuf[16];
            snprintf(fdbuf, sizeof fdbuf, "%d", p[1]);
            close(p[0]);
            char *args[] = {"bench_apps", "-a", dev, argv[2 + 2 * i], argv[3 + 2 * i], fdbuf, NULL};
            execv("/proc/self/exe", args);
            fprintf(stderr, "bench_apps: exec: %s\n", strerror(errno));
            _exit(127);
        }
        close(p[1]);
        ready[i] = p[0];
    }
    int bad = 0;
    for (int i = 0; i < napps; i++) {
        char c;
        ssize_t r;
        do
            r = read(ready[i], &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1) {
            fprintf(stderr, "bench_apps: application %d did not connect\n", i + 1);
            bad = 1;
        }
        close(ready[i]);
    }
    if (bad) {
        for (int i = 0; i < napps; i++)
            kill(pids[i], SIGTERM);
    } else if (mapi_start_offline_device(dev) < 0) {
        bench_die_mapi("mapi_start_offline_device");
    }
    for (int i = 0; i < napps; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    if (mapi_delete_offline_device(dev) < 0)
        bench_die_mapi("mapi_delete_offline_device");
    free(pids);
    free(ready);
    return bad;
}
