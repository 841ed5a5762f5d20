// SPDX-License-Identifier: MIT
/*
 * wasm-allowlist, user side: a WebAssembly guest that edits the kernel's
 * allow-list (the hash map `allowed`) while it runs, and prints the execs the
 * kernel reports.
 *
 * Usage: ecc run wasm-allowlist.wasm [-c CONTROL] [NAME...] [+NAME | -NAME ...]
 *
 *   NAME      allowed from the start
 *   -c NAME   a control command: allowed too; each exec of it applies the next
 *             edit, and the exec after the last edit ends the program
 *   +NAME     an edit: allow NAME
 *   -NAME     an edit: stop reporting NAME (prints how many execs were reported)
 *
 * e.g. `ecc run wasm-allowlist.wasm -c step +curl -curl`, then run a program named
 * `step` to start reporting curl, again to stop, and once more to quit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm-allowlist.skel.h"
#include "wasm-allowlist.wasm.h"

#define COMM_LEN 16 /* the kernel's TASK_COMM_LEN: the map's key size */

static int map_fd;
static char control[COMM_LEN];
static char **edits;
static int edit_count, next_edit;
static int finished, failed;

/* name as the kernel keeps a comm: at most 15 bytes, NUL-padded to 16 */
static void to_key(char key[COMM_LEN], const char *name)
{
	memset(key, 0, COMM_LEN);
	strncpy(key, name, COMM_LEN - 1);
}

static int allow(const char *name)
{
	char key[COMM_LEN];
	uint64_t seen = 0;
	int err;

	to_key(key, name);
	err = bpf_map_update_elem(map_fd, key, &seen, BPF_NOEXIST);
	if (err == -EEXIST) {
		printf("allow %s: already allowed\n", key);
		return 0;
	}
	if (err) {
		fprintf(stderr, "cannot allow %s: %d\n", key, err);
		return err;
	}
	printf("allow %s\n", key);
	return 0;
}

static int deny(const char *name)
{
	char key[COMM_LEN];
	uint64_t seen = 0;
	int err;

	to_key(key, name);
	err = bpf_map_lookup_elem(map_fd, key, &seen);
	if (!err)
		err = bpf_map_delete_elem(map_fd, key);
	if (err == -ENOENT) {
		printf("deny %s: not allowed\n", key);
		return 0;
	}
	if (err) {
		fprintf(stderr, "cannot deny %s: %d\n", key, err);
		return err;
	}
	printf("deny %s after %llu execs\n", key, (unsigned long long)seen);
	return 0;
}

static int apply(const char *edit)
{
	return edit[0] == '+' ? allow(edit + 1) : deny(edit + 1);
}

static int on_exec(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	printf("EXEC  %-16s %-7d %-7d #%llu\n", e->comm, e->pid, e->ppid,
	       (unsigned long long)e->seen);
	if (!control[0] || strncmp(e->comm, control, COMM_LEN))
		return 0;
	if (next_edit == edit_count) {
		finished = 1;
		return 0;
	}
	if (apply(edits[next_edit++]))
		failed = finished = 1;
	return 0;
}

static int usage(const char *self)
{
	fprintf(stderr, "usage: %s [-c CONTROL] [NAME...] [+NAME | -NAME ...]\n", self);
	return 2;
}

int main(int argc, char **argv)
{
	struct wasm_allowlist_bpf *skel;
	struct bpf_buffer *events = NULL;
	int err, first_edit = argc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc && first_edit == argc) {
			to_key(control, argv[++i]);
		} else if (argv[i][0] == '+' || argv[i][0] == '-') {
			if (!argv[i][1])
				return usage(argv[0]);
			if (first_edit == argc)
				first_edit = i;
		} else if (first_edit != argc || !argv[i][0]) {
			return usage(argv[0]); /* a plain NAME after the edits */
		}
	}
	if (first_edit < argc && !control[0])
		return usage(argv[0]); /* edits, and nothing to step through them */
	edits = argv + first_edit;
	edit_count = argc - first_edit;
	setvbuf(stdout, NULL, _IOLBF, 0);

	skel = wasm_allowlist_bpf__open();
	if (!skel) {
		fprintf(stderr, "cannot open the BPF object\n");
		return 1;
	}
	err = wasm_allowlist_bpf__load(skel);
	if (err) {
		fprintf(stderr, "cannot load the BPF object: %d\n", err);
		goto out;
	}
	/* the list is filled before the program is attached: no exec is missed */
	map_fd = bpf_map__fd(skel->maps.allowed);
	if (control[0] && (err = allow(control)))
		goto out;
	for (int i = 1; i < first_edit; i++) {
		if (!strcmp(argv[i], "-c")) {
			i++;
			continue;
		}
		if ((err = allow(argv[i])))
			goto out;
	}
	err = wasm_allowlist_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "cannot attach: %d\n", err);
		goto out;
	}
	events = bpf_buffer__open(skel->maps.events, on_exec, NULL);
	if (!events) {
		err = -errno;
		fprintf(stderr, "cannot open the ring buffer: %d\n", err);
		goto out;
	}
	printf("ready\n");
	while (!finished) {
		err = bpf_buffer__poll(events, 100);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "polling the ring buffer: %d\n", err);
			break;
		}
		err = 0;
	}
	if (finished && !failed)
		printf("done\n");
out:
	bpf_buffer__free(events);
	wasm_allowlist_bpf__destroy(skel);
	return err < 0 || failed ? 1 : 0;
}
