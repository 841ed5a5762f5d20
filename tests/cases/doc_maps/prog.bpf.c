// Doc comments on .maps maps, in the two common declaration styles (an
// anonymous struct in the declaration, and a named struct type declared
// first), with the annotations loaders act on: sample, intepreter, export_config.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 26

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[16];
};

/// @sample {"interval": 1000, "type": "log2_hist", "unit": "usecs"}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct counts_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

/// @sample {
///   "interval": 500,
///   "type": "linear_hist",
///   "unit": "calls",
///   "clear_map": true
/// }
struct counts_map counts SEC(".maps");

/// @intepreter {"stack_trace": {"field_map": {"kern_stack_id": "stack_traces"}}}
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stack_traces SEC(".maps");

/// @export_config "no_export"
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } quiet SEC(".maps");

SEC("tp/syscalls/sys_enter_getpid")
int use_maps(void *ctx)
{
	__u32 key = 0;
	struct hist *h = bpf_map_lookup_elem(&hists, &key);
	__u64 *c = bpf_map_lookup_elem(&counts, &key);

	if (h)
		h->slots[0]++;
	if (c)
		(*c)++;
	bpf_get_stackid(ctx, &stack_traces, 0);
	bpf_ringbuf_output(&quiet, &key, sizeof(key), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
