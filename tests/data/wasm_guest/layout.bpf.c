// SPDX-License-Identifier: MIT
/* A BPF side for tests/test_wasm_guest.py: the export header's struct wg_sample,
 * and globals of awkward types in .rodata, .data and .bss for the skeleton. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "layout.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

const volatile bool verbose = false;
const volatile long min_len = 3;
const volatile struct wg_point origin = { 1, 2 };
const volatile char label[10] = "none";
const volatile __u8 level = 0;
static const volatile int hidden = 5;	/* static: left out, but its bytes kept */
const volatile __u64 threshold = 0;

int calls = 7;
__u64 hits;

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	struct wg_sample *s;

	if (verbose && hidden)
		hits++;
	s = bpf_ringbuf_reserve(&events, sizeof(*s), 0);
	if (!s)
		return 0;
	s->l = min_len;
	s->flag = verbose;
	s->kind = KIND_EXEC;
	s->pts[0] = origin;
	s->small = level;
	s->val.u64 = threshold + calls + label[0];
	bpf_ringbuf_submit(s, 0);
	return 0;
}
