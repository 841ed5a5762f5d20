// SPDX-License-Identifier: MIT
/* A guest written against the wasm-bpf guest SDK's API, making the calls its
 * bootstrap example makes: open, set a .rodata value, load, attach, poll a
 * ring buffer, update a map, free, destroy. Only the two generated headers
 * are included; libbpf-wasm.h comes through the skeleton. */
#include <stdio.h>
#include <stdbool.h>
#include <time.h>
#include "bootstrap.wasm.h"
#include "bootstrap.skel.h"

static int handle_event(void *ctx, void *data, size_t data_sz)
{
	const struct event *e = data;

	printf("event ctx=%p size=%zu pid=%d ppid=%d exit_code=%u duration_ns=%llu "
	       "comm=%s filename=%s exit_event=%d\n", ctx, data_sz, e->pid, e->ppid,
	       e->exit_code, (unsigned long long)e->duration_ns, e->comm, e->filename,
	       e->exit_event);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *rb = NULL;
	struct bootstrap_bpf *skel;
	long min_duration_ms = 0;
	int err;

	if (argc == 3 && strcmp(argv[1], "-d") == 0)
		min_duration_ms = strtol(argv[2], NULL, 10);

	skel = bootstrap_bpf__open();
	if (!skel) {
		fprintf(stderr, "Failed to open BPF skeleton\n");
		return 1;
	}
	skel->rodata->min_duration_ns = min_duration_ms * 1000000ULL;

	err = bootstrap_bpf__load(skel);
	if (err) {
		fprintf(stderr, "Failed to load and verify BPF skeleton\n");
		goto cleanup;
	}
	err = bootstrap_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "Failed to attach BPF skeleton\n");
		goto cleanup;
	}
	rb = bpf_buffer__open(skel->maps.rb, handle_event, NULL);
	if (!rb) {
		err = -1;
		fprintf(stderr, "Failed to create ring buffer\n");
		goto cleanup;
	}
	int fd = bpf_map__fd(skel->maps.exec_start);
	int lookup_key = 1;
	uint64_t value = 0x1122334455667788ULL;
	bpf_map_update_elem(fd, &lookup_key, &value, BPF_ANY);
	while (true) {
		err = bpf_buffer__poll(rb, 100);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			printf("Error polling buffer: %d\n", err);
			break;
		}
	}
cleanup:
	bpf_buffer__free(rb);
	bootstrap_bpf__destroy(skel);
	return err < 0 ? -err : 0;
}
