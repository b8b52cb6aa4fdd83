/* spin US: a stand-in console for benches/keylat.py's `work` mode. It prints
 * the marker line, then writes each key back after spending US microseconds
 * of CPU on it, so the figure can be read against a known work per key. */
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    double work = argc > 1 ? atof(argv[1]) : 0;
    struct termios raw;
    tcgetattr(0, &raw);
    cfmakeraw(&raw);
    tcsetattr(0, TCSANOW, &raw);
    printf("Aerospike UDF module\r\n");
    fflush(stdout);
    char keys[64];
    ssize_t n;
    while ((n = read(0, keys, sizeof keys)) > 0) {
        double start = now_us();
        while (now_us() - start < work) {
        }
        write(1, keys, n);
    }
    return 0;
}
