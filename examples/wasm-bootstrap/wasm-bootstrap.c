// SPDX-License-Identifier: MIT
/*
 * wasm-bootstrap, user side: a WebAssembly guest that loads wasm-bootstrap.bpf.c,
 * sets its minimum duration before load and prints one line per event:
 *
 *   EXEC  COMM  PID  PPID  FILENAME
 *   EXIT  COMM  PID  PPID  CODE  (Nms)
 *
 * Usage: ecc run wasm-bootstrap.wasm [-d MS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm-bootstrap.skel.h"
#include "wasm-bootstrap.wasm.h"

static void usage(const char *self)
{
	fprintf(stderr, "usage: %s [-d MS]\n"
		"  -d MS  report exits only of processes that lived at least MS milliseconds\n",
		self);
}

/* -d MS as a count of milliseconds; -1 when it is not one. */
static long long parse_ms(const char *text)
{
	char *end;
	long long ms;

	errno = 0;
	ms = strtoll(text, &end, 10);
	if (errno || end == text || *end || ms < 0)
		return -1;
	return ms;
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (e->exit_event)
		printf("EXIT  %-16s %-7d %-7d %-3u (%llums)\n", e->comm, e->pid, e->ppid,
		       e->exit_code, (unsigned long long)(e->duration_ns / 1000000));
	else
		printf("EXEC  %-16s %-7d %-7d %s\n", e->comm, e->pid, e->ppid, e->filename);
	return 0;
}

int main(int argc, char **argv)
{
	struct wasm_bootstrap_bpf *skel;
	struct bpf_buffer *events = NULL;
	long long min_ms = 0;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc && (min_ms = parse_ms(argv[i + 1])) >= 0) {
			i++;
			continue;
		}
		usage(argv[0]);
		return 2;
	}
	/* stdout is a pipe as often as a terminal: one line at a time either way */
	setvbuf(stdout, NULL, _IOLBF, 0);

	skel = wasm_bootstrap_bpf__open();
	if (!skel) {
		fprintf(stderr, "cannot open the BPF object\n");
		return 1;
	}
	/* .rodata is frozen at load: set it now, the kernel filters with it */
	skel->rodata->min_duration_ns = (uint64_t)min_ms * 1000000ULL;

	err = wasm_bootstrap_bpf__load(skel);
	if (err) {
		fprintf(stderr, "cannot load the BPF object: %d\n", err);
		goto out;
	}
	err = wasm_bootstrap_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "cannot attach: %d\n", err);
		goto out;
	}
	events = bpf_buffer__open(skel->maps.rb, on_event, NULL);
	if (!events) {
		err = -errno;
		fprintf(stderr, "cannot open the ring buffer: %d\n", err);
		goto out;
	}
	printf("%-5s %-16s %-7s %-7s %s\n", "EVENT", "COMM", "PID", "PPID",
	       "FILENAME / EXIT CODE (LIFETIME)");
	for (;;) {
		err = bpf_buffer__poll(events, 100);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "polling the ring buffer: %d\n", err);
			break;
		}
	}
out:
	bpf_buffer__free(events);
	wasm_bootstrap_bpf__destroy(skel);
	return err < 0 ? 1 : 0;
}
