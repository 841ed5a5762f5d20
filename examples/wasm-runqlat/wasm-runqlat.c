// SPDX-License-Identifier: MIT
/*
 * wasm-runqlat, user side: a WebAssembly guest that loads wasm-runqlat.bpf.c and
 * every INTERVAL seconds reads its histogram map (counts since the start)
 * and prints it as a log2 histogram of microseconds, COUNT times.
 *
 * Usage: ecc run wasm-runqlat.wasm [INTERVAL [COUNT]]   (default: 1 s, until Ctrl-C)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasm-runqlat.skel.h"
#include "wasm-runqlat.wasm.h"

#define BAR_WIDTH 40
/* wasm-runqlat.wasm.h has the struct, not the header's macros */
#define SLOTS ((int)(sizeof(((struct hist *)0)->slots) / sizeof(uint32_t)))

/* a whole number >= minimum, or -1 */
static long parse_count(const char *text, long minimum)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || end == text || *end || n < minimum)
		return -1;
	return n;
}

static void print_bar(uint32_t count, uint32_t most)
{
	int stars = most ? (int)((uint64_t)count * BAR_WIDTH / most) : 0;

	putchar('|');
	for (int i = 0; i < BAR_WIDTH; i++)
		putchar(i < stars ? '*' : ' ');
	putchar('|');
}

static void print_hist(const struct hist *h)
{
	int first = -1, last = -1;
	uint32_t most = 0;
	uint64_t total = 0;

	for (int i = 0; i < SLOTS; i++) {
		if (!h->slots[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		total += h->slots[i];
		if (h->slots[i] > most)
			most = h->slots[i];
	}
	printf("%10s %-13s : %-8s %s\n", "usecs", "", "count", "distribution");
	for (int i = first < 0 ? 0 : first; i <= last; i++) {
		unsigned long long low = i ? 1ULL << i : 0, high = (1ULL << (i + 1)) - 1;

		printf("%10llu -> %-10llu : %-8u ", low, high, h->slots[i]);
		print_bar(h->slots[i], most);
		putchar('\n');
	}
	printf("total %llu\n", (unsigned long long)total);
}

int main(int argc, char **argv)
{
	long interval = 1, count = -1;
	struct wasm_runqlat_bpf *skel;
	int err, fd;

	if (argc > 3 || (argc > 1 && (interval = parse_count(argv[1], 1)) < 0) ||
	    (argc > 2 && (count = parse_count(argv[2], 1)) < 0)) {
		fprintf(stderr, "usage: %s [INTERVAL [COUNT]]  (seconds, >= 1)\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	skel = wasm_runqlat_bpf__open();
	if (!skel) {
		fprintf(stderr, "cannot open the BPF object\n");
		return 1;
	}
	err = wasm_runqlat_bpf__load(skel);
	if (!err)
		err = wasm_runqlat_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "cannot load and attach the BPF object: %d\n", err);
		goto out;
	}
	fd = bpf_map__fd(skel->maps.hist);
	printf("Tracing run queue latency... one histogram every %ld s (since the start).\n",
	       interval);
	for (long done = 0; count < 0 || done < count; done++) {
		struct hist h;
		uint32_t key = 0;
		char when[16];
		time_t now;

		sleep((unsigned)interval);
		memset(&h, 0, sizeof(h));
		err = bpf_map_lookup_elem(fd, &key, &h);
		if (err) {
			fprintf(stderr, "cannot read the histogram: %d\n", err);
			goto out;
		}
		now = time(NULL);
		strftime(when, sizeof(when), "%H:%M:%S", gmtime(&now));
		printf("\n%s UTC\n", when);
		print_hist(&h);
	}
out:
	wasm_runqlat_bpf__destroy(skel);
	return err ? 1 : 0;
}
